/**
 * Two-step sign-in (SPEC "Signing in", TOTP): enrolment on the account page,
 * the code after the password, single use (also across two instances),
 * recovery codes, throttling of wrong codes, amr/acr in the ID token (and
 * in those of its refreshes), `acr_values` step-up, the password grant and
 * admin Basic refused, and `REQUIRE_MFA_FOR_ADMINS` on the console. Codes
 * are computed here from the secret the setup page shows (otpauth); the
 * clock is injected and moved a time step at a time, so nothing waits for
 * real time.
 */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import { Secret, TOTP, URI } from 'otpauth';
import t, { type Test } from 'tap';
import { ACR_MFA, ACR_PASSWORD } from '../../src/oauth/acr.js';
import { buildTestApp, seedClient, seedUser, type TestApp } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, pkcePair, responseParams } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';
import { userBasic } from '../helpers/tokens.js';

const REDIRECT = 'http://127.0.0.1:7003/cb';
const STEP_MS = 30_000;

interface Person {
  id: string;
  username: string;
  password: string;
}

t.test(`two-step sign-in with an authenticator app (${backendName})`, async (t) => {
  // One clock for both instances, moved by whole TOTP steps.
  let clock = Date.now();
  const now = () => clock;
  const tick = () => void (clock += STEP_MS);
  const db = await testDb(t);
  const kv = await testKv(t);
  const env = { MAX_FAILED_ATTEMPTS: '12', SIGNING_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url') };
  // The slow-down is recorded, not waited out.
  const serviceOptions = { sleep: async () => {} };
  const one: TestApp = await buildTestApp(t, { db, kv, now, env, serviceOptions });
  const two: TestApp = await buildTestApp(t, { db, kv, now, env, serviceOptions });
  const { app, services, storage, config } = one;

  const web = await seedClient(services, {
    client_name: 'Web app',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'password', 'refresh_token'],
    scope: 'openid profile api:read',
  });
  const client: oauth.Client = { client_id: web.clientId };
  const httpOptions = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const issuer = new URL(config.issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oidc' }));
  const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/jwks.json' })).json<JSONWebKeySet>());

  const codeOf = (secret: string, at = clock) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: at });
  const count = (html: string, needle: string) => html.split(needle).length - 1;

  /** Signs in with the password only (a user without an app), ending at /account. */
  async function signInWithPassword(browser: InjectBrowser, user: Person) {
    const page = await browser.get('/login');
    const res = await browser.post('/login', { ...hiddenFields(page.body, '/login'), username: user.username, password: user.password });
    t.equal(res.statusCode, 303);
    return res;
  }

  /** Enrols a signed-in browser's user through the account page; returns the secret and the recovery codes. */
  async function enrol(t: Test, browser: InjectBrowser, user: Person) {
    const { username } = user;
    const account = await browser.get('/account');
    t.equal(account.statusCode, 200);
    t.match(account.body, /<a class="button" href="\/account\/authenticator">Set up an authenticator app<\/a>/);
    const setup = await browser.get('/account/authenticator');
    t.equal(setup.statusCode, 200);
    const href = /<a href="(otpauth:\/\/[^"]+)">/.exec(setup.body)![1]!.replace(/&amp;/g, '&');
    const secret = /<code id="totp-secret">([A-Z2-7]+)<\/code>/.exec(setup.body)![1]!;
    const parsed = URI.parse(href) as TOTP;
    t.equal(parsed.issuer, 'localhost', 'the issuer label is the ISSUER host name');
    t.equal(parsed.label, username, 'the account is the username');
    t.match(parsed, { algorithm: 'SHA1', digits: 6, period: 30 });
    t.equal(parsed.secret.base32, secret, 'the link and the text carry the same secret');
    t.match(setup.body, /<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/, 'the QR code is an image made by the server');
    t.notMatch(setup.body, /<script/i);
    t.notMatch(String(setup.headers['content-security-policy']), /unsafe-inline|script-src/);

    const fields = hiddenFields(setup.body, '/account/authenticator');
    const wrong = await browser.post('/account/authenticator', { ...fields, code: codeOf(secret, clock + 10 * STEP_MS) });
    t.equal(wrong.statusCode, 400, 'a wrong first code does not turn the app on');
    t.notOk(await services.secondFactor.isEnrolled(user.id));
    const done = await browser.post('/account/authenticator', { ...fields, code: codeOf(secret) });
    t.equal(done.statusCode, 200);
    const recoveryCodes = [...done.body.matchAll(/<code class="recovery-code">([A-Z2-7-]+)<\/code>/g)].map((m) => m[1]!);
    t.equal(recoveryCodes.length, 10, 'ten recovery codes, each in an element with class recovery-code');
    t.equal(new Set(recoveryCodes).size, 10);
    t.notMatch(done.body, /admin console/, 'not started from the console: no way back to it');
    tick();
    return { secret, recoveryCodes };
  }

  /** Password, then the code page; returns the code page's form fields. */
  async function passwordStep(browser: InjectBrowser, user: Person, start = '/login') {
    const page = await browser.get(start);
    const res = await browser.post('/login', { ...hiddenFields(page.body, '/login'), username: user.username, password: user.password });
    t.equal(res.statusCode, 303);
    t.match(res.headers.location, /^\/login\/second-factor/);
    const codePage = await browser.get(res.headers.location as string);
    t.equal(codePage.statusCode, 200);
    t.match(codePage.body, /<input type="text" id="code" name="code"/);
    t.match(codePage.body, /<button type="submit">Verify<\/button>/);
    return hiddenFields(codePage.body, '/login/second-factor');
  }

  /**
   * Follows an authorization request like a person: password, code (from
   * `secret`), consent; stops at the redirect to the client.
   */
  async function authorize(browser: InjectBrowser, user: Person, secret: string | null, extra: Record<string, string> = {}) {
    const pkce = pkcePair();
    const nonce = oauth.generateRandomNonce();
    const state = oauth.generateRandomState();
    const path = authorizePath({
      response_type: 'code',
      client_id: web.clientId,
      redirect_uri: REDIRECT,
      scope: 'openid api:read',
      state,
      nonce,
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    const pages: string[] = [];
    let res = await browser.get(path);
    for (let hops = 0; hops < 12; hops++) {
      if (res.statusCode === 303) {
        const location = res.headers.location as string;
        if (!location.startsWith('/')) {
          return { location, pages, state, nonce, pkce, params: responseParams(location) };
        }
        res = await browser.get(location);
        continue;
      }
      if (res.statusCode !== 200) throw new Error(`unexpected ${res.statusCode}: ${res.body.slice(0, 300)}`);
      if (res.body.includes('action="/login/second-factor"')) {
        pages.push('code');
        tick();
        res = await browser.post('/login/second-factor', { ...hiddenFields(res.body, '/login/second-factor'), code: codeOf(secret!) });
      } else if (res.body.includes('action="/consent"')) {
        pages.push('consent');
        res = await browser.post('/consent', { ...hiddenFields(res.body, '/consent'), decision: 'allow' });
      } else if (res.body.includes('action="/login"')) {
        pages.push('login');
        res = await browser.post('/login', { ...hiddenFields(res.body, '/login'), username: user.username, password: user.password });
      } else {
        throw new Error(`unexpected page: ${res.body.slice(0, 300)}`);
      }
    }
    throw new Error('too many redirects');
  }

  /** Verifies an ID token's signature with jose; its claims. */
  async function claimsOf(idToken: string | undefined) {
    const { payload } = await jwtVerify(idToken!, jwks, { issuer: config.issuer, audience: web.clientId, currentDate: new Date(clock) });
    return payload;
  }

  /** Redeems the code with oauth4webapi; the ID token's verified claims and the refresh token. */
  async function redeem(auth: Awaited<ReturnType<typeof authorize>>) {
    const params = oauth.validateAuthResponse(as, client, new URL(auth.location), auth.state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, auth.pkce.verifier, httpOptions);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: auth.nonce, requireIdToken: true });
    return { claims: await claimsOf(tokens.id_token), refreshToken: tokens.refresh_token! };
  }

  const idTokenOf = async (auth: Awaited<ReturnType<typeof authorize>>) => (await redeem(auth)).claims;

  /** A refresh with oauth4webapi (optionally narrowed to `scope`): the new ID token's verified claims, if any, and the next refresh token. */
  async function refresh(refreshToken: string, scope?: string) {
    const options = { ...httpOptions, ...(scope === undefined ? {} : { additionalParameters: { scope } }) };
    const response = await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), refreshToken, options);
    const tokens = await oauth.processRefreshTokenResponse(as, client, response);
    return { claims: tokens.id_token === undefined ? undefined : await claimsOf(tokens.id_token), refreshToken: tokens.refresh_token! };
  }

  /** The claims that say how the user signed in (OIDC Core §12.2: a refreshed ID token keeps them). */
  const authentication = (claims: JWTPayload | undefined) => ({
    amr: claims?.amr,
    acr: claims?.acr,
    auth_time: claims?.auth_time,
  });

  // ------------------------------------------------------------------ enrolment and sign-in

  const alice = await seedUser(services, { username: 'alice' });
  const aliceBrowser = new InjectBrowser(app);
  await signInWithPassword(aliceBrowser, alice);
  const aliceApp = await enrol(t, aliceBrowser, alice);

  t.test('the secret and the recovery codes are stored only sealed and hashed', async (t) => {
    const [row] = await storage.db.query<{ secret: unknown }>('SELECT secret FROM totp_credentials WHERE user_id = $1', [alice.id]);
    const stored = JSON.stringify(row!.secret);
    t.match(row!.secret, { jwe: String }, 'a JWE under SIGNING_KEY_ENCRYPTION_KEY');
    t.notOk(stored.includes(aliceApp.secret) || stored.includes(Buffer.from(Secret.fromBase32(aliceApp.secret).buffer).toString('base64url')));
    // keys reencrypt re-seals them too: to another key and back (the other instance keeps the configured one).
    const jweOf = async () => ((await storage.db.query<{ secret: { jwe: string } }>('SELECT secret FROM totp_credentials WHERE user_id = $1', [alice.id]))[0]!.secret.jwe);
    const before = await jweOf();
    t.match(await services.reencryptSecrets(randomBytes(32)), { totpSecrets: 1, encrypted: true });
    t.not(await jweOf(), before);
    t.match(await services.reencryptSecrets(config.signingKeyEncryptionKey), { totpSecrets: 1 });
    // All or nothing across the tables: an app secret that cannot be opened leaves the signing keys as they were too.
    const signingKeys = () => storage.db.query('SELECT kid, private_jwk FROM signing_keys ORDER BY kid');
    const [sealed] = await storage.db.query<{ secret: unknown }>('SELECT secret FROM totp_credentials WHERE user_id = $1', [alice.id]);
    const keysBefore = await signingKeys();
    await storage.db.query(`UPDATE totp_credentials SET secret = '{"jwe":"not.a.sealed.secret.here"}' WHERE user_id = $1`, [alice.id]);
    await t.rejects(services.reencryptSecrets(randomBytes(32)), { message: /nothing was re-encrypted/ }, 'one secret that does not open');
    t.same(await signingKeys(), keysBefore, 'no signing key re-encrypted either');
    await storage.db.query('UPDATE totp_credentials SET secret = $2 WHERE user_id = $1', [alice.id, JSON.stringify(sealed!.secret)]);
    const codes = await storage.db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes WHERE user_id = $1', [alice.id]);
    t.equal(codes.length, 10);
    const all = JSON.stringify(codes);
    for (const code of aliceApp.recoveryCodes) t.notOk(all.includes(code) || all.includes(code.replace(/-/g, '')));
  });

  t.test('the account page offers regenerating and removing once the app is set up', async (t) => {
    const account = await aliceBrowser.get('/account');
    t.match(account.body, /Regenerate recovery codes/);
    t.match(account.body, /Remove authenticator app/);
    t.notMatch(account.body, /Set up an authenticator app/);
    t.equal((await aliceBrowser.get('/account/authenticator')).statusCode, 303, 'no second setup');
  });

  t.test('the password alone no longer signs in; a wrong code does not either; the right one does', async (t) => {
    const browser = new InjectBrowser(app);
    const fields = await passwordStep(browser, alice);
    t.equal((await browser.get('/account')).statusCode, 303, 'not signed in after the password');
    const wrong = await browser.post('/login/second-factor', { ...fields, code: codeOf(aliceApp.secret, clock + 5 * STEP_MS) });
    t.equal(wrong.statusCode, 400);
    t.match(wrong.body, /not right/);
    const forged = await browser.post('/login/second-factor', { ...fields, csrf_token: 'x', code: codeOf(aliceApp.secret) });
    t.equal(forged.statusCode, 403, 'the CSRF token is checked');
    const other = new InjectBrowser(app);
    const elsewhere = await other.post('/login/second-factor', { ...hiddenFields((await other.get('/login')).body, '/login'), code: codeOf(aliceApp.secret) });
    t.equal(elsewhere.statusCode, 303, 'another browser has no half sign-in: back to the password');
    t.equal(elsewhere.headers.location, '/login');
    const right = await browser.post('/login/second-factor', { ...fields, code: codeOf(aliceApp.secret) });
    t.equal(right.statusCode, 303);
    t.equal(right.headers.location, '/account');
    t.equal((await browser.get('/account')).statusCode, 200);
    tick();
  });

  t.test('a code is accepted once: a replay, or an earlier code after it, is refused', async (t) => {
    const first = new InjectBrowser(app);
    const code = codeOf(aliceApp.secret);
    const earlier = codeOf(aliceApp.secret, clock - STEP_MS);
    const ok = await first.post('/login/second-factor', { ...(await passwordStep(first, alice)), code });
    t.equal(ok.statusCode, 303);
    const second = new InjectBrowser(app);
    const fields = await passwordStep(second, alice);
    t.equal((await second.post('/login/second-factor', { ...fields, code })).statusCode, 400, 'the same code again');
    t.equal((await second.post('/login/second-factor', { ...fields, code: earlier })).statusCode, 400, 'the code of the step before');
    tick();
  });

  t.test('a password change while the code page waits voids the wait: the old password cannot finish the sign-in', async (t) => {
    const carol = await seedUser(services, { username: 'carol-2fa' });
    const enrolling = new InjectBrowser(app);
    await signInWithPassword(enrolling, carol);
    const carolApp = await enrol(t, enrolling, carol);
    for (const change of [
      () => services.users.update(carol.id, { password: 'a brand new passphrase 77' }),
      () => services.users.update(carol.id, { disabled: true }),
    ]) {
      const waiting = new InjectBrowser(app);
      const fields = await passwordStep(waiting, carol);
      clock += 1;
      await change();
      const late = await waiting.post('/login/second-factor', { ...fields, code: codeOf(carolApp.secret) });
      t.equal(late.statusCode, 303);
      t.equal(late.headers.location, '/login', 'back to the password');
      t.equal((await waiting.get('/account')).statusCode, 303, 'not signed in');
      carol.password = 'a brand new passphrase 77';
      tick();
    }
  });

  t.test('two instances, the same code at once: exactly one is accepted', async (t) => {
    const a = new InjectBrowser(one.app);
    const b = new InjectBrowser(two.app);
    const [fa, fb] = [await passwordStep(a, alice), await passwordStep(b, alice)];
    const code = codeOf(aliceApp.secret);
    const results = await Promise.all([a.post('/login/second-factor', { ...fa, code }), b.post('/login/second-factor', { ...fb, code })]);
    t.same(results.map((r) => r.statusCode).sort(), [303, 400]);
    tick();
  });

  t.test('a recovery code signs in once', async (t) => {
    const recovery = aliceApp.recoveryCodes[0]!;
    const a = new InjectBrowser(app);
    const used = await a.post('/login/second-factor', { ...(await passwordStep(a, alice)), code: recovery.toLowerCase() });
    t.equal(used.statusCode, 303, 'case and dashes do not matter');
    const b = new InjectBrowser(app);
    const again = await b.post('/login/second-factor', { ...(await passwordStep(b, alice)), code: recovery });
    t.equal(again.statusCode, 400, 'used up');
    t.match((await a.get('/account')).body, /Recovery codes left: <strong>9<\/strong>/);
  });

  t.test('wrong codes are throttled per account and address', async (t) => {
    const bob = await seedUser(services, { username: 'bob' });
    const bobBrowser = new InjectBrowser(app, '10.9.0.1');
    await signInWithPassword(bobBrowser, bob);
    const bobApp = await enrol(t, bobBrowser, bob);
    const attacker = new InjectBrowser(app, '10.9.0.2');
    const fields = await passwordStep(attacker, bob);
    for (let i = 0; i < config.maxFailedAttempts; i++) {
      t.equal((await attacker.post('/login/second-factor', { ...fields, code: String(100000 + i) })).statusCode, 400);
    }
    const refused = await attacker.post('/login/second-factor', { ...fields, code: codeOf(bobApp.secret) });
    t.equal(refused.statusCode, 429, 'past the limit even the right code is not checked');
    t.ok(Number(refused.headers['retry-after']) > 0);
    const owner = new InjectBrowser(app, '10.9.0.3');
    const ok = await owner.post('/login/second-factor', { ...(await passwordStep(owner, bob)), code: codeOf(bobApp.secret) });
    t.equal(ok.statusCode, 303, 'the owner at another address is not locked out');
    tick();
  });

  t.test("a lost app: an admin's reset ends the user's sessions; the password alone signs in, and a new app can be set up", async (t) => {
    const fred = await seedUser(services, { username: 'fred' });
    const helpdesk = await seedUser(services, { username: 'helpdesk', roles: ['admin'] });
    const setUpIn = new InjectBrowser(app);
    await signInWithPassword(setUpIn, fred);
    const lost = await enrol(t, setUpIn, fred);
    const withCode = new InjectBrowser(app);
    t.equal((await withCode.post('/login/second-factor', { ...(await passwordStep(withCode, fred)), code: codeOf(lost.secret) })).statusCode, 303);
    t.equal((await withCode.get('/account')).statusCode, 200);
    tick();

    const reset = await app.inject({ method: 'DELETE', url: `/admin/users/${fred.id}/second-factor`, headers: { authorization: userBasic(helpdesk.username, helpdesk.password) } });
    t.equal(reset.statusCode, 204);
    t.equal((await withCode.get('/account')).statusCode, 303, 'the session signed in with the app has ended');
    t.equal((await setUpIn.get('/account')).statusCode, 303, 'and the one that set it up');

    const fresh = new InjectBrowser(app);
    t.equal((await signInWithPassword(fresh, fred)).headers.location, '/account', 'the password alone signs in');
    const found = await enrol(t, fresh, fred);
    t.not(found.secret, lost.secret, 'a new secret');
    const old = new InjectBrowser(app);
    t.equal((await old.post('/login/second-factor', { ...(await passwordStep(old, fred)), code: lost.recoveryCodes[0]! })).statusCode, 400, 'the lost recovery codes are gone');
    t.equal((await old.post('/login/second-factor', { ...(await passwordStep(old, fred)), code: codeOf(found.secret) })).statusCode, 303, 'the new app signs in');
    tick();
  });

  // ------------------------------------------------------------------ tokens

  t.test('amr and acr in the ID token, and in the ID tokens of its refreshes', async (t) => {
    const first = await redeem(await authorize(new InjectBrowser(app), alice, aliceApp.secret));
    const withApp = first.claims;
    t.same(withApp.amr, ['pwd', 'otp']);
    t.equal(withApp.acr, ACR_MFA);
    // OIDC Core §12.2: a refreshed ID token is about the same sign-in, at every rotation;
    // one refresh without openid (no ID token) keeps them for the next.
    tick();
    const second = await refresh(first.refreshToken);
    t.same(authentication(second.claims), authentication(withApp), 'the first refresh: amr, acr and auth_time of the sign-in');
    tick();
    const narrowed = await refresh(second.refreshToken, 'api:read');
    t.equal(narrowed.claims, undefined, 'no ID token without openid');
    tick();
    const third = await refresh(narrowed.refreshToken);
    t.same(authentication(third.claims), authentication(withApp), 'still after a refresh without an ID token');

    const carol = await seedUser(services, { username: 'carol' });
    const passwordFirst = await redeem(await authorize(new InjectBrowser(app), carol, null));
    const passwordOnly = passwordFirst.claims;
    t.same(passwordOnly.amr, ['pwd']);
    t.equal(passwordOnly.acr, ACR_PASSWORD);
    t.same(authentication((await refresh(passwordFirst.refreshToken)).claims), authentication(passwordOnly), 'a password sign-in stays pwd');
    t.same((await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json().acr_values_supported, [ACR_PASSWORD, ACR_MFA]);
  });

  t.test('acr_values asking for mfa sends a password-only session through the second factor', async (t) => {
    const dave = await seedUser(services, { username: 'dave' });
    const browser = new InjectBrowser(app);
    await signInWithPassword(browser, dave);
    const daveApp = await enrol(t, browser, dave);
    // Signed in with the password before the app was set up: amr pwd.
    const plain = await authorize(browser, dave, daveApp.secret);
    t.same(plain.pages, ['consent']);
    t.equal((await idTokenOf(plain)).acr, ACR_PASSWORD);
    const stepped = await authorize(browser, dave, daveApp.secret, { acr_values: `${ACR_MFA}` });
    t.same(stepped.pages, ['code'], 'the code, not the password again');
    const redeemed = await redeem(stepped);
    const claims = redeemed.claims;
    t.equal(claims.acr, ACR_MFA);
    t.same(claims.amr, ['pwd', 'otp']);
    tick();
    const refreshed = (await refresh(redeemed.refreshToken)).claims;
    t.equal(refreshed?.acr, ACR_MFA, 'the step-up outlives a refresh');
    t.same(refreshed?.amr, ['pwd', 'otp']);
    const accepted = await authorize(browser, dave, daveApp.secret, { acr_values: `${ACR_PASSWORD} ${ACR_MFA}` });
    t.same(accepted.pages, [], 'a session that already has mfa meets it at once');

    const erin = await seedUser(services, { username: 'erin' });
    const erinBrowser = new InjectBrowser(app);
    const unmet = await authorize(erinBrowser, erin, null, { acr_values: ACR_MFA });
    t.equal(unmet.params.get('error'), 'unmet_authentication_requirements', 'no second factor to give');
    const pwdOk = await authorize(erinBrowser, erin, null, { acr_values: `${ACR_PASSWORD} ${ACR_MFA}` });
    t.ok(pwdOk.params.get('code'), 'a client accepting pwd gets a code');
    const none = await authorize(erinBrowser, erin, null, { acr_values: ACR_MFA, prompt: 'none' });
    t.equal(none.params.get('error'), 'interaction_required', 'prompt=none may not ask for the code');
  });

  t.test('the password grant refuses a user with an app, with a clear description', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret}`).toString('base64')}` },
      payload: new URLSearchParams({ grant_type: 'password', username: alice.username, password: alice.password, scope: 'api:read' }).toString(),
    });
    t.equal(res.statusCode, 400);
    t.equal(res.json().error, 'invalid_grant');
    t.match(res.json().error_description, /second factor/);
  });

  t.test('regenerating recovery codes needs a current code; removing needs a code or the password', async (t) => {
    const fields = hiddenFields((await aliceBrowser.get('/account')).body, '/account/authenticator/recovery-codes');
    t.equal((await aliceBrowser.post('/account/authenticator/recovery-codes', { ...fields, code: '000000' })).statusCode, 400);
    const fresh = await aliceBrowser.post('/account/authenticator/recovery-codes', { ...fields, code: codeOf(aliceApp.secret) });
    t.equal(fresh.statusCode, 200);
    t.equal(count(fresh.body, 'class="recovery-code"'), 10);
    tick();
    const old = new InjectBrowser(app);
    t.equal((await old.post('/login/second-factor', { ...(await passwordStep(old, alice)), code: aliceApp.recoveryCodes[1]! })).statusCode, 400, 'the old codes are gone');

    const remove = hiddenFields((await aliceBrowser.get('/account')).body, '/account/authenticator/remove');
    t.equal((await aliceBrowser.post('/account/authenticator/remove', { ...remove, password: 'not the password' })).statusCode, 400);
    t.ok(await services.secondFactor.isEnrolled(alice.id));
    const removed = await aliceBrowser.post('/account/authenticator/remove', { ...remove, password: alice.password });
    t.equal(removed.statusCode, 303);
    t.notOk(await services.secondFactor.isEnrolled(alice.id));
    const plain = new InjectBrowser(app);
    const signedIn = await signInWithPassword(plain, alice);
    t.equal(signedIn.headers.location, '/account', 'the password signs in again');
  });

  // ------------------------------------------------------------------ admins

  t.test('REQUIRE_MFA_FOR_ADMINS: admins set up an app, then the console asks for its code', async (t) => {
    // A third instance over the same stores, with the variable set.
    const { app } = await buildTestApp(t, { db, kv, now, env: { ...env, REQUIRE_MFA_FOR_ADMINS: 'true' }, serviceOptions });
    const admin = await seedUser(services, { username: 'root', roles: ['admin'] });
    const browser = new InjectBrowser(app);

    const consoleSignIn = async () => {
      const page = await browser.get('/admin/console/sign-in');
      return browser.post('/admin/console/sign-in', { ...hiddenFields(page.body, '/admin/console/sign-in'), username: admin.username, password: admin.password });
    };

    const first = await consoleSignIn();
    t.equal(first.statusCode, 403, 'an admin without an app is not signed in');
    t.match(first.body, /authenticator app, and your account has none set up yet/, 'and is told why, on the page they are looking at');
    const enrolHref = /<a class="button" href="([^"]+)">Set up an authenticator app<\/a>/.exec(first.body)?.[1]?.replace(/&amp;/g, '&');
    t.equal(enrolHref, '/login?next=%2Faccount%2Fauthenticator%3Fnext%3D%252Fadmin', 'with a link to set one up, coming back to the console');
    t.equal((await browser.get('/admin')).statusCode, 303, 'the console stays closed');
    t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(admin.username, admin.password) } })).statusCode, 403, 'no Basic for admins');

    const login = await browser.get(enrolHref!);
    const signedIn = await browser.post('/login', { ...hiddenFields(login.body, '/login'), username: admin.username, password: admin.password });
    t.equal(signedIn.headers.location, '/account/authenticator?next=%2Fadmin');
    const setup = await browser.get(signedIn.headers.location as string);
    t.equal(hiddenFields(setup.body, '/account/authenticator').next, '/admin', 'the way back is carried by the form');
    const secret = /<code id="totp-secret">([A-Z2-7]+)<\/code>/.exec(setup.body)![1]!;
    const codeOf = () => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: clock });
    const enrolled = await browser.post('/account/authenticator', { ...hiddenFields(setup.body, '/account/authenticator'), code: codeOf() });
    t.equal(enrolled.statusCode, 200);
    t.match(enrolled.body, /<a class="button" href="\/admin">Sign in to the admin console<\/a>/, 'the recovery codes lead back to the console');
    t.equal((await browser.get('/account/authenticator?next=%2Fadmin')).headers.location, '/admin', 'set up already: straight back to the console');
    for (const hostile of ['https%3A%2F%2Fevil.example%2F', '%2F%2Fevil.example', '%2Faccount%2Fpassword', '%2Fadmin%2Fconsole%2F%E2%9C%93']) {
      const res = await browser.get(`/account/authenticator?next=${hostile}`);
      t.equal(res.headers.location, '/account', `a next that is no console page is ignored: ${hostile}`);
    }
    tick();

    // The browser session was signed in with the password alone: the admin scope asks for the code first.
    const adminTool = await seedClient(services, { client_name: 'Admin tool', redirect_uris: [REDIRECT], scope: 'openid admin' });
    const viaApp = await authorize(browser, admin, secret, { client_id: adminTool.clientId, scope: 'openid admin' });
    t.same(viaApp.pages, ['code', 'consent'], 'the code before the admin scope');
    t.ok(viaApp.params.get('code'));
    tick();

    const second = await consoleSignIn();
    t.equal(second.statusCode, 303);
    t.match(second.headers.location, /^\/admin\/console\/sign-in\/code/);
    t.equal((await browser.get('/admin')).statusCode, 303, 'not before the code');
    const codePage = await browser.get(second.headers.location as string);
    t.match(codePage.body, /name="code"/);
    const fields = hiddenFields(codePage.body, '/admin/console/sign-in/code');
    t.equal((await browser.post('/admin/console/sign-in/code', { ...fields, code: '000000' })).statusCode, 401);
    const done = await browser.post('/admin/console/sign-in/code', { ...fields, code: codeOf() });
    t.equal(done.statusCode, 303);
    t.equal(done.headers.location, '/admin');
    t.equal((await browser.get('/admin')).statusCode, 200, 'the console opens after the code');
    tick();

    // A password changed while the console's code page waits voids the wait.
    const other = new InjectBrowser(app);
    const page = await other.get('/admin/console/sign-in');
    const waiting = await other.post('/admin/console/sign-in', { ...hiddenFields(page.body, '/admin/console/sign-in'), username: admin.username, password: admin.password });
    t.match(waiting.headers.location, /^\/admin\/console\/sign-in\/code/);
    const waitingFields = hiddenFields((await other.get(waiting.headers.location as string)).body, '/admin/console/sign-in/code');
    clock += 1;
    await services.users.update(admin.id, { password: 'the admin chose another one 8' });
    const late = await other.post('/admin/console/sign-in/code', { ...waitingFields, code: codeOf() });
    t.equal(late.headers.location, '/admin/console/sign-in', 'the old password cannot finish the sign-in: back to the password');
    t.equal((await other.get('/admin')).statusCode, 303, 'the console stays closed');
  });
});
