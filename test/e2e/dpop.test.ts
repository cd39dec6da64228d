/**
 * DPoP (RFC 9449) with oauth4webapi as the client over `app.inject()`:
 * authorization code and refresh (a public client, so its refresh token is
 * bound too), client credentials, the sample API with proofs, server nonces
 * (the client retries on `use_dpop_nonce`), introspection and metadata; then
 * every refusal with hand-made proofs: htm, htu, iat, a replayed jti at two
 * instances sharing one database and TTL store, ath, another key, a bound
 * token sent as Bearer, a bound refresh token with another key or none,
 * `dpop_bound_access_tokens` without a proof, a missing or expired nonce.
 */
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { accessTokenHash } from '../../src/tokens/dpop.js';
import { DPOP_NONCE_SLOT_SECONDS } from '../../src/tokens/dpop-nonce.js';
import { hashRefreshToken } from '../../src/tokens/refresh-tokens.js';
import { buildTestApp, seedClient, seedUser, type TestApp } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';

const REDIRECT = 'http://127.0.0.1:7010/cb';

interface ProofKey {
  pair: { publicKey: CryptoKey; privateKey: CryptoKey };
  jwk: JWK;
  jkt: string;
}

async function proofKey(): Promise<ProofKey> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  return { pair, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A proof as RFC 9449 §4.2 describes it; each field can be overridden (or left out with undefined). */
function proof(key: ProofKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const payload: Record<string, unknown> = { jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header }).sign(key.pair.privateKey);
}

/** Runs an oauth4webapi request, retrying once when the server asks for its nonce (RFC 9449 §8). */
async function withNonceRetry<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return attempt();
  }
}

t.test(`DPoP (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  // One clock for both instances, moved forward only by the nonce-expiry test.
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  const env = { CORS_ORIGINS: 'https://app.example' };
  const one: TestApp = await buildTestApp(t, { db, kv, now, env });
  const two: TestApp = await buildTestApp(t, { db, kv, now, env });
  const { app, services, config } = one;
  const ISSUER = config.issuer;
  const HELLO = `${ISSUER}/api/hello`;

  const issuer = new URL(ISSUER);
  const httpOptions = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true } as const;
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oauth2' }));

  const spa = await seedClient(services, {
    client_name: 'SPA',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    scope: 'openid api:read',
  });
  const machine = await seedClient(services, { client_name: 'Machine', grant_types: ['client_credentials'], scope: 'api:read' });
  const strict = await seedClient(services, { client_name: 'Strict', grant_types: ['client_credentials'], scope: 'api:read', dpop_bound_access_tokens: true });
  const introspector = await seedClient(services, { client_name: 'RS', grant_types: ['client_credentials'], scope: 'api:read', resource_server: true });
  const user = await seedUser(services);
  const browser = new InjectBrowser(app);

  /** A DPoP-bound client-credentials token for `key` (through oauth4webapi, nonce retry included). */
  async function machineToken(key: ProofKey, client = machine): Promise<string> {
    const DPoP = oauth.DPoP({ client_id: client.clientId } as oauth.Client, key.pair);
    const response = await withNonceRetry(async () =>
      oauth.processClientCredentialsResponse(
        as,
        { client_id: client.clientId },
        await oauth.clientCredentialsGrantRequest(as, { client_id: client.clientId }, oauth.ClientSecretBasic(client.clientSecret!), new URLSearchParams(), {
          ...httpOptions,
          DPoP,
        }),
      ),
    );
    return response.access_token;
  }

  /** The current nonce, as a client learns it: from a DPoP request's answer. */
  async function currentNonce(): Promise<string> {
    const key = await proofKey();
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(machine), dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token` }) },
      payload: 'grant_type=client_credentials',
    });
    return res.headers['dpop-nonce'] as string;
  }

  const basic = (c: { clientId: string; clientSecret: string | null }) => `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`;

  /** GET /api/hello with a DPoP token and a hand-made proof (the current nonce unless told otherwise). */
  async function hello(target: TestApp, token: string, key: ProofKey, claims: Record<string, unknown> = {}, scheme = 'DPoP') {
    const dpop = await proof(key, { htm: 'GET', htu: HELLO, ath: accessTokenHash(token), nonce: await currentNonce(), ...claims });
    return target.app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `${scheme} ${token}`, dpop } });
  }

  const dpopError = (res: { headers: Record<string, unknown> }) => /DPoP error="([^"]+)"/.exec(String(res.headers['www-authenticate']))?.[1];

  t.test('metadata names the proof algorithms', async (t) => {
    t.ok(as.dpop_signing_alg_values_supported?.includes('ES256'));
    t.notOk(as.dpop_signing_alg_values_supported?.some((alg) => alg.startsWith('HS') || alg === 'none'), 'asymmetric only');
    const resource = (await app.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/api' })).json() as Record<string, unknown>;
    t.same(resource.dpop_signing_alg_values_supported, as.dpop_signing_alg_values_supported);
  });

  t.test('authorization code and refresh: bound access and refresh tokens (oauth4webapi)', async (t) => {
    const key = await proofKey();
    const DPoP = oauth.DPoP({ client_id: spa.clientId } as oauth.Client, key.pair);
    const client: oauth.Client = { client_id: spa.clientId };
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const { location } = await loginAndConsent(
      browser,
      authorizePath({ response_type: 'code', client_id: spa.clientId, redirect_uri: REDIRECT, scope: 'api:read', state, code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
      user,
    );
    const params = oauth.validateAuthResponse(as, client, new URL(location), state);
    let tries = 0;
    const tokens = await withNonceRetry(async () => {
      tries++;
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, pkce.verifier, { ...httpOptions, DPoP });
      return oauth.processAuthorizationCodeResponse(as, client, response);
    });
    t.equal(tries, 2, 'the first request learned the nonce (use_dpop_nonce), the retry carried it');
    t.equal(tokens.token_type, 'dpop');
    t.same(decodeJwt(tokens.access_token).cnf, { jkt: key.jkt }, 'cnf.jkt is the thumbprint of the proof key (RFC 7638)');
    t.ok(tokens.refresh_token);

    const res = await oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(HELLO), undefined, undefined, { ...httpOptions, DPoP });
    t.equal(res.status, 200, 'the API accepts the token with a proof by its key');
    t.equal(((await res.json()) as { sub: string }).sub, user.id);

    // RFC 9449 §5: the public client's refresh token is bound to the key.
    const other = await proofKey();
    const withOther = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof(other, { htm: 'POST', htu: `${ISSUER}/token`, nonce: await currentNonce() }) },
      payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: spa.clientId }).toString(),
    });
    t.equal(withOther.statusCode, 400);
    t.equal(withOther.json().error, 'invalid_grant', 'a proof by another key is refused');
    const without = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: spa.clientId }).toString(),
    });
    t.equal(without.json().error, 'invalid_grant', 'no proof at all is refused');

    const refreshed = await withNonceRetry(async () =>
      oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token!, { ...httpOptions, DPoP })),
    );
    t.equal(refreshed.token_type, 'dpop', 'the refused attempts did not use the token up; its key refreshes it');
    t.same(decodeJwt(refreshed.access_token).cnf, { jkt: key.jkt });
    const rows = await one.storage.refreshTokens.findByHash(hashRefreshToken(refreshed.refresh_token!));
    t.equal(rows?.dpopJkt, key.jkt, 'the successor keeps the binding');
  });

  t.test('dpop_jkt at /authorize binds the code to the key (RFC 9449 §10)', async (t) => {
    const key = await proofKey();
    const DPoP = oauth.DPoP({ client_id: spa.clientId } as oauth.Client, key.pair);
    const client: oauth.Client = { client_id: spa.clientId };
    const authorize = async () => {
      const pkce = pkcePair();
      const state = oauth.generateRandomState();
      const { location } = await loginAndConsent(
        browser,
        authorizePath({
          response_type: 'code',
          client_id: spa.clientId,
          redirect_uri: REDIRECT,
          scope: 'api:read',
          state,
          code_challenge: pkce.challenge,
          code_challenge_method: 'S256',
          dpop_jkt: await DPoP.calculateThumbprint(),
        }),
        user,
      );
      return { pkce, params: oauth.validateAuthResponse(as, client, new URL(location), state) };
    };
    const first = await authorize();
    const other = await proofKey();
    const wrongKey = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof(other, { htm: 'POST', htu: `${ISSUER}/token`, nonce: await currentNonce() }) },
      payload: new URLSearchParams({ grant_type: 'authorization_code', code: first.params.get('code')!, redirect_uri: REDIRECT, code_verifier: first.pkce.verifier, client_id: spa.clientId }).toString(),
    });
    t.equal(wrongKey.json().error, 'invalid_grant', 'a proof by another key is refused');

    const second = await authorize();
    const tokens = await withNonceRetry(async () =>
      oauth.processAuthorizationCodeResponse(
        as,
        client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), second.params, REDIRECT, second.pkce.verifier, { ...httpOptions, DPoP }),
      ),
    );
    t.same(decodeJwt(tokens.access_token).cnf, { jkt: key.jkt }, 'the key named at /authorize redeems the code');
  });

  t.test('a proof sent with a pushed request binds the code as dpop_jkt does (RFC 9449 §10.1)', async (t) => {
    const key = await proofKey();
    const DPoP = oauth.DPoP({ client_id: spa.clientId } as oauth.Client, key.pair);
    const client: oauth.Client = { client_id: spa.clientId };
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const params = { response_type: 'code', redirect_uri: REDIRECT, scope: 'api:read', state, code_challenge: pkce.challenge, code_challenge_method: 'S256' };
    const pushed = await withNonceRetry(async () =>
      oauth.processPushedAuthorizationResponse(as, client, await oauth.pushedAuthorizationRequest(as, client, oauth.None(), params, { ...httpOptions, DPoP })),
    );
    const { location } = await loginAndConsent(browser, authorizePath({ client_id: spa.clientId, request_uri: pushed.request_uri }), user);
    const callback = oauth.validateAuthResponse(as, client, new URL(location), state);
    const unbound = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'authorization_code', code: callback.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier, client_id: spa.clientId }).toString(),
    });
    t.equal(unbound.json().error, 'invalid_grant', 'the code is not redeemed without a proof by the pushed key');

    const par = (dpop: string, extra: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: '/par',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop },
        payload: new URLSearchParams({ ...params, client_id: spa.clientId, ...extra }).toString(),
      });
    const garbage = await par('not-a-proof');
    t.equal(garbage.statusCode, 400);
    t.equal(garbage.json().error, 'invalid_dpop_proof', 'a bad proof at /par is refused');
    const other = await proofKey();
    const mismatch = await par(await proof(key, { htm: 'POST', htu: `${ISSUER}/par`, nonce: await currentNonce() }), { dpop_jkt: other.jkt });
    t.equal(mismatch.json().error, 'invalid_request', 'dpop_jkt must name the key of the proof');
    const wrongHtu = await par(await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce: await currentNonce() }));
    t.equal(wrongHtu.json().error, 'invalid_dpop_proof', 'a proof for another endpoint is refused');
    const right = await par(await proof(key, { htm: 'POST', htu: `${ISSUER}/par`, nonce: await currentNonce() }), { dpop_jkt: key.jkt });
    t.equal(right.statusCode, 201, 'with a matching dpop_jkt');
  });

  t.test('client credentials, introspection, and the API with a proof (oauth4webapi)', async (t) => {
    const key = await proofKey();
    const token = await machineToken(key);
    t.same(decodeJwt(token).cnf, { jkt: key.jkt });
    const DPoP = oauth.DPoP({ client_id: machine.clientId } as oauth.Client, key.pair);
    // A new handle knows no nonce yet: the API asks for one (use_dpop_nonce), the retry carries it.
    const res = await withNonceRetry(() => oauth.protectedResourceRequest(token, 'GET', new URL(HELLO), undefined, undefined, { ...httpOptions, DPoP }));
    t.equal(res.status, 200);
    t.ok(res.headers.get('dpop-nonce'), 'a fresh nonce with every DPoP answer');

    const introspected = await app.inject({
      method: 'POST',
      url: '/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(introspector) },
      payload: `token=${token}`,
    });
    t.equal(introspected.json().token_type, 'DPoP', 'RFC 9449 §6.2');
    t.same(introspected.json().cnf, { jkt: key.jkt });
  });

  t.test('the API refuses proofs that do not fit the request or the token', async (t) => {
    const key = await proofKey();
    const token = await machineToken(key);
    t.equal((await hello(one, token, key)).statusCode, 200, 'a proper proof passes');
    t.equal((await hello(one, token, key, { htu: `${HELLO}?x=1` })).statusCode, 200, 'htu is compared without its query (§4.3)');

    const cases: Array<[string, Record<string, unknown>, ProofKey?]> = [
      ['wrong htm', { htm: 'POST' }],
      ['wrong htu', { htu: `${ISSUER}/api/admin/hello` }],
      ['stale iat', { iat: Math.floor(Date.now() / 1000) - 600 }],
      ['iat in the future', { iat: Math.floor(Date.now() / 1000) + 600 }],
      ['missing ath', { ath: undefined }],
      ['wrong ath', { ath: accessTokenHash(`${token}x`) }],
      ['signed by another key than cnf.jkt', {}, await proofKey()],
    ];
    for (const [name, claims, signer] of cases) {
      const res = await hello(one, token, signer ?? key, claims);
      t.equal(res.statusCode, 401, name);
      t.equal(dpopError(res), 'invalid_dpop_proof', `${name}: the DPoP challenge names the error`);
      t.match(String(res.headers['www-authenticate']), /^Bearer realm="[^"]+", resource_metadata="[^"]+", DPoP error="invalid_dpop_proof", error_description="[^"]+", algs="[^"]*ES256/);
    }

    const asBearer = await app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `Bearer ${token}` } });
    t.equal(asBearer.statusCode, 401, 'a DPoP-bound token sent as Bearer is refused (§7.2)');
    t.match(String(asBearer.headers['www-authenticate']), /^Bearer realm="[^"]+", resource_metadata="[^"]+", error="invalid_token"/);
    const noProof = await app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `DPoP ${token}` } });
    t.equal(dpopError(noProof), 'invalid_dpop_proof', 'DPoP scheme without a proof');
    const bearerToken = (await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(machine) }, payload: 'grant_type=client_credentials' })).json().access_token as string;
    t.equal(dpopError(await hello(one, bearerToken, key)), 'invalid_token', 'an unbound token is not accepted with the DPoP scheme');
    t.equal((await app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `Bearer ${bearerToken}` } })).statusCode, 200, 'bearer tokens still work');
  });

  t.test('a proof is accepted once, on one instance of two', async (t) => {
    const key = await proofKey();
    const token = await machineToken(key);
    const dpop = await proof(key, { htm: 'GET', htu: HELLO, ath: accessTokenHash(token), nonce: await currentNonce() });
    const send = (target: TestApp) => target.app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `DPoP ${token}`, dpop } });
    const results = await Promise.all([send(one), send(two), send(one), send(two)]);
    t.same(results.map((r) => r.statusCode).sort(), [200, 401, 401, 401], 'exactly one accepted');
    t.ok(results.filter((r) => r.statusCode === 401).every((r) => /already used/.test(String(r.headers['www-authenticate']))));
  });

  t.test('the token endpoint: dpop_bound_access_tokens, proof checks, nonces', async (t) => {
    const token = (headers: Record<string, string>, client = strict) =>
      app.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), ...headers }, payload: 'grant_type=client_credentials' });
    const refused = await token({});
    t.equal(refused.statusCode, 400);
    t.equal(refused.json().error, 'invalid_dpop_proof', 'a client registered with dpop_bound_access_tokens needs a proof (RFC 9449 §5.2)');
    const key = await proofKey();
    t.ok((await machineToken(key, strict)).length > 0, 'with one it gets a token');

    const noNonce = await token({ dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token` }) });
    t.equal(noNonce.json().error, 'use_dpop_nonce');
    const nonce = noNonce.headers['dpop-nonce'] as string;
    t.ok(nonce, 'with the nonce to use');
    t.equal((await token({ dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce }) })).statusCode, 200);
    t.equal((await token({ dpop: await proof(key, { htm: 'GET', htu: `${ISSUER}/token`, nonce }) })).json().error, 'invalid_dpop_proof', 'wrong htm');
    t.equal((await token({ dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/tokens`, nonce }) })).json().error, 'invalid_dpop_proof', 'wrong htu');
    t.equal((await token({ dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce }, { typ: 'JWT' }) })).json().error, 'invalid_dpop_proof', 'typ must be dpop+jwt');
    const privateJwk = await exportJWK(key.pair.privateKey);
    t.equal((await token({ dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce }, { jwk: privateJwk }) })).json().error, 'invalid_dpop_proof', 'a private jwk is refused');
    const replayed = await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce });
    t.equal((await token({ dpop: replayed })).statusCode, 200);
    t.equal((await token({ dpop: replayed })).json().error, 'invalid_dpop_proof', 'a replayed proof at the token endpoint');

    // Two slots later the nonce has expired, on both instances.
    offsetMs = 2 * DPOP_NONCE_SLOT_SECONDS * 1000;
    t.teardown(() => {
      offsetMs = 0;
    });
    const iat = Math.floor(now() / 1000);
    const expired = await token({ dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce, iat }) });
    t.equal(expired.json().error, 'use_dpop_nonce', 'an expired nonce');
    t.not(expired.headers['dpop-nonce'], nonce, 'a new nonce is sent');
    const atTwo = await two.app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(strict), dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce: expired.headers['dpop-nonce'], iat }) },
      payload: 'grant_type=client_credentials',
    });
    t.equal(atTwo.statusCode, 200, 'the other instance accepts the nonce this one handed out');
  });

  t.test('the password grant binds too; admins register dpop_bound_access_tokens', async (t) => {
    const legacy = await seedClient(services, { client_name: 'Legacy', grant_types: ['password'], scope: 'api:read' });
    const key = await proofKey();
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(legacy), dpop: await proof(key, { htm: 'POST', htu: `${ISSUER}/token`, nonce: await currentNonce() }) },
      payload: new URLSearchParams({ grant_type: 'password', username: user.username, password: user.password }).toString(),
    });
    t.equal(res.json().token_type, 'DPoP');
    t.same(decodeJwt(res.json().access_token as string).cnf, { jkt: key.jkt });

    const admin = await seedUser(services, { roles: ['admin'] });
    const adminAuth = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
    const created = await app.inject({
      method: 'POST',
      url: '/admin/clients',
      headers: { authorization: adminAuth, 'content-type': 'application/json' },
      payload: { client_name: 'Bound', grant_types: ['client_credentials'], dpop_bound_access_tokens: true },
    });
    t.equal(created.statusCode, 201);
    t.equal(created.json().dpop_bound_access_tokens, true);
    const id = created.json().client_id as string;
    const patched = await app.inject({ method: 'PATCH', url: `/admin/clients/${id}`, headers: { authorization: adminAuth, 'content-type': 'application/json' }, payload: { dpop_bound_access_tokens: false } });
    t.equal(patched.json().dpop_bound_access_tokens, false);
  });

  t.test('CORS lets browser apps send DPoP and read DPoP-Nonce', async (t) => {
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/token',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'dpop,content-type' },
    });
    t.match(String(preflight.headers['access-control-allow-headers']), /DPoP/);
    const res = await app.inject({ method: 'GET', url: '/api/hello', headers: { origin: 'https://app.example' } });
    t.match(String(res.headers['access-control-expose-headers']), /DPoP-Nonce/);
  });
});
