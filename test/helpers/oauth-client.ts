/**
 * oauth4webapi against a test app over a real socket. The app keeps its
 * configured issuer (`http://localhost:3000` in tests) while listening on a
 * random port: `customFetch` sends every request for the issuer's origin to
 * that port, so discovery's issuer check and the tokens' `iss` stay exact.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import * as oauth from 'oauth4webapi';

export interface ListeningClient {
  as: oauth.AuthorizationServer;
  /** Options for every oauth4webapi call (http allowed for localhost, fetch redirected). */
  options: { [oauth.allowInsecureRequests]: true; [oauth.customFetch]: typeof fetch };
  /** Base URL of the socket, for plain fetch calls. */
  baseUrl: string;
}

export async function listenForClient(app: FastifyInstance, issuer: string): Promise<ListeningClient> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const redirect = ((url: string, init?: RequestInit) => fetch(url.startsWith(issuer) ? baseUrl + url.slice(issuer.length) : url, init)) as typeof fetch;
  const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: redirect } as const;
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { ...options, algorithm: 'oauth2' }));
  return { as, options, baseUrl };
}
