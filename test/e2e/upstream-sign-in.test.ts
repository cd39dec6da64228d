/**
 * "Sign in with …" an upstream OpenID Connect provider, against a real one
 * (node-oidc-provider, test/helpers/upstream-oidc.ts) on loopback: accounts
 * created and linked, linked by verified email only, every check of the
 * answer (state bound to the browser, single use, `iss`, `nonce`, a lying
 * discovery document), a provider that is down, the account page's links,
 * the admin API with a write-only secret; then one authorization code flow
 * through the "Sign in with …" button in headless Chromium.
 */
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildTestApp, seedClient } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { hiddenFields, InjectBrowser } from '../helpers/browser-flow.js';
import { freePort } from '../helpers/server-process.js';
import { Secret, TOTP } from 'otpauth';
import { findCommand } from '../../src/admin/cli/registry.js';
import { userBasic } from '../helpers/tokens.js';
import { driveUpstream, startUpstream } from '../helpers/upstream-oidc.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const ADMIN = { username: 'root-admin', password: 'a long admin password for tests 42' };
const ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64url');

t.test(`upstream OpenID Connect sign-in (${backendName})`, async (t) => {
  const port = await freePort();
  const ISSUER = `http://127.0.0.1:${port}`;
  const callbackOf = (id: string) => `${ISSUER}/login/providers/${id}/callback`;
  const upstream = await startUpstream(t, {
    redirectUris: [callbackOf('corp'), callbackOf('liar')],
    accounts: {
      'alice-up': { email: 'alice@example.com', email_verified: true, preferred_username: 'alice' },
      'bob-up': { email: 'Bob@Example.com', email_verified: true, preferred_username: 'bob-upstream' },
      'carol-up': { email: 'carol@example.com', email_verified: false, preferred_username: 'carol' },
      'erin-up': { email: 'erin@example.com', email_verified: true, preferred_username: 'erin' },
      'dave-up': { email: 'dave@example.com', email_verified: true, preferred_username: 'dave' },
      'gina-up': { email: 'gina@example.com', email_verified: true, preferred_username: 'gina' },
      'hank-up': { email: 'hank@example.com', email_verified: true, preferred_username: 'hank' },
      'ivy-up': { email: 'ivy@example.com', email_verified: true, preferred_username: 'ivy' },
    },
  });
  // The provider of the environment is down: the server starts all the same (discovery is lazy).
  const downPort = await freePort();
  // Our clock, moved only by the test of a stale sign-in (and back).
  let offsetMs = 0;
  const { app, services, storage, config } = await buildTestApp(t, {
    now: () => Date.now() + offsetMs,
    env: {
      ISSUER,
      PORT: String(port),
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
      SIGNING_KEY_ENCRYPTION_KEY: ENCRYPTION_KEY,
      UPSTREAM_OIDC_ISSUER: `http://127.0.0.1:${downPort}`,
      UPSTREAM_OIDC_CLIENT_ID: 'nobody',
      UPSTREAM_OIDC_CLIENT_SECRET: 'env-secret-never-shown',
      UPSTREAM_OIDC_NAME: 'Down Corp',
    },
  });
  await services.bootstrap();
  const auth = userBasic(ADMIN.username, ADMIN.password);
  const adminApi = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({ method, url, headers: { authorization: auth }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

  /** Starts "Sign in with <id>" in `browser`, signs `login` in upstream, and returns our callback URL (path and query), unvisited. */
  async function upstreamCallback(browser: InjectBrowser, id: string, login: string, options: { query?: string; tamper?: (url: URL) => void } = {}) {
    const start = await browser.get(`/login/providers/${id}${options.query ?? ''}`);
    t.equal(start.statusCode, 303, `GET /login/providers/${id} redirects to the provider`);
    const authorizationUrl = new URL(start.headers.location as string);
    options.tamper?.(authorizationUrl);
    const back = new URL(await driveUpstream(authorizationUrl.href, login, ISSUER));
    return `${back.pathname}${back.search}`;
  }
  const signedInUser = async (browser: InjectBrowser) => {
    const res = await browser.get('/account');
    return res.statusCode === 200 ? (/signed in as <strong>([^<]+)<\/strong>/.exec(res.body)?.[1] ?? null) : null;
  };

  await t.test('the admin API manages providers; the secret is write-only and stored encrypted', async (t) => {
    const created = await adminApi('POST', '/admin/identity-providers', {
      id: 'corp',
      issuer: upstream.issuer,
      client_id: upstream.clientId,
      client_secret: upstream.clientSecret,
      display_name: 'Example Corp',
    });
    t.equal(created.statusCode, 201, created.body);
    const body = created.json();
    t.equal(body.redirect_uri, callbackOf('corp'));
    t.equal(body.scopes, 'openid email profile', 'default scopes');
    t.notOk('client_secret' in body, 'the secret is not returned');
    t.notOk(created.body.includes(upstream.clientSecret));
    const stored = await storage.identityProviders.find('corp');
    t.type(stored!.clientSecret.jwe, 'string', 'sealed under SIGNING_KEY_ENCRYPTION_KEY');
    t.notOk(JSON.stringify(stored!.clientSecret).includes(upstream.clientSecret), 'never stored plainly');

    const list = await adminApi('GET', '/admin/identity-providers');
    t.same(list.json().items.map((p: { id: string }) => p.id).sort(), ['corp', 'upstream'], 'the environment\'s provider is there too, as "upstream"');
    t.notOk(list.body.includes('env-secret-never-shown') || list.body.includes(upstream.clientSecret));
    t.equal((await adminApi('POST', '/admin/identity-providers', { ...body, client_secret: 'x' })).statusCode, 400, 'unknown fields (redirect_uri) refused');
    t.equal((await adminApi('POST', '/admin/identity-providers', { id: 'corp', issuer: upstream.issuer, client_id: 'a', client_secret: 'b', display_name: 'Again' })).statusCode, 409);
    t.equal((await adminApi('POST', '/admin/identity-providers', { id: 'bad', issuer: 'http://example.com', client_id: 'a', client_secret: 'b', display_name: 'Plain http' })).statusCode, 400, 'http only on loopback');
    t.equal((await adminApi('POST', '/admin/identity-providers', { id: 'Bad_Id', issuer: 'https://example.com', client_id: 'a', client_secret: 'b', display_name: 'x' })).statusCode, 400);
    t.equal((await adminApi('POST', '/admin/identity-providers', { id: 'noopenid', issuer: 'https://example.com', client_id: 'a', client_secret: 'b', display_name: 'x', scopes: 'email' })).statusCode, 400);

    const temp = await adminApi('POST', '/admin/identity-providers', { id: 'temp', issuer: 'https://login.example.com', client_id: 'a', client_secret: 'first', display_name: 'Temp' });
    t.equal(temp.statusCode, 201);
    const patched = await adminApi('PATCH', '/admin/identity-providers/temp', { display_name: 'Temporary', client_secret: 'second', enabled: false });
    t.equal(patched.statusCode, 200);
    t.match(patched.json(), { display_name: 'Temporary', enabled: false });
    t.notMatch((await app.inject({ method: 'GET', url: '/login' })).body, /Temporary/, 'a disabled provider has no button');
    t.notOk(patched.body.includes('second'));
    t.equal((await adminApi('GET', '/admin/identity-providers/temp')).json().display_name, 'Temporary');
    t.equal((await adminApi('DELETE', '/admin/identity-providers/temp')).statusCode, 204);
    t.equal((await adminApi('GET', '/admin/identity-providers/temp')).statusCode, 404);
    t.equal((await app.inject({ method: 'GET', url: '/admin/identity-providers' })).statusCode, 401, 'admins only');

    await services.audit.flush();
    const events = await services.audit.list({ type: 'identity_provider.' }, { limit: 20, offset: 0 });
    t.same(new Set(events.events.map((e) => e.type)), new Set(['identity_provider.created', 'identity_provider.updated', 'identity_provider.deleted']));
  });

  await t.test('the CLI and the console show the redirect URI, never the secret', async (t) => {
    const cli = await findCommand('identity-providers', 'show')!.run(services, { values: {}, positionals: ['corp'] });
    t.match(cli.text, new RegExp(`redirect_uri: +${callbackOf('corp')}`));
    t.notOk(cli.text.includes(upstream.clientSecret));
    const updated = await findCommand('identity-providers', 'update')!.run(services, { values: { name: 'Example Corp' }, positionals: ['corp'] });
    t.match(updated.text, /display_name: +Example Corp/);

    const consoleBrowser = new InjectBrowser(app);
    const form = await consoleBrowser.get('/admin/console/sign-in');
    await consoleBrowser.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: ADMIN.username, password: ADMIN.password });
    const list = await consoleBrowser.get('/admin/console/identity-providers');
    t.equal(list.statusCode, 200);
    t.match(list.body, /Example Corp/);
    t.match(list.body, callbackOf('corp'));
    const edit = await consoleBrowser.get('/admin/console/identity-providers/corp');
    t.match(edit.body, /id="redirect-uri">http:\/\/127\.0\.0\.1:\d+\/login\/providers\/corp\/callback</);
    t.notOk(edit.body.includes(upstream.clientSecret), 'the secret is never on the page');
    const csrf = hiddenFields(edit.body, '/admin/console/identity-providers/corp').csrf_token;
    const created = await consoleBrowser.post('/admin/console/identity-providers', { csrf_token: csrf, id: 'console-made', issuer: 'https://login.example.org', client_id: 'x', client_secret: 'y', display_name: 'Console Made' });
    t.equal(created.statusCode, 303, created.body.slice(0, 300));
    t.equal((await storage.identityProviders.find('console-made'))?.enabled, false, 'an unchecked box: disabled');
    const removed = await consoleBrowser.post('/admin/console/identity-providers/console-made/delete', { csrf_token: csrf });
    t.equal(removed.statusCode, 303);
    t.equal(await storage.identityProviders.find('console-made'), null);
  });

  await t.test('a provider that is down: a clear 503 page, not a 500', async (t) => {
    const browser = new InjectBrowser(app);
    const res = await browser.get('/login/providers/upstream');
    t.equal(res.statusCode, 503);
    t.match(res.body, /Signing in with Down Corp is not possible right now/);
    t.equal((await browser.get('/login/providers/nope')).statusCode, 404, 'an unknown provider');

    // The next start finds it as configured: nothing changed, nothing recorded; a changed name is an update.
    await services.bootstrap();
    await services.audit.flush();
    t.same((await services.audit.list({ subject: 'upstream' }, { limit: 10, offset: 0 })).events.map((e) => e.type), ['identity_provider.created']);
    await services.identityProviders.ensureFromConfig({ ...config.upstreamOidc!, displayName: 'Down Corp 2' });
    await services.audit.flush();
    t.match((await services.audit.list({ subject: 'upstream' }, { limit: 10, offset: 0 })).events[0], { type: 'identity_provider.updated', actor: { type: 'system' }, details: { fields: ['display_name'] } });
    t.type((await storage.identityProviders.find('upstream'))!.clientSecret.jwe, 'string', 'still sealed');
  });

  await t.test('a discovery document naming another issuer is refused', async (t) => {
    // The same provider under another name: its metadata says http://localhost:…, not http://127.0.0.1:….
    t.equal((await adminApi('POST', '/admin/identity-providers', { id: 'liar', issuer: `http://127.0.0.1:${upstream.port}`, client_id: upstream.clientId, client_secret: upstream.clientSecret, display_name: 'Liar' })).statusCode, 201);
    const res = await new InjectBrowser(app).get('/login/providers/liar');
    t.equal(res.statusCode, 503);
    t.equal(res.headers.location, undefined, 'never sent to that provider');
    await adminApi('DELETE', '/admin/identity-providers/liar');
  });

  let aliceId = '';
  await t.test('the first sign-in creates an account and links it; the next one finds it', async (t) => {
    const browser = new InjectBrowser(app);
    const login = await browser.get('/login?next=/account');
    t.match(login.body, /href="\/login\/providers\/corp\?next=%2Faccount">Sign in with Example Corp</, 'the login page has the button, carrying next');
    t.match(login.body, /Sign in with Down Corp/, 'every enabled provider');
    const res = await browser.get(await upstreamCallback(browser, 'corp', 'alice-up', { query: '?next=/account' }));
    t.equal(res.statusCode, 303);
    t.equal(res.headers.location, '/account');
    t.equal(await signedInUser(browser), 'alice');
    const alice = (await services.users.findByUsername('alice'))!;
    aliceId = alice.id;
    t.equal(alice.passwordHash, '!', 'no usable password');
    t.equal(alice.emailVerified, true, 'the provider verified the email');
    t.same((await storage.linkedIdentities.find('corp', 'alice-up'))?.userId, alice.id);
    t.equal((await services.users.signIn('alice', '!', { ip: '127.0.0.1', source: 'login_form' })).ok, false, 'the placeholder is no password');

    const again = new InjectBrowser(app);
    t.equal((await again.get(await upstreamCallback(again, 'corp', 'alice-up'))).headers.location, '/account');
    t.equal(await signedInUser(again), 'alice', 'the same user');
    t.equal((await services.users.list({ limit: 100, offset: 0 })).users.filter((u) => u.username.startsWith('alice')).length, 1, 'no second account');
  });

  await t.test('an authenticator app set up here is still asked for after the provider (amr fed otp)', async (t) => {
    const first = new InjectBrowser(app);
    t.equal((await first.get(await upstreamCallback(first, 'corp', 'gina-up'))).headers.location, '/account');
    const gina = (await services.users.findByUsername('gina'))!;
    const { secret } = await services.secondFactor.beginEnrolment(gina);
    const codeAt = (ms: number) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: ms });
    t.ok(await services.secondFactor.confirmEnrolment(gina, codeAt(Date.now()), '127.0.0.1'));

    const browser = new InjectBrowser(app);
    const back = await browser.get(await upstreamCallback(browser, 'corp', 'gina-up', { query: '?next=/account' }));
    t.equal(back.statusCode, 303);
    t.equal(back.headers.location, '/login/second-factor?next=%2Faccount', 'the provider alone does not sign in');
    t.equal(await signedInUser(browser), null, 'not signed in before the code');
    const page = await browser.get(back.headers.location as string);
    // The next time step: the current one was used up by the enrolment (a code is single use).
    const done = await browser.post('/login/second-factor', { ...hiddenFields(page.body, '/login/second-factor'), code: codeAt(Date.now() + 30_000) });
    t.equal(done.statusCode, 303);
    t.equal(done.headers.location, '/account');
    t.equal(await signedInUser(browser), 'gina');
    const session = await services.sessions.load(browser.cookies.get('sid'));
    t.same(session?.amr, ['fed', 'otp'], 'both steps are named');
  });

  await t.test('a verified email links an existing account whose email is verified here', async (t) => {
    const bob = await adminApi('POST', '/admin/users', { username: 'bob', password: 'bob has a long password 77', email: 'bob@example.com' });
    t.equal(bob.json().email_verified, false);
    // What the mailed link does (REQUIRE_EMAIL_VERIFICATION).
    t.ok(await storage.users.markEmailVerified(bob.json().id, 'bob@example.com'));
    const browser = new InjectBrowser(app);
    await browser.get(await upstreamCallback(browser, 'corp', 'bob-up'));
    t.equal(await signedInUser(browser), 'bob', 'signed in as the existing bob (email compared case-insensitively)');
    t.equal((await storage.linkedIdentities.find('corp', 'bob-up'))?.userId, bob.json().id);
  });

  await t.test('an unverified email links nothing: a separate account', async (t) => {
    // Upstream says email_verified false.
    const carol = await adminApi('POST', '/admin/users', { username: 'carol', password: 'carol has a long password 77', email: 'carol@example.com' });
    await storage.users.markEmailVerified(carol.json().id, 'carol@example.com');
    const browser = new InjectBrowser(app);
    await browser.get(await upstreamCallback(browser, 'corp', 'carol-up'));
    const name = await signedInUser(browser);
    t.not(name, 'carol');
    t.match(name, /^carol-[0-9a-f]{6}$/, 'a new account, its name made unique');
    t.not((await storage.linkedIdentities.find('corp', 'carol-up'))?.userId, carol.json().id);
    t.equal((await services.users.findByUsername(name!))!.emailVerified, false);

    // The local address was never proved by its owner: no link either (else whoever registered it first would receive the upstream sign-ins).
    await services.users.create({ username: 'erin', password: 'erin typed this address 99', email: 'erin@example.com' }, { actor: { type: 'user', id: null, username: 'erin' } });
    const other = new InjectBrowser(app);
    await other.get(await upstreamCallback(other, 'corp', 'erin-up'));
    t.match(await signedInUser(other), /^erin-[0-9a-f]{6}$/, 'not the self-registered erin');
  });

  await t.test('the answer is checked: state bound to the browser and single use, iss, nonce', async (t) => {
    const failures = async () => {
      await services.audit.flush();
      return (await services.audit.list({ type: 'sign_in.failed' }, { limit: 50, offset: 0 })).events.map((e) => e.details.reason);
    };

    const a = new InjectBrowser(app);
    const callback = await upstreamCallback(a, 'corp', 'alice-up');
    const thief = new InjectBrowser(app);
    await thief.get('/login');
    const stolen = await thief.get(callback);
    t.equal(stolen.statusCode, 400, "another browser's callback is refused (login CSRF)");
    t.equal(await signedInUser(thief), null);
    const wrongState = await a.get(callback.replace(/state=[^&]+/, 'state=not-the-state'));
    t.equal(wrongState.statusCode, 400, 'a state this browser did not start');
    t.equal((await a.get(callback)).statusCode, 303, 'the rightful browser still finishes: the thief could not cancel it');
    t.equal((await a.get(callback)).statusCode, 400, 'single use');

    const b = new InjectBrowser(app);
    const forged = new URL(await upstreamCallback(b, 'corp', 'alice-up'), ISSUER);
    forged.searchParams.set('iss', 'https://evil.example');
    const mixUp = await b.get(`${forged.pathname}${forged.search}`);
    t.equal(mixUp.statusCode, 400, 'an iss of another issuer (RFC 9207)');
    t.match(mixUp.body, /could not be verified/);
    t.equal(await signedInUser(b), null);

    const c = new InjectBrowser(app);
    const wrongNonce = await c.get(await upstreamCallback(c, 'corp', 'alice-up', { tamper: (url) => url.searchParams.set('nonce', 'another-nonce-value') }));
    t.equal(wrongNonce.statusCode, 400, 'an ID token for another nonce');
    t.equal(await signedInUser(c), null);

    // The provider answers with an error (the person declined there): a page that says so, titled as a refusal.
    const d = new InjectBrowser(app);
    const declined = new URL(await upstreamCallback(d, 'corp', 'alice-up'), ISSUER);
    declined.searchParams.delete('code');
    declined.searchParams.set('error', 'access_denied');
    const declinedPage = await d.get(`${declined.pathname}${declined.search}`);
    t.equal(declinedPage.statusCode, 403);
    t.match(declinedPage.body, /did not sign you in \(access_denied\)/);
    t.match(declinedPage.body, /<h1 id="page-title">Not allowed<\/h1>/, 'not "This form has expired"');
    t.equal(await signedInUser(d), null);

    const reasons = await failures();
    for (const reason of ['state', 'response', 'id_token']) t.ok(reasons.includes(reason), `recorded: ${reason}`);
  });

  await t.test('a disabled user is refused', async (t) => {
    t.equal((await adminApi('PATCH', `/admin/users/${aliceId}`, { disabled: true })).statusCode, 200);
    const browser = new InjectBrowser(app);
    const res = await browser.get(await upstreamCallback(browser, 'corp', 'alice-up'));
    t.equal(res.statusCode, 403);
    t.equal(await signedInUser(browser), null);
    await adminApi('PATCH', `/admin/users/${aliceId}`, { disabled: false });
  });

  await t.test('the account page lists linked providers; the last way in cannot be removed', async (t) => {
    const browser = new InjectBrowser(app);
    await browser.get(await upstreamCallback(browser, 'corp', 'alice-up'));
    const page = await browser.get('/account');
    t.match(page.body, /Linked sign-in providers/);
    t.match(page.body, /<strong>Example Corp<\/strong>/);
    const fields = hiddenFields(page.body, '/account/linked-providers/remove');
    t.equal((await browser.post('/account/linked-providers/remove', { ...fields, csrf_token: 'forged' })).statusCode, 403, 'CSRF token required');
    const refused = await browser.post('/account/linked-providers/remove', fields);
    t.equal(refused.statusCode, 409, 'no password and no other link: refused');
    t.ok(await storage.linkedIdentities.find('corp', 'alice-up'));

    // bob has a password: removing his link is allowed.
    const bob = new InjectBrowser(app);
    await bob.get(await upstreamCallback(bob, 'corp', 'bob-up'));
    const bobPage = await bob.get('/account');
    const removed = await bob.post('/account/linked-providers/remove', hiddenFields(bobPage.body, '/account/linked-providers/remove'));
    t.equal(removed.statusCode, 303);
    t.equal(await storage.linkedIdentities.find('corp', 'bob-up'), null);
    await services.audit.flush();
    t.ok((await services.audit.list({ type: 'identity.unlinked' }, { limit: 5, offset: 0 })).total >= 1);
  });

  await t.test('an account made by the provider sets its first password without a current one, after a recent sign-in only', async (t) => {
    const browser = new InjectBrowser(app);
    await browser.get(await upstreamCallback(browser, 'corp', 'hank-up'));
    const page = await browser.get('/account');
    t.match(page.body, /<h2 id="password-title">Set a password<\/h2>/);
    t.notMatch(page.body, /name="current_password"/, 'no current password to ask for');
    const fields = hiddenFields(page.body, '/account/password');
    const weak = await browser.post('/account/password', { ...fields, new_password: 'password' });
    t.equal(weak.statusCode, 400, 'the password rule applies');
    const set = await browser.post('/account/password', { ...fields, new_password: 'hank sets his own passphrase 5' });
    t.equal(set.statusCode, 303);
    t.equal(set.headers.location, '/account?notice=password_changed');
    t.ok((await services.users.signIn('hank', 'hank sets his own passphrase 5', { ip: '127.0.0.1', source: 'login_form' })).ok, 'the password signs in');
    t.match((await browser.get('/account')).body, /<h2 id="password-title">Change password<\/h2>/, 'from now on a change, with the current one');

    const stale = new InjectBrowser(app);
    await stale.get(await upstreamCallback(stale, 'corp', 'ivy-up'));
    const stalePage = await stale.get('/account');
    offsetMs = 11 * 60_000;
    try {
      const late = await stale.post('/account/password', { ...hiddenFields(stalePage.body, '/account/password'), new_password: 'ivy sets her own passphrase 6' });
      t.equal(late.statusCode, 400);
      t.match(late.body, /sign in again first/);
      t.equal((await services.users.signIn('ivy', 'ivy sets her own passphrase 6', { ip: '127.0.0.1', source: 'login_form' })).ok, false, 'no password was set');
    } finally {
      offsetMs = 0;
    }
  });

  const noChromium = chromiumSkip(t);
  await t.test('Chromium: "Sign in with Example Corp" inside an authorization code flow', { skip: noChromium }, async (t) => {
    await app.listen({ port, host: '127.0.0.1' });
    const web = await seedClient(services, { client_name: 'Photo Printer', redirect_uris: [`http://127.0.0.1:${port}/cb-not-served`], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', scope: 'openid profile' });
    const issuer = new URL(ISSUER);
    const http = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }));
    const client: oauth.Client = { client_id: web.clientId };
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authorize = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: web.clientId, redirect_uri: `http://127.0.0.1:${port}/cb-not-served`, scope: 'openid profile', state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })) authorize.searchParams.set(k, v);

    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(10_000);
    await page.goto(authorize.href);
    await page.getByRole('link', { name: 'Sign in with Example Corp' }).click();
    await page.locator('input[name="login"]').fill('dave-up');
    await page.locator('input[name="password"]').fill('any');
    await page.locator('button[type="submit"]').click();
    await page.getByRole('button', { name: 'Allow' }).click();
    // The client's redirect URI (nothing serves it: the URL is what matters).
    await page.waitForURL(/cb-not-served/);
    const params = oauth.validateAuthResponse(as, client, new URL(page.url()), state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, `http://127.0.0.1:${port}/cb-not-served`, verifier, http),
    );
    const dave = (await services.users.findByUsername('dave'))!;
    t.equal(oauth.getValidatedIdTokenClaims(tokens)?.sub, dave.id, 'an ID token for the account the upstream sign-in created');
  });
});
