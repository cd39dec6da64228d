/**
 * Dynamic client registration (RFC 7591) and client configuration
 * (RFC 7592) over HTTP, on the test backend: the happy path through a whole
 * authorization, every refusal, the three modes, initial access tokens, the
 * per-address limit, the registration access token, and the idle reaper on
 * an injected clock, with re-registration after it.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { basic, postForm, userBasic } from '../helpers/tokens.js';

const DAY_MS = 86_400_000;
let ipCounter = 0;
/** Registrations are counted per address: each subtest registers from its own. */
const freshIp = () => `10.7.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;

interface Registered {
  client_id: string;
  client_id_issued_at: number;
  client_secret?: string;
  client_secret_expires_at?: number;
  registration_access_token: string;
  registration_client_uri: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  backchannel_logout_session_required: boolean;
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: string;
  scope: string;
}

function register(app: FastifyInstance, body: unknown, options: { ip?: string; bearer?: string; contentType?: string } = {}) {
  return app.inject({
    method: 'POST',
    url: '/oauth/register',
    remoteAddress: options.ip ?? freshIp(),
    headers: { 'content-type': options.contentType ?? 'application/json', ...(options.bearer === undefined ? {} : { authorization: `Bearer ${options.bearer}` }) },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function configuration(app: FastifyInstance, method: 'GET' | 'PUT' | 'DELETE', clientId: string, token: string | undefined, body?: unknown) {
  return app.inject({
    method,
    url: `/oauth/register/${encodeURIComponent(clientId)}`,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
}

function expectError(t: Test, res: LightMyRequestResponse, status: number, error: string, description?: RegExp) {
  t.equal(res.statusCode, status, `${status} ${error}: ${res.body}`);
  const body = res.json<{ error: string; error_description: string }>();
  t.equal(body.error, error);
  if (description) t.match(body.error_description, description);
  t.equal(res.headers['cache-control'], 'no-store');
  return body;
}

const MCP_CLIENT = { client_name: 'Claude', redirect_uris: ['http://127.0.0.1/callback', 'https://claude.ai/api/mcp/auth_callback'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' };

t.test(`dynamic client registration, open (${backendName})`, async (t) => {
  let clock = Date.now();
  const { app, services, storage, config } = await buildTestApp(t, { now: () => clock, env: { DYNAMIC_REGISTRATION_LIMIT: '3' } });
  const user = await seedUser(services);

  /** Code flow for a public client, with the redirect URI on a port of the moment; returns the token answer. */
  async function authorizeAndRedeem(t: Test, clientId: string, redirectUri = 'http://127.0.0.1:53682/callback') {
    const pkce = pkcePair();
    const browser = new InjectBrowser(app);
    const path = authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid offline_access api:read', state: 'st', code_challenge: pkce.challenge, code_challenge_method: 'S256' });
    const result = await loginAndConsent(browser, path, user);
    t.ok(result.location.startsWith(redirectUri), result.location);
    const res = await postForm(app, '/token', { grant_type: 'authorization_code', code: result.params.get('code')!, redirect_uri: redirectUri, client_id: clientId, code_verifier: pkce.verifier });
    t.equal(res.statusCode, 200, res.body);
    return res.json<{ access_token: string; refresh_token: string }>();
  }

  t.test('metadata advertises the registration endpoint', async (t) => {
    const meta = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json<Record<string, unknown>>();
    t.equal(meta.registration_endpoint, 'http://localhost:3000/oauth/register');
  });

  t.test('a public client registers, signs a user in with any loopback port, refreshes', async (t) => {
    const ip = freshIp();
    const res = await register(app, { ...MCP_CLIENT, logo_uri: 'https://claude.ai/logo.png', software_id: 'claude', contacts: ['x@example.com'], jwks_uri: 'https://claude.ai/jwks' }, { ip });
    t.equal(res.statusCode, 201, res.body);
    t.equal(res.headers['cache-control'], 'no-store');
    const body = res.json<Registered>();
    t.match(body, {
      client_name: 'Claude',
      redirect_uris: MCP_CLIENT.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'openid profile email offline_access api:read api:write',
    });
    t.notOk('client_secret' in body, 'a public client has no secret');
    t.notOk('logo_uri' in body || 'software_id' in body || 'jwks_uri' in body, 'fields this server does not use are ignored, not echoed');
    t.equal(body.client_id_issued_at, Math.floor(((await storage.clients.findById(body.client_id))!.createdAt.getTime()) / 1000));
    t.equal(body.registration_client_uri, `http://localhost:3000/oauth/register/${body.client_id}`);
    t.equal(res.headers.location, body.registration_client_uri);
    t.match(body.registration_access_token, /^[A-Za-z0-9_-]{43}$/);

    const stored = (await storage.clients.findById(body.client_id))!;
    t.equal(stored.origin, 'dynamic');
    t.not(stored.registrationAccessTokenHash, body.registration_access_token);
    t.notOk(stored.registrationAccessTokenHash!.includes(body.registration_access_token), 'stored only as a hash');
    await services.audit.flush();
    const [event] = await storage.auditEvents.list({ type: 'client.created', clientId: body.client_id }, { limit: 5, offset: 0 });
    t.match(event, { actorType: 'anonymous', ip, details: { origin: 'dynamic', client_name: 'Claude' } }, 'in the audit trail, with its origin and address');

    const tokens = await authorizeAndRedeem(t, body.client_id);
    t.ok(tokens.refresh_token);
    const refreshed = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: body.client_id });
    t.equal(refreshed.statusCode, 200, refreshed.body);
  });

  t.test('defaults: both grants, public, every configured scope but admin, a name when none is given', async (t) => {
    const body = (await register(app, { redirect_uris: ['https://app.example.com/cb'] })).json<Registered>();
    t.same(body.grant_types, ['authorization_code', 'refresh_token']);
    t.equal(body.token_endpoint_auth_method, 'none');
    t.notOk(body.scope.split(' ').includes('admin'));
    t.equal(body.client_name, 'Unnamed application');
  });

  t.test('OpenID Connect response metadata: the values this server honours are accepted and RS256 is echoed; any other is refused, not ignored', async (t) => {
    const base = { redirect_uris: ['https://app.example.com/cb'] };
    const accepted = await register(app, { ...base, id_token_signed_response_alg: 'RS256', subject_type: 'public', userinfo_signed_response_alg: null, require_signed_request_object: false });
    t.equal(accepted.statusCode, 201, accepted.body);
    t.equal(accepted.json<Record<string, unknown>>().id_token_signed_response_alg, 'RS256', 'what its ID tokens are signed with');
    t.equal((await register(app, base)).json<Record<string, unknown>>().id_token_signed_response_alg, 'RS256', 'also when not asked');
    for (const [field, value] of [
      ['id_token_signed_response_alg', 'ES256'],
      ['id_token_signed_response_alg', 'none'],
      ['subject_type', 'pairwise'],
      ['id_token_encrypted_response_alg', 'RSA-OAEP'],
      ['userinfo_signed_response_alg', 'RS256'],
      ['authorization_signed_response_alg', 'RS256'],
      ['require_signed_request_object', true],
      ['tls_client_certificate_bound_access_tokens', true],
    ] as const) {
      expectError(t, await register(app, { ...base, [field]: value }), 400, 'invalid_client_metadata', new RegExp(field));
    }
  });

  t.test('refused: redirect URIs that are neither https nor loopback, or missing', async (t) => {
    for (const uris of [['http://app.example.com/cb'], ['http://192.168.1.5/cb'], ['com.example.app:/oauth'], ['javascript:alert(1)'], ['https://app.example.com/cb#frag'], ['/relative'], []]) {
      expectError(t, await register(app, { redirect_uris: uris }), 400, 'invalid_redirect_uri');
    }
    expectError(t, await register(app, { client_name: 'No URIs' }), 400, 'invalid_redirect_uri', /redirect_uris is required/);
    expectError(t, await register(app, { redirect_uris: 'https://app.example.com/cb' }), 400, 'invalid_redirect_uri', /list/);
  });

  t.test('post_logout_redirect_uris (RP-Initiated Logout §3.1): echoed, read and replaced (RFC 7592); the rules of redirect_uris', async (t) => {
    const reg = (await register(app, { ...MCP_CLIENT, post_logout_redirect_uris: ['https://claude.ai/signed-out', 'http://127.0.0.1:7000/bye'] })).json<Registered>();
    t.same(reg.post_logout_redirect_uris, ['https://claude.ai/signed-out', 'http://127.0.0.1:7000/bye'], 'echoed (RFC 7591 §3.2.1)');
    t.same((await storage.clients.findById(reg.client_id))!.postLogoutRedirectUris, reg.post_logout_redirect_uris);
    t.same((await configuration(app, 'GET', reg.client_id, reg.registration_access_token)).json<Registered>().post_logout_redirect_uris, reg.post_logout_redirect_uris);
    const replaced = await configuration(app, 'PUT', reg.client_id, reg.registration_access_token, { client_id: reg.client_id, redirect_uris: MCP_CLIENT.redirect_uris, post_logout_redirect_uris: ['https://claude.ai/bye'] });
    t.same(replaced.json<Registered>().post_logout_redirect_uris, ['https://claude.ai/bye']);
    const omitted = await configuration(app, 'PUT', reg.client_id, reg.registration_access_token, { client_id: reg.client_id, redirect_uris: MCP_CLIENT.redirect_uris });
    t.same(omitted.json<Registered>().post_logout_redirect_uris, [], 'omitted: the default, none (RFC 7592 §2.2)');
    t.same((await register(app, { redirect_uris: ['https://app.example.com/cb'] })).json<Registered>().post_logout_redirect_uris, [], 'none by default');

    const before = await storage.clients.count();
    for (const [uris, why] of [
      [['http://app.example.com/bye'], /https/],
      [['com.example.app:/bye'], /https/],
      [['javascript:alert(1)'], /https/],
      [['https://*.example.com/bye'], /wildcards/],
      [['https://app.example.com/bye#x'], /fragment/],
      [['https:///bye'], /must name a host/],
      ['https://app.example.com/bye', /list/],
      [Array.from({ length: 21 }, (_, i) => `https://app.example.com/${i}`), /at most 20/],
    ] as const) {
      expectError(t, await register(app, { redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uris: uris }), 400, 'invalid_client_metadata', why);
    }
    t.equal(await storage.clients.count(), before, 'none was registered');
  });

  t.test('backchannel_logout_uri (Back-Channel Logout §2.2): echoed, read and replaced (RFC 7592); https only, never a private address literal', async (t) => {
    const reg = (await register(app, { ...MCP_CLIENT, backchannel_logout_uri: 'https://rp.example.com/bc?x=1', backchannel_logout_session_required: true })).json<Registered>();
    t.equal(reg.backchannel_logout_uri, 'https://rp.example.com/bc?x=1', 'echoed (RFC 7591 §3.2.1)');
    t.equal(reg.backchannel_logout_session_required, true);
    const stored = (await storage.clients.findById(reg.client_id))!;
    t.equal(stored.backchannelLogoutUri, 'https://rp.example.com/bc?x=1');
    t.equal(stored.backchannelLogoutSessionRequired, true);
    const read = (await configuration(app, 'GET', reg.client_id, reg.registration_access_token)).json<Registered>();
    t.equal(read.backchannel_logout_uri, 'https://rp.example.com/bc?x=1');
    const omitted = await configuration(app, 'PUT', reg.client_id, reg.registration_access_token, { client_id: reg.client_id, redirect_uris: MCP_CLIENT.redirect_uris });
    t.equal(omitted.json<Registered>().backchannel_logout_uri, null, 'omitted: the default, none (RFC 7592 §2.2)');
    t.equal(omitted.json<Registered>().backchannel_logout_session_required, false);
    t.equal((await register(app, { redirect_uris: ['https://app.example.com/cb'] })).json<Registered>().backchannel_logout_uri, null, 'none by default');

    const before = await storage.clients.count();
    for (const [uri, why] of [
      ['http://rp.example.com/bc', /must use https/],
      ['http://127.0.0.1:9000/bc', /must use https/],
      ['https://10.1.2.3/bc', /not public/],
      ['https://127.0.0.1:9000/bc', /not public/],
      ['https://[::1]/bc', /not public/],
      ['https://169.254.169.254/latest', /not public/],
      ['https://rp.example.com/bc#x', /fragment/],
      ['https:///bc', /must name a host/],
      ['https://a.example\\@evil.com/bc', /character a URI may not/],
      [['https://rp.example.com/bc'], /string/],
    ] as const) {
      expectError(t, await register(app, { redirect_uris: ['https://app.example.com/cb'], backchannel_logout_uri: uri }), 400, 'invalid_client_metadata', why);
    }
    expectError(t, await register(app, { redirect_uris: ['https://app.example.com/cb'], backchannel_logout_session_required: 'yes' }), 400, 'invalid_client_metadata', /true or false/);
    t.equal(await storage.clients.count(), before, 'none was registered');
  });

  t.test('refused: redirect URIs that are not RFC 3986 syntax as written, however the URL parser would repair them', async (t) => {
    const before = await storage.clients.count();
    const malformed: Array<[string, RegExp]> = [
      ['https:///cb', /must name a host/],
      ['https://a.example\\@evil.com/cb', /character a URI may not/],
      ['https://user@app.example.com/cb', /credentials/],
      ['https://@app.example.com/cb', /credentials/],
      ['https://app.example.com/c b', /whitespace/],
      ['https://app.example.com/cb#frag', /fragment/],
      ['https:app.example.com/cb', /must name its host/],
      ['https://%61pp.example.com/cb', /browsers rewrite/],
      ['http://127.1/cb', /browsers rewrite/],
      ['https://app.example.com/caf\u00e9', /character a URI may not/],
    ];
    for (const [uri, why] of malformed) {
      expectError(t, await register(app, { redirect_uris: ['https://app.example.com/ok', uri] }), 400, 'invalid_redirect_uri', why);
    }
    t.equal(await storage.clients.count(), before, 'none was registered');
  });

  t.test('refused: password, client_credentials, implicit, the admin scope, a secret in open mode, a resource server', async (t) => {
    const base = { redirect_uris: ['https://app.example.com/cb'] };
    for (const grant of ['password', 'client_credentials', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code']) {
      expectError(t, await register(app, { ...base, grant_types: ['authorization_code', grant] }), 400, 'invalid_client_metadata', /cannot be registered here/);
    }
    expectError(t, await register(app, { ...base, response_types: ['token'] }), 400, 'invalid_client_metadata', /response type 'code'/);
    expectError(t, await register(app, { ...base, scope: 'openid admin' }), 400, 'invalid_client_metadata', /admin/);
    expectError(t, await register(app, { ...base, scope: 'openid made:up' }), 400, 'invalid_client_metadata', /unknown scope/);
    for (const method of ['client_secret_basic', 'client_secret_post']) {
      expectError(t, await register(app, { ...base, token_endpoint_auth_method: method }), 400, 'invalid_client_metadata', /only public clients/);
    }
    expectError(t, await register(app, { ...base, token_endpoint_auth_method: 'private_key_jwt' }), 400, 'invalid_client_metadata');
    const rs = (await register(app, { ...base, resource_server: true })).json<Registered>();
    t.notOk((await storage.clients.findById(rs.client_id))!.resourceServer, 'resource_server is not RFC 7591: ignored like any unknown field');
    expectError(t, await register(app, { ...base, client_name: 42 }), 400, 'invalid_client_metadata', /client_name/);
    expectError(t, await register(app, [base]), 400, 'invalid_client_metadata', /JSON object/);
    expectError(t, await register(app, '{"redirect_uris":'), 400, 'invalid_request');
    const form = await register(app, 'redirect_uris=https://a.example/cb', { contentType: 'application/x-www-form-urlencoded' });
    t.equal(form.statusCode, 415);
  });

  t.test('registrations are counted per address: 429 with Retry-After past the limit, another address unaffected', async (t) => {
    const ip = freshIp();
    for (let i = 0; i < 3; i++) t.equal((await register(app, MCP_CLIENT, { ip })).statusCode, 201);
    const refused = await register(app, MCP_CLIENT, { ip });
    expectError(t, refused, 429, 'too_many_requests', /Too many client registrations/);
    t.ok(Number(refused.headers['retry-after']) > 0);
    // Refused ones count too: a client cannot probe past the limit with bad requests.
    const bad = freshIp();
    for (let i = 0; i < 3; i++) t.equal((await register(app, { redirect_uris: ['http://evil.example/cb'] }, { ip: bad })).statusCode, 400);
    t.equal((await register(app, MCP_CLIENT, { ip: bad })).statusCode, 429);
    t.equal((await register(app, MCP_CLIENT, { ip: freshIp() })).statusCode, 201);
  });

  t.test('identical registrations are separate clients, each with its own registration access token', async (t) => {
    const ip = freshIp();
    const a = (await register(app, MCP_CLIENT, { ip })).json<Registered>();
    const b = (await register(app, MCP_CLIENT, { ip })).json<Registered>();
    t.not(a.client_id, b.client_id);
    t.equal((await configuration(app, 'GET', a.client_id, b.registration_access_token)).statusCode, 401, "one's token does not open the other");
  });

  t.test('RFC 7592: read, replace and delete with the registration access token; anything else is 401', async (t) => {
    const reg = (await register(app, MCP_CLIENT)).json<Registered>();
    const token = reg.registration_access_token;

    const read = await configuration(app, 'GET', reg.client_id, token);
    t.equal(read.statusCode, 200);
    t.equal(read.headers['cache-control'], 'no-store');
    t.same(read.json(), reg, 'the same answer as at registration');

    const replaced = await configuration(app, 'PUT', reg.client_id, token, {
      client_id: reg.client_id,
      client_name: 'Claude (renamed)',
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      grant_types: ['authorization_code'],
      scope: 'openid api:read',
      registration_access_token: token,
      client_id_issued_at: reg.client_id_issued_at,
    });
    t.equal(replaced.statusCode, 200, replaced.body);
    t.match(replaced.json(), { client_id: reg.client_id, client_name: 'Claude (renamed)', redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], grant_types: ['authorization_code'], scope: config.scopes.join(' '), registration_access_token: token });
    const omitted = (await configuration(app, 'PUT', reg.client_id, token, { client_id: reg.client_id, redirect_uris: ['https://claude.ai/cb'] })).json<Registered>();
    t.same(omitted.grant_types, ['authorization_code', 'refresh_token'], 'omitted fields take their defaults (RFC 7592 §2.2)');
    t.equal(omitted.client_name, 'Unnamed application');

    expectError(t, await configuration(app, 'PUT', reg.client_id, token, { redirect_uris: ['https://claude.ai/cb'] }), 400, 'invalid_client_metadata', /client_id/);
    expectError(t, await configuration(app, 'PUT', reg.client_id, token, { client_id: reg.client_id, redirect_uris: ['https://claude.ai/cb'], grant_types: ['password'] }), 400, 'invalid_client_metadata');
    expectError(t, await configuration(app, 'PUT', reg.client_id, token, { client_id: reg.client_id, redirect_uris: ['https://claude.ai/cb'], scope: 'admin' }), 400, 'invalid_client_metadata');
    expectError(t, await configuration(app, 'PUT', reg.client_id, token, { client_id: reg.client_id, redirect_uris: ['http://evil.example/cb'] }), 400, 'invalid_redirect_uri');
    expectError(t, await configuration(app, 'PUT', reg.client_id, token, { client_id: reg.client_id, redirect_uris: ['https://claude.ai/cb'], client_secret: 'chosen' }), 400, 'invalid_client_metadata', /client_secret/);

    const wrong = await configuration(app, 'GET', reg.client_id, 'not-the-token');
    expectError(t, wrong, 401, 'invalid_token');
    t.equal(wrong.headers['www-authenticate'], 'Bearer error="invalid_token"');
    const none = await configuration(app, 'GET', reg.client_id, undefined);
    expectError(t, none, 401, 'invalid_token');
    t.equal(none.headers['www-authenticate'], 'Bearer', 'no error code when no token was sent (RFC 6750 §3.1)');
    expectError(t, await configuration(app, 'PUT', reg.client_id, 'not-the-token', { client_id: reg.client_id, redirect_uris: ['https://claude.ai/cb'] }), 401, 'invalid_token');
    expectError(t, await configuration(app, 'DELETE', reg.client_id, 'not-the-token'), 401, 'invalid_token');
    const malformed = await app.inject({ method: 'GET', url: `/oauth/register/${reg.client_id}`, headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expectError(t, malformed, 401, 'invalid_token');
    expectError(t, await configuration(app, 'GET', 'no-such-client', token), 401, 'invalid_token', undefined);
    const admin = await seedClient(services, { redirect_uris: ['https://admin.example/cb'] });
    expectError(t, await configuration(app, 'GET', admin.clientId, token), 401, 'invalid_token', undefined);
    t.ok(await storage.clients.findById(reg.client_id), 'still there after every refusal');

    const deleted = await configuration(app, 'DELETE', reg.client_id, token);
    t.equal(deleted.statusCode, 204);
    t.equal(await storage.clients.findById(reg.client_id), null);
    expectError(t, await configuration(app, 'GET', reg.client_id, token), 401, 'invalid_token');
  });

  t.test('deleting itself ends its tokens', async (t) => {
    const reg = (await register(app, MCP_CLIENT)).json<Registered>();
    const tokens = await authorizeAndRedeem(t, reg.client_id);
    t.equal((await configuration(app, 'DELETE', reg.client_id, reg.registration_access_token)).statusCode, 204);
    const refresh = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: reg.client_id });
    expectError(t, refresh, 401, 'invalid_client');
  });

  t.test('last use: written when a token is issued, at most once a day', async (t) => {
    const reg = (await register(app, MCP_CLIENT)).json<Registered>();
    t.equal((await storage.clients.findById(reg.client_id))!.lastUsedAt, null, 'never used');
    const first = clock;
    const tokens = await authorizeAndRedeem(t, reg.client_id);
    t.same((await storage.clients.findById(reg.client_id))!.lastUsedAt, new Date(first));
    clock += 3_600_000;
    const refreshed = (await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: reg.client_id })).json<{ refresh_token: string }>();
    t.same((await storage.clients.findById(reg.client_id))!.lastUsedAt, new Date(first), 'not rewritten within the day');
    clock += DAY_MS;
    const again = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: reg.client_id });
    t.equal(again.statusCode, 200, again.body);
    t.same((await storage.clients.findById(reg.client_id))!.lastUsedAt, new Date(clock), 'written again a day later');
  });

  t.test('the idle reaper: dynamic clients unused for DYNAMIC_CLIENT_IDLE_DAYS go with their tokens; re-registering after invalid_client just works', async (t) => {
    const used = (await register(app, MCP_CLIENT)).json<Registered>();
    const tokens = await authorizeAndRedeem(t, used.client_id);
    const unused = (await register(app, MCP_CLIENT)).json<Registered>();
    const admin = await seedClient(services, { redirect_uris: ['https://admin.example/cb'], token_endpoint_auth_method: 'none' });

    clock += 29 * DAY_MS;
    await services.idleClients.reap();
    t.ok(await storage.clients.findById(used.client_id), '29 days: still there');
    clock += 2 * DAY_MS;
    t.ok((await services.idleClients.reap()) >= 2);
    t.equal(await storage.clients.findById(used.client_id), null, 'unused for 31 days: removed');
    t.equal(await storage.clients.findById(unused.client_id), null, 'never used, registered 31 days ago: removed');
    t.ok(await storage.clients.findById(admin.clientId), 'an admin-registered client is never reaped');
    await services.audit.flush();
    const [event] = await storage.auditEvents.list({ type: 'client.deleted', clientId: used.client_id }, { limit: 1, offset: 0 });
    t.match(event, { actorType: 'system', details: { reason: 'idle', origin: 'dynamic' } });

    const refused = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: used.client_id });
    expectError(t, refused, 401, 'invalid_client');
    const again = await register(app, MCP_CLIENT);
    t.equal(again.statusCode, 201, 'the client registers again');
    await authorizeAndRedeem(t, again.json<Registered>().client_id);
  });

  t.test('admins see the origin and last use; they can still change and delete a dynamic client', async (t) => {
    const admin = await seedUser(services, { roles: ['admin'] });
    const reg = (await register(app, MCP_CLIENT)).json<Registered>();
    const read = await app.inject({ method: 'GET', url: `/admin/clients/${reg.client_id}`, headers: { authorization: userBasic(admin.username, admin.password) } });
    t.match(read.json(), { origin: 'dynamic', last_used_at: null });
    t.notOk(read.body.includes(reg.registration_access_token));
    const patched = await app.inject({ method: 'PATCH', url: `/admin/clients/${reg.client_id}`, headers: { authorization: userBasic(admin.username, admin.password) }, payload: { client_name: 'Vetted' } });
    t.equal(patched.json<{ client_name: string }>().client_name, 'Vetted');
  });
});

t.test(`dynamic client registration with initial access tokens (${backendName})`, async (t) => {
  let clock = Date.now();
  const { app, services, storage } = await buildTestApp(t, { now: () => clock, env: { DYNAMIC_REGISTRATION: 'token' } });
  const admin = await seedUser(services, { roles: ['admin'] });
  const adminAuth = userBasic(admin.username, admin.password);
  const createToken = async (body: Record<string, unknown>) => {
    const res = await app.inject({ method: 'POST', url: '/admin/initial-access-tokens', headers: { authorization: adminAuth }, payload: body });
    t.equal(res.statusCode, 201, res.body);
    return res.json<{ id: string; token: string; max_uses: number | null; expires_at: string | null; uses: number }>();
  };

  t.test('without a token: 401 with a Bearer challenge; with a wrong one: invalid_token', async (t) => {
    const none = await register(app, MCP_CLIENT);
    expectError(t, none, 401, 'invalid_token', /initial access token is required/);
    t.equal(none.headers['www-authenticate'], 'Bearer');
    const wrong = await register(app, MCP_CLIENT, { bearer: 'made-up' });
    expectError(t, wrong, 401, 'invalid_token');
    t.equal(wrong.headers['www-authenticate'], 'Bearer error="invalid_token"');
  });

  t.test('with a valid token: registered; the same client rules apply; confidential clients are allowed', async (t) => {
    const { token, id } = await createToken({ description: 'for the test' });
    const res = await register(app, MCP_CLIENT, { bearer: token });
    t.equal(res.statusCode, 201, res.body);
    expectError(t, await register(app, { ...MCP_CLIENT, grant_types: ['client_credentials'] }, { bearer: token }), 400, 'invalid_client_metadata');
    const confidential = await register(app, { redirect_uris: ['https://app.example.com/cb'] }, { bearer: token });
    const body = confidential.json<Registered>();
    t.equal(body.token_endpoint_auth_method, 'client_secret_basic', 'the RFC 7591 default');
    t.match(body, { client_secret: /^[A-Za-z0-9_-]{43}$/, client_secret_expires_at: 0 });
    const stored = (await storage.clients.findById(body.client_id))!;
    t.notOk(stored.clientSecretHash!.includes(body.client_secret!));
    const refused = await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: basic(body.client_id, body.client_secret!) });
    expectError(t, refused, 400, 'unauthorized_client');
    const listed = await app.inject({ method: 'GET', url: '/admin/initial-access-tokens', headers: { authorization: adminAuth } });
    const item = listed.json<{ items: Array<{ id: string; uses: number; token?: string }> }>().items.find((i) => i.id === id)!;
    t.equal(item.uses, 2, 'the registrations made with it; a refused one does not use it up');
    t.notOk('token' in item, 'the value is never listed');
    t.notOk(listed.body.includes(token));
  });

  t.test('an expired, used-up or revoked token is refused', async (t) => {
    const expiring = await createToken({ expires_in: 60 });
    t.equal((await register(app, MCP_CLIENT, { bearer: expiring.token })).statusCode, 201);
    clock += 61_000;
    expectError(t, await register(app, MCP_CLIENT, { bearer: expiring.token }), 401, 'invalid_token', /expired/);

    const once = await createToken({ max_uses: 1 });
    t.equal((await register(app, MCP_CLIENT, { bearer: once.token })).statusCode, 201);
    expectError(t, await register(app, MCP_CLIENT, { bearer: once.token }), 401, 'invalid_token');

    const revoked = await createToken({});
    t.equal((await app.inject({ method: 'DELETE', url: `/admin/initial-access-tokens/${revoked.id}`, headers: { authorization: adminAuth } })).statusCode, 204);
    expectError(t, await register(app, MCP_CLIENT, { bearer: revoked.token }), 401, 'invalid_token');
    t.equal((await app.inject({ method: 'DELETE', url: `/admin/initial-access-tokens/${revoked.id}`, headers: { authorization: adminAuth } })).statusCode, 404);
  });

  t.test('admin API: bad bodies and no admin', async (t) => {
    for (const body of [{ expires_in: 10 }, { max_uses: 0 }, { description: 'x'.repeat(201) }, { token: 'chosen' }]) {
      const res = await app.inject({ method: 'POST', url: '/admin/initial-access-tokens', headers: { authorization: adminAuth }, payload: body });
      t.equal(res.statusCode, 400, JSON.stringify(body));
    }
    const user = await seedUser(services);
    const res = await app.inject({ method: 'POST', url: '/admin/initial-access-tokens', headers: { authorization: userBasic(user.username, user.password) }, payload: {} });
    t.equal(res.statusCode, 403);
    t.equal((await app.inject({ method: 'GET', url: '/admin/initial-access-tokens' })).statusCode, 401);
  });

  t.test('tokens are stored hashed; creation and revocation are in the audit trail', async (t) => {
    const { token, id } = await createToken({ description: 'audited', max_uses: 2 });
    const rows = await storage.db.query<{ token_hash: string }>('SELECT token_hash FROM initial_access_tokens WHERE id = $1', [id]);
    t.not(rows[0]!.token_hash, token);
    t.notOk(rows[0]!.token_hash.includes(token));
    await app.inject({ method: 'DELETE', url: `/admin/initial-access-tokens/${id}`, headers: { authorization: adminAuth } });
    await services.audit.flush();
    const events = await storage.auditEvents.list({ subjectId: id }, { limit: 10, offset: 0 });
    t.same(events.map((e) => e.type).sort(), ['initial_access_token.created', 'initial_access_token.revoked']);
    t.match(events.find((e) => e.type === 'initial_access_token.created'), { actorId: admin.id, details: { description: 'audited', max_uses: 2 } });
    t.notOk(JSON.stringify(events).includes(token));
  });
});

t.test(`dynamic client registration off (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t, { env: { DYNAMIC_REGISTRATION: 'off' } });
  const meta = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json<Record<string, unknown>>();
  t.notOk('registration_endpoint' in meta, 'not advertised');
  expectError(t, await register(app, MCP_CLIENT), 403, 'access_denied', /turned off/);
  // A client registered while it was on still manages itself.
  const { registrationAccessToken, client } = await services.clients.registerDynamic({ redirect_uris: ['https://app.example.com/cb'] }, { allowConfidential: false });
  t.equal((await configuration(app, 'GET', client.clientId, registrationAccessToken)).statusCode, 200);
  t.equal((await configuration(app, 'DELETE', client.clientId, registrationAccessToken)).statusCode, 204);
});

t.test(`the idle reaper runs on its own timer, started with the services (${backendName})`, async (t) => {
  let clock = Date.now();
  const { app, storage } = await buildTestApp(t, { now: () => clock, env: { DYNAMIC_CLIENT_IDLE_DAYS: '7' }, serviceOptions: { idleClientIntervalMs: 25 } });
  const reg = (await register(app, MCP_CLIENT)).json<Registered>();
  clock += 8 * DAY_MS;
  // Bounded wait for the next run; nothing about how long it took is asserted.
  for (let i = 0; i < 400 && (await storage.clients.findById(reg.client_id)) !== null; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  t.equal(await storage.clients.findById(reg.client_id), null, 'removed by the timer after DYNAMIC_CLIENT_IDLE_DAYS');
});
