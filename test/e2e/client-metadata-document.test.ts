/**
 * Client ID Metadata Documents end to end: a client whose client_id is the
 * https URL of its document, served by the test over real TLS with a
 * throwaway CA. In-process apps resolve the document's host name through an
 * injected resolver and trust the CA through the services' options; the
 * real server, started as a process, trusts it through NODE_EXTRA_CA_CERTS.
 */
import type { LookupAddress } from 'node:dns';
import t, { type Test } from 'tap';
import { buildTestApp, seedUser } from '../helpers/app.js';
import { backendName, openTestKv } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { startServer } from '../helpers/server-process.js';
import { json, makeTestCertificates, startHttpsServer } from '../helpers/tls.js';
import { postForm } from '../helpers/tokens.js';

const HOST = 'app.test';
const certs = await makeTestCertificates(t, [HOST]);
const docs = await startHttpsServer(t, certs);
const base = docs.origin(HOST);
/** The test's DNS: its host name is the test server. */
const resolve = async (hostname: string): Promise<LookupAddress[]> => {
  if (hostname === HOST) return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};
const outbound = { extraCaCerts: [certs.caPem], resolve };
const DEV = { CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_TIMEOUT_MS: '2000' };

const LOOPBACK = 'http://127.0.0.1/callback';
let docCounter = 0;
/** Serves a document at a new path; returns its URL. `body` gets its client_id unless it has one. */
function serveDocument(body: Record<string, unknown>, headers: Record<string, string> = {}): string {
  const path = `/clients/${++docCounter}/metadata.json`;
  const url = `${base}${path}`;
  docs.on(path, json({ client_id: url, ...body }, headers));
  return url;
}
const pathOf = (url: string) => new URL(url).pathname;

t.test(`client metadata documents (${backendName})`, async (t) => {
  const { app, services, storage, config } = await buildTestApp(t, { env: DEV, serviceOptions: { outbound } });
  const user = await seedUser(services);

  const authorize = (clientId: string, redirectUri: string, pkce = pkcePair(), extra: Record<string, string> = {}) =>
    authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid api:read', state: 's1', code_challenge: pkce.challenge, code_challenge_method: 'S256', ...extra });

  /** The error page /authorize shows for `clientId` (never a redirect). */
  async function refusedAt(t: Test, clientId: string, redirectUri = 'https://app.test/cb', pattern?: RegExp) {
    const res = await new InjectBrowser(app).get(authorize(clientId, redirectUri));
    t.equal(res.statusCode, 400, `error page for ${clientId}`);
    t.notOk(res.headers.location, 'never redirected');
    if (pattern) t.match(res.body, pattern);
    return res;
  }

  t.test('metadata says client ids may be metadata document URLs, with none among the auth methods', async (t) => {
    const meta = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json<Record<string, unknown>>();
    t.equal(meta.client_id_metadata_document_supported, true);
    t.ok((meta.token_endpoint_auth_methods_supported as string[]).includes('none'));
  });

  t.test('a document client signs a user in: its redirect URIs bind, its name is shown, unknown fields are ignored; code, token, refresh', async (t) => {
    const clientId = serveDocument({
      client_name: 'Doc App',
      client_uri: 'https://app.test',
      logo_uri: 'https://app.test/logo.png',
      redirect_uris: [LOOPBACK, 'https://app.test/cb'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'openid api:read offline_access made:up admin',
      software_id: 'doc-app',
      software_version: '1.2.3',
      contacts: ['ops@app.test'],
      something_new: { nested: [1, 2, 3] },
    });
    const redirectUri = 'http://127.0.0.1:40123/callback';
    const pkce = pkcePair();
    const browser = new InjectBrowser(app);
    const start = await browser.get(authorize(clientId, redirectUri, pkce, { scope: 'openid api:read offline_access' }));
    t.equal(start.statusCode, 303, start.body);
    const result = await loginAndConsent(browser, authorize(clientId, redirectUri, pkce, { scope: 'openid api:read offline_access' }), user);
    t.ok(result.sawConsent);
    t.ok(result.location.startsWith(`${redirectUri}?`), result.location);
    const token = await postForm(app, '/token', { grant_type: 'authorization_code', code: result.params.get('code')!, redirect_uri: redirectUri, client_id: clientId, code_verifier: pkce.verifier });
    t.equal(token.statusCode, 200, token.body);
    const { refresh_token: refreshToken, scope } = token.json<{ refresh_token: string; scope: string }>();
    t.equal(scope, 'openid api:read offline_access');
    const refreshed = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId });
    t.equal(refreshed.statusCode, 200, refreshed.body);

    const row = (await storage.clients.findById(clientId))!;
    t.match(row, { origin: 'metadata_document', clientName: 'Doc App', tokenEndpointAuthMethod: 'none', clientSecretHash: null });
    t.same(row.grantTypes, ['authorization_code', 'refresh_token'], 'grant types it cannot have are ignored');
    t.same(row.scope.split(' ').sort(), [...config.scopes].sort(), 'registered for every configured scope, never admin (each request asks the user for its own)');
    t.ok(row.lastUsedAt);
    await services.audit.flush();
    const [created] = await storage.auditEvents.list({ type: 'client.created', clientId }, { limit: 5, offset: 0 });
    t.match(created, { actorType: 'user', actorId: user.id, details: { origin: 'metadata_document' } });

    const again = await loginAndConsent(browser, authorize(clientId, 'https://app.test/cb'), user);
    t.notOk(again.sawConsent, 'consent is remembered for the document client');
    t.equal(docs.hits(pathOf(clientId)), 1, 'one fetch for the whole flow: the document is cached');

    const elsewhere = await refusedAt(t, clientId, 'https://evil.example/cb', /does not match any URI registered/);
    t.ok(elsewhere);
  });

  t.test('the consent page says no administrator registered it, where its document is, and warns for a loopback redirect', async (t) => {
    const clientId = serveDocument({ client_name: 'Local <b>Tool</b>', redirect_uris: [LOOPBACK, 'https://app.test/cb'] });
    const browser = new InjectBrowser(app);
    const toConsent = async (redirectUri: string) => {
      const start = await browser.get(authorize(clientId, redirectUri, pkcePair(), { prompt: 'consent' }));
      let res = await browser.get(start.headers.location as string);
      if (res.body.includes('action="/login"')) {
        const login = await browser.post('/login', { ...hiddenFields(res.body, '/login'), username: user.username, password: user.password });
        res = await browser.get(login.headers.location as string);
      }
      t.equal(res.statusCode, 200);
      return res.body;
    };
    const page = await toConsent('http://127.0.0.1:5173/callback');
    t.match(page, /not registered by an administrator of localhost:3000/);
    t.match(page, new RegExp(`published at <code>${HOST}:${docs.port}</code>`));
    t.match(page, /id="loopback-warning"/);
    t.match(page, /runs on this computer/);
    t.match(page, /<code>127\.0\.0\.1:5173<\/code>/);
    t.match(page, /Local &lt;b&gt;Tool&lt;\/b&gt;/, 'the name is escaped');
    t.notMatch(page, /<b>Tool<\/b>/);
    const https = await toConsent('https://app.test/cb');
    t.match(https, /not registered by an administrator/);
    t.notMatch(https, /loopback-warning/, 'no loopback warning for an https redirect');
  });

  t.test('refused: a document whose client_id is not its URL, a secret, a confidential method, bad redirect URIs, not JSON', async (t) => {
    const mismatch = `${base}/mismatch.json`;
    docs.on('/mismatch.json', json({ client_id: `${base}/someone-else.json`, client_name: 'Impostor', redirect_uris: ['https://app.test/cb'] }));
    await refusedAt(t, mismatch, 'https://app.test/cb', /its client_id is not this URL/);
    const atToken = await postForm(app, '/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: 'https://app.test/cb', client_id: mismatch, code_verifier: 'v'.repeat(43) });
    t.equal(atToken.statusCode, 401);
    t.equal(atToken.json<{ error: string }>().error, 'invalid_client');

    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ redirect_uris: ['https://app.test/cb'], client_secret: 's3cret' }, /must not contain a client secret/],
      [{ redirect_uris: ['https://app.test/cb'], token_endpoint_auth_method: 'client_secret_basic' }, /only public clients/],
      [{ redirect_uris: ['http://app.test/cb'] }, /must use https/],
      [{ redirect_uris: ['com.example.app:/cb'] }, /must use https, or http on a loopback/],
      [{ redirect_uris: [] }, /redirect_uris/],
      [{ redirect_uris: 'https://app.test/cb' }, /redirect_uris must be a list/],
      [{ redirect_uris: ['https://app.test/cb'], grant_types: ['client_credentials'] }, /authorization_code/],
    ];
    for (const [body, why] of cases) await refusedAt(t, serveDocument(body), 'https://app.test/cb', why);
    docs.on('/not-json.json', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>'));
    await refusedAt(t, `${base}/not-json.json`, 'https://app.test/cb', /not JSON/);
  });

  t.test('refused: client ids that are not proper document URLs', async (t) => {
    for (const [clientId, why] of [
      [`${base}`, /must have a path/],
      [`${base}/a/../b.json`, /canonically/],
      [`${base}/doc.json#x`, /fragment/],
      [`https://APP.test:${docs.port}/doc.json`, /canonically/],
    ] as const) {
      await refusedAt(t, clientId, 'https://app.test/cb', why);
    }
  });

  t.test('refused over the limits: a document over 5 KiB, a redirect, a server that does not answer in time', async (t) => {
    const big = serveDocument({ redirect_uris: ['https://app.test/cb'], padding: 'x'.repeat(6_000) });
    await refusedAt(t, big, 'https://app.test/cb', /larger than 5120 bytes/);
    docs.on('/moved.json', (_req, res) => res.writeHead(302, { location: 'https://127.0.0.1/metadata.json' }).end());
    await refusedAt(t, `${base}/moved.json`, 'https://app.test/cb', /redirects are not followed/);
    docs.on('/slow.json', () => {
      // Never answers; the test server closes the socket at teardown.
    });
    await refusedAt(t, `${base}/slow.json`, 'https://app.test/cb', /no complete answer within 2000 ms/);
  });

  t.test('unreachable or unknown hosts are refused, not hung on', async (t) => {
    await refusedAt(t, 'https://unknown.test/client.json', 'https://app.test/cb', /could not be resolved/);
  });
});

t.test(`the document is cached in the shared store: a second instance does not fetch it again (${backendName})`, async (t) => {
  const kv = await openTestKv();
  t.teardown(() => kv.close());
  const one = await buildTestApp(t, { env: DEV, kv, serviceOptions: { outbound } });
  const two = await buildTestApp(t, { env: DEV, kv, serviceOptions: { outbound } });
  const clientId = serveDocument({ client_name: 'Shared', redirect_uris: ['https://app.test/cb'] }, { 'cache-control': 'public, max-age=3600' });
  t.match(await one.services.clients.find(clientId), { clientName: 'Shared', origin: 'metadata_document' });
  t.match(await two.services.clients.find(clientId), { clientName: 'Shared' });
  t.equal(docs.hits(pathOf(clientId)), 1, 'fetched once for both instances');
  const burst = serveDocument({ client_name: 'Burst', redirect_uris: ['https://app.test/cb'] });
  await Promise.all(Array.from({ length: 5 }, () => one.services.clients.find(burst)));
  t.equal(docs.hits(pathOf(burst)), 1, 'concurrent lookups on one instance share one fetch');
});

t.test(`without CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS, a document on a private address is refused (${backendName})`, async (t) => {
  const { services } = await buildTestApp(t, { serviceOptions: { outbound } });
  const clientId = serveDocument({ client_name: 'Internal', redirect_uris: ['https://app.test/cb'] });
  await t.rejects(services.clients.find(clientId), { name: 'OAuthError', error: 'invalid_client', description: /127\.0\.0\.1, which is not a public address \(loopback\)/ });
  await t.rejects(services.clients.find(`https://127.0.0.1:${docs.port}${pathOf(clientId)}`), { name: 'OAuthError', description: /not a public address/ });
  await t.rejects(services.clients.find('https://169.254.169.254/latest/meta-data.json'), { name: 'OAuthError', description: /link-local/ });
  await t.rejects(services.clients.find('https://[::1]/client.json'), { name: 'OAuthError', description: /loopback/ });
  t.equal(docs.hits(pathOf(clientId)), 0, 'never fetched');
});

t.test('the real server trusts the test CA through NODE_EXTRA_CA_CERTS and warns about private networks at start', async (t) => {
  const clientId = `https://127.0.0.1:${docs.port}/process/metadata.json`;
  docs.on('/process/metadata.json', json({ client_id: clientId, client_name: 'Process App', redirect_uris: ['https://app.test/cb'] }));
  const server = await startServer(t, { env: { ...DEV, NODE_EXTRA_CA_CERTS: certs.caFile } });
  t.match(server.stdout(), /CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS=true/, 'the warning at start');
  const pkce = pkcePair();
  const url = `${server.url}${authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: 'https://app.test/cb', code_challenge: pkce.challenge, code_challenge_method: 'S256' })}`;
  const res = await fetch(url, { redirect: 'manual' });
  t.equal(res.status, 303, await res.text());
  t.match(res.headers.get('location'), /^\/login\?rid=/, 'on to sign-in: the document was fetched and trusted');
  t.equal(docs.hits('/process/metadata.json'), 1);

  const untrusting = await startServer(t, { env: DEV });
  const refused = await fetch(`${untrusting.url}${authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: 'https://app.test/cb', code_challenge: pkce.challenge, code_challenge_method: 'S256' })}`, { redirect: 'manual' });
  t.equal(refused.status, 400, 'without the CA the certificate is not trusted');
  t.match(await refused.text(), /could not be fetched/);
});
