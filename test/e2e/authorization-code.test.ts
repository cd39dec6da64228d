/**
 * Redeeming authorization codes (RFC 6749 §4.1.3, RFC 7636, OIDC Core §3.1.3)
 * and the implicit response, with oauth4webapi as the client over
 * `app.inject()`: single use, replay revocation, concurrent redemption, PKCE,
 * client and redirect-URI binding, ID tokens, two instances.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildTestApp, seedClient, seedUser, type TestApp } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, loginAndConsent, pkcePair, responseParams } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';

const REDIRECT = 'http://127.0.0.1:7003/cb';
const SECOND_REDIRECT = 'http://127.0.0.1:7003/other';

t.test(`authorization code and implicit grants (${backendName})`, async (t) => {
  // Two instances over one database and one TTL store.
  const db = await testDb(t);
  const kv = await testKv(t);
  const one: TestApp = await buildTestApp(t, { db, kv });
  const two: TestApp = await buildTestApp(t, { db, kv });
  const { app, services, config } = one;

  const issuer = new URL(config.issuer);
  const httpOptions = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oidc' }));

  const web = await seedClient(services, {
    client_name: 'Web app',
    redirect_uris: [REDIRECT, SECOND_REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile api:read',
  });
  const spa = await seedClient(services, {
    client_name: 'SPA',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
    scope: 'openid api:read',
  });
  const other = await seedClient(services, { client_name: 'Other', redirect_uris: [REDIRECT], scope: 'openid profile api:read' });
  const legacy = await seedClient(services, {
    client_name: 'Legacy',
    redirect_uris: [REDIRECT],
    grant_types: ['implicit'],
    token_endpoint_auth_method: 'none',
    scope: 'openid api:read',
  });
  const user = await seedUser(services);
  const browser = new InjectBrowser(app);

  /** Signs in and consents (once per client, then remembered); returns the code and what was sent. */
  async function authorize(clientId: string, extra: Record<string, string> = {}) {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const result = await loginAndConsent(
      browser,
      authorizePath({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT,
        scope: 'openid api:read',
        state,
        nonce,
        code_challenge: pkce.challenge,
        code_challenge_method: 'S256',
        ...extra,
      }),
      user,
    );
    return { ...result, pkce, state, nonce, code: result.params.get('code')! };
  }

  const basic = (c: { clientId: string; clientSecret: string | null }) =>
    `Basic ${Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret!)}`).toString('base64')}`;

  const redeem = (target: TestApp, c: { clientId: string; clientSecret: string | null }, form: Record<string, string | undefined>) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (c.clientSecret) headers.authorization = basic(c);
    else body.set('client_id', c.clientId);
    return target.app.inject({ method: 'POST', url: '/token', headers, payload: body.toString() });
  };

  const codeForm = (code: string, verifier: string, redirectUri: string | null = REDIRECT) => ({
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: redirectUri ?? undefined,
  });

  /** Is an access token still accepted by the resource server? */
  const hello = (target: TestApp, token: string) =>
    target.app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `Bearer ${token}` } });

  t.test('code + PKCE through oauth4webapi: access, refresh and ID token', async (t) => {
    const client: oauth.Client = { client_id: web.clientId };
    const auth = await authorize(web.clientId);
    t.ok(auth.sawLogin && auth.sawConsent);
    // Checks state and iss (RFC 9207: the server advertises authorization_response_iss_parameter_supported).
    const params = oauth.validateAuthResponse(as, client, new URL(auth.location), auth.state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, auth.pkce.verifier, httpOptions);
    t.equal(response.headers.get('cache-control'), 'no-store');
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: auth.nonce, requireIdToken: true });
    t.equal(tokens.token_type.toLowerCase(), 'bearer');
    t.equal(tokens.scope, 'openid api:read');
    t.ok(tokens.refresh_token, 'a refresh token: the client is registered for refresh_token');

    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    t.equal(claims.iss, config.issuer);
    t.equal(claims.aud, web.clientId);
    t.equal(claims.sub, user.id);
    t.equal(claims.nonce, auth.nonce);
    t.type(claims.auth_time, 'number');
    const digest = createHash('sha256').update(tokens.access_token).digest();
    t.equal(claims.at_hash, digest.subarray(0, 16).toString('base64url'), 'at_hash is the left half of SHA-256(access_token)');

    const access = decodeJwt(tokens.access_token);
    t.equal(access.client_id, web.clientId);
    t.equal(access.sub, user.id);
    t.equal(access.scope, 'openid api:read');
    t.equal((await hello(one, tokens.access_token)).statusCode, 200);
  });

  t.test('a public client redeems with PKCE alone; no refresh token unless registered', async (t) => {
    const auth = await authorize(spa.clientId);
    const res = await redeem(one, spa, codeForm(auth.code, auth.pkce.verifier));
    t.equal(res.statusCode, 200, res.body);
    t.notOk(res.json().refresh_token);
    t.ok(res.json().id_token, 'openid was granted');
  });

  t.test('a code works once; a replay fails invalid_grant and revokes what the first redemption issued', async (t) => {
    const auth = await authorize(web.clientId);
    const first = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(first.statusCode, 200);
    const issued = first.json();
    t.equal((await hello(one, issued.access_token)).statusCode, 200);

    const replay = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(replay.statusCode, 400);
    t.equal(replay.json().error, 'invalid_grant');

    const refresh = await redeem(one, web, { grant_type: 'refresh_token', refresh_token: issued.refresh_token });
    t.equal(refresh.statusCode, 400, 'the refresh token no longer refreshes');
    t.equal(refresh.json().error, 'invalid_grant');
    t.equal((await hello(one, issued.access_token)).statusCode, 401, 'the access token is refused by the resource server');
    const introspection = await one.app.inject({
      method: 'POST',
      url: '/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(web) },
      payload: new URLSearchParams({ token: issued.access_token }).toString(),
    });
    t.same(introspection.json(), { active: false });
  });

  t.test('a used code replayed by another client fails, and does not end the tokens of the client it was issued to', async (t) => {
    const auth = await authorize(web.clientId);
    const first = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(first.statusCode, 200);
    const issued = first.json();
    for (const intruder of [other, spa]) {
      const replay = await redeem(two, intruder, codeForm(auth.code, auth.pkce.verifier));
      t.equal(replay.json().error, 'invalid_grant', `replayed as ${intruder.clientId}`);
    }
    t.equal((await hello(one, issued.access_token)).statusCode, 200, 'the access token still works');
    const refreshed = await redeem(one, web, { grant_type: 'refresh_token', refresh_token: issued.refresh_token });
    t.equal(refreshed.statusCode, 200, 'the refresh token still refreshes');
    // The client it was issued to replaying it is the RFC 6749 §4.1.2 case: everything goes.
    t.equal((await redeem(one, web, codeForm(auth.code, auth.pkce.verifier))).json().error, 'invalid_grant');
    t.equal((await hello(one, issued.access_token)).statusCode, 401);
    const again = await redeem(one, web, { grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token });
    t.equal(again.json().error, 'invalid_grant', 'the family, rotated since, is revoked');
  });

  t.test('two concurrent redemptions: exactly one succeeds, and what it got is revoked', async (t) => {
    const auth = await authorize(web.clientId);
    const results = await Promise.all([
      redeem(one, web, codeForm(auth.code, auth.pkce.verifier)),
      redeem(two, web, codeForm(auth.code, auth.pkce.verifier)),
    ]);
    t.same(results.map((r) => r.statusCode).sort(), [200, 400]);
    const winner = results.find((r) => r.statusCode === 200)!.json();
    t.equal(results.find((r) => r.statusCode === 400)!.json().error, 'invalid_grant');
    const refresh = await redeem(one, web, { grant_type: 'refresh_token', refresh_token: winner.refresh_token });
    t.equal(refresh.json().error, 'invalid_grant', 'a code presented twice is a replay: its tokens are revoked');
  });

  t.test('a code issued on one instance is redeemed on another, once', async (t) => {
    const auth = await authorize(web.clientId);
    const res = await redeem(two, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(res.statusCode, 200);
    const again = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(again.json().error, 'invalid_grant');
    t.equal((await hello(one, res.json().access_token)).statusCode, 401, 'what the other instance issued is revoked');
  });

  t.test('PKCE: the verifier is required and must match', async (t) => {
    const auth = await authorize(web.clientId);
    const missing = await redeem(one, web, codeForm(auth.code, ''));
    t.equal(missing.statusCode, 400);
    t.equal(missing.json().error, 'invalid_request');
    const wrong = await redeem(one, web, codeForm(auth.code, pkcePair().verifier));
    t.equal(wrong.json().error, 'invalid_grant');
    const plain = await authorize(web.clientId);
    // The challenge itself as verifier (what "plain" would accept).
    const asPlain = await redeem(one, web, codeForm(plain.code, plain.pkce.challenge));
    t.equal(asPlain.json().error, 'invalid_grant');
    const right = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(right.json().error, 'invalid_grant', 'a code is used up by a failed attempt: the verifier cannot be guessed');
  });

  t.test('a code is bound to its client', async (t) => {
    const auth = await authorize(web.clientId);
    const stolen = await redeem(one, other, codeForm(auth.code, auth.pkce.verifier));
    t.equal(stolen.statusCode, 400);
    t.equal(stolen.json().error, 'invalid_grant');
    const publicStolen = await authorize(web.clientId);
    const asPublic = await redeem(one, spa, codeForm(publicStolen.code, publicStolen.pkce.verifier));
    t.equal(asPublic.json().error, 'invalid_grant', 'nor by naming a public client');
  });

  t.test('a code is bound to the redirect_uri of its request', async (t) => {
    const auth = await authorize(web.clientId);
    const otherUri = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier, SECOND_REDIRECT));
    t.equal(otherUri.json().error, 'invalid_grant', 'another registered URI');
    const omitted = await authorize(web.clientId);
    const none = await redeem(one, web, codeForm(omitted.code, omitted.pkce.verifier, null));
    t.equal(none.json().error, 'invalid_grant', 'redirect_uri must be repeated when the request had it (RFC 6749 §4.1.3)');
  });

  t.test('response_mode=fragment returns the code in the fragment', async (t) => {
    const auth = await authorize(web.clientId, { response_mode: 'fragment' });
    t.ok(auth.location.startsWith(`${REDIRECT}#`));
    t.equal(auth.params.get('iss'), config.issuer);
    const res = await redeem(one, web, codeForm(auth.code, auth.pkce.verifier));
    t.equal(res.statusCode, 200);
  });

  t.test('implicit: the access token in the fragment, never a refresh token', async (t) => {
    const state = oauth.generateRandomState();
    const result = await loginAndConsent(
      browser,
      authorizePath({ response_type: 'token', client_id: legacy.clientId, redirect_uri: REDIRECT, scope: 'openid api:read', state, nonce: 'n-1' }),
      user,
    );
    t.ok(result.location.startsWith(`${REDIRECT}#`), 'in the fragment');
    const params = responseParams(result.location);
    t.equal(params.get('token_type'), 'Bearer');
    t.equal(params.get('expires_in'), String(config.accessTokenTtlSeconds));
    t.equal(params.get('scope'), 'openid api:read');
    t.equal(params.get('state'), state);
    t.equal(params.get('iss'), config.issuer);
    t.equal(params.get('refresh_token'), null);
    t.equal(params.get('code'), null);
    const token = params.get('access_token')!;
    t.equal(decodeJwt(token).client_id, legacy.clientId);
    t.equal((await hello(one, token)).statusCode, 200);

    const refused = await browser.get(
      authorizePath({ response_type: 'token', client_id: web.clientId, redirect_uri: REDIRECT, scope: 'api:read', state }),
    );
    t.equal(responseParams(refused.headers.location as string).get('error'), 'unauthorized_client', 'only for clients registered for it');
  });
});
