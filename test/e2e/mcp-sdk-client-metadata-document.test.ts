/**
 * The MCP SDK client of mcp-sdk-client.test.ts again, with the same steps
 * (test/helpers/mcp-sdk-host.ts), but with a Client ID Metadata Document
 * instead of dynamic registration. The test publishes the host's metadata
 * over https (node:https with a throwaway CA, test/helpers/tls.ts) at a URL on
 * 127.0.0.1; the document's client_id is that URL and its redirect_uris the
 * host's loopback callback. The provider has the URL as `clientMetadataUrl`
 * and no client information. This server advertises
 * `client_id_metadata_document_supported`, so the SDK must take the URL as
 * its client_id and never register, although open registration is offered.
 * The server fetches the document, the consent page says that no
 * administrator registered the app and where its document is, the code is
 * redeemed, tools work, the tokens refresh, and step-up works.
 *
 * The server is the real one, started as a process (`startServer`). It trusts
 * the throwaway CA through NODE_EXTRA_CA_CERTS and allows a document on
 * 127.0.0.1 through CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS=true. It has no
 * clock to move, so the refresh is the SDK's own `auth()` with the stored
 * refresh token, which is what its transport calls when an expired token is
 * refused.
 */
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import t from 'tap';
import { REGISTRATION_ENDPOINT_PATH } from '../../src/oauth/metadata.js';
import { backendName } from '../helpers/backend.js';
import {
  checkRefreshed,
  hostMetadata,
  openMcpHost,
  refusedByTheApi,
  requestLine,
  signInFromTheUrlAlone,
  startLoopbackRedirect,
  stepUpCompleted,
  stepUpRefused,
  tokenRequest,
  toolsAndWhoami,
} from '../helpers/mcp-sdk-host.js';
import { freePort, startServer } from '../helpers/server-process.js';
import { json, makeTestCertificates, startHttpsServer } from '../helpers/tls.js';
import { userBasic } from '../helpers/tokens.js';
import { chromiumSkip } from '../helpers/chromium.js';

const ADMIN = { username: 'mcp-ops', password: 'lanterns along the quay at dusk' };

t.test(`an MCP SDK client with a client metadata document connects from the /mcp URL alone (${backendName})`, { skip: chromiumSkip(t) }, async (t) => {
  const redirect = await startLoopbackRedirect(t);

  // The host's metadata document, on https with a certificate from the test's own CA.
  const certs = await makeTestCertificates(t, ['localhost']);
  const docs = await startHttpsServer(t, certs);
  const DOC_PATH = '/mcp-host/client-metadata.json';
  const DOC_URL = `https://127.0.0.1:${docs.port}${DOC_PATH}`;
  const clientMetadata = hostMetadata(redirect.uri);
  docs.on(DOC_PATH, json({ client_id: DOC_URL, ...clientMetadata }));

  // The authorization server and MCP server as a process, trusting that CA.
  const port = await freePort();
  const ISSUER = `http://127.0.0.1:${port}`;
  const server = await startServer(t, {
    port,
    env: {
      ISSUER,
      NODE_EXTRA_CA_CERTS: certs.caFile,
      CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS: 'true',
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
    },
  });
  t.equal(server.url, ISSUER);
  const userInput = { username: `erin${Date.now() % 100000}`, password: 'correct horse battery staple' };
  const created = await fetch(`${ISSUER}/admin/users`, {
    method: 'POST',
    headers: { authorization: userBasic(ADMIN.username, ADMIN.password), 'content-type': 'application/json' },
    body: JSON.stringify(userInput),
  });
  t.equal(created.status, 201, 'a user to sign in as');
  const erin = { ...userInput, id: ((await created.json()) as { id: string }).id };

  const host = await openMcpHost(t, {
    issuer: ISSUER,
    mcpUrl: new URL(`${ISSUER}/mcp`),
    user: erin,
    redirect,
    clientMetadata,
    clientMetadataUrl: DOC_URL,
    unregisteredNotice: new RegExp(`not registered by an administrator of 127\\.0\\.0\\.1:${port}\\.\\s*Its name and addresses come from a document published at 127\\.0\\.0\\.1:${docs.port}\\.`),
  });
  const { provider, exchanges } = host;

  t.test('the server offers both: metadata documents, and open registration the SDK could fall back to', async (t) => {
    const metadata = (await (await fetch(`${ISSUER}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    t.equal(metadata.client_id_metadata_document_supported, true);
    t.equal(metadata.registration_endpoint, `${ISSUER}${REGISTRATION_ENDPOINT_PATH}`);
  });

  await t.test('discovery from the 401, the document URL as client_id (no registration), sign-in and consent, the code redeemed with resource', async (t) => {
    await signInFromTheUrlAlone(t, host, []);
    t.same(provider.newClientInformation.map((info) => info.client_id), [DOC_URL], 'the SDK took the document URL as its client_id');
    t.equal(provider.authorizationUrls[0]?.searchParams.get('client_id'), DOC_URL, 'the authorization request’s client_id is the URL');
    t.equal(tokenRequest(exchanges, 'authorization_code')?.form?.get('client_id'), DOC_URL, 'and so is the token request’s');
    t.equal(docs.hits(DOC_PATH), 1, 'the server fetched the document once for the whole flow');
  });

  await t.test('connected: tools/list and whoami', (t) => toolsAndWhoami(t, host));

  await t.test('the /mcp token is refused by /api/hello (audience), over HTTP', (t) => refusedByTheApi(t, host));

  await t.test('refresh: the SDK’s auth() with the stored refresh token (with resource), then the new token works', async (t) => {
    const before = provider.tokens()!;
    const seen = exchanges.length;
    t.equal(await auth(provider, { serverUrl: host.options.mcpUrl, fetchFn: host.fetch }), 'AUTHORIZED', 'no user needed');
    t.equal(provider.authorizationUrls.length, 1, 'no new authorization request');
    checkRefreshed(t, host, seen, before);
    const client = await host.connect();
    t.same((await client.callTool({ name: 'whoami', arguments: {} })).structuredContent, { sub: erin.id, username: erin.username, client_id: DOC_URL, scope: 'api:read' });
  });

  await t.test('step-up: write_note without api:write is refused with 403 naming the scope', (t) => stepUpRefused(t, host));

  await t.test('step-up completed: re-authorization with the scope the 403 named, then write_note works', (t) => stepUpCompleted(t, host));

  t.test('never registered, always the document URL', async (t) => {
    t.notOk(exchanges.some((e) => requestLine(e) === `POST ${REGISTRATION_ENDPOINT_PATH}`), 'no request to the registration endpoint in the whole run');
    const tokenRequests = exchanges.filter((e) => e.form !== null);
    t.ok(tokenRequests.length >= 3, 'code, refresh and step-up token requests');
    t.ok(tokenRequests.every((e) => e.form!.get('client_id') === DOC_URL), 'every token request by the URL');
  });
});
