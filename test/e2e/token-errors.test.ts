/**
 * Error paths of the token, revocation, introspection and resource
 * endpoints, through `app.inject()`: status, RFC error code, and the headers
 * the RFCs require (Cache-Control/Pragma, WWW-Authenticate).
 */
import t, { type Test } from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { basic, decodePayload, getWithToken, postForm, signWithServerKey } from '../helpers/tokens.js';
import { DPOP_ALGORITHMS } from '../../src/tokens/dpop.js';

/** RFC 9449 §7.1: every challenge of a resource route also offers DPoP. */
const DPOP_CHALLENGE = `DPoP algs="${DPOP_ALGORITHMS.join(' ')}"`;

const ISSUER = 'http://localhost:3000';

t.test(`token service error paths (${backendName})`, async (t) => {
  let skewMs = 0;
  const { app, services, storage } = await buildTestApp(t, { env: { ISSUER }, now: () => Date.now() + skewMs });

  const machine = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read openid' });
  const machineAuth = basic(machine.clientId, machine.clientSecret!);
  const poster = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read', token_endpoint_auth_method: 'client_secret_post' });
  const legacy = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'openid profile api:read api:write admin' });
  const legacyAuth = basic(legacy.clientId, legacy.clientSecret!);
  const other = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'openid api:read' });
  const otherAuth = basic(other.clientId, other.clientSecret!);
  const noRefresh = await seedClient(services, { grant_types: ['password'], scope: 'api:read' });
  const publicApp = await seedClient(services, {
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['http://127.0.0.1:8080/cb'],
    token_endpoint_auth_method: 'none',
    scope: 'openid api:read',
  });
  const bob = await seedUser(services, { username: 'bob' });

  const token = (params: Record<string, string | string[]>, options: Parameters<typeof postForm>[3] = {}) => postForm(app, '/token', params, options);
  const passwordTokens = async (clientAuth = legacyAuth, scope?: string) => {
    const res = await token({ grant_type: 'password', username: 'bob', password: bob.password, ...(scope ? { scope } : {}) }, { authorization: clientAuth });
    t.equal(res.statusCode, 200, 'password grant succeeded');
    return res.json() as { access_token: string; refresh_token?: string; scope: string };
  };
  const machineToken = async () => (await token({ grant_type: 'client_credentials' }, { authorization: machineAuth })).json().access_token as string;

  /** RFC 6749 §5.2 error shape with the no-store headers. */
  const isOAuthError = (t: Tap, res: Awaited<ReturnType<typeof token>>, status: number, error: string) => {
    t.equal(res.statusCode, status, `status ${status}`);
    t.equal(res.json().error, error, `error ${error}`);
    t.type(res.json().error_description, 'string');
    t.match(res.json().error_description, /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/, 'error_description in the characters RFC 6749 §5.2 allows');
    t.equal(res.headers['cache-control'], 'no-store');
    t.equal(res.headers.pragma, 'no-cache');
  };

  t.test('token endpoint: request format', async (t) => {
    const json = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { authorization: machineAuth, 'content-type': 'application/json' },
      payload: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    isOAuthError(t, json, 400, 'invalid_request');
    t.match(json.json().error_description, /x-www-form-urlencoded/);

    const text = await token({ grant_type: 'client_credentials' }, { authorization: machineAuth, contentType: 'text/plain' });
    isOAuthError(t, text, 400, 'invalid_request');
    const empty = await app.inject({ method: 'POST', url: '/token', headers: { authorization: machineAuth } });
    isOAuthError(t, empty, 400, 'invalid_request');

    const withCharset = await token({ grant_type: 'client_credentials' }, { authorization: machineAuth, contentType: 'application/x-www-form-urlencoded; charset=UTF-8' });
    t.equal(withCharset.statusCode, 200, 'a charset parameter is fine');

    const repeated = await token({ grant_type: 'client_credentials', scope: ['api:read', 'api:read'] }, { authorization: machineAuth });
    isOAuthError(t, repeated, 400, 'invalid_request');
    t.match(repeated.json().error_description, /scope/);
    // RFC 6749 §3.2: unrecognised parameters are ignored, repeated or not (as at /authorize).
    const repeatedUnknown = await token({ grant_type: 'client_credentials', foo: ['1', '2'] }, { authorization: machineAuth });
    t.equal(repeatedUnknown.statusCode, 200, 'a repeated unknown parameter is ignored');
    const repeatedSecret = await token({ grant_type: 'client_credentials', client_id: machine.clientId, client_secret: ['a', 'b'] });
    isOAuthError(t, repeatedSecret, 400, 'invalid_request');
    t.match(repeatedSecret.json().error_description, /client_secret/);

    const get = await app.inject({ method: 'GET', url: '/token?grant_type=client_credentials' });
    t.equal(get.statusCode, 405);
    t.equal(get.headers.allow, 'POST');

    isOAuthError(t, await token({}, { authorization: machineAuth }), 400, 'invalid_request');
    isOAuthError(t, await token({ grant_type: 'urn:example:unknown' }, { authorization: machineAuth }), 400, 'unsupported_grant_type');
    isOAuthError(t, await token({ grant_type: 'implicit' }, { authorization: machineAuth }), 400, 'unsupported_grant_type');
    isOAuthError(t, await token({ grant_type: '__proto__' }, { authorization: machineAuth }), 400, 'unsupported_grant_type');
  });

  t.test('token endpoint: client authentication', async (t) => {
    const wrong = await token({ grant_type: 'client_credentials' }, { authorization: basic(machine.clientId, 'wrong') });
    isOAuthError(t, wrong, 401, 'invalid_client');
    t.match(wrong.headers['www-authenticate'], /^Basic realm="oauth"/);

    const unknown = await token({ grant_type: 'client_credentials' }, { authorization: basic('no-such-client', 'x') });
    isOAuthError(t, unknown, 401, 'invalid_client');
    t.match(unknown.headers['www-authenticate'], /^Basic /);

    const none = await token({ grant_type: 'client_credentials' });
    isOAuthError(t, none, 401, 'invalid_client');

    const malformed = await token({ grant_type: 'client_credentials' }, { authorization: 'Basic %%%' });
    isOAuthError(t, malformed, 401, 'invalid_client');
    const bearer = await token({ grant_type: 'client_credentials' }, { authorization: 'Bearer abc' });
    isOAuthError(t, bearer, 401, 'invalid_client');

    // RFC 6749 §2.3: exactly one method per request.
    const both = await token({ grant_type: 'client_credentials', client_id: machine.clientId, client_secret: machine.clientSecret! }, { authorization: machineAuth });
    isOAuthError(t, both, 400, 'invalid_request');
    const mismatch = await token({ grant_type: 'client_credentials', client_id: poster.clientId }, { authorization: machineAuth });
    isOAuthError(t, mismatch, 400, 'invalid_request');
    const sameId = await token({ grant_type: 'client_credentials', client_id: machine.clientId }, { authorization: machineAuth });
    t.equal(sameId.statusCode, 200, 'client_id in the body equal to the Basic one is fine');
    const assertion = await token({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'x.y.z' }, { authorization: machineAuth });
    isOAuthError(t, assertion, 400, 'invalid_request');

    // The method must be the registered one.
    const postForBasicClient = await token({ grant_type: 'client_credentials', client_id: machine.clientId, client_secret: machine.clientSecret! });
    isOAuthError(t, postForBasicClient, 401, 'invalid_client');
    t.match(postForBasicClient.json().error_description, /client_secret_basic/);
    const basicForPostClient = await token({ grant_type: 'client_credentials' }, { authorization: basic(poster.clientId, poster.clientSecret!) });
    isOAuthError(t, basicForPostClient, 401, 'invalid_client');
    const post = await token({ grant_type: 'client_credentials', client_id: poster.clientId, client_secret: poster.clientSecret! });
    t.equal(post.statusCode, 200);
    const postWrong = await token({ grant_type: 'client_credentials', client_id: poster.clientId, client_secret: 'nope' });
    isOAuthError(t, postWrong, 401, 'invalid_client');
    const secretWithoutId = await token({ grant_type: 'client_credentials', client_secret: 'nope' });
    isOAuthError(t, secretWithoutId, 400, 'invalid_request');
    // A confidential client cannot pass itself off as public.
    const noSecret = await token({ grant_type: 'client_credentials', client_id: machine.clientId });
    isOAuthError(t, noSecret, 401, 'invalid_client');
    // A public client cannot use a secret either.
    const publicWithSecret = await token({ grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: basic(publicApp.clientId, 'anything') });
    isOAuthError(t, publicWithSecret, 401, 'invalid_client');
  });

  t.test('token endpoint: grants and scopes', async (t) => {
    isOAuthError(t, await token({ grant_type: 'password', username: 'bob', password: bob.password }, { authorization: machineAuth }), 400, 'unauthorized_client');
    isOAuthError(t, await token({ grant_type: 'client_credentials' }, { authorization: legacyAuth }), 400, 'unauthorized_client');
    isOAuthError(t, await token({ grant_type: 'password', client_id: publicApp.clientId, username: 'bob', password: bob.password }), 400, 'unauthorized_client');

    isOAuthError(t, await token({ grant_type: 'client_credentials', scope: 'api:read nonsense' }, { authorization: machineAuth }), 400, 'invalid_scope');
    isOAuthError(t, await token({ grant_type: 'client_credentials', scope: 'api:write' }, { authorization: machineAuth }), 400, 'invalid_scope');
    isOAuthError(t, await token({ grant_type: 'client_credentials', scope: 'bad"scope' }, { authorization: machineAuth }), 400, 'invalid_scope');
    // openid is for people: a client acting for itself never gets it.
    isOAuthError(t, await token({ grant_type: 'client_credentials', scope: 'openid' }, { authorization: machineAuth }), 400, 'invalid_scope');
    const narrowed = await token({ grant_type: 'client_credentials', scope: 'api:read api:write' }, { authorization: machineAuth });
    t.equal(narrowed.json().scope, 'api:read', 'granted: requested ∩ registered');
    const defaulted = await token({ grant_type: 'client_credentials' }, { authorization: machineAuth });
    t.equal(defaulted.json().scope, 'api:read', 'default: registered scopes usable by a client');
    t.notOk(defaulted.json().refresh_token);
    t.equal(defaulted.headers['cache-control'], 'no-store');
    t.equal(defaulted.headers.pragma, 'no-cache');
  });

  t.test('password grant', async (t) => {
    const ip = { authorization: legacyAuth, remoteAddress: '10.0.0.2' };
    isOAuthError(t, await token({ grant_type: 'password', password: 'x' }, ip), 400, 'invalid_request');
    isOAuthError(t, await token({ grant_type: 'password', username: 'bob' }, ip), 400, 'invalid_request');
    const wrong = await token({ grant_type: 'password', username: 'bob', password: 'not the password' }, ip);
    isOAuthError(t, wrong, 400, 'invalid_grant');
    const unknown = await token({ grant_type: 'password', username: 'nobody-here', password: 'not the password' }, ip);
    isOAuthError(t, unknown, 400, 'invalid_grant');
    t.equal(unknown.json().error_description, wrong.json().error_description, 'one message whether or not the user exists');

    const noRt = await token({ grant_type: 'password', username: 'bob', password: bob.password }, { authorization: basic(noRefresh.clientId, noRefresh.clientSecret!) });
    t.equal(noRt.statusCode, 200);
    t.notOk(noRt.json().refresh_token, 'no refresh token unless the client has the refresh_token grant');
    t.same(decodePayload(noRt.json().access_token).roles, []);
  });

  t.test('refresh grant', async (t) => {
    const first = await passwordTokens(legacyAuth, 'openid api:read');
    // Bound to its client: another client cannot use it, and trying does not burn it.
    isOAuthError(t, await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token! }, { authorization: otherAuth }), 400, 'invalid_grant');
    // Cannot widen the scope.
    const wider = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token!, scope: 'openid api:read api:write' }, { authorization: legacyAuth });
    isOAuthError(t, wider, 400, 'invalid_scope');
    isOAuthError(t, await token({ grant_type: 'refresh_token' }, { authorization: legacyAuth }), 400, 'invalid_request');
    isOAuthError(t, await token({ grant_type: 'refresh_token', refresh_token: 'garbage' }, { authorization: legacyAuth }), 400, 'invalid_grant');
    isOAuthError(t, await token({ grant_type: 'refresh_token', refresh_token: 'A'.repeat(43) }, { authorization: legacyAuth }), 400, 'invalid_grant');
    // Still good for its own client after all that.
    const ok = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token! }, { authorization: legacyAuth });
    t.equal(ok.statusCode, 200);
    t.equal(ok.json().scope, 'openid api:read');
  });

  t.test('a disabled or changed user: refresh refused, access tokens refused everywhere at once', async (t) => {
    const carol = await seedUser(services, { username: 'carol' });
    const get = async () => {
      const res = await token({ grant_type: 'password', username: 'carol', password: carol.password }, { authorization: legacyAuth });
      return res.json() as { access_token: string; refresh_token: string };
    };
    const withRefresh = await get();
    const noRefreshToken = (await token({ grant_type: 'password', username: 'carol', password: carol.password }, { authorization: basic(noRefresh.clientId, noRefresh.clientSecret!) })).json()
      .access_token as string;
    t.equal((await getWithToken(app, '/api/hello', noRefreshToken)).statusCode, 200);

    await services.users.update(carol.id, { disabled: true });
    isOAuthError(t, await token({ grant_type: 'refresh_token', refresh_token: withRefresh.refresh_token }, { authorization: legacyAuth }), 400, 'invalid_grant');
    t.equal((await getWithToken(app, '/api/hello', withRefresh.access_token)).statusCode, 401, 'token of the revoked family refused');
    t.equal((await getWithToken(app, '/api/hello', noRefreshToken)).statusCode, 401, 'token issued without a refresh token refused too (subject revocation)');
    const introspected = await postForm(app, '/introspect', { token: noRefreshToken }, { authorization: legacyAuth });
    t.same(introspected.json(), { active: false });

    // After a password change (and re-enabling), new tokens work at once, old ones do not.
    await services.users.update(carol.id, { disabled: false, password: 'a brand new password' });
    const fresh = (await token({ grant_type: 'password', username: 'carol', password: 'a brand new password' }, { authorization: legacyAuth })).json();
    t.equal((await getWithToken(app, '/api/hello', fresh.access_token as string)).statusCode, 200, 'a token minted right after the change is valid');
    t.equal((await getWithToken(app, '/api/hello', noRefreshToken)).statusCode, 401);
  });

  t.test('introspection errors and inactive tokens', async (t) => {
    const unauthenticated = await postForm(app, '/introspect', { token: 'x' });
    isOAuthError(t, unauthenticated, 401, 'invalid_client');
    t.match(unauthenticated.headers['www-authenticate'], /^Basic /);
    const byPublic = await postForm(app, '/introspect', { token: 'x', client_id: publicApp.clientId });
    isOAuthError(t, byPublic, 401, 'invalid_client');
    isOAuthError(t, await postForm(app, '/introspect', {}, { authorization: legacyAuth }), 400, 'invalid_request');
    isOAuthError(t, await postForm(app, '/introspect', { token: ['a', 'b'] }, { authorization: legacyAuth }), 400, 'invalid_request');
    t.same((await postForm(app, '/introspect', { token: 'x', extra: ['a', 'b'] }, { authorization: legacyAuth })).json(), { active: false }, 'an unknown parameter, repeated, is ignored');
    const json = await app.inject({ method: 'POST', url: '/introspect', headers: { authorization: legacyAuth, 'content-type': 'application/json' }, payload: '{"token":"x"}' });
    isOAuthError(t, json, 400, 'invalid_request');

    for (const garbage of ['garbage', 'a.b.c', 'A'.repeat(43), 'eyJhbGciOiJub25lIn0.e30.']) {
      const res = await postForm(app, '/introspect', { token: garbage }, { authorization: legacyAuth });
      t.equal(res.statusCode, 200);
      t.equal(res.body, '{"active":false}', 'exactly {"active":false}');
      t.equal(res.headers['cache-control'], 'no-store');
    }
    // Another client's refresh token: nothing to learn.
    const mine = await passwordTokens(otherAuth, 'api:read');
    const res = await postForm(app, '/introspect', { token: mine.refresh_token!, token_type_hint: 'refresh_token' }, { authorization: legacyAuth });
    t.equal(res.body, '{"active":false}');
    // Its access token neither (SPEC: only its own client or a resource server learns it is active)…
    const access = await postForm(app, '/introspect', { token: mine.access_token, token_type_hint: 'whatever' }, { authorization: legacyAuth });
    t.equal(access.body, '{"active":false}', "another client's access token: nothing to learn");
    // …while its own client does, whatever the hint.
    const own = await postForm(app, '/introspect', { token: mine.access_token, token_type_hint: 'whatever' }, { authorization: otherAuth });
    t.equal(own.json().active, true, 'unknown hints are ignored');
    t.equal(own.json().client_id, other.clientId);

    // Expired.
    const short = await machineToken();
    skewMs = 901_000;
    try {
      t.equal((await postForm(app, '/introspect', { token: short }, { authorization: machineAuth })).body, '{"active":false}');
    } finally {
      skewMs = 0;
    }
  });

  t.test('revocation', async (t) => {
    isOAuthError(t, await postForm(app, '/revoke', { token: 'x' }), 401, 'invalid_client');
    isOAuthError(t, await postForm(app, '/revoke', {}, { authorization: legacyAuth }), 400, 'invalid_request');
    const unknown = await postForm(app, '/revoke', { token: 'no-such-token' }, { authorization: legacyAuth });
    t.equal(unknown.statusCode, 200, 'unknown token: 200 (RFC 7009 §2.2)');
    t.equal(unknown.headers['cache-control'], 'no-store');

    // Another client's refresh token: 200, and it is NOT revoked.
    const theirs = await passwordTokens(otherAuth, 'api:read');
    t.equal((await postForm(app, '/revoke', { token: theirs.refresh_token!, token_type_hint: 'refresh_token' }, { authorization: legacyAuth })).statusCode, 200);
    t.equal((await postForm(app, '/revoke', { token: theirs.access_token }, { authorization: legacyAuth })).statusCode, 200);
    t.equal((await getWithToken(app, '/api/hello', theirs.access_token)).statusCode, 200, "another client's access token is left alone");
    const stillGood = await token({ grant_type: 'refresh_token', refresh_token: theirs.refresh_token! }, { authorization: otherAuth });
    t.equal(stillGood.statusCode, 200, "another client's refresh token is left alone");

    // Own refresh token with the wrong hint: still found and revoked (§2.1), twice is fine.
    const mine = await passwordTokens(legacyAuth, 'api:read');
    t.equal((await postForm(app, '/revoke', { token: mine.refresh_token!, token_type_hint: 'access_token' }, { authorization: legacyAuth })).statusCode, 200);
    t.equal((await postForm(app, '/revoke', { token: mine.refresh_token! }, { authorization: legacyAuth })).statusCode, 200, 'already revoked: 200');
    isOAuthError(t, await token({ grant_type: 'refresh_token', refresh_token: mine.refresh_token! }, { authorization: legacyAuth }), 400, 'invalid_grant');
    t.equal((await getWithToken(app, '/api/hello', mine.access_token)).statusCode, 401, 'the access token of the grant is revoked with it');

    // An ID token cannot be revoked: unsupported_token_type (RFC 7009 §2.2.1).
    const refreshed = await passwordTokens(legacyAuth, 'openid api:read');
    const withId = (await token({ grant_type: 'refresh_token', refresh_token: refreshed.refresh_token! }, { authorization: legacyAuth })).json();
    t.type(withId.id_token, 'string');
    isOAuthError(t, await postForm(app, '/revoke', { token: withId.id_token as string }, { authorization: legacyAuth }), 400, 'unsupported_token_type');
  });

  t.test('resource routes: RFC 6750 errors', async (t) => {
    // RFC 9728 §5.1: every challenge of the sample API points to its metadata.
    const realm = `Bearer realm="${ISSUER}", resource_metadata="${ISSUER}/.well-known/oauth-protected-resource/api", ${DPOP_CHALLENGE}`;
    const missing = await app.inject({ method: 'GET', url: '/api/hello' });
    t.equal(missing.statusCode, 401);
    t.equal(missing.headers['www-authenticate'], realm, 'no error attribute without a token (RFC 6750 §3.1)');
    const basicAuth = await app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: machineAuth } });
    t.equal(basicAuth.headers['www-authenticate'], realm);

    const invalid = async (t: Tap, tokenValue: string, description: RegExp) => {
      const res = await getWithToken(app, '/api/hello', tokenValue);
      t.equal(res.statusCode, 401);
      t.match(res.headers['www-authenticate'], /^Bearer realm="[^"]+", resource_metadata="[^"]+", error="invalid_token", error_description="[^"]+", DPoP algs="[^"]+"$/);
      t.match(res.json().error_description, description);
      t.equal(res.json().error, 'invalid_token');
    };
    const malformedHeader = await app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: 'Bearer two words' } });
    t.equal(malformedHeader.statusCode, 401);
    t.match(malformedHeader.headers['www-authenticate'], /error="invalid_token"/);
    await invalid(t, 'not-a-jwt', /malformed/);

    const good = await machineToken();
    const [h, p, s] = good.split('.') as [string, string, string];
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...decodePayload(good), scope: 'api:write' })).toString('base64url')}.${s}`;
    await invalid(t, tampered, /signature/);
    const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid })).toString('base64url');
    await invalid(t, `${noneHeader}.${p}.`, /algorithm/);

    const claims = decodePayload(good);
    await invalid(t, await signWithServerKey(storage, 'ES256', { typ: 'JWT' }, claims), /typ/);
    await invalid(t, await signWithServerKey(storage, 'ES256', {}, claims), /typ/);
    await invalid(t, await signWithServerKey(storage, 'ES256', { typ: 'at+jwt' }, { ...claims, iss: 'https://evil.example' }), /issuer/);
    await invalid(t, await signWithServerKey(storage, 'ES256', { typ: 'at+jwt' }, { ...claims, aud: 'https://other.example/api' }), /aud/);
    await invalid(t, await signWithServerKey(storage, 'ES256', { typ: 'at+jwt', kid: 'unknown-kid' }, claims), /unknown key/);
    await invalid(t, await signWithServerKey(storage, 'RS256', { typ: 'at+jwt' }, { ...claims, client_id: undefined }), /client_id/);
    t.equal((await getWithToken(app, '/api/hello', await signWithServerKey(storage, 'ES256', { typ: 'at+jwt' }, claims))).statusCode, 200, 'the same claims, properly typed, pass');

    // An ID token is not an access token.
    const fromRefresh = (await token({ grant_type: 'refresh_token', refresh_token: (await passwordTokens(legacyAuth, 'openid api:read')).refresh_token! }, { authorization: legacyAuth })).json();
    await invalid(t, fromRefresh.id_token as string, /typ|aud/);

    skewMs = 901_000;
    try {
      await invalid(t, good, /expired/);
    } finally {
      skewMs = 0;
    }

    const inQuery = await app.inject({ method: 'GET', url: `/api/hello?access_token=${good}` });
    t.equal(inQuery.statusCode, 400);
    t.match(inQuery.headers['www-authenticate'], /error="invalid_request"/);
  });

  t.test('admin API with a bearer access token', async (t) => {
    const root = await seedUser(services, { username: 'root', roles: ['admin'] });
    const adminToken = (await token({ grant_type: 'password', username: 'root', password: root.password, scope: 'openid admin' }, { authorization: legacyAuth })).json().access_token as string;
    const ordinary = (await token({ grant_type: 'password', username: 'root', password: root.password }, { authorization: legacyAuth })).json() as { access_token: string; scope: string };
    const userToken = (await passwordTokens(legacyAuth, 'api:read')).access_token;
    const list = (bearer: string) => app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${bearer}` } });
    t.equal((await list(adminToken)).statusCode, 200, 'a user with role admin, scope admin');
    t.notMatch(ordinary.scope, /\badmin\b/, 'the admin scope is never granted by default');
    t.equal((await list(ordinary.access_token)).statusCode, 403, "an admin's token without the admin scope");
    t.equal((await list(userToken)).statusCode, 403, 'a user without it');
    t.equal((await list(await machineToken())).statusCode, 403, 'a client acting for itself');
    const bad = await list('not-a-token');
    t.equal(bad.statusCode, 401);
    // Roles are read at request time: removing the role takes effect before the token expires.
    // (Another admin first: the last enabled admin cannot lose the role.)
    await seedUser(services, { username: 'root-2', roles: ['admin'] });
    await services.users.update(root.id, { roles: [] });
    t.equal((await list(adminToken)).statusCode, 403);
  });

  t.test('resource routes: 403 insufficient_scope', async (t) => {
    const user = await passwordTokens(legacyAuth, 'api:read');
    const admin = await getWithToken(app, '/api/admin/hello', user.access_token);
    t.equal(admin.statusCode, 403);
    t.equal(admin.json().error, 'insufficient_scope');
    t.match(admin.headers['www-authenticate'], /error="insufficient_scope"/);
    const machineAdmin = await getWithToken(app, '/api/admin/hello', await machineToken());
    t.equal(machineAdmin.statusCode, 403);

    const noOpenid = await getWithToken(app, '/userinfo', user.access_token);
    t.equal(noOpenid.statusCode, 403);
    t.match(noOpenid.headers['www-authenticate'], /error="insufficient_scope".*scope="openid"/);
    const withOpenid = await passwordTokens(legacyAuth, 'openid');
    const info = await getWithToken(app, '/userinfo', withOpenid.access_token);
    t.same(info.json(), { sub: bob.id }, 'no profile or email scope: sub only');
    const post = await postForm(app, '/userinfo', { access_token: withOpenid.access_token });
    t.same(post.json(), { sub: bob.id }, 'POST with the token in the body (RFC 6750 §2.2)');
    const both = await postForm(app, '/userinfo', { access_token: withOpenid.access_token }, { authorization: `Bearer ${withOpenid.access_token}` });
    t.equal(both.statusCode, 400);
    const twice = await postForm(app, '/userinfo', { access_token: [withOpenid.access_token, withOpenid.access_token] });
    t.equal(twice.statusCode, 400, 'access_token twice is a malformed request (RFC 6750 §3.1)');
    t.equal(twice.json().error, 'invalid_request');
  });
});

type Tap = Test;
