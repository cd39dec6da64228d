import t, { type Test } from 'tap';
import { parseAuthorizationRequest, type AuthorizeQuery } from '../../src/oauth/authorize-request.js';
import { s256Challenge } from '../../src/oauth/pkce.js';
import type { Client } from '../../src/storage/types.js';

const KNOWN = ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'];
const CHALLENGE = s256Challenge('v'.repeat(43));

function client(overrides: Partial<Client> = {}): Client {
  return {
    clientId: 'web',
    clientSecretHash: 'sha256$x',
    clientName: 'Web',
    redirectUris: ['https://app.example.com/cb', 'http://127.0.0.1:8080/cb'],
    grantTypes: ['authorization_code', 'implicit', 'refresh_token'],
    responseTypes: ['code', 'token'],
    tokenEndpointAuthMethod: 'client_secret_basic',
    scope: 'openid profile api:read',
    createdAt: new Date(),
    updatedAt: new Date(),
    ...overrides,
  };
}

const clients = new Map<string, Client>([
  ['web', client()],
  ['single', client({ clientId: 'single', redirectUris: ['https://one.example/cb'], responseTypes: ['code'], grantTypes: ['authorization_code'] })],
]);
const deps = { findClient: async (id: string) => clients.get(id) ?? null, knownScopes: KNOWN };

const base = {
  response_type: 'code',
  client_id: 'web',
  redirect_uri: 'https://app.example.com/cb',
  scope: 'openid profile',
  state: 'st',
  code_challenge: CHALLENGE,
  code_challenge_method: 'S256',
};

const parse = (query: AuthorizeQuery) => parseAuthorizationRequest(query, deps);

async function expectPage(t: Test, query: AuthorizeQuery, name: string) {
  const r = await parse(query);
  t.equal(r.ok, false, name);
  if (!r.ok) t.equal(r.target, null, `${name}: shown, never redirected`);
}

async function expectRedirect(t: Test, query: AuthorizeQuery, error: string, name = error) {
  const r = await parse(query);
  t.equal(r.ok, false, name);
  if (!r.ok) {
    t.not(r.target, null, `${name}: redirected`);
    t.equal(r.error.error, error, name);
  }
  return r;
}

t.test('a valid code request', async (t) => {
  const r = await parse(base);
  t.ok(r.ok);
  if (!r.ok) return;
  t.match(r.request, {
    clientId: 'web',
    redirectUri: 'https://app.example.com/cb',
    redirectUriSent: true,
    responseType: 'code',
    responseMode: 'query',
    scopes: ['openid', 'profile'],
    state: 'st',
    codeChallenge: CHALLENGE,
    prompt: [],
  });
});

t.test('client_id problems are shown, never redirected', async (t) => {
  await expectPage(t, { ...base, client_id: undefined }, 'missing client_id');
  await expectPage(t, { ...base, client_id: 'nobody' }, 'unknown client');
  await expectPage(t, { ...base, client_id: ['web', 'web'] }, 'repeated client_id');
  await expectPage(t, { ...base, client_id: 'x'.repeat(500) }, 'absurdly long client_id');
});

t.test('redirect_uri must match a registered URI exactly, else it is shown, never redirected', async (t) => {
  for (const uri of [
    'https://app.example.com/cb/',
    'https://app.example.com/c',
    'https://app.example.com/cbx',
    'https://app.example.com/cb?x=1',
    'https://APP.example.com/cb',
    'https://app.example.com:443/cb',
    'https://evil.example/cb',
    'http://app.example.com/cb',
  ]) {
    await expectPage(t, { ...base, redirect_uri: uri }, uri);
  }
  await expectPage(t, { ...base, redirect_uri: ['https://app.example.com/cb', 'https://app.example.com/cb'] }, 'repeated redirect_uri');
  await expectPage(t, { ...base, redirect_uri: undefined, scope: 'profile' }, 'omitted with two registered');
  // A bad redirect_uri wins over every other error: nothing may reach an unverified URI.
  await expectPage(t, { redirect_uri: 'https://evil.example/cb', client_id: 'web', response_type: 'bogus' }, 'bad uri and bad response_type');
});

t.test('an omitted redirect_uri uses the only registered one, except for OpenID requests', async (t) => {
  const r = await parse({ ...base, client_id: 'single', redirect_uri: undefined, scope: 'profile' });
  t.ok(r.ok);
  if (r.ok) {
    t.equal(r.request.redirectUri, 'https://one.example/cb');
    t.equal(r.request.redirectUriSent, false);
  }
  const oidc = await expectRedirect(t, { ...base, client_id: 'single', redirect_uri: undefined }, 'invalid_request', 'openid without redirect_uri');
  if (!oidc.ok) t.equal(oidc.target?.redirectUri, 'https://one.example/cb');
});

t.test('response_type', async (t) => {
  await expectRedirect(t, { ...base, response_type: undefined }, 'invalid_request', 'missing');
  await expectRedirect(t, { ...base, response_type: 'id_token' }, 'unsupported_response_type', 'id_token');
  await expectRedirect(t, { ...base, response_type: 'code token' }, 'unsupported_response_type', 'hybrid');
  await expectRedirect(t, { ...base, client_id: 'single', redirect_uri: 'https://one.example/cb', response_type: 'token', nonce: 'n' }, 'unauthorized_client');
  const r = await expectRedirect(t, { ...base, client_id: 'single', redirect_uri: 'https://one.example/cb', response_type: 'token', nonce: 'n' }, 'unauthorized_client');
  if (!r.ok) t.equal(r.target?.responseMode, 'fragment', 'a token request gets its error in the fragment');
  await expectRedirect(t, { ...base, response_mode: 'form_post' }, 'invalid_request', 'unsupported response_mode');
  t.ok((await parse({ ...base, response_mode: 'query' })).ok, 'the default response_mode may be named');
  const fragment = await parse({ ...base, response_mode: 'fragment' });
  t.equal(fragment.ok && fragment.request.responseMode, 'fragment', 'a code may be returned in the fragment');
  const tokenInQuery = await expectRedirect(t, { ...base, response_type: 'token', nonce: 'n', response_mode: 'query' }, 'invalid_request', 'token in the query');
  if (!tokenInQuery.ok) t.equal(tokenInQuery.target?.responseMode, 'fragment', 'and that error is itself sent in the fragment');
});

t.test('PKCE: S256 required for every code request; plain refused', async (t) => {
  await expectRedirect(t, { ...base, code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request', 'no PKCE');
  await expectRedirect(t, { ...base, code_challenge_method: 'plain' }, 'invalid_request', 'plain');
  await expectRedirect(t, { ...base, code_challenge_method: undefined }, 'invalid_request', 'no method means plain');
  await expectRedirect(t, { ...base, code_challenge: 'short' }, 'invalid_request', 'malformed challenge');
  const pub = await parse({ ...base, client_id: 'single', redirect_uri: 'https://one.example/cb', code_challenge: undefined, code_challenge_method: undefined });
  t.equal(pub.ok, false, 'also for other clients');
  const implicit = await parse({ ...base, response_type: 'token', nonce: 'n', code_challenge: undefined, code_challenge_method: undefined });
  t.ok(implicit.ok, 'not needed for implicit');
});

t.test('scope: requested ∩ registered, all registered by default, invalid_scope when nothing is left', async (t) => {
  const all = await parse({ ...base, scope: undefined });
  t.same(all.ok && all.request.scopes, ['openid', 'profile', 'api:read']);
  const narrowed = await parse({ ...base, scope: 'profile api:write' });
  t.same(narrowed.ok && narrowed.request.scopes, ['profile'], 'registered-but-not-for-this-client scopes are dropped');
  await expectRedirect(t, { ...base, scope: 'api:write' }, 'invalid_scope', 'nothing left');
  await expectRedirect(t, { ...base, scope: 'nonsense' }, 'invalid_scope', 'unknown scope');
  await expectRedirect(t, { ...base, scope: 'a"b' }, 'invalid_scope', 'malformed scope');
});

t.test('implicit with openid requires a nonce (OIDC Core §3.2.2.1)', async (t) => {
  await expectRedirect(t, { ...base, response_type: 'token' }, 'invalid_request');
  t.ok((await parse({ ...base, response_type: 'token', nonce: 'n' })).ok);
  t.ok((await parse({ ...base, response_type: 'token', scope: 'profile' })).ok, 'not without openid');
  await expectRedirect(t, { ...base, nonce: 'n'.repeat(600) }, 'invalid_request', 'oversized nonce');
});

t.test('prompt, max_age, login_hint', async (t) => {
  const r = await parse({ ...base, prompt: 'login consent', max_age: '300', login_hint: 'alice' });
  t.ok(r.ok);
  if (r.ok) t.match(r.request, { prompt: ['login', 'consent'], maxAge: 300, loginHint: 'alice' });
  await expectRedirect(t, { ...base, prompt: 'none login' }, 'invalid_request', 'none with another value');
  await expectRedirect(t, { ...base, prompt: 'bogus' }, 'invalid_request', 'unknown prompt');
  await expectRedirect(t, { ...base, max_age: '-1' }, 'invalid_request', 'negative max_age');
  await expectRedirect(t, { ...base, max_age: 'soon' }, 'invalid_request', 'non-numeric max_age');
  const zero = await parse({ ...base, max_age: '0' });
  t.equal(zero.ok && zero.request.maxAge, 0);
});

t.test('repeated parameters are refused; unknown ones ignored', async (t) => {
  const r = await expectRedirect(t, { ...base, scope: ['openid', 'profile'] }, 'invalid_request', 'repeated scope');
  if (!r.ok) t.equal(r.target?.state, 'st', 'state still returned');
  const s = await expectRedirect(t, { ...base, state: ['a', 'b'] }, 'invalid_request', 'repeated state');
  if (!s.ok) t.equal(s.target?.state, undefined, 'an ambiguous state is not echoed');
  t.ok((await parse({ ...base, ui_locales: 'de', foo: ['1', '2'] })).ok, 'unknown parameters, even repeated, are ignored');
});

t.test('request objects are not supported (OIDC Core §6)', async (t) => {
  await expectRedirect(t, { ...base, request: 'eyJ…' }, 'request_not_supported');
  await expectRedirect(t, { ...base, request_uri: 'https://x' }, 'request_uri_not_supported');
  await expectRedirect(t, { ...base, registration: '{}' }, 'registration_not_supported');
});
