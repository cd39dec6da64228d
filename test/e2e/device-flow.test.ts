/**
 * The device authorization grant (RFC 8628) end to end, with oauth4webapi as
 * the device: the device authorization request, the `/device` page (sign in
 * and back, the code, the consent page), and the polls of the token endpoint
 * (`authorization_pending`, `slow_down`, `access_denied`, `expired_token`, a
 * device code redeemed once across two instances), the throttle on typed
 * user codes, and once in headless Chromium. Time moves through the apps'
 * shared clock (`now`), never by waiting.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { clientCommands } from '../../src/admin/cli/clients.js';
import { ACR_PASSWORD } from '../../src/oauth/acr.js';
import { formatUserCode, normalizeUserCode, USER_CODE_ALPHABET } from '../../src/oauth/device-authorization.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { hiddenFields, InjectBrowser } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ISSUER = 'http://localhost:3000';

let offsetMs = 0;
const now = () => Date.now() + offsetMs;
/** Moves both instances' clock on. */
const advance = (seconds: number) => {
  offsetMs += seconds * 1000;
};

const db = await testDb(t);
const kv = await testKv(t);
const env = { MAX_FAILED_ATTEMPTS: '4' };
const a = await buildTestApp(t, { db, kv, now, env });
const b = await buildTestApp(t, { db, kv, now, env });
const { services } = a;

const alice = await seedUser(services, { username: 'alice' });
const tv = await seedClient(services, { client_name: 'Living-room TV', grant_types: [DEVICE_GRANT, 'refresh_token'], token_endpoint_auth_method: 'none', scope: 'openid api:read' });
const box = await seedClient(services, { client_name: 'Set-top box', grant_types: [DEVICE_GRANT], token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read' });
const webApp = await seedClient(services, { client_name: 'Web app', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none', scope: 'api:read' });

function device(app: FastifyInstance, client: { clientId: string; clientSecret: string | null }, as: oauth.AuthorizationServer, clientAuth?: oauth.ClientAuth) {
  const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: injectFetch(app) as typeof fetch } as const;
  const c: oauth.Client = { client_id: client.clientId };
  const auth = clientAuth ?? (client.clientSecret === null ? oauth.None() : oauth.ClientSecretBasic(client.clientSecret));
  return {
    async start(scope?: string) {
      const params = new URLSearchParams(scope === undefined ? {} : { scope });
      return oauth.processDeviceAuthorizationResponse(as, c, await oauth.deviceAuthorizationRequest(as, c, auth, params, options));
    },
    async poll(deviceCode: string) {
      return oauth.processDeviceCodeResponse(as, c, await oauth.deviceCodeGrantRequest(as, c, auth, deviceCode, options));
    },
    async refresh(refreshToken: string) {
      return oauth.processRefreshTokenResponse(as, c, await oauth.refreshTokenGrantRequest(as, c, auth, refreshToken, options));
    },
  };
}

/** The RFC 6749 §5.2 error a poll (or a request) is answered with. */
async function errorOf(promise: Promise<unknown>): Promise<{ error: string; status: number }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) return { error: err.error, status: err.status };
    if (err instanceof oauth.WWWAuthenticateChallengeError) return { error: String(err.cause[0]?.parameters.error ?? err.cause[0]?.scheme), status: err.status };
    throw err;
  }
  throw new Error('expected an error response');
}

const asA = await oauth.processDiscoveryResponse(
  new URL(ISSUER),
  await oauth.discoveryRequest(new URL(ISSUER), { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true, [oauth.customFetch]: injectFetch(a.app) as typeof fetch }),
);

/** A browser signed in as alice through `/device` → `/login?next=…` → back. */
async function signedInBrowser(app: FastifyInstance, ip = '127.0.0.1'): Promise<InjectBrowser> {
  const browser = new InjectBrowser(app, ip);
  const first = await browser.get('/device');
  const login = first.headers.location as string;
  const page = await browser.get(login);
  const back = await browser.post('/login', { ...hiddenFields(page.body, '/login'), username: alice.username, password: alice.password });
  if (back.headers.location !== '/device') throw new Error(`sign-in did not return to /device: ${back.statusCode} ${String(back.headers.location)}`);
  return browser;
}

/** Posts a code at `/device` (and a decision when given) the way the pages' forms do. */
async function enter(browser: InjectBrowser, userCode: string, decision?: 'allow' | 'deny') {
  const form = await browser.get('/device');
  const { csrf_token } = hiddenFields(form.body, '/device');
  const consent = await browser.post('/device', { csrf_token, user_code: userCode });
  if (decision === undefined) return consent;
  return browser.post('/device', { ...hiddenFields(consent.body, '/device'), decision });
}

t.test(`metadata advertises the device authorization endpoint and grant (${backendName})`, async (t) => {
  t.equal(asA.device_authorization_endpoint, `${ISSUER}/device_authorization`);
  t.ok(asA.grant_types_supported?.includes(DEVICE_GRANT));
});

t.test('user codes: 8 consonants shown as XXXX-XXXX, typed in any case with or without the dash', async (t) => {
  t.equal(normalizeUserCode('bcdf-ghjk'), 'BCDFGHJK');
  t.equal(normalizeUserCode(' BcDf GhJk '), 'BCDFGHJK');
  t.equal(normalizeUserCode('BCDF-GHJA'), null, 'no vowels');
  t.equal(normalizeUserCode('BCDFGHJ'), null, 'eight characters');
  t.equal(formatUserCode('BCDFGHJK'), 'BCDF-GHJK');
  t.notMatch(USER_CODE_ALPHABET, /[AEIOUY01]/);
});

t.test('happy path: pending until the person signs in at /device and allows; tokens once; a refresh token and an ID token (amr, acr, kept by a refresh)', async (t) => {
  const tvA = device(a.app, tv, asA);
  const started = await tvA.start('openid api:read');
  t.match(started, { user_code: /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/, verification_uri: `${ISSUER}/device`, expires_in: 600, interval: 5 });
  t.equal(started.verification_uri_complete, `${ISSUER}/device?user_code=${started.user_code}`);
  t.match(started.device_code, /^[\w-]{43}$/);

  t.same(await errorOf(tvA.poll(started.device_code)), { error: 'authorization_pending', status: 400 });

  // verification_uri_complete while signed out: sign in first, and back to the prefilled form.
  const browser = new InjectBrowser(a.app);
  const complete = new URL(started.verification_uri_complete!);
  const toLogin = await browser.get(`${complete.pathname}${complete.search}`);
  t.equal(toLogin.statusCode, 303);
  t.equal(toLogin.headers.location, `/login?next=${encodeURIComponent(`/device?user_code=${started.user_code}`)}`);
  const loginPage = await browser.get(toLogin.headers.location as string);
  const signedIn = await browser.post('/login', { ...hiddenFields(loginPage.body, '/login'), username: alice.username, password: alice.password });
  t.equal(signedIn.headers.location, `/device?user_code=${started.user_code}`);
  const form = await browser.get(signedIn.headers.location as string);
  t.match(form.body, `name="user_code" value="${started.user_code}"`, 'prefilled');
  t.match(form.headers['content-security-policy'], /frame-ancestors 'none'/);

  const consent = await browser.post('/device', { ...hiddenFields(form.body, '/device'), user_code: started.user_code });
  t.equal(consent.statusCode, 200);
  t.match(consent.body, 'Living-room TV');
  t.match(consent.body, `<code class="user-code">${started.user_code}</code>`, 'asks to compare the code with the device');
  t.match(consent.body, 'name="decision" value="allow"');
  t.same(await errorOf(tvA.poll(started.device_code)), { error: 'slow_down', status: 400 }, 'still pending, and polled again at once');

  const forged = await browser.post('/device', { csrf_token: 'forged', user_code: started.user_code, decision: 'allow' });
  t.equal(forged.statusCode, 403, 'the decision needs the CSRF token');
  const allowed = await browser.post('/device', { ...hiddenFields(consent.body, '/device'), decision: 'allow' });
  t.equal(allowed.statusCode, 200);
  t.match(allowed.body, 'Your device is connected');

  advance(10);
  const tokens = await tvA.poll(started.device_code);
  t.equal(tokens.token_type, 'bearer');
  t.equal(tokens.scope, 'openid api:read');
  t.type(tokens.refresh_token, 'string');
  t.type(tokens.id_token, 'string');
  const hello = await a.app.inject({ url: '/api/hello', headers: { authorization: `Bearer ${tokens.access_token}` } });
  t.match(hello.json(), { message: 'Hello, alice!', client_id: tv.clientId });
  // OIDC Core §2: how alice signed in at /device; §12.2: a refreshed ID token says the same.
  const first = oauth.getValidatedIdTokenClaims(tokens)!;
  t.match(first, { amr: ['pwd'], acr: ACR_PASSWORD, auth_time: Number });
  const refreshed = oauth.getValidatedIdTokenClaims(await tvA.refresh(tokens.refresh_token!))!;
  t.same([refreshed.amr, refreshed.acr, refreshed.auth_time], [first.amr, first.acr, first.auth_time], 'the refreshed ID token: the same amr, acr and auth_time');

  advance(10);
  t.same(await errorOf(tvA.poll(started.device_code)), { error: 'invalid_grant', status: 400 }, 'redeemed once');
  const events = await services.audit.list({ type: 'device_authorization.' }, { limit: 10, offset: 0 });
  t.match(events.events, [{ type: 'device_authorization.approved', actor: { type: 'user', id: alice.id }, clientId: tv.clientId, details: { scopes: ['openid', 'api:read'] } }]);
});

t.test('slow_down: polling faster than the interval adds 5 seconds to it, per device code', async (t) => {
  const tvA = device(a.app, tv, asA);
  const { device_code } = await tvA.start();
  t.same(await errorOf(tvA.poll(device_code)), { error: 'authorization_pending', status: 400 });
  advance(4);
  t.same(await errorOf(tvA.poll(device_code)), { error: 'slow_down', status: 400 }, '4 s < 5 s');
  advance(5);
  t.same(await errorOf(tvA.poll(device_code)), { error: 'slow_down', status: 400 }, 'the interval is now 10 s');
  advance(15);
  t.same(await errorOf(tvA.poll(device_code)), { error: 'authorization_pending', status: 400 }, 'then 15 s is slow enough');
  const other = await tvA.start();
  t.same(await errorOf(tvA.poll(other.device_code)), { error: 'authorization_pending', status: 400 }, 'another device code has its own pace');
});

t.test('access_denied after the person denies; the code cannot be answered twice', async (t) => {
  const tvA = device(a.app, tv, asA);
  const { device_code, user_code } = await tvA.start();
  const browser = await signedInBrowser(a.app);
  const denied = await enter(browser, user_code, 'deny');
  t.match(denied.body, 'You denied the request');
  const again = await enter(browser, user_code, 'allow');
  t.equal(again.statusCode, 400, 'an answered code is gone');
  t.same(await errorOf(tvA.poll(device_code)), { error: 'access_denied', status: 400 });
  t.same(await errorOf(tvA.poll(device_code)), { error: 'invalid_grant', status: 400 });
  const events = await services.audit.list({ type: 'device_authorization.denied' }, { limit: 10, offset: 0 });
  t.equal(events.total, 1);
});

t.test('REQUIRE_MFA_FOR_ADMINS: an admin signed in with a password alone cannot grant a device the admin scope', async (t) => {
  const strict = await buildTestApp(t, { db, kv, now, env: { ...env, REQUIRE_MFA_FOR_ADMINS: 'true' } });
  const root = await seedUser(services, { username: 'device-root', roles: ['admin'] });
  const console_ = await seedClient(services, { client_name: 'Admin TV', grant_types: [DEVICE_GRANT], token_endpoint_auth_method: 'none', scope: 'openid admin' });
  const as = await oauth.processDiscoveryResponse(
    new URL(ISSUER),
    await oauth.discoveryRequest(new URL(ISSUER), { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true, [oauth.customFetch]: injectFetch(strict.app) as typeof fetch }),
  );
  const tvS = device(strict.app, console_, as);
  const browser = new InjectBrowser(strict.app, '127.0.0.61');
  const loginPage = await browser.get((await browser.get('/device')).headers.location as string);
  const signedIn = await browser.post('/login', { ...hiddenFields(loginPage.body, '/login'), username: root.username, password: root.password });
  t.equal(signedIn.headers.location, '/device', 'signed in with the password alone');

  const both = await tvS.start('openid admin');
  const consent = await enter(browser, both.user_code);
  t.match(consent.body, 'Admin TV');
  t.notMatch(consent.body, 'Administer this server', 'the consent page does not offer the admin scope');
  await enter(browser, both.user_code, 'allow');
  advance(10);
  const tokens = await tvS.poll(both.device_code);
  t.equal(tokens.scope, 'openid', 'granted without the admin scope');
  t.equal((await strict.app.inject({ url: '/admin/users', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode, 403, 'no key to the admin API');

  const only = await tvS.start('admin');
  const refused = await enter(browser, only.user_code);
  t.equal(refused.statusCode, 400, 'nothing left to grant');
});

t.test('a resource the approval does not cover is invalid_target, and the approval stays for the next poll', async (t) => {
  const tvA = device(a.app, tv, asA);
  const { device_code, user_code } = await tvA.start();
  await enter(await signedInBrowser(a.app, '127.0.0.62'), user_code, 'allow');
  const c: oauth.Client = { client_id: tv.clientId };
  const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: injectFetch(a.app) as typeof fetch } as const;
  const withResource = async (resource: string) =>
    oauth.processDeviceCodeResponse(asA, c, await oauth.deviceCodeGrantRequest(asA, c, oauth.None(), device_code, { ...options, additionalParameters: { resource } }));
  advance(10);
  t.same(await errorOf(withResource(`${ISSUER}/mcp`)), { error: 'invalid_target', status: 400 }, 'the request named only the default resource');
  advance(10);
  const tokens = await tvA.poll(device_code);
  t.equal(tokens.token_type, 'bearer', 'the approval was not used up');
});

t.test('expired_token after expires_in; the expired code is refused at /device', async (t) => {
  const tvA = device(a.app, tv, asA);
  const { device_code, user_code } = await tvA.start();
  const browser = await signedInBrowser(a.app);
  advance(601);
  t.same(await errorOf(tvA.poll(device_code)), { error: 'expired_token', status: 400 });
  const late = await enter(browser, user_code);
  t.equal(late.statusCode, 400);
  t.match(late.body, 'not valid, has expired or was already used');
});

t.test('a device code is redeemed once when two instances sharing the store are polled at once (confidential client)', async (t) => {
  const asB = { ...asA };
  const boxA = device(a.app, box, asA);
  const boxB = device(b.app, box, asB);
  const { device_code, user_code } = await boxA.start();
  // Approved on instance B.
  const browser = await signedInBrowser(b.app);
  t.match((await enter(browser, user_code, 'allow')).body, 'Your device is connected');
  advance(10);
  const results = await Promise.allSettled([boxA.poll(device_code), boxB.poll(device_code), boxA.poll(device_code), boxB.poll(device_code)]);
  const won = results.filter((r) => r.status === 'fulfilled');
  t.equal(won.length, 1, 'exactly one poll gets tokens');
  for (const r of results) if (r.status === 'rejected') t.equal((r.reason as oauth.ResponseBodyError).error, 'invalid_grant');
  t.notOk((won[0] as PromiseFulfilledResult<oauth.TokenEndpointResponse>).value.refresh_token, 'no refresh token without the refresh_token grant');
});

t.test('wrong and unknown codes get a clear message; guesses are limited per address, counted before the lookup', async (t) => {
  const tvA = device(a.app, tv, asA);
  const { user_code } = await tvA.start();
  const guesser = await signedInBrowser(a.app, '10.1.1.1');
  const malformed = await enter(guesser, 'AEIO-1234');
  t.equal(malformed.statusCode, 400);
  t.match(malformed.body, 'That code is not valid');
  const unknown = user_code === 'BBBB-BBBB' ? 'CCCC-CCCC' : 'BBBB-BBBB';
  for (let i = 0; i < 4; i++) {
    const wrong = await enter(guesser, unknown);
    t.equal(wrong.statusCode, 400, `guess ${i + 1}`);
    t.match(wrong.body, 'That code is not valid, has expired or was already used');
  }
  const refused = await enter(guesser, user_code.toLowerCase());
  t.equal(refused.statusCode, 429, 'past MAX_FAILED_ATTEMPTS even the right code is not looked up');
  t.ok(Number(refused.headers['retry-after']) > 0);
  t.match(refused.body, 'Too many wrong codes');
  const decision = await guesser.post('/device', { ...hiddenFields(refused.body, '/device'), user_code, decision: 'allow' });
  t.equal(decision.statusCode, 429, 'a decision is a guess too');

  const elsewhere = await signedInBrowser(a.app, '10.2.2.2');
  const consent = await enter(elsewhere, user_code.replace('-', '').toLowerCase());
  t.equal(consent.statusCode, 200, 'another address is not refused; lower case without the dash matches');
  t.match(consent.body, 'Living-room TV');
});

t.test('a client not registered for the grant is refused: unauthorized_client', async (t) => {
  const web = device(a.app, webApp, asA);
  t.same(await errorOf(web.start()), { error: 'unauthorized_client', status: 400 });
  t.same(await errorOf(web.poll('x'.repeat(43))), { error: 'unauthorized_client', status: 400 });
  const stranger = device(a.app, { clientId: 'no-such-client', clientSecret: null }, asA);
  t.same(await errorOf(stranger.start()), { error: 'basic', status: 401 }, 'invalid_client: 401 with a Basic challenge');
  // Another client's device code is no code at all.
  const { device_code } = await device(a.app, tv, asA).start();
  const boxA = device(a.app, box, asA);
  t.same(await errorOf(boxA.poll(device_code)), { error: 'invalid_grant', status: 400 });
});

t.test('private_key_jwt at the device authorization endpoint: the issuer or the endpoint itself as audience', async (t) => {
  offsetMs = 0; // assertions are judged by the server's clock
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'device-key';
  const { client } = await services.clients.register({
    client_name: 'Signed TV',
    grant_types: [DEVICE_GRANT],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] },
    scope: 'api:read',
  });
  const signedTv = device(a.app, { clientId: client.clientId, clientSecret: null }, asA, oauth.PrivateKeyJwt({ key: privateKey, kid }));
  const { device_code, user_code } = await signedTv.start();
  t.match(user_code, /^[A-Z]{4}-[A-Z]{4}$/, 'through oauth4webapi');
  const at = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ iss: client.clientId, sub: client.clientId, aud: `${ISSUER}/device_authorization`, jti: randomUUID(), iat: at, exp: at + 60 })
    .setProtectedHeader({ alg: 'ES256', kid })
    .sign(privateKey);
  const res = await a.app.inject({
    method: 'POST',
    url: '/device_authorization',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }).toString(),
  });
  t.equal(res.statusCode, 200, res.body);
  t.same(await errorOf(signedTv.poll(device_code)), { error: 'authorization_pending', status: 400 }, 'and it polls with one');
});

t.test("the CLI registers a device client and prints its setup: the device authorization endpoint and curl", async (t) => {
  const create = clientCommands.commands.find((c) => c.name === 'create')!;
  const result = await create.run(services, { values: { name: 'Kiosk', grant: [DEVICE_GRANT, 'refresh_token'], 'auth-method': 'none', scope: 'api:read' }, positionals: [] });
  t.match(result.text, `device_authorization_endpoint: ${ISSUER}/device_authorization`);
  t.match(result.text, /curl -s http:\/\/localhost:3000\/device_authorization -d client_id=\S+ -d 'scope=api:read'/);
  t.match(result.text, `-d grant_type=${DEVICE_GRANT} -d device_code=DEVICE_CODE`);
  const plain = await create.run(services, { values: { name: 'Batch', grant: ['client_credentials'], scope: 'api:read' }, positionals: [] });
  t.notMatch(plain.text, 'device_authorization', 'only for device clients');
});

t.test('the /device page in headless Chromium: sign in, the code typed in lower case without the dash, allow', { skip: chromiumSkip(t) }, async (t) => {
  offsetMs = 0;
  await a.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(a.app.server.address() as AddressInfo).port}`;
  const tvA = device(a.app, tv, asA);
  const { device_code, user_code } = await tvA.start('api:read');
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/device`);
  await page.fill('input[name=username]', alice.username);
  await page.fill('input[name=password]', alice.password);
  await Promise.all([page.waitForURL(`${base}/device`), page.click('button:has-text("Sign in")')]);
  await page.fill('input[name=user_code]', user_code.replace('-', '').toLowerCase());
  await Promise.all([page.waitForSelector('.user-code'), page.click('button[type=submit]:has-text("Continue")')]);
  t.equal(await page.textContent('.user-code'), user_code);
  await Promise.all([page.waitForSelector('#device-outcome'), page.click('button[name=decision][value=allow]')]);
  t.match(await page.textContent('#device-outcome'), 'Your device is connected');
  advance(5);
  const tokens = await tvA.poll(device_code);
  t.equal(tokens.scope, 'api:read');
});
