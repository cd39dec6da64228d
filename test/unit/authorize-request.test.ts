import t, { type Test } from 'tap';
import { UnavailableError, invalidRequest } from '../../src/errors.js';
import {
  authorizationChecks,
  parseAuthorizationRequest,
  runAuthorizationChecks,
  validateAuthorizationRequest,
  type AuthorizeQuery,
} from '../../src/oauth/authorize-request.js';
import { s256Challenge } from '../../src/oauth/pkce.js';
import { RESPONSE_TYPES, RESPONSE_TYPE_NAMES } from '../../src/oauth/protocol.js';
import { createResourceRegistry } from '../../src/oauth/resources.js';
import type { Client } from '../../src/storage/types.js';
import { testClient } from '../helpers/client.js';

const KNOWN = ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'];
const CHALLENGE = s256Challenge('v'.repeat(43));

const client = (overrides: Partial<Client> = {}): Client =>
  testClient({
    redirectUris: ['https://app.example.com/cb', 'http://127.0.0.1:8080/cb'],
    grantTypes: ['authorization_code', 'implicit', 'refresh_token'],
    responseTypes: ['code', 'token'],
    scope: 'openid profile api:read',
    ...overrides,
  });

const clients = new Map<string, Client>([
  ['web', client()],
  ['single', client({ clientId: 'single', redirectUris: ['https://one.example/cb'], responseTypes: ['code'], grantTypes: ['authorization_code'] })],
  // One redirect URI (so it may be omitted) and both response types.
  ['solo', client({ clientId: 'solo', redirectUris: ['https://solo.example/cb'] })],
]);
const API = 'https://as.example/api';
const MCP = 'https://as.example/mcp';
/** An ID token of this server naming alice (the token service's verification is faked: tested in the e2e suite). */
const ALICE_HINT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const deps = {
  findClient: async (id: string) => clients.get(id) ?? null,
  knownScopes: KNOWN,
  resources: createResourceRegistry({ resources: [API, MCP], defaultResource: API }),
  idTokenHintSubject: async (token: string) => (token === ALICE_HINT ? 'alice' : null),
};

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
  // Only a scope parameter naming openid makes an OpenID request (OIDC Core §3.1.2.1);
  // no scope at all is an OAuth request, though the defaults include openid.
  const defaults = await parse({ ...base, client_id: 'single', redirect_uri: undefined, scope: undefined });
  t.ok(defaults.ok, 'no scope parameter: the one registered URI');
  t.same(defaults.ok && defaults.request.scopes, ['openid', 'profile', 'api:read']);
});

t.test('a parameter sent without a value is treated as omitted (RFC 6749 §3.1)', async (t) => {
  const emptyState = await parse({ ...base, state: '' });
  t.ok(emptyState.ok);
  t.equal(emptyState.ok && emptyState.request.state, undefined, 'no state to echo back');
  const refused = await expectRedirect(t, { ...base, state: '', response_type: 'id_token' }, 'unsupported_response_type');
  if (!refused.ok) t.equal(refused.target?.state, undefined, 'nor on an error');
  const emptyRedirect = await parse({ ...base, client_id: 'single', redirect_uri: '', scope: 'profile' });
  t.ok(emptyRedirect.ok, 'an empty redirect_uri: the only registered one, as when omitted');
  t.equal(emptyRedirect.ok && emptyRedirect.request.redirectUriSent, false);
  await expectRedirect(t, { ...base, response_type: '' }, 'invalid_request', 'an empty response_type is a missing one');
  const emptyScope = await parse({ ...base, scope: '' });
  t.same(emptyScope.ok && emptyScope.request.scopes, ['openid', 'profile', 'api:read'], 'an empty scope: the registered defaults');
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

t.test('offline_access is ignored unless the response type returns a code (OIDC Core §11)', async (t) => {
  const offlineDeps = { ...deps, findClient: async () => client({ clientId: 'offline', scope: 'openid offline_access api:read' }) };
  const scopesOf = async (query: AuthorizeQuery) => {
    const r = await parseAuthorizationRequest({ ...base, client_id: 'offline', ...query }, offlineDeps);
    return r.ok ? r.request.scopes : r.error.error;
  };
  t.same(await scopesOf({ scope: 'openid offline_access' }), ['openid', 'offline_access'], 'code: kept');
  t.same(await scopesOf({ response_type: 'token', scope: 'openid offline_access' }), ['openid'], 'token: dropped');
  t.same(await scopesOf({ response_type: 'token', scope: undefined }), ['openid', 'api:read'], 'token: not among the default scopes either');
  t.equal(await scopesOf({ response_type: 'token', scope: 'offline_access' }), 'invalid_scope', 'token: nothing else asked, nothing left');
});

t.test('nonce: optional for response_type=token, which returns no ID token to carry it; bounded', async (t) => {
  // OIDC Core §3.2.2.1 requires it of the response types that return an ID token from here (id_token, id_token token).
  t.ok((await parse({ ...base, response_type: 'token' })).ok, 'openid without a nonce');
  t.ok((await parse({ ...base, response_type: 'token', nonce: 'n' })).ok);
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

t.test('id_token_hint (OIDC Core §3.1.2.1): the subject of an ID token of ours, null for one that does not verify, refused when not a JWT', async (t) => {
  const subjectOf = async (query: AuthorizeQuery) => {
    const r = await parse(query);
    return r.ok ? r.request.idTokenHintSubject : 'refused';
  };
  t.equal(await subjectOf(base), undefined, 'not sent');
  t.equal(await subjectOf({ ...base, id_token_hint: ALICE_HINT }), 'alice');
  t.equal(await subjectOf({ ...base, id_token_hint: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.Zm9yZ2Vk' }), null, 'a JWT that does not verify names no one');
  await expectRedirect(t, { ...base, id_token_hint: 'not an ID token' }, 'invalid_request', 'not a JWT');
  await expectRedirect(t, { ...base, id_token_hint: [ALICE_HINT, ALICE_HINT] }, 'invalid_request', 'repeated');
});

t.test('repeated parameters are refused; unknown ones ignored', async (t) => {
  const r = await expectRedirect(t, { ...base, scope: ['openid', 'profile'] }, 'invalid_request', 'repeated scope');
  if (!r.ok) t.equal(r.target?.state, 'st', 'state still returned');
  const s = await expectRedirect(t, { ...base, state: ['a', 'b'] }, 'invalid_request', 'repeated state');
  if (!s.ok) t.equal(s.target?.state, undefined, 'an ambiguous state is not echoed');
  t.ok((await parse({ ...base, ui_locales: 'de', foo: ['1', '2'] })).ok, 'unknown parameters, even repeated, are ignored');
});

t.test('the word "repeated" is an ordinary value, not a repeat', async (t) => {
  const withWord = new Map(clients);
  withWord.set('repeated', client({ clientId: 'repeated' }));
  const r = await parseAuthorizationRequest({ ...base, client_id: 'repeated', state: 'repeated', nonce: 'repeated' }, { ...deps, findClient: async (id) => withWord.get(id) ?? null });
  t.ok(r.ok, 'accepted');
  if (r.ok) t.match(r.request, { clientId: 'repeated', state: 'repeated', nonce: 'repeated' });
});

t.test('resource (RFC 8707 §2): the resources of this server the grant will cover', async (t) => {
  const resourcesOf = async (query: AuthorizeQuery) => {
    const r = await parse(query);
    return r.ok ? r.request.resources : r.error.error;
  };
  t.same(await resourcesOf(base), [API], 'none asked for: the default resource');
  t.same(await resourcesOf({ ...base, resource: '' }), [API], 'an empty value counts as not sent (RFC 6749 §3.1)');
  t.same(await resourcesOf({ ...base, resource: MCP }), [MCP]);
  t.same(await resourcesOf({ ...base, resource: 'HTTPS://AS.Example:443/mcp/' }), [MCP], 'upper-case scheme and host, default port, trailing slash: the same resource, as configured');
  t.same(await resourcesOf({ ...base, resource: [MCP, API] }), [MCP, API], 'may repeat (§2), in the order asked');
  t.same(await resourcesOf({ ...base, resource: [MCP, 'https://as.example/mcp/', API] }), [MCP, API], 'two spellings of one resource count once');
  t.same(await resourcesOf({ ...base, response_type: 'token', nonce: 'n', resource: MCP }), [MCP], 'the implicit grant with one resource');

  const r = await expectRedirect(t, { ...base, resource: 'https://as.example/other' }, 'invalid_target', 'unknown resource');
  if (!r.ok) {
    t.equal(r.target?.state, 'st', 'redirected with state');
    t.match(r.error.description, /https:\/\/as\.example\/other is not a resource this server issues tokens for/);
  }
  await expectRedirect(t, { ...base, resource: '/api' }, 'invalid_target', 'relative');
  await expectRedirect(t, { ...base, resource: `${API}#frag` }, 'invalid_target', 'with a fragment');
  await expectRedirect(t, { ...base, resource: 'https://as.example/API' }, 'invalid_target', 'the path is case-sensitive');
  await expectRedirect(t, { ...base, resource: 'https://as.example:8443/api' }, 'invalid_target', 'another port');
  await expectRedirect(t, { ...base, resource: 'https:as.example/api' }, 'invalid_target', 'an http(s) URI without an authority');
  await expectRedirect(t, { ...base, resource: 'https://as.example\\api' }, 'invalid_target', 'a backslash (the WHATWG parser would read a slash)');
  await expectRedirect(t, { ...base, resource: [MCP, 'https://as.example/nope'] }, 'invalid_target', 'one unknown among several');
  await expectRedirect(t, { ...base, resource: Array.from({ length: 11 }, () => API) }, 'invalid_target', 'more than 10 values');
  const implicit = await expectRedirect(t, { ...base, response_type: 'token', nonce: 'n', resource: [API, MCP] }, 'invalid_target', 'implicit: one token, one resource');
  if (!implicit.ok) t.equal(implicit.target?.responseMode, 'fragment', 'answered in the fragment like every implicit error');
  t.ok((await parse({ ...base, resource: [API, MCP], login_hint: 'x' })).ok, 'repeats of resource are not refused as repeated parameters');
});

t.test('request objects are not supported (OIDC Core §6)', async (t) => {
  await expectRedirect(t, { ...base, request: 'eyJ…' }, 'request_not_supported');
  await expectRedirect(t, { ...base, request_uri: 'https://x' }, 'request_uri_not_supported');
  await expectRedirect(t, { ...base, registration: '{}' }, 'registration_not_supported');
});

t.test('a state over 4096 characters is refused and not echoed', async (t) => {
  const r = await expectRedirect(t, { ...base, state: 's'.repeat(4097) }, 'invalid_request');
  if (!r.ok) {
    t.equal(r.error.description, 'state must be at most 4096 characters.');
    t.equal(r.target?.state, undefined);
  }
  const longest = await parse({ ...base, state: 's'.repeat(4096) });
  t.equal(longest.ok && longest.request.state, 's'.repeat(4096));
});

t.test('an oversized login_hint is dropped, not refused', async (t) => {
  const kept = await parse({ ...base, login_hint: 'a'.repeat(256) });
  t.equal(kept.ok && kept.request.loginHint, 'a'.repeat(256));
  const dropped = await parse({ ...base, login_hint: 'a'.repeat(257) });
  t.ok(dropped.ok);
  if (dropped.ok) t.equal(dropped.request.loginHint, undefined);
});

t.test('the error of an unrecognised response_type goes in the query unless response_mode names the fragment', async (t) => {
  const cases: ReadonlyArray<readonly [AuthorizeQuery, string]> = [
    [{ ...base, response_type: 'id_token' }, 'query'],
    [{ ...base, response_type: 'id_token', response_mode: 'fragment' }, 'fragment'],
    [{ ...base, response_type: undefined }, 'query'],
    [{ ...base, response_type: undefined, response_mode: 'fragment' }, 'fragment'],
    [{ ...base, response_type: ['token', 'token'], response_mode: 'fragment' }, 'fragment'],
    [{ ...base, response_type: ['token', 'token'] }, 'query'],
  ];
  for (const [query, mode] of cases) {
    const r = await parse(query);
    t.equal(!r.ok && r.target?.responseMode, mode, `${JSON.stringify(query.response_type)} with response_mode ${String(query.response_mode)}`);
  }
});

t.test('response modes follow the protocol table: its default, the modes it allows, never another', async (t) => {
  const allModes = [...new Set(RESPONSE_TYPE_NAMES.flatMap((r) => RESPONSE_TYPES[r].responseModes))];
  t.same(allModes.sort(), ['fragment', 'query'], 'both modes are in the table, so the loop below tries both');
  for (const responseType of RESPONSE_TYPE_NAMES) {
    const { defaultResponseMode, responseModes } = RESPONSE_TYPES[responseType];
    const query = { ...base, response_type: responseType, scope: 'profile' };
    const plain = await parse(query);
    t.equal(plain.ok && plain.request.responseMode, defaultResponseMode, `${responseType}: default`);
    for (const mode of allModes) {
      const r = await parse({ ...query, response_mode: mode });
      if ((responseModes as readonly string[]).includes(mode)) {
        t.equal(r.ok && r.request.responseMode, mode, `${responseType} in the ${mode}`);
      } else {
        t.equal(r.ok, false, `${responseType} never in the ${mode}`);
        if (!r.ok) {
          t.equal(r.error.description, `response_mode=${mode} is not allowed for response_type=${responseType}.`);
          t.equal(r.target?.responseMode, defaultResponseMode, 'the error itself goes where the response would');
        }
      }
    }
  }
});

t.test('error texts computed from the protocol table read as before', async (t) => {
  const description = async (query: AuthorizeQuery) => {
    const r = await parse(query);
    return r.ok ? null : r.error.description;
  };
  t.equal(await description({ ...base, response_mode: 'form_post' }), 'response_mode "form_post" is not supported; use query or fragment.');
  t.equal(await description({ ...base, response_type: 'token', nonce: 'n', response_mode: 'query' }), 'response_mode=query is not allowed for response_type=token.');
  t.equal(await description({ ...base, code_challenge: undefined }), 'code_challenge is required (PKCE with S256).');
  t.equal(await description({ ...base, code_challenge_method: 'plain' }), 'code_challenge_method must be S256; plain is not allowed.');
  t.equal(await description({ ...base, code_challenge_method: 's256' }), 'code_challenge_method must be S256; plain is not allowed.', 'method names are case-sensitive');
  t.equal(
    await description({ ...base, response_type: 'id_token' }),
    'response_type "id_token" is not supported; use code (or token for legacy clients).',
  );
  t.equal(await description({ ...base, response_type: 'constructor' }), 'response_type "constructor" is not supported; use code (or token for legacy clients).');
});

const SOLO = 'https://solo.example/cb';
const solo = {
  response_type: 'code',
  client_id: 'solo',
  redirect_uri: SOLO,
  scope: 'openid profile',
  state: 'st',
  code_challenge: CHALLENGE,
  code_challenge_method: 'S256',
};

/**
 * Each check, in the order it must run, with a change to a valid request
 * that fails it. A change only touches what the checks after it need, so
 * applying the changes of a check and of every later one fails that check
 * and no earlier one.
 */
const failing: ReadonlyArray<readonly [check: string, change: AuthorizeQuery]> = [
  ['client_id is present, sent once and registered', { client_id: 'nobody' }],
  ['redirect_uri is sent once and registered for the client, exactly', { redirect_uri: 'https://evil.example/cb' }],
  ['each known parameter is sent at most once', { login_hint: ['a', 'b'] }],
  ['state is bounded', { state: 's'.repeat(4097) }],
  ['no request object, request_uri or registration', { request: 'eyJ' }],
  ['response_type is present, supported and registered for the client', { response_type: 'id_token' }],
  ['response_mode is supported and allowed for the response type', { response_mode: 'form_post' }],
  ['scope is known and registered for the client', { scope: 'nonsense' }],
  ['resource names resources this server issues tokens for, one for response_type=token', { resource: 'https://unknown.example/api' }],
  ['redirect_uri is sent for an OpenID request', { redirect_uri: undefined }],
  ['nonce is bounded', { nonce: 'n'.repeat(513) }], // over the 512-character bound
  ['PKCE code challenge for a code request', { code_challenge: 'short' }],
  ['prompt values are understood and consistent', { prompt: 'bogus' }],
  ['acr_values is bounded', { acr_values: 'x'.repeat(513) }], // over the 512-character bound
  ['max_age is whole seconds', { max_age: 'soon' }],
  ['dpop_jkt is a SHA-256 JWK thumbprint', { dpop_jkt: 'short' }],
  ['id_token_hint is an ID token, and names whom', { id_token_hint: 'not-a-jwt' }],
];
/** The one check that cannot fail (an oversized hint is dropped). */
const NEVER_FAILS = 'login_hint is kept only when short';

/** The changes of check `index` and every later one, the earlier change winning. */
function failingAt(index: number): AuthorizeQuery {
  let query: AuthorizeQuery = solo;
  for (let i = failing.length - 1; i >= index; i--) query = { ...query, ...failing[i]![1] };
  return query;
}

/** Independent of the checks: do client_id and redirect_uri belong together (RFC 6749 §3.1.2.3)? */
function verifiedRedirect(query: AuthorizeQuery): string | null {
  const { client_id: id, redirect_uri: uri } = query;
  const registered = typeof id === 'string' ? clients.get(id)?.redirectUris : undefined;
  if (!registered || Array.isArray(uri)) return null;
  if (uri === undefined) return registered.length === 1 ? registered[0]! : null;
  return registered.includes(uri as string) ? (uri as string) : null;
}

t.test('the checks run in RFC order: client_id, redirect_uri, then the rest', async (t) => {
  t.same(
    authorizationChecks.map(([name]) => name),
    [...failing.map(([name]) => name), NEVER_FAILS],
  );
  t.ok((await runAuthorizationChecks(solo, deps)).ok, 'the unchanged request is valid');
  for (const [index, [name]] of failing.entries()) {
    const r = await runAuthorizationChecks(failingAt(index), deps);
    t.equal(!r.ok && r.check, name, `fails at "${name}", no earlier check`);
  }
});

t.test('an error is redirected exactly when client_id and redirect_uri are verified together (RFC 6749 §4.1.2.1, RFC 9700 §4.1.1)', async (t) => {
  const redirectUriCheck = authorizationChecks.findIndex(([name]) => name.startsWith('redirect_uri is sent once'));
  t.equal(redirectUriCheck, 1, 'the redirect URI is verified second, right after the client');
  for (const [index, [name, , { redirectable }]] of authorizationChecks.entries()) {
    t.equal(redirectable, index > redirectUriCheck, `"${name}" declares ${index > redirectUriCheck ? 'redirectable' : 'never redirected'}`);
  }
  for (const [index, [name]] of failing.entries()) {
    const query = failingAt(index);
    const expected = verifiedRedirect(query);
    const r = await runAuthorizationChecks(query, deps);
    if (r.ok) {
      t.fail(`${name}: passed`);
      continue;
    }
    t.equal(r.redirectable, expected !== null, `${name}: ${expected === null ? 'shown' : 'redirected'}`);
    t.equal(r.target?.redirectUri ?? null, expected, `${name}: to the verified URI only`);
    const declared = authorizationChecks.find(([n]) => n === r.check)![2].redirectable;
    t.equal(r.redirectable, declared, `${name}: as the check declares`);
    const viaParse = await parse(query);
    t.same(viaParse, { ok: false, error: r.error, target: r.target, client: r.client }, `${name}: /authorize gets the same answer`);
  }
});

t.test('a redirectable check placed before the redirect URI is verified still never redirects', async (t) => {
  const early: typeof authorizationChecks = [
    [
      'misplaced',
      () => {
        throw invalidRequest('too early');
      },
      { redirectable: true },
    ],
    ...authorizationChecks,
  ];
  t.match(await runAuthorizationChecks(base, deps, early), { ok: false, check: 'misplaced', redirectable: false, target: null, client: null });
  const late: typeof authorizationChecks = [
    ...authorizationChecks.slice(0, 2),
    [
      'shown after all',
      () => {
        throw invalidRequest('not for the client');
      },
      { redirectable: false },
    ],
  ];
  const r = await runAuthorizationChecks(base, deps, late);
  t.match(r, { ok: false, check: 'shown after all', redirectable: false, target: null }, 'a check that says "never" is never redirected');
  t.equal(!r.ok && r.client?.clientId, 'web', 'the verified client is still reported');
});

t.test('validateAuthorizationRequest (for pushed requests, RFC 9126 §2.3) returns every error, redirects none', async (t) => {
  for (const [index, [name]] of failing.entries()) {
    const query = failingAt(index);
    const v = await validateAuthorizationRequest(query, deps);
    t.same(Object.keys(v).sort(), ['error', 'ok'], `${name}: only the error, no redirect target`);
    const r = await runAuthorizationChecks(query, deps);
    t.match(!v.ok && v.error, !r.ok && { error: r.error.error, description: r.error.description }, `${name}: the same error as /authorize`);
  }
  const v = await validateAuthorizationRequest(solo, deps);
  const p = await parse(solo);
  t.ok(v.ok);
  t.same(v, p, 'a valid request is the same request either way');
});

t.test('a store outage during the client lookup is thrown, not answered as a bad request', async (t) => {
  const down = { ...deps, findClient: async () => Promise.reject(new UnavailableError('database')) };
  await t.rejects(parseAuthorizationRequest(base, down), UnavailableError);
  await t.rejects(validateAuthorizationRequest(base, down), UnavailableError);
  const broken = { ...deps, findClient: async () => Promise.reject(new Error('bug')) };
  await t.rejects(parseAuthorizationRequest(base, broken), { message: 'bug' });
});

t.test('a request not pushed is refused when REQUIRE_PAR or the client requires pushing (RFC 9126 §5, §6); a pushed one is not', async (t) => {
  const strict = new Map([['strict', client({ clientId: 'strict', requirePushedAuthorizationRequests: true })], ['web', client()]]);
  const withStrict = { ...deps, findClient: async (id: string) => strict.get(id) ?? null };
  const direct = { pushed: false, pushRequiredByServer: false };
  t.match(await parseAuthorizationRequest({ ...base, client_id: 'strict' }, withStrict, direct), {
    ok: false,
    error: { error: 'invalid_request', description: /Pushed authorization requests are required/ },
    target: { redirectUri: base.redirect_uri, state: 'st' },
  });
  t.ok((await parseAuthorizationRequest({ ...base, client_id: 'strict' }, withStrict, { pushed: true, pushRequiredByServer: false })).ok, 'pushed: accepted');
  t.ok((await parseAuthorizationRequest(base, withStrict, direct)).ok, 'another client, not required: accepted');
  t.match(await parseAuthorizationRequest(base, withStrict, { pushed: false, pushRequiredByServer: true }), { ok: false, error: { error: 'invalid_request' } }, 'REQUIRE_PAR: refused');
  t.ok((await parseAuthorizationRequest(base, withStrict, { pushed: true, pushRequiredByServer: true })).ok, 'REQUIRE_PAR, pushed: accepted');
  // An unknown client or redirect URI is still the error page, whatever the requirement.
  t.match(await parseAuthorizationRequest({ ...base, redirect_uri: 'https://evil.example/cb' }, withStrict, { pushed: false, pushRequiredByServer: true }), { ok: false, target: null });
});
