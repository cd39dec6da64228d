/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2/§3, OIDC Core §9)
 * end to end: clients registered with `jwks` or `jwks_uri` (served over real
 * TLS with a throwaway CA, resolved through an injected resolver), flows
 * through oauth4webapi's `PrivateKeyJwt` (client credentials, code, revoke,
 * introspect), every refusal of an assertion, single use of `jti` across two
 * instances sharing one database and TTL store, the SSRF guard on `jwks_uri`,
 * key rotation at the client, and the admin API's validation.
 *
 * Instance A runs with CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS=true (the test's
 * https server is on 127.0.0.1); instance B with the default, so it refuses
 * the same address.
 */
import type { LookupAddress } from 'node:dns';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import t, { type Test } from 'tap';
import { buildTestApp, seedUser, type TestApp } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';
import { json, makeTestCertificates, startHttpsServer } from '../helpers/tls.js';
import { postForm, userBasic } from '../helpers/tokens.js';

const ISSUER = 'http://localhost:3000';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const REDIRECT = 'https://app.example/cb';
const HOST = 'keys.test';

const certs = await makeTestCertificates(t, [HOST]);
const keyServer = await startHttpsServer(t, certs);
const resolve = async (hostname: string): Promise<LookupAddress[]> => {
  if (hostname === HOST) return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};
const outbound = { extraCaCerts: [certs.caPem], resolve };

interface KeyPair {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
  alg: string;
}

async function keyPair(alg: 'ES256' | 'PS256' | 'EdDSA', kid: string = randomUUID()): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, kid, alg };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A client assertion signed with `key`; `claims` override (undefined removes) the good defaults. */
async function sign(key: KeyPair, clientId: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const payload: Record<string, unknown> = { iss: clientId, sub: clientId, aud: ISSUER, jti: randomUUID(), iat: nowSeconds(), exp: nowSeconds() + 60, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey);
}

let ipCounter = 0;
/** Each refusal from its own address, so the lockout test alone decides when a client is locked out. */
const freshIp = () => `203.0.113.${++ipCounter}`;

t.test(`private_key_jwt client authentication (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  const a = await buildTestApp(t, { env: { ISSUER, CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_TIMEOUT_MS: '2000' }, db, kv, serviceOptions: { outbound } });
  const b = await buildTestApp(t, { env: { ISSUER, CLIENT_METADATA_TIMEOUT_MS: '2000' }, db, kv, serviceOptions: { outbound } });
  const admin = await seedUser(a.services, { roles: ['admin'] });
  const adminAuth = userBasic(admin.username, admin.password);
  const user = await seedUser(a.services);

  const adminCall = (method: 'POST' | 'PATCH' | 'GET', url: string, payload?: unknown) =>
    a.app.inject({ method, url, headers: { authorization: adminAuth, 'content-type': 'application/json' }, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });

  /** Registers a client through the admin API. */
  async function register(t: Test, metadata: Record<string, unknown>): Promise<Record<string, unknown> & { client_id: string }> {
    const res = await adminCall('POST', '/admin/clients', { client_name: 'Signed client', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', scope: 'api:read', ...metadata });
    t.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  const es = await keyPair('ES256');
  const ps = await keyPair('PS256');
  const signed = await register(t, {
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    redirect_uris: [REDIRECT],
    scope: 'openid api:read offline_access',
    jwks: { keys: [es.publicJwk, ps.publicJwk] },
  });
  const clientId = signed.client_id;

  /** A client-credentials request authenticated by `assertion`, at `target` from a fresh address. */
  const clientCredentials = (assertion: string, extra: Record<string, string> = {}, target: TestApp = a, remoteAddress = freshIp()) =>
    postForm(target.app, '/token', { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, ...extra }, { remoteAddress });

  /** Expects the RFC 6749 §5.2 invalid_client answer, with `pattern` in its description. */
  const refused = (t: Test, res: Awaited<ReturnType<typeof clientCredentials>>, pattern: RegExp, what: string) => {
    t.equal(res.statusCode, 401, `${what}: ${res.body}`);
    t.equal(res.json<{ error: string }>().error, 'invalid_client', what);
    t.match(res.json<{ error_description: string }>().error_description, pattern, what);
    t.ok(res.headers['www-authenticate'], 'a 401 carries a challenge');
  };

  t.test('metadata advertises private_key_jwt and its asymmetric algorithms at every endpoint', async (t) => {
    const meta = (await a.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json<Record<string, string[]>>();
    for (const endpoint of ['token', 'revocation', 'introspection']) {
      t.ok(meta[`${endpoint}_endpoint_auth_methods_supported`]!.includes('private_key_jwt'), endpoint);
      const algs = meta[`${endpoint}_endpoint_auth_signing_alg_values_supported`]!;
      t.ok(algs.includes('ES256') && algs.includes('PS256') && algs.includes('RS256'), `${endpoint}: asymmetric algorithms`);
      t.notOk(algs.some((alg) => alg === 'none' || alg.startsWith('HS')), `${endpoint}: no none, no HMAC`);
    }
  });

  t.test('the admin API registers it without a secret and shows its keys', async (t) => {
    t.notOk('client_secret' in signed, 'no secret is issued');
    t.equal(signed.token_endpoint_auth_method, 'private_key_jwt');
    t.same((signed.jwks as { keys: JWK[] }).keys.map((k) => k.kid), [es.kid, ps.kid]);
    const row = (await a.storage.clients.findById(clientId))!;
    t.equal(row.clientSecretHash, null);
    const rotate = await a.app.inject({ method: 'POST', url: `/admin/clients/${clientId}/secret`, headers: { authorization: adminAuth } });
    t.equal(rotate.statusCode, 409, 'no secret to rotate');
  });

  const httpOptions = { [oauth.customFetch]: injectFetch(a.app), [oauth.allowInsecureRequests]: true } as const;
  const issuerUrl = new URL(ISSUER);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { ...httpOptions, algorithm: 'oauth2' }));
  const client: oauth.Client = { client_id: clientId };

  t.test('client credentials through oauth4webapi PrivateKeyJwt (ES256 and PS256 keys)', async (t) => {
    for (const key of [es, ps]) {
      const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }), new URLSearchParams({ scope: 'api:read' }), httpOptions);
      const result = await oauth.processClientCredentialsResponse(as, client, response);
      t.equal(result.scope, 'api:read', key.alg);
    }
  });

  t.test('aud may be the token endpoint; client_id may be left out (RFC 7521 §4.2) but must match when sent', async (t) => {
    t.equal((await clientCredentials(await sign(es, clientId, { aud: `${ISSUER}/token` }))).statusCode, 200, 'aud = token endpoint');
    t.equal((await clientCredentials(await sign(es, clientId, { aud: ['https://other.example', ISSUER] }))).statusCode, 200, 'aud as a list naming the issuer');
    t.equal((await clientCredentials(await sign(es, clientId), { client_id: clientId })).statusCode, 200, 'client_id sent and equal');
    refused(t, await clientCredentials(await sign(es, clientId), { client_id: 'someone-else' }), /client_id differs/, 'client_id differs from sub');
  });

  t.test('authorization code, refresh, introspection and revocation with PrivateKeyJwt', async (t) => {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const result = await loginAndConsent(
      new InjectBrowser(a.app),
      authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'api:read offline_access', state, code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
      user,
    );
    const auth = oauth.PrivateKeyJwt({ key: es.privateKey, kid: es.kid });
    const params = oauth.validateAuthResponse(as, client, new URL(result.location), state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, pkce.verifier, httpOptions));
    t.ok(tokens.access_token && tokens.refresh_token);
    const refreshed = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, httpOptions));
    const introspected = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, refreshed.access_token, httpOptions));
    t.equal(introspected.active, true);
    t.equal(introspected.client_id, clientId);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, refreshed.refresh_token!, httpOptions));
    const after = await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token!, httpOptions);
    t.equal(after.status, 400, 'the revoked refresh token is refused');

    // aud = the URL of the endpoint it is sent to; not another endpoint's.
    const atIntrospect = await postForm(a.app, '/introspect', { token: refreshed.access_token, client_assertion_type: ASSERTION_TYPE, client_assertion: await sign(es, clientId, { aud: `${ISSUER}/introspect` }) });
    t.equal(atIntrospect.statusCode, 200, atIntrospect.body);
    refused(t, await clientCredentials(await sign(es, clientId, { aud: `${ISSUER}/introspect` })), /'aud'/, 'the introspection URL at the token endpoint');
  });

  t.test('refusals: each rule of RFC 7523 §3', async (t) => {
    const other = await keyPair('ES256', es.kid);
    refused(t, await clientCredentials(await sign(other, clientId)), /signature does not verify/, 'signed with another key under a registered kid');
    refused(t, await clientCredentials(await sign(await keyPair('ES256'), clientId)), /matches/, 'an unknown kid');
    refused(t, await clientCredentials(await sign(es, clientId, { iss: 'someone-else' })), /'iss' and 'sub'/, 'iss is not the client_id');
    refused(t, await clientCredentials(await sign(es, clientId, { aud: 'https://elsewhere.example' })), /'aud'/, 'aud names another server');
    refused(t, await clientCredentials(await sign(es, clientId, { aud: undefined })), /'aud'/, 'no aud');
    refused(t, await clientCredentials(await sign(es, clientId, { exp: undefined })), /'exp'/, 'no exp');
    refused(t, await clientCredentials(await sign(es, clientId, { exp: nowSeconds() - 120, iat: nowSeconds() - 180 })), /expired/, 'expired');
    refused(t, await clientCredentials(await sign(es, clientId, { exp: nowSeconds() + 3600 })), /too far ahead/, 'exp an hour ahead');
    refused(t, await clientCredentials(await sign(es, clientId, { nbf: nowSeconds() + 600, exp: nowSeconds() + 240 })), /not valid yet/, 'nbf in the future');
    refused(t, await clientCredentials(await sign(es, clientId, { iat: nowSeconds() + 600, exp: nowSeconds() + 240 })), /'iat'/, 'iat in the future');
    refused(t, await clientCredentials(await sign(es, clientId, { jti: undefined })), /'jti'/, 'no jti');
    const hmac = await new SignJWT({ iss: clientId, sub: clientId, aud: ISSUER, jti: randomUUID(), exp: nowSeconds() + 60 })
      .setProtectedHeader({ alg: 'HS256', kid: es.kid })
      .sign(createHash('sha256').update('guessable').digest());
    refused(t, await clientCredentials(hmac), /'alg' is not accepted/, 'HMAC (HS256)');
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${b64({ alg: 'none' })}.${b64({ iss: clientId, sub: clientId, aud: ISSUER, jti: randomUUID(), exp: nowSeconds() + 60 })}.`;
    refused(t, await clientCredentials(unsigned), /'alg' is not accepted|not a valid signed JWT/, 'alg none');
    refused(t, await clientCredentials('not.a.jwt'), /not a JWT/, 'not a JWT');
    refused(t, await clientCredentials(await sign(es, clientId), { client_assertion_type: 'urn:example:other' }), /client_assertion_type/, 'another assertion type');
    refused(t, await clientCredentials(await sign(es, 'no-such-client')), /authentication failed/i, 'an unknown client');

    // A client registered for a secret cannot switch to an assertion, nor the other way round.
    const secretClient = await register(t, { token_endpoint_auth_method: 'client_secret_basic' });
    refused(t, await clientCredentials(await sign(es, secretClient.client_id)), /registered for token_endpoint_auth_method 'client_secret_basic'/, 'secret client with an assertion');
    const basicForSigned = await postForm(a.app, '/token', { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`${clientId}:guess`).toString('base64')}`, remoteAddress: freshIp() });
    refused(t, basicForSigned, /registered for token_endpoint_auth_method 'private_key_jwt'/, 'signed client with a secret');
  });

  t.test('a jti is single-use across instances: of one assertion sent to both at once, exactly one passes', async (t) => {
    const assertion = await sign(es, clientId);
    const answers = await Promise.all([clientCredentials(assertion, {}, a), clientCredentials(assertion, {}, b)]);
    t.same(answers.map((r) => r.statusCode).sort(), [200, 401], answers.map((r) => r.body).join(' | '));
    refused(t, answers.find((r) => r.statusCode === 401)!, /already used/, 'the replay');
    refused(t, await clientCredentials(assertion, {}, a), /already used/, 'and again later');
  });

  t.test('bad assertions count towards the client lockout like bad secrets', async (t) => {
    const ip = freshIp();
    const max = a.config.maxFailedAttempts;
    for (let i = 0; i < max - 1; i++) t.equal((await clientCredentials(await sign(es, clientId, { aud: 'https://elsewhere.example' }), {}, a, ip)).statusCode, 401);
    const last = await clientCredentials(await sign(es, clientId, { aud: 'https://elsewhere.example' }), {}, a, ip);
    t.equal(last.statusCode, 429, 'the last attempt locks the client out for this address');
    t.equal((await clientCredentials(await sign(es, clientId), {}, a, ip)).statusCode, 429, 'even a good assertion, until the window ends');
    t.equal((await clientCredentials(await sign(es, clientId), {}, a, freshIp())).statusCode, 200, 'another address is not locked out');
  });

  t.test('jwks_uri: fetched once and cached, fetched again for a new kid (rotation), at most once per interval', async (t) => {
    const first = await keyPair('ES256');
    keyServer.on('/rotating/jwks.json', json({ keys: [first.publicJwk] }, { 'cache-control': 'max-age=600' }));
    const remote = await register(t, { jwks_uri: `${keyServer.origin(HOST)}/rotating/jwks.json` });
    t.equal(remote.jwks_uri, `${keyServer.origin(HOST)}/rotating/jwks.json`);
    t.equal((await clientCredentials(await sign(first, remote.client_id))).statusCode, 200);
    t.equal((await clientCredentials(await sign(first, remote.client_id), {}, b)).statusCode, 200, 'the other instance uses the shared copy');
    t.equal(keyServer.hits('/rotating/jwks.json'), 1, 'one fetch for both instances');

    const second = await keyPair('EdDSA');
    keyServer.on('/rotating/jwks.json', json({ keys: [first.publicJwk, second.publicJwk] }));
    // The fetch that filled the cache counts: within the interval, a new kid waits.
    refused(t, await clientCredentials(await sign(second, remote.client_id)), /matches/, 'a new key within the refetch interval');
    t.equal(keyServer.hits('/rotating/jwks.json'), 1, 'not fetched again yet');
    // The interval passes: the test removes the store's marker (client-keys.ts) rather than waiting 30 s.
    await kv.delete(`client-jwks-refetch:${createHash('sha256').update(remote.jwks_uri as string).digest('base64url')}`);
    const rotated = await clientCredentials(await sign(second, remote.client_id));
    t.equal(rotated.statusCode, 200, rotated.body);
    t.equal(keyServer.hits('/rotating/jwks.json'), 2, 'fetched again for the unknown kid');
    refused(t, await clientCredentials(await sign(await keyPair('ES256'), remote.client_id)), /matches/, 'a made-up kid right after');
    t.equal(keyServer.hits('/rotating/jwks.json'), 2, 'does not fetch again');
  });

  t.test('jwks_uri goes through the SSRF guard: a private address is refused without the development flag', async (t) => {
    const key = await keyPair('ES256');
    keyServer.on('/guarded/jwks.json', json({ keys: [key.publicJwk] }));
    const remote = await register(t, { jwks_uri: `${keyServer.origin(HOST)}/guarded/jwks.json` });
    refused(t, await clientCredentials(await sign(key, remote.client_id), {}, b), /not a public address/, 'instance B (no flag)');
    t.equal(keyServer.hits('/guarded/jwks.json'), 0, 'never connected');

    keyServer.on('/leaky/jwks.json', json({ keys: [{ ...key.publicJwk, d: 'c2VjcmV0' }] }));
    const leaky = await register(t, { jwks_uri: `${keyServer.origin(HOST)}/leaky/jwks.json` });
    refused(t, await clientCredentials(await sign(key, leaky.client_id)), /private or symmetric key/, 'a published private key refuses the set');
  });

  t.test('the admin API validates keys', async (t) => {
    const bad = async (metadata: Record<string, unknown>, pattern: RegExp, what: string) => {
      const res = await adminCall('POST', '/admin/clients', { client_name: 'Bad', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', ...metadata });
      t.equal(res.statusCode, 400, `${what}: ${res.body}`);
      t.equal(res.json<{ error: string }>().error, 'invalid_client_metadata', what);
      t.match(res.json<{ error_description: string }>().error_description, pattern, what);
    };
    const privateJwk = { ...(await exportJWK(es.privateKey)), kid: 'leak' };
    await bad({ jwks: { keys: [privateJwk] } }, /private member "d"/, 'a private key');
    await bad({ jwks: { keys: [es.publicJwk] }, jwks_uri: 'https://keys.example/jwks.json' }, /not both/, 'jwks and jwks_uri');
    await bad({}, /needs the client's public keys/, 'no keys');
    await bad({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /private member "k"|only asymmetric/, 'a symmetric key');
    await bad({ jwks: { keys: [{ ...es.publicJwk, alg: 'HS256' }] } }, /alg/, 'an HMAC alg on a key');
    await bad({ jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] } }, /not a valid public key/, 'a malformed key');
    await bad({ jwks_uri: 'http://keys.example/jwks.json' }, /https/, 'jwks_uri over http');
    await bad({ token_endpoint_auth_method: 'client_secret_basic', jwks: { keys: [es.publicJwk] } }, /only with token_endpoint_auth_method "private_key_jwt"/, 'keys for a secret client');

    // PATCH: naming jwks_uri replaces jwks; leaving the method drops the keys and issues a secret.
    const patched = await adminCall('PATCH', `/admin/clients/${clientId}`, { jwks_uri: 'https://keys.example/jwks.json' });
    t.equal(patched.statusCode, 200, patched.body);
    t.equal(patched.json<{ jwks_uri: string }>().jwks_uri, 'https://keys.example/jwks.json');
    t.notOk('jwks' in patched.json(), 'the inline keys are gone');
    const toSecret = await adminCall('PATCH', `/admin/clients/${clientId}`, { token_endpoint_auth_method: 'client_secret_basic' });
    t.equal(toSecret.statusCode, 200, toSecret.body);
    t.ok(toSecret.json<{ client_secret: string }>().client_secret, 'a secret is issued once it authenticates with one');
    t.notOk('jwks_uri' in toSecret.json(), 'the keys are dropped');
    const back = await adminCall('PATCH', `/admin/clients/${clientId}`, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [es.publicJwk] } });
    t.equal(back.statusCode, 200, back.body);
    t.equal((await a.storage.clients.findById(clientId))!.clientSecretHash, null, 'and removed when it no longer does');
  });
});
