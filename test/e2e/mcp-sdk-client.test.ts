/**
 * An MCP client connects the way the MCP authorization specification
 * (2025-11-25) describes, with the MCP TypeScript SDK as the client and
 * nothing but the URL of `/mcp` to start from: `Client` over
 * `StreamableHTTPClientTransport`, whose `auth()` (an `OAuthClientProvider`
 * implemented in test/helpers/mcp-sdk-host.ts) finds the protected resource
 * metadata from the 401, then this server's metadata; the user signs in and
 * consents in headless Chromium on the real pages; the code is redeemed with
 * `resource`; then tools/list, whoami, a refresh the SDK makes by itself when
 * the access token has expired, and step-up: write_note refused without
 * api:write (with what the SDK does about it), then granted after
 * re-authorization with the scope the 403 named.
 *
 * The server listens on a real socket (buildTestApp + listen) on an injected
 * clock, so the access token can expire without waiting.
 *
 * Registration: nobody registers the client beforehand. The provider
 * starts without client information and the SDK registers the host's
 * metadata at the server's `registration_endpoint` itself (RFC 7591, open
 * dynamic registration); the test checks it did. The same run with a Client
 * ID Metadata Document instead is mcp-sdk-client-metadata-document.test.ts.
 */
import t from 'tap';
import { REGISTRATION_ENDPOINT_PATH } from '../../src/oauth/metadata.js';
import { buildTestApp, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import {
  checkRefreshed,
  hostMetadata,
  openMcpHost,
  refusedByTheApi,
  signInFromTheUrlAlone,
  startLoopbackRedirect,
  stepUpCompleted,
  stepUpRefused,
  toolsAndWhoami,
} from '../helpers/mcp-sdk-host.js';
import { freePort } from '../helpers/server-process.js';
import { chromiumSkip } from '../helpers/chromium.js';

t.test(`an MCP SDK client connects from the /mcp URL alone (${backendName})`, { skip: chromiumSkip(t) }, async (t) => {
  const redirect = await startLoopbackRedirect(t);

  // The authorization server and MCP server, on a real socket and a clock the test moves.
  let clock = Date.now();
  const port = await freePort();
  const ISSUER = `http://127.0.0.1:${port}`;
  const { app, services, config } = await buildTestApp(t, { env: { ISSUER, PORT: String(port) }, now: () => clock });
  await app.listen({ port, host: '127.0.0.1' });
  const erin = await seedUser(services, { username: `erin${Date.now() % 100000}` });

  const host = await openMcpHost(t, {
    issuer: ISSUER,
    mcpUrl: new URL(`${ISSUER}/mcp`),
    user: erin,
    redirect,
    clientMetadata: hostMetadata(redirect.uri),
    unregisteredNotice: /not registered by an administrator of 127\.0\.0\.1:\d+\.\s*It registered itself/,
  });
  const { provider, exchanges } = host;

  await t.test('discovery from the 401, registration, the authorization request, sign-in and consent, the code redeemed with resource', async (t) => {
    await signInFromTheUrlAlone(t, host, [[`POST ${REGISTRATION_ENDPOINT_PATH}`, 201]]);
    t.equal(provider.newClientInformation.length, 1, 'the SDK registered the client itself');
    t.notMatch(provider.clientInformation()?.client_id, /^https:/, 'and got a client_id from the server');
  });

  await t.test('connected: tools/list and whoami', (t) => toolsAndWhoami(t, host));

  await t.test('the /mcp token is refused by /api/hello (audience), over HTTP', (t) => refusedByTheApi(t, host));

  await t.test('the access token expires: the SDK refreshes it by itself (with resource) and carries on', async (t) => {
    const client = await host.connect();
    const before = provider.tokens()!;
    const seen = exchanges.length;
    clock += (config.accessTokenTtlSeconds + 60) * 1000;
    const me = await client.callTool({ name: 'whoami', arguments: {} });
    t.match(me.structuredContent, { sub: erin.id, scope: 'api:read' });
    const since = exchanges.slice(seen);
    t.match(since[0], { method: 'POST', status: 401 }, 'the expired token was refused');
    t.match(since[0]!.wwwAuthenticate, /error="invalid_token"/);
    checkRefreshed(t, host, seen, before);
  });

  await t.test('step-up: write_note without api:write is refused with 403 naming the scope', (t) => stepUpRefused(t, host));

  await t.test('step-up completed: re-authorization with the scope the 403 named, then write_note works', (t) => stepUpCompleted(t, host));
});
