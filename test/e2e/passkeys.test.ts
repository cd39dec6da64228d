/**
 * Passkeys over `app.inject()`, with a software authenticator answering the
 * server's options (test/helpers/soft-authenticator.ts) and the server
 * checking it with @simplewebauthn's verify functions against what it
 * stored: adding, signing in (device-bound → amr hwk, synced → swk),
 * removing, and every refusal: CSRF, a replayed or another session's
 * challenge, a credential of another user or unknown, a counter that goes
 * back (a cloned authenticator), a disabled account, the per-address
 * throttle; the pages' scripts and CSP; the audit trail.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, pkcePair } from '../helpers/browser-flow.js';
import { SoftAuthenticator, type SoftCredential } from '../helpers/soft-authenticator.js';

const MAX_FAILED = 3;
const REDIRECT = 'http://127.0.0.1:7013/cb';

let ipCounter = 0;
/** Each browser at its own address, so the per-address throttle of one subtest never reaches another. */
const nextIp = () => `10.13.0.${++ipCounter}`;

t.test(`passkeys (${backendName})`, async (t) => {
  const { app, services, storage, config } = await buildTestApp(t, { env: { MAX_FAILED_ATTEMPTS: String(MAX_FAILED) } });
  const authenticator = new SoftAuthenticator(new URL(config.issuer).origin);
  const alice = await seedUser(services, { username: 'alice' });
  const bob = await seedUser(services, { username: 'bob' });

  /** A browser at its own address, signed in with a password; with its CSRF token. */
  async function signedIn(user: { username: string; password: string }) {
    const browser = new InjectBrowser(app, nextIp());
    const login = await browser.get('/login');
    const res = await browser.post('/login', { ...hiddenFields(login.body, '/login'), username: user.username, password: user.password });
    if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode}`);
    const account = await browser.get('/account');
    return { browser, csrf: hiddenFields(account.body, '/logout').csrf_token!, account };
  }

  /** A signed-out browser on the login page, with the page's CSRF token. */
  async function onLoginPage(path = '/login') {
    const browser = new InjectBrowser(app, nextIp());
    const page = await browser.get(path);
    return { browser, csrf: hiddenFields(page.body, '/login').csrf_token!, page };
  }

  async function addPasskey(user: { username: string; password: string }, opts: { synced?: boolean; name?: string } = {}) {
    const { browser, csrf } = await signedIn(user);
    const options = await browser.postJson('/account/passkeys/options', {}, { 'x-csrf-token': csrf });
    if (options.statusCode !== 200) throw new Error(`options: ${options.statusCode} ${options.body}`);
    const { credential, response } = authenticator.create(options.json(), { synced: opts.synced ?? false });
    const added = await browser.postJson('/account/passkeys', { response, name: opts.name }, { 'x-csrf-token': csrf });
    if (added.statusCode !== 201) throw new Error(`add: ${added.statusCode} ${added.body}`);
    return { browser, csrf, credential, id: (added.json() as { id: string }).id };
  }

  /** Signs in with the credential from a fresh login page; returns the answer and the browser. */
  async function passkeySignIn(credential: SoftCredential, opts: { signCount?: number; userHandle?: string; path?: string; rid?: string } = {}) {
    const { browser, csrf } = await onLoginPage(opts.path);
    const options = await browser.postJson('/login/passkey/options', {}, { 'x-csrf-token': csrf });
    const response = authenticator.get(options.json(), credential, opts);
    const res = await browser.postJson('/login/passkey', { response, ...(opts.rid ? { rid: opts.rid } : {}) }, { 'x-csrf-token': csrf });
    return { res, browser, response, csrf };
  }

  const sessionOf = (browser: InjectBrowser) => services.sessions.load(browser.cookies.get('sid'));
  const events = async (type: string) => {
    await services.audit.flush();
    return storage.auditEvents.list({ type }, { limit: 100, offset: 0 });
  };

  t.test('the pages: buttons, our own scripts, a CSP without inline scripts; the library served from this server', async (t) => {
    const { page } = await onLoginPage();
    t.match(page.body, /<button type="button"[^>]*>Sign in with a passkey<\/button>/);
    t.match(page.body, /autocomplete="username webauthn"/, 'conditional UI: passkeys in the username autofill');
    const csp = page.headers['content-security-policy'] as string;
    t.match(csp, /script-src 'self'(;|$)/);
    t.match(csp, /connect-src 'self'(;|$)/);
    t.notMatch(csp, /unsafe-inline|unsafe-eval/);
    t.notMatch(page.body, /<script(?![^>]*\bsrc=)/, 'no inline script');
    t.match(page.body, /<button type="submit">Sign in<\/button>/, 'the password form is still there (works without scripts)');
    const scripts = [...page.body.matchAll(/<script src="([^"]+)" defer><\/script>/g)].map((m) => m[1]!);
    t.equal(scripts.length, 2);
    t.match(scripts[0], /^\/assets\/vendor\/simplewebauthn-browser-[\d.]+\.umd\.min\.js$/);
    t.equal(scripts[1], '/assets/passkeys.js');
    const vendor = await app.inject({ method: 'GET', url: scripts[0] });
    t.equal(vendor.statusCode, 200);
    t.match(vendor.headers['content-type'], /javascript/);
    t.match(vendor.headers['cache-control'], /max-age=31536000, immutable/, 'versioned URL, cached for a year');
    t.match(vendor.body, /SimpleWebAuthnBrowser/);
    t.equal((await app.inject({ method: 'GET', url: '/assets/passkeys.js' })).statusCode, 200);

    const { account } = await signedIn(alice);
    t.match(account.body, /<h2 id="passkeys-title">Passkeys<\/h2>/);
    t.match(account.body, /Add a passkey<\/button>/);
    t.match(account.headers['content-security-policy'], /script-src 'self'/);
    // Pages without passkey buttons keep the strict default.
    t.notMatch((await app.inject({ method: 'GET', url: '/register' })).headers['content-security-policy'], /script-src/);
  });

  t.test('add a passkey, list it, sign in with it username-less (hwk), remove it', async (t) => {
    const { browser, csrf, credential, id } = await addPasskey(alice, { name: 'Laptop <b>' });
    const stored = await storage.passkeys.listForUser(alice.id);
    t.equal(stored.length, 1);
    t.match(stored[0], { id, name: 'Laptop <b>', credentialId: credential.id, counter: 0, deviceType: 'singleDevice', backedUp: false, transports: ['internal'] });
    const account = await browser.get('/account');
    t.match(account.body, /Laptop &lt;b&gt;/, 'listed, escaped');
    t.match(account.body, /On one device/);
    t.match(account.body, /last used never/);
    t.match(account.body, new RegExp(`action="/account/passkeys/${id}/remove"`));

    const { res, browser: other } = await passkeySignIn(credential);
    t.equal(res.statusCode, 200, res.body);
    t.same(res.json(), { location: '/account' });
    const session = await sessionOf(other);
    t.equal(session?.userId, alice.id, 'signed in as the owner, no username given');
    t.same(session?.amr, ['hwk'], 'device-bound key: hwk');
    t.equal((await storage.passkeys.listForUser(alice.id))[0]!.counter, 1, 'counter stored');
    t.match((await other.get('/account')).body, /last used <time/);
    t.ok((await events('sign_in.succeeded')).some((e) => e.details.source === 'passkey' && e.actorId === alice.id));

    const removed = await browser.post(`/account/passkeys/${id}/remove`, { csrf_token: csrf });
    t.equal(removed.statusCode, 303);
    t.equal(removed.headers.location, '/account');
    t.same(await storage.passkeys.listForUser(alice.id), []);
    t.equal((await events('passkey.removed')).length, 1);
    t.equal((await passkeySignIn(credential)).res.statusCode, 403, 'a removed passkey signs nobody in');
  });

  t.test('a synced passkey (backed up, counter always 0) signs in as swk, again and again', async (t) => {
    const { credential } = await addPasskey(bob, { synced: true });
    t.match((await storage.passkeys.listForUser(bob.id))[0], { deviceType: 'multiDevice', backedUp: true, name: 'Passkey 1' });
    for (const round of [1, 2]) {
      const { res, browser } = await passkeySignIn(credential);
      t.equal(res.statusCode, 200, `round ${round}`);
      t.same((await sessionOf(browser))?.amr, ['swk']);
    }
  });

  t.test('through a pending authorization request: on to consent, like a password sign-in', async (t) => {
    const { clientId } = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' });
    const { credential } = await addPasskey(alice);
    const browser = new InjectBrowser(app, nextIp());
    const start = await browser.get(
      authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid', state: 's', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' }),
    );
    const login = await browser.get(start.headers.location as string);
    const fields = hiddenFields(login.body, '/login');
    t.match(login.body, new RegExp(`data-rid="${fields.rid}"`));
    const options = await browser.postJson('/login/passkey/options', {}, { 'x-csrf-token': fields.csrf_token! });
    const res = await browser.postJson('/login/passkey', { response: authenticator.get(options.json(), credential), rid: fields.rid }, { 'x-csrf-token': fields.csrf_token! });
    t.equal(res.statusCode, 200, res.body);
    t.match((res.json() as { location: string }).location, /^\/consent\?rid=/);
    t.equal((await browser.get((res.json() as { location: string }).location)).statusCode, 200, 'the consent page');

    const bogus = await passkeySignIn(credential, { rid: 'x'.repeat(43) });
    t.equal(bogus.res.statusCode, 400, 'an unknown pending request is refused before the assertion');
  });

  t.test('CSRF: the JSON routes need the session\'s token in X-CSRF-Token; the remove form its csrf_token', async (t) => {
    const { browser, csrf, id } = await addPasskey(bob);
    for (const headers of [{}, { 'x-csrf-token': 'wrong' }] as Array<Record<string, string>>) {
      t.equal((await browser.postJson('/account/passkeys/options', {}, headers)).statusCode, 403);
      t.equal((await browser.postJson('/account/passkeys', { response: {} }, headers)).statusCode, 403);
    }
    // What another site's form can send (urlencoded, text/plain): refused, whatever the body says.
    const before = (await storage.passkeys.listForUser(bob.id)).length;
    t.equal((await browser.post('/account/passkeys', { response: 'x' })).statusCode, 415);
    const plain = await app.inject({ method: 'POST', url: '/account/passkeys', headers: { cookie: browser.cookieHeader(), 'content-type': 'text/plain' }, payload: '{"response":{}}' });
    t.equal(plain.statusCode, 415);
    t.equal((await storage.passkeys.listForUser(bob.id)).length, before);
    t.equal((await browser.post(`/account/passkeys/${id}/remove`, {})).statusCode, 403);
    t.equal((await browser.post(`/account/passkeys/${id}/remove`, { csrf_token: 'wrong' })).statusCode, 403);
    t.equal((await storage.passkeys.listForUser(bob.id)).filter((p) => p.id === id).length, 1, 'still there');

    const login = await onLoginPage();
    t.equal((await login.browser.postJson('/login/passkey/options', {})).statusCode, 403);
    t.equal((await login.browser.postJson('/login/passkey', { response: {} }, { 'x-csrf-token': csrf })).statusCode, 403, "another session's token");
    const nobody = new InjectBrowser(app, nextIp());
    t.equal((await nobody.postJson('/login/passkey/options', {}, { 'x-csrf-token': login.csrf })).statusCode, 403, 'no session');
    // Signed out (but with a session and its token): no passkey can be added.
    t.equal((await login.browser.postJson('/account/passkeys/options', {}, { 'x-csrf-token': login.csrf })).statusCode, 401);
  });

  t.test('a challenge is used once, and only by the session that asked for it', async (t) => {
    const { browser, csrf, credential } = await addPasskey(alice);
    // Registration: the same answer again.
    const options = await browser.postJson('/account/passkeys/options', {}, { 'x-csrf-token': csrf });
    const { response } = authenticator.create(options.json());
    t.equal((await browser.postJson('/account/passkeys', { response }, { 'x-csrf-token': csrf })).statusCode, 201);
    const again = await browser.postJson('/account/passkeys', { response }, { 'x-csrf-token': csrf });
    t.equal(again.statusCode, 400, 'registration replayed');

    // Sign-in: a replayed assertion, in the same session and in another.
    const first = await passkeySignIn(credential);
    t.equal(first.res.statusCode, 200);
    const replay = await first.browser.postJson('/login/passkey', { response: first.response }, { 'x-csrf-token': first.csrf });
    t.equal(replay.statusCode, 403, 'replayed in the same browser');
    const elsewhere = await onLoginPage();
    t.equal((await elsewhere.browser.postJson('/login/passkey', { response: first.response }, { 'x-csrf-token': elsewhere.csrf })).statusCode, 403, 'replayed elsewhere');

    // A challenge issued to one session, answered in another (a phishing relay of the options).
    const victim = await onLoginPage();
    const attacker = await onLoginPage();
    const foreign = await attacker.browser.postJson('/login/passkey/options', {}, { 'x-csrf-token': attacker.csrf });
    const assertion = authenticator.get(foreign.json(), credential);
    t.equal((await victim.browser.postJson('/login/passkey', { response: assertion }, { 'x-csrf-token': victim.csrf })).statusCode, 403, "another session's challenge");
    t.equal((await sessionOf(victim.browser))?.userId, null);
    // Never issued at all.
    const made = await onLoginPage();
    await made.browser.postJson('/login/passkey/options', {}, { 'x-csrf-token': made.csrf });
    const invented = authenticator.get({ challenge: 'A'.repeat(43) }, credential);
    t.equal((await made.browser.postJson('/login/passkey', { response: invented }, { 'x-csrf-token': made.csrf })).statusCode, 403, 'an invented challenge');
    // Signed for another origin.
    const phished = await onLoginPage();
    const opts = await phished.browser.postJson('/login/passkey/options', {}, { 'x-csrf-token': phished.csrf });
    const wrongOrigin = authenticator.get(opts.json(), credential, { origin: 'https://evil.example' });
    t.equal((await phished.browser.postJson('/login/passkey', { response: wrongOrigin }, { 'x-csrf-token': phished.csrf })).statusCode, 403, 'another origin');
  });

  t.test("a passkey of another user: never registered twice, never signs in another account, never removed by another", async (t) => {
    const { credential, id } = await addPasskey(alice);
    // Bob's session registers Alice's credential (same id, Bob's challenge): refused.
    const { browser, csrf } = await signedIn(bob);
    const options = await browser.postJson('/account/passkeys/options', {}, { 'x-csrf-token': csrf });
    const { response } = authenticator.create(options.json(), { reuse: credential });
    const taken = await browser.postJson('/account/passkeys', { response }, { 'x-csrf-token': csrf });
    t.equal(taken.statusCode, 409);
    t.equal((await storage.passkeys.findByCredentialId(credential.id))?.userId, alice.id, 'still only Alice\'s');

    // Alice's credential presented with Bob's user handle.
    const { res, browser: signing } = await passkeySignIn(credential, { userHandle: Buffer.from(bob.id).toString('base64url') });
    t.equal(res.statusCode, 403);
    t.equal((await sessionOf(signing))?.userId, null, 'nobody signed in');
    t.ok((await events('sign_in.failed')).some((e) => e.details.source === 'passkey' && e.details.reason === 'other_user'));

    // An unknown credential.
    const stranger = authenticator.create({ challenge: 'x', rp: {}, user: { id: Buffer.from(alice.id).toString('base64url') } }).credential;
    t.equal((await passkeySignIn(stranger)).res.statusCode, 403);

    // Bob removing Alice's passkey.
    t.equal((await browser.post(`/account/passkeys/${id}/remove`, { csrf_token: csrf })).statusCode, 404);
    t.ok(await storage.passkeys.findByCredentialId(credential.id), 'still there');
  });

  t.test('a signature counter that goes back (a cloned authenticator) is refused and recorded', async (t) => {
    const { credential } = await addPasskey(bob);
    t.equal((await passkeySignIn(credential, { signCount: 5 })).res.statusCode, 200);
    for (const signCount of [5, 3, 0]) {
      const { res, browser } = await passkeySignIn(credential, { signCount });
      t.equal(res.statusCode, 403, `counter ${signCount} after 5`);
      t.equal((await sessionOf(browser))?.userId, null);
    }
    const clones = await events('passkey.clone_detected');
    t.equal(clones.length, 3);
    t.match(clones[0], { outcome: 'failure', actorId: bob.id, details: { stored_counter: 5, credential_id: credential.id } });
    t.equal((await storage.passkeys.findByCredentialId(credential.id))?.counter, 5, 'the stored counter stays');
    t.equal((await passkeySignIn(credential, { signCount: 6 })).res.statusCode, 200, 'the genuine authenticator goes on');
  });

  t.test('malformed answers are refused, never a 500', async (t) => {
    const { browser, csrf } = await signedIn(alice);
    await browser.postJson('/account/passkeys/options', {}, { 'x-csrf-token': csrf });
    for (const response of [{}, { id: 'abc', response: { clientDataJSON: 'not base64!' } }, { id: 1, response: { clientDataJSON: Buffer.from('{}').toString('base64url') } }]) {
      const res = await browser.postJson('/account/passkeys', { response }, { 'x-csrf-token': csrf });
      t.equal(res.statusCode, 400, JSON.stringify(response));
      t.equal((res.json() as { error: string }).error, 'invalid_request');
    }
    t.equal((await browser.postJson('/account/passkeys', { response: 'x' }, { 'x-csrf-token': csrf })).statusCode, 400);
    const login = await onLoginPage();
    for (const response of [{}, { id: 'AAAA', type: 'public-key', response: { clientDataJSON: 'e30', authenticatorData: '', signature: '' } }]) {
      const res = await login.browser.postJson('/login/passkey', { response }, { 'x-csrf-token': login.csrf });
      t.equal(res.statusCode, 403);
      t.equal((res.json() as { error: string }).error, 'access_denied');
    }
  });

  t.test('a disabled account cannot sign in with its passkey', async (t) => {
    const carol = await seedUser(services, { username: 'carol' });
    const { credential } = await addPasskey(carol);
    await services.users.update(carol.id, { disabled: true });
    t.equal((await passkeySignIn(credential)).res.statusCode, 403);
  });

  t.test('failed assertions are throttled per address', async (t) => {
    const { credential } = await addPasskey(alice);
    const { browser, csrf } = await onLoginPage();
    const attempt = async (good: boolean) => {
      const options = await browser.postJson('/login/passkey/options', {}, { 'x-csrf-token': csrf });
      const response = authenticator.get(options.json(), credential, good ? {} : { origin: 'https://evil.example' });
      return browser.postJson('/login/passkey', { response }, { 'x-csrf-token': csrf });
    };
    for (let i = 0; i < MAX_FAILED; i++) t.equal((await attempt(false)).statusCode, 403);
    const refused = await attempt(true);
    t.equal(refused.statusCode, 429, 'past the limit even a good assertion is not checked');
    t.ok(Number(refused.headers['retry-after']) > 0);
    t.ok((await events('sign_in.throttled')).some((e) => e.details.source === 'passkey'));
    t.equal((await passkeySignIn(credential)).res.statusCode, 200, 'another address is not affected');
  });

  t.test('audit: added, with the name; no key material', async (t) => {
    const added = await events('passkey.added');
    t.ok(added.length >= 5);
    t.match(added.at(-1), { actorType: 'user', subjectType: 'user', details: { passkey_name: 'Laptop <b>' } });
    const everything = JSON.stringify(await storage.auditEvents.list({}, { limit: 1000, offset: 0 }));
    for (const p of await storage.passkeys.listForUser(alice.id)) t.notOk(everything.includes(p.publicKey));
  });
});
