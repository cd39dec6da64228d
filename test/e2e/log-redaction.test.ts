/**
 * Nothing secret reaches the log. The app logs through the production
 * logger configuration (`defaultLogger`: redaction paths, request serializer)
 * at `trace`, the most talkative level, into a captured stream, while every
 * kind of credential passes through it: passwords (registration, login form,
 * password grant, admin Basic, admin console, wrong ones too), client secrets
 * (Basic and form), authorization codes, PKCE verifiers, access, refresh and
 * ID tokens (headers, bodies, a query string), session cookies and CSRF
 * tokens. Then every one of those values is searched for in the captured text.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { defaultLogger } from '../../src/observability/logger.js';
import { loadConfig } from '../../src/config.js';
import { buildTestApp, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { authorizePath, hiddenFields, InjectBrowser, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';

const chunks: string[] = [];
const stream = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    chunks.push(chunk.toString('utf8'));
    callback();
  },
});
const env = { LOG_LEVEL: 'trace', ISSUER: 'http://localhost:3000' };
const { app, services } = await buildTestApp(t, { env, logger: { ...(defaultLogger(loadConfig(env)) as object), stream } });

/** Every secret value that went through the server in this file. */
const secrets = new Map<string, string>();
const keep = (label: string, value: string | null | undefined) => {
  if (typeof value !== 'string' || value.length < 8) throw new Error(`no usable secret for ${label}`);
  secrets.set(label, value);
  return value;
};
const basic = (id: string, secret: string) => {
  const header = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  keep(`Basic header of ${id}`, header.slice(6));
  return header;
};
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

t.test(`credentials never reach the log (${backendName})`, async (t) => {
  const adminPassword = keep('admin password', 'admin-Pa55word-never-logged');
  const admin = await seedUser(services, { username: 'logadmin', password: adminPassword, roles: ['admin'] });
  const adminAuth = basic(admin.username, adminPassword);

  // Self-registration, JSON and the HTML form.
  const alicePassword = keep('alice password', 'alice-secret-passphrase-1');
  const registered = await app.inject({ method: 'POST', url: '/register', payload: { username: 'alice', password: alicePassword, email: 'alice@example.com' } });
  t.equal(registered.statusCode, 201);
  const formUser = new InjectBrowser(app);
  const page = await formUser.get('/register');
  keep('register CSRF token', hiddenFields(page.body, '/register').csrf_token);
  const formPassword = keep('form registration password', 'form-registered-passphrase');
  const formRegistered = await formUser.post('/register', { ...hiddenFields(page.body, '/register'), username: 'formuser', password: formPassword });
  t.equal(formRegistered.statusCode, 201);
  keep('registration session cookie', formUser.cookies.get('sid'));
  // A malformed JSON body that carries a password: parse errors must not echo it.
  const brokenPassword = keep('password in malformed JSON', 'broken-json-passphrase-7');
  const broken = await app.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'application/json' }, payload: `{"username":"x","password":"${brokenPassword}"` });
  t.equal(broken.statusCode, 400);
  // Passwords refused by the password rule, at registration and in the admin API.
  const weakRegistration = await app.inject({ method: 'POST', url: '/register', payload: { username: 'weaklog', password: keep('refused weak password (register)', 'weaklog-weaklog') } });
  t.match(weakRegistration.json(), { error: 'invalid_request', error_description: /too easy to guess/ });

  // Clients through the admin API (HTTP Basic as the admin).
  const create = async (body: Record<string, unknown>) => {
    const res = await app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: adminAuth }, payload: body });
    t.equal(res.statusCode, 201);
    const created = res.json() as { client_id: string; client_secret: string };
    keep(`secret of ${String(body.client_name)}`, created.client_secret);
    return created;
  };
  const machine = await create({ client_name: 'Machine', grant_types: ['client_credentials'], scope: 'api:read' });
  const legacy = await create({ client_name: 'Legacy', grant_types: ['password', 'refresh_token'], token_endpoint_auth_method: 'client_secret_post', scope: 'openid profile api:read offline_access' });
  const webapp = await create({ client_name: 'Web app', redirect_uris: ['https://app.example/cb'], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile api:read' });
  const weakAdminApi = await app.inject({ method: 'POST', url: '/admin/users', headers: { authorization: adminAuth }, payload: { username: 'weaklog2', password: keep('refused weak password (admin API)', 'zaq12wsxcde3') } });
  t.match(weakAdminApi.json(), { error: 'invalid_request', error_description: /too easy to guess/ });
  const wrongAdmin = await app.inject({ url: '/admin/users', headers: { authorization: basic(admin.username, keep('wrong admin password', 'typo-in-admin-password')) } });
  t.equal(wrongAdmin.statusCode, 401);

  // Client credentials with Basic.
  const cc = await app.inject({ method: 'POST', url: '/token', headers: { ...FORM, authorization: basic(machine.client_id, machine.client_secret) }, payload: form({ grant_type: 'client_credentials' }) });
  t.equal(cc.statusCode, 200);
  const machineToken = keep('client credentials access token', cc.json().access_token);
  const wrongSecret = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(machine.client_id, keep('wrong client secret', 'not-the-client-secret-at-all')) },
    payload: form({ grant_type: 'client_credentials' }),
  });
  t.equal(wrongSecret.statusCode, 401);

  // Password grant (client_secret_post), refresh, and a refresh-token replay.
  const pw = await app.inject({
    method: 'POST',
    url: '/token',
    headers: FORM,
    payload: form({ grant_type: 'password', username: 'alice', password: alicePassword, client_id: legacy.client_id, client_secret: legacy.client_secret, scope: 'openid api:read offline_access' }),
  });
  t.equal(pw.statusCode, 200);
  const aliceToken = keep('password grant access token', pw.json().access_token);
  const firstRefresh = keep('password grant refresh token', pw.json().refresh_token);
  const wrongUserPassword = await app.inject({
    method: 'POST',
    url: '/token',
    headers: FORM,
    payload: form({ grant_type: 'password', username: 'alice', password: keep('wrong user password', 'alice-wrong-passphrase'), client_id: legacy.client_id, client_secret: legacy.client_secret }),
  });
  t.equal(wrongUserPassword.statusCode, 400);
  const refreshed = await app.inject({
    method: 'POST',
    url: '/token',
    headers: FORM,
    payload: form({ grant_type: 'refresh_token', refresh_token: firstRefresh, client_id: legacy.client_id, client_secret: legacy.client_secret }),
  });
  t.equal(refreshed.statusCode, 200);
  keep('refreshed access token', refreshed.json().access_token);
  const secondRefresh = keep('rotated refresh token', refreshed.json().refresh_token);

  // Authorization code with PKCE through the login and consent pages.
  const browser = new InjectBrowser(app);
  const pkce = pkcePair();
  keep('PKCE verifier', pkce.verifier);
  const flow = await loginAndConsent(
    browser,
    authorizePath({ response_type: 'code', client_id: webapp.client_id, redirect_uri: 'https://app.example/cb', scope: 'openid profile api:read', state: 'st-123', nonce: 'n-123', code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
    { username: 'alice', password: alicePassword },
  );
  const code = keep('authorization code', flow.params.get('code'));
  keep('browser session cookie', browser.cookies.get('sid'));
  const exchanged = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(webapp.client_id, webapp.client_secret) },
    payload: form({ grant_type: 'authorization_code', code, redirect_uri: 'https://app.example/cb', code_verifier: pkce.verifier }),
  });
  t.equal(exchanged.statusCode, 200);
  const codeToken = keep('code flow access token', exchanged.json().access_token);
  keep('code flow refresh token', exchanged.json().refresh_token);
  keep('ID token', exchanged.json().id_token);
  // A login-form failure with a password that must not be logged either.
  const failing = new InjectBrowser(app);
  const loginPage = await failing.get('/login');
  const failed = await failing.post('/login', { ...hiddenFields(loginPage.body, '/login'), username: 'alice', password: keep('wrong login-form password', 'wrong-login-form-passphrase') });
  t.equal(failed.statusCode, 400);

  // Bearer tokens: header, and the RFC 6750 §2.3 query form (logged URLs are redacted).
  t.equal((await app.inject({ url: '/userinfo', headers: { authorization: `Bearer ${codeToken}` } })).statusCode, 200);
  await app.inject({ url: `/userinfo?access_token=${encodeURIComponent(codeToken)}` });
  t.equal((await app.inject({ url: '/api/hello', headers: { authorization: `Bearer ${aliceToken}` } })).statusCode, 200);
  await app.inject({ url: `/api/hello?token=${encodeURIComponent(machineToken)}&x=1` });

  // Introspection and revocation.
  const introspected = await app.inject({ method: 'POST', url: '/introspect', headers: { ...FORM, authorization: basic(machine.client_id, machine.client_secret) }, payload: form({ token: machineToken }) });
  t.equal(introspected.statusCode, 200);
  const revoked = await app.inject({ method: 'POST', url: '/revoke', headers: FORM, payload: form({ token: secondRefresh, client_id: legacy.client_id, client_secret: legacy.client_secret }) });
  t.equal(revoked.statusCode, 200);

  // The admin console's sign-in form.
  const console = new InjectBrowser(app);
  const signInPage = await console.get('/admin/console/sign-in');
  const signedIn = await console.post('/admin/console/sign-in', { ...hiddenFields(signInPage.body), username: admin.username, password: adminPassword });
  t.equal(signedIn.statusCode, 303);
  keep('admin console session cookie', console.cookies.get('admin'));

  // A query parameter name spelled with percent-escapes is redacted too (allowlist, not denylist).
  await app.inject({ url: `/userinfo?acc%65ss_token=${encodeURIComponent(aliceToken)}` });

  // A malformed HTTP request: Node hands Fastify the raw bytes (headers and all) with the error.
  await app.listen({ port: 0, host: '127.0.0.1' });
  const rawBasic = keep('Basic credentials of a malformed request', Buffer.from('raw-user:raw-request-password').toString('base64'));
  const rawCookie = keep('cookie of a malformed request', 'rawcookievalue-abcdefghijklmnop');
  await new Promise<void>((resolve) => {
    const socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1', () => {
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${rawBasic}\r\nCookie: sid=${rawCookie}\r\nthis is not a header\r\n\r\n`);
    });
    socket.on('data', () => {});
    socket.on('close', () => resolve());
  });

  // Replays last: they revoke the tokens used above.
  const replay = await app.inject({
    method: 'POST',
    url: '/token',
    headers: FORM,
    payload: form({ grant_type: 'refresh_token', refresh_token: firstRefresh, client_id: legacy.client_id, client_secret: legacy.client_secret }),
  });
  t.equal(replay.statusCode, 400, 'replay detected');
  const replayedCode = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { ...FORM, authorization: basic(webapp.client_id, webapp.client_secret) },
    payload: form({ grant_type: 'authorization_code', code, redirect_uri: 'https://app.example/cb', code_verifier: pkce.verifier }),
  });
  t.equal(replayedCode.statusCode, 400);

  const log = chunks.join('');
  t.ok(log.length > 0, 'the log was captured');
  t.match(log, /"reqId":"[^"]+"/, 'lines carry request ids');
  for (const url of ['/token', '/register', '/admin/clients', '/userinfo', '/introspect', '/revoke', '/login', '/consent', '/authorize']) {
    t.ok(log.includes(`"url":"${url}`), `requests to ${url} were logged`);
  }
  t.ok(log.includes('[redacted]'), 'query secrets were replaced, not dropped silently');
  t.match(log, /"msg":"client error"/, 'the malformed request was logged');
  t.notOk(log.includes('rawPacket'), "the malformed request's raw bytes are not logged");
  t.notOk(log.includes('"type":"Buffer"'), 'no buffers are logged');
  for (const [label, value] of secrets) {
    t.notOk(log.includes(value), `${label} is not in the log`);
    // Also not in the form a URL or a form body would carry it.
    if (encodeURIComponent(value) !== value) t.notOk(log.includes(encodeURIComponent(value)), `${label} (URL-encoded) is not in the log`);
  }
});
