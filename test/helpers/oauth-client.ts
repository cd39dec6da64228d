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

/** A code flow as a client application starts it: PKCE (S256), `state` and `nonce`, and the authorization URL. */
export interface StartedCodeFlow {
  url: string;
  verifier: string;
  state: string;
  nonce: string;
}

/**
 * Starts an authorization code flow at `as` for `params` (`client_id`,
 * `redirect_uri`, `scope`, and any other parameter), with new PKCE, state
 * and nonce values.
 */
export async function startCodeFlow(as: oauth.AuthorizationServer, params: Record<string, string>): Promise<StartedCodeFlow> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    response_type: 'code',
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  }).toString();
  return { url: url.toString(), verifier, state, nonce };
}
