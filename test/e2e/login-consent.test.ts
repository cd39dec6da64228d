/**
 * The login and consent pages over HTTP: sessions, CSRF, throttling, the
 * binding of a consent decision to its request, remembered consent, OIDC
 * prompt and max_age, logout.
 */
import t, { type Test } from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, loginAndConsent, pkcePair, responseParams } from '../helpers/browser-flow.js';

const REDIRECT = 'http://127.0.0.1:7002/cb';
const MAX_FAILED = 3;

let ipCounter = 0;
/** Each subtest signs in from its own address, so per-IP counters do not leak between them. */
const nextIp = () => `10.1.0.${++ipCounter}`;

t.test(`login and consent (${backendName})`, async (t) => {
  let clock = Date.now();
  const { app, services, config } = await buildTestApp(t, { env: { MAX_FAILED_ATTEMPTS: String(MAX_FAILED) }, now: () => clock });
  const { clientId } = await seedClient(services, {
    client_name: 'Photo Printer',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile api:read api:write',
  });
  const pkce = pkcePair();
  const request = (extra: Record<string, string | undefined> = {}) =>
    authorizePath({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      state: 'st-1',
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
  const sid = (browser: InjectBrowser) => browser.cookies.get('sid');

  /** Goes from /authorize to the login page; returns its form fields. */
  async function toLogin(t: Test, browser: InjectBrowser, path = request()) {
    const start = await browser.get(path);
    t.equal(start.statusCode, 303);
    const page = await browser.get(start.headers.location as string);
    t.equal(page.statusCode, 200);
    return { page, fields: hiddenFields(page.body, '/login') };
  }

  /** Signs in through /authorize and stops at the consent page; returns its form fields. */
  async function toConsent(t: Test, browser: InjectBrowser, user: { username: string; password: string }, path = request()) {
    const { fields } = await toLogin(t, browser, path);
    const login = await browser.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(login.statusCode, 303);
    const page = await browser.get(login.headers.location as string);
    t.equal(page.statusCode, 200, 'consent page');
    return { page, fields: hiddenFields(page.body, '/consent') };
  }

  t.test('/account: signed out, to the sign-in page and back; `next` never leaves this server', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const away = await browser.get('/account');
    t.equal(away.statusCode, 303);
    t.equal(away.headers.location, '/login?next=%2Faccount');
    const form = await browser.get(away.headers.location as string);
    const fields = hiddenFields(form.body, '/login');
    t.equal(fields.next, '/account', 'the form carries where to return');
    const signedIn = await browser.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(signedIn.headers.location, '/account');
    const account = await browser.get('/account');
    t.equal(account.statusCode, 200);
    t.match(account.body, user.username);

    const other = new InjectBrowser(app, nextIp());
    const hostile = await other.get('/login?next=https%3A%2F%2Fevil.example%2F');
    const hostileFields = hiddenFields(hostile.body, '/login');
    t.equal(hostileFields.next, undefined, 'a foreign target is dropped from the form');
    const posted = await other.post('/login', { ...hostileFields, next: '//evil.example/', username: user.username, password: user.password });
    t.equal(posted.headers.location, '/account', 'and ignored when posted');
    t.equal((await other.get('/login?next=%2F%2Fevil.example')).headers.location, '/account', 'signed in: /login goes to the account page');
  });

  t.test('the session cookie is HttpOnly, SameSite=Lax, host-only; its id changes at sign-in', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const first = await browser.get('/login');
    const cookie = String(first.headers['set-cookie']);
    t.match(cookie, /^sid=[\w-]{43};/);
    t.match(cookie, /HttpOnly/);
    t.match(cookie, /SameSite=Lax/);
    t.match(cookie, /Path=\//);
    t.notMatch(cookie, /Domain=/i);
    t.notMatch(cookie, /Secure/, 'no Secure flag on an http issuer');
    const before = sid(browser);

    const fields = hiddenFields(first.body, '/login');
    const login = await browser.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(login.statusCode, 303, 'POST answered with 303');
    const after = sid(browser);
    t.ok(after);
    t.not(after, before, 'a new session id at sign-in');

    // The pre-sign-in id is dead: it does not carry the signed-in session.
    const planted = new InjectBrowser(app, nextIp());
    planted.cookies.set('sid', before!);
    const res = await planted.get('/login');
    t.notMatch(res.body, 'You are signed in');
    t.match((await browser.get('/account')).body, 'You are signed in');
  });

  t.test('login: a POST without the session CSRF token, or with another session\'s, is refused', async (t) => {
    const user = await seedUser(services);
    const victim = new InjectBrowser(app, nextIp());
    const { fields } = await toLogin(t, victim);
    const attacker = new InjectBrowser(app, nextIp());
    const attackerFields = (await toLogin(t, attacker)).fields;
    const victimSid = sid(victim);

    const none = await victim.post('/login', { rid: fields.rid, username: user.username, password: user.password });
    t.equal(none.statusCode, 403);
    t.equal(none.headers.location, undefined);
    const other = await victim.post('/login', { ...fields, csrf_token: attackerFields.csrf_token, username: user.username, password: user.password });
    t.equal(other.statusCode, 403);
    t.equal(sid(victim), victimSid, 'no sign-in happened');
    t.notMatch((await victim.get('/account')).body, 'You are signed in');

    const ok = await victim.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(ok.statusCode, 303, 'the genuine form still works');
  });

  t.test('wrong credentials: one generic message, whether or not the user exists', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const { fields } = await toLogin(t, browser);
    const wrong = await browser.post('/login', { ...fields, username: user.username, password: 'not the password' });
    const unknown = await browser.post('/login', { ...fields, username: 'nobody-at-all', password: 'not the password' });
    t.equal(wrong.statusCode, 400);
    t.equal(unknown.statusCode, 400);
    const message = (body: string) => /<p class="error"[^>]*>([^<]*)</.exec(body)?.[1];
    t.equal(message(wrong.body), 'Incorrect username or password.');
    t.equal(message(unknown.body), message(wrong.body));
    t.match(wrong.body, 'role="alert"');
    t.match(wrong.body, `value="${user.username}"`, 'the username is kept');
  });

  t.test('failed sign-ins are throttled per username and IP: 429 with Retry-After, even with the right password; not from another address', async (t) => {
    const user = await seedUser(services);
    const attacker = new InjectBrowser(app, nextIp());
    const { fields } = await toLogin(t, attacker);
    for (let i = 0; i < MAX_FAILED; i++) {
      t.equal((await attacker.post('/login', { ...fields, username: user.username, password: `wrong ${i}` })).statusCode, 400);
    }
    const res = await attacker.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(res.statusCode, 429);
    t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
    t.match(res.body, 'Too many failed sign-in attempts');

    // SPEC: failures from one address never lock the real user out at another (the account is only slowed down).
    const owner = new InjectBrowser(app, nextIp());
    const ownerForm = (await toLogin(t, owner)).fields;
    t.equal((await owner.post('/login', { ...ownerForm, username: user.username, password: user.password })).statusCode, 303);
  });

  t.test('failed sign-ins from one IP at many usernames slow it down, never lock it (a NAT, a proxy)', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const { fields } = await toLogin(t, browser);
    for (let i = 0; i < MAX_FAILED + 1; i++) {
      t.equal((await browser.post('/login', { ...fields, username: `guess${i}`, password: 'password1' })).statusCode, 400);
    }
    const res = await browser.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(res.statusCode, 303, 'another user at that address signs in');
  });

  t.test('allow: 303 to the client with code, state and iss; the consent page names client and scopes', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const { page, fields } = await toConsent(t, browser, user, request({ scope: 'openid api:read' }));
    t.match(page.body, 'Photo Printer');
    t.match(page.body, 'Read your data');
    t.match(page.body, 'Sign you in');
    t.match(page.body, 'name="decision" value="allow"');
    t.match(page.body, 'name="decision" value="deny"');
    // The consent form's 303 goes to the client: CSP form-action must allow its origin (Chromium checks redirects).
    t.match(page.headers['content-security-policy'], /form-action 'self' http:\/\/127\.0\.0\.1:7002(;|$)/);
    t.equal(page.headers['x-frame-options'], 'DENY');

    const res = await browser.post('/consent', { ...fields, decision: 'allow' });
    t.equal(res.statusCode, 303);
    const location = res.headers.location as string;
    t.ok(location.startsWith(`${REDIRECT}?`));
    const params = responseParams(location);
    t.match(params.get('code'), /^[\w-]{43}$/, '256-bit code');
    t.equal(params.get('state'), 'st-1');
    t.equal(params.get('iss'), config.issuer);
  });

  t.test('deny: access_denied with state and iss', async (t) => {
    const user = await seedUser(services);
    const result = await loginAndConsent(new InjectBrowser(app, nextIp()), request(), user, { decision: 'deny' });
    t.equal(result.params.get('error'), 'access_denied');
    t.equal(result.params.get('state'), 'st-1');
    t.equal(result.params.get('iss'), config.issuer);
    t.equal(result.params.get('code'), null);
  });

  t.test('consent: a forged POST is refused', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const { fields } = await toConsent(t, browser, user);
    const none = await browser.post('/consent', { rid: fields.rid, ticket: fields.ticket, decision: 'allow' });
    t.equal(none.statusCode, 403);
    t.equal(none.headers.location, undefined);
    const other = new InjectBrowser(app, nextIp());
    const otherToken = hiddenFields((await other.get('/login')).body, '/login').csrf_token;
    const foreign = await browser.post('/consent', { ...fields, csrf_token: otherToken, decision: 'allow' });
    t.equal(foreign.statusCode, 403);
    t.equal(foreign.headers.location, undefined);
    t.equal((await browser.post('/consent', { ...fields, decision: 'allow' })).statusCode, 303, 'the genuine form still works');
  });

  t.test('a consent decision is bound to the request it was shown for, and answers it once', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const a = await toConsent(t, browser, user, request({ scope: 'profile', state: 'A' }));
    // A second request in the same session asking for more.
    const startB = await browser.get(request({ scope: 'profile api:write', state: 'B' }));
    const b = hiddenFields((await browser.get(startB.headers.location as string)).body, '/consent');
    t.not(a.fields.rid, b.rid);

    const crossed = await browser.post('/consent', { ...b, ticket: a.fields.ticket, decision: 'allow' });
    t.equal(crossed.statusCode, 400, "request A's form cannot approve request B");
    t.equal(crossed.headers.location, undefined);

    // Another user's session cannot answer this request, even with its own valid CSRF token.
    const other = await seedUser(services);
    const stranger = new InjectBrowser(app, nextIp());
    const strangerFields = (await toConsent(t, stranger, other)).fields;
    const stolen = await stranger.post('/consent', { ...strangerFields, rid: a.fields.rid, ticket: a.fields.ticket, decision: 'allow' });
    t.equal(stolen.statusCode, 400);
    t.equal(stolen.headers.location, undefined);
    // The pending request belongs to the browser session that started it: another one cannot even see it.
    t.equal((await stranger.get(`/consent?rid=${a.fields.rid}`)).statusCode, 400, 'consent page of another session');
    t.equal((await stranger.get(`/login?rid=${a.fields.rid}`)).statusCode, 400, 'login page of another session');
    t.not((await stranger.get('/login?rid=')).statusCode, 400, 'an empty rid is no request (no "expired" page), as in the form post');

    const res = await browser.post('/consent', { ...a.fields, decision: 'allow' });
    t.equal(res.statusCode, 303);
    t.equal(responseParams(res.headers.location as string).get('state'), 'A');
    const again = await browser.post('/consent', { ...a.fields, decision: 'allow' });
    t.equal(again.statusCode, 400, 'the same decision cannot be replayed for a second code');
    t.equal(again.headers.location, undefined);
  });

  t.test('remembered consent: the second authorization skips login (session) and consent', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const first = await loginAndConsent(browser, request(), user);
    t.ok(first.sawLogin && first.sawConsent);

    const second = await browser.get(request({ state: 'again' }));
    t.equal(second.statusCode, 303);
    const params = responseParams(second.headers.location as string);
    t.ok(params.get('code'), 'a code at once');
    t.equal(params.get('state'), 'again');
    t.equal(params.get('iss'), config.issuer);

    const elsewhere = await loginAndConsent(new InjectBrowser(app, nextIp()), request(), user);
    t.ok(elsewhere.sawLogin, 'a new browser signs in');
    t.notOk(elsewhere.sawConsent, 'but consent is remembered (in the database)');
    t.ok(elsewhere.params.get('code'));

    const wider = await loginAndConsent(browser, request({ scope: 'openid profile api:write' }), user);
    t.ok(wider.sawConsent, 'more scopes need consent again');
    t.notOk(wider.sawLogin);
  });

  t.test('prompt=none: login_required, consent_required, or an answer without any page', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    const anonymous = await browser.get(request({ prompt: 'none' }));
    t.equal(anonymous.statusCode, 303);
    let params = responseParams(anonymous.headers.location as string);
    t.equal(params.get('error'), 'login_required');
    t.equal(params.get('state'), 'st-1');
    t.equal(params.get('iss'), config.issuer);

    // Signed in, but no consent yet.
    const { fields } = await toLogin(t, browser);
    const login = await browser.post('/login', { ...fields, username: user.username, password: user.password });
    t.equal(login.statusCode, 303);
    params = responseParams((await browser.get(request({ prompt: 'none' }))).headers.location as string);
    t.equal(params.get('error'), 'consent_required');

    await loginAndConsent(browser, request(), user);
    params = responseParams((await browser.get(request({ prompt: 'none' }))).headers.location as string);
    t.ok(params.get('code'), 'signed in and consented: answered silently');
    t.equal(params.get('iss'), config.issuer);
  });

  t.test('prompt=login and prompt=consent ask again even when remembered', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    await loginAndConsent(browser, request(), user);
    const relogin = await loginAndConsent(browser, request({ prompt: 'login' }), user);
    t.ok(relogin.sawLogin, 'prompt=login shows the login page to a signed-in user');
    t.notOk(relogin.sawConsent);
    t.ok(relogin.params.get('code'));
    const reconsent = await loginAndConsent(browser, request({ prompt: 'consent' }), user);
    t.notOk(reconsent.sawLogin);
    t.ok(reconsent.sawConsent, 'prompt=consent shows the consent page again');
  });

  t.test('max_age: an older sign-in must be repeated', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    await loginAndConsent(browser, request(), user);
    clock += 120_000;
    try {
      const fresh = await loginAndConsent(browser, request({ max_age: '600' }), user);
      t.notOk(fresh.sawLogin, 'signed in 120 s ago satisfies max_age=600');
      const stale = await loginAndConsent(browser, request({ max_age: '60' }), user);
      t.ok(stale.sawLogin, 'signed in 120 s ago does not satisfy max_age=60');
      t.ok(stale.params.get('code'));
      // Signed in this very second: max_age=0 still asks again (it means prompt=login).
      const zero = await loginAndConsent(browser, request({ max_age: '0' }), user);
      t.ok(zero.sawLogin, 'max_age=0 always asks for the password');
      t.ok(zero.params.get('code'));
      clock += 120_000;
      const silent = responseParams((await browser.get(request({ prompt: 'none', max_age: '60' }))).headers.location as string);
      t.equal(silent.get('error'), 'login_required');
    } finally {
      clock = Date.now();
    }
  });

  t.test('logout: CSRF-protected; ends the session', async (t) => {
    const user = await seedUser(services);
    const browser = new InjectBrowser(app, nextIp());
    await loginAndConsent(browser, request(), user);
    const account = await browser.get('/account');
    t.match(account.body, 'You are signed in');
    const token = hiddenFields(account.body, '/logout').csrf_token;

    const forged = await browser.post('/logout', {});
    t.equal(forged.statusCode, 403);
    t.match((await browser.get('/account')).body, 'You are signed in', 'still signed in after a forged logout');
    // A cross-site form post carries no SameSite=Lax cookie: nothing to end, and no cookie is touched.
    const crossSite = await app.inject({ method: 'POST', url: '/logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
    t.equal(crossSite.statusCode, 303);
    t.equal(crossSite.headers['set-cookie'], undefined, 'no Set-Cookie that would sign the browser out');

    const res = await browser.post('/logout', { csrf_token: token });
    t.equal(res.statusCode, 303);
    t.equal(res.headers.location, '/login?signed_out=1');
    t.match(String(res.headers['set-cookie']), /sid=;/, 'the cookie is cleared');
    t.equal(sid(browser), undefined);
    const again = await loginAndConsent(browser, request(), user);
    t.ok(again.sawLogin, 'the next authorization needs a sign-in');
  });

  t.test('consent for a client no administrator registered: a notice naming the service, the redirect host, a loopback warning; none for admin clients', async (t) => {
    const user = await seedUser(services);
    const { client } = await services.clients.registerDynamic(
      { client_name: 'Self <i>made</i>', redirect_uris: ['http://127.0.0.1/cb', 'https://tool.example/cb', 'http://localhost:8976/cb'] },
      { allowConfidential: false },
    );
    const consentFor = async (clientId: string, redirectUri: string) => {
      const pkce = pkcePair();
      const path = authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid', code_challenge: pkce.challenge, code_challenge_method: 'S256' });
      const { page } = await toConsent(t, new InjectBrowser(app, nextIp()), user, path);
      return page.body;
    };
    const loopback = await consentFor(client.clientId, 'http://127.0.0.1:43210/cb');
    t.match(loopback, /This application was not registered by an administrator of localhost:3000\./);
    t.match(loopback, /It registered itself/);
    t.match(loopback, /will receive your answer at <code>127\.0\.0\.1:43210<\/code>/);
    t.match(loopback, /<p id="loopback-warning"><strong>This application runs on this computer<\/strong>/);
    t.match(loopback, /aria-labelledby="unregistered-client-title"/, 'the notice is a labelled region');
    t.match(loopback, /Self &lt;i&gt;made&lt;\/i&gt;/, 'escaped');
    t.notMatch(loopback, /<i>made<\/i>/);
    t.match(await consentFor(client.clientId, 'http://localhost:8976/cb'), /id="loopback-warning"/, 'localhost too');
    const remote = await consentFor(client.clientId, 'https://tool.example/cb');
    t.match(remote, /not registered by an administrator/);
    t.match(remote, /<code>tool\.example<\/code>/);
    t.notMatch(remote, /loopback-warning/);
    const admin = await consentFor(clientId, REDIRECT);
    t.notMatch(admin, /unregistered-client|not registered by an administrator|loopback-warning/, 'nothing for a client an administrator registered, loopback or not');
  });

  t.test('the login page links to registration only when it is open', async (t) => {
    const page = await new InjectBrowser(app, nextIp()).get('/login');
    t.match(page.body, 'href="/register"');
  });

  // One more app for the settings the shared one does not have.
  t.test('https issuer, closed registration: __Host- Secure cookie, HSTS, no registration link', async (t) => {
    const other = await buildTestApp(t, { env: { ISSUER: 'https://auth.example.com', REGISTRATION: 'closed' } });
    const res = await other.app.inject({ method: 'GET', url: '/login' });
    t.equal(res.statusCode, 200);
    const cookie = String(res.headers['set-cookie']);
    t.match(cookie, /^__Host-sid=/);
    t.match(cookie, /Secure/);
    t.match(cookie, /HttpOnly/);
    t.match(cookie, /SameSite=Lax/);
    t.match(cookie, /Path=\//);
    t.match(res.headers['strict-transport-security'], /max-age=/);
    t.match(res.headers['content-security-policy'], /upgrade-insecure-requests/);
    t.notMatch(res.body, 'href="/register"');
  });
});
