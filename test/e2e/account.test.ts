/**
 * The account page's own forms: change the password (the current one checked
 * through the throttled sign-in path, the new one through the password rule;
 * other sessions and refresh tokens end, this browser stays signed in), revoke
 * an app (its refresh tokens stop working), sign out another session or every
 * other one. Every form refuses a post without the session's CSRF token.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { hiddenFields, InjectBrowser } from '../helpers/browser-flow.js';
import { basic, postForm } from '../helpers/tokens.js';

t.test(`the account page: password, apps, sessions (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t, { env: { MAX_FAILED_ATTEMPTS: '3' } });
  const client = await seedClient(services, { client_name: 'Photo app', grant_types: ['password', 'refresh_token'], scope: 'api:read offline_access' });
  const other = await seedClient(services, { client_name: 'Notes app', grant_types: ['password', 'refresh_token'], scope: 'api:read offline_access' });

  /** A browser signed in as `user` from `address`, with a user agent. */
  const signedIn = async (user: { username: string; password: string }, address = '127.0.0.1', agent = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0') => {
    const browser = new InjectBrowser(app, address);
    const form = await browser.get('/login', { 'user-agent': agent });
    const res = await browser.post('/login', { ...hiddenFields(form.body, '/login'), username: user.username, password: user.password });
    t.equal(res.headers.location, '/account');
    return browser;
  };
  const accountPage = async (browser: InjectBrowser) => {
    const res = await browser.get('/account');
    t.equal(res.statusCode, 200);
    return res.body;
  };
  const isSignedIn = async (browser: InjectBrowser) => (await browser.get('/account')).statusCode === 200;
  const csrfOf = (html: string) => hiddenFields(html, '/logout').csrf_token!;
  const passwordGrant = async (clientId: string, secret: string, user: { username: string; password: string }) => {
    const res = await postForm(app, '/token', { grant_type: 'password', username: user.username, password: user.password, scope: 'api:read offline_access' }, { authorization: basic(clientId, secret) });
    t.equal(res.statusCode, 200);
    return (res.json() as { refresh_token: string }).refresh_token;
  };
  const refreshWorks = async (clientId: string, secret: string, refreshToken: string) =>
    (await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: basic(clientId, secret) })).statusCode === 200;

  t.test('change password: wrong current refused and throttled, weak new refused, success ends the rest and keeps this browser', async (t) => {
    const user = await seedUser(services, { username: 'pat' });
    const here = await signedIn(user);
    const elsewhere = await signedIn(user, '192.0.2.7', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1');
    const refreshToken = await passwordGrant(client.clientId, client.clientSecret!, user);
    const page = await accountPage(here);
    t.match(page, 'Change password');
    t.match(page, 'Safari on iOS', 'the other session, by user agent');
    t.match(page, '192.0.2.7');
    t.match(page, 'This browser');
    const csrf = csrfOf(page);

    const wrong = await here.post('/account/password', { csrf_token: csrf, current_password: 'not my password', new_password: 'a brand new passphrase 42' });
    t.equal(wrong.statusCode, 400);
    t.match(wrong.body, /role="alert"[\s\S]*That is not your current password/);
    t.match(wrong.body, 'aria-invalid="true"');

    const weak = await here.post('/account/password', { csrf_token: csrf, current_password: user.password, new_password: 'password1' });
    t.equal(weak.statusCode, 400, 'the password rule applies');
    t.match(weak.body, 'id="new_password-error"');

    const forged = await here.post('/account/password', { csrf_token: 'x'.repeat(43), current_password: user.password, new_password: 'a brand new passphrase 42' });
    t.equal(forged.statusCode, 403, 'no CSRF token: nothing changes');

    const ok = await here.post('/account/password', { csrf_token: csrf, current_password: user.password, new_password: 'a brand new passphrase 42' });
    t.equal(ok.statusCode, 303);
    t.equal(ok.headers.location, '/account?notice=password_changed');
    t.match((await here.get(ok.headers.location as string)).body, 'Your password has been changed', 'this browser is still signed in');
    t.notOk(await isSignedIn(elsewhere), 'the other session is over');
    t.notOk(await refreshWorks(client.clientId, client.clientSecret!, refreshToken), 'the refresh token is revoked');
    t.notMatch(await accountPage(here), 'Safari on iOS', 'and gone from the list');

    const events = await services.audit.list({ subject: user.id } as never, { limit: 20, offset: 0 });
    const types = events.events.map((e) => e.type);
    t.ok(types.includes('user.password_changed'), 'audit: password changed');
    t.ok(types.includes('user.sessions_ended'), 'audit: sessions ended');

    // Wrong current passwords are counted like any sign-in (MAX_FAILED_ATTEMPTS=3 per account and address; one used above).
    const fresh = csrfOf(await accountPage(here));
    for (let i = 0; i < 2; i++) t.equal((await here.post('/account/password', { csrf_token: fresh, current_password: `guess ${i}`, new_password: 'another new passphrase 7' })).statusCode, 400);
    const throttled = await here.post('/account/password', { csrf_token: fresh, current_password: 'a brand new passphrase 42', new_password: 'another new passphrase 7' });
    t.equal(throttled.statusCode, 429, 'throttled even with the right password');
    t.ok(throttled.headers['retry-after']);
    t.match(throttled.body, 'Too many wrong passwords');
  });

  t.test('revoke an app: its consent and refresh tokens end, other apps keep theirs', async (t) => {
    const user = await seedUser(services, { username: 'ria' });
    const browser = await signedIn(user);
    const revoked = await passwordGrant(client.clientId, client.clientSecret!, user);
    const kept = await passwordGrant(other.clientId, other.clientSecret!, user);
    await services.consents.grant(user.id, client.clientId, ['api:read'], [`${services.config.issuer}/api`]);
    await services.consents.grant(user.id, other.clientId, ['api:read'], [`${services.config.issuer}/api`]);
    const page = await accountPage(browser);
    t.match(page, 'Photo app');
    t.match(page, 'Notes app');

    const forged = await browser.post('/account/apps/revoke', { client_id: client.clientId });
    t.equal(forged.statusCode, 403, 'no CSRF token');

    const res = await browser.post('/account/apps/revoke', { csrf_token: csrfOf(page), client_id: client.clientId });
    t.equal(res.statusCode, 303);
    t.equal(res.headers.location, '/account?notice=app_revoked');
    t.equal(await services.consents.find(user.id, client.clientId), null);
    const after = await accountPage(browser);
    t.notMatch(after, 'Photo app');
    t.match(after, 'Notes app');
    t.notOk(await refreshWorks(client.clientId, client.clientSecret!, revoked), "the revoked app's refresh token is refused");
    t.ok(await refreshWorks(other.clientId, other.clientSecret!, kept), "the other app's still works");

    const again = await browser.post('/account/apps/revoke', { csrf_token: csrfOf(after), client_id: client.clientId });
    t.equal(again.statusCode, 400, 'nothing left to revoke');
  });

  t.test('sign out one other session, then everywhere else; never another user\'s session', async (t) => {
    const user = await seedUser(services, { username: 'sol' });
    const mallory = await seedUser(services, { username: 'mallory' });
    const here = await signedIn(user);
    const phone = await signedIn(user, '198.51.100.1', 'Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile');
    const laptop = await signedIn(user, '198.51.100.2', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0');
    const tablet = await signedIn(user, '198.51.100.3', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Firefox/128.0');
    const stranger = await signedIn(mallory);

    const page = await accountPage(here);
    const handles = [...page.matchAll(/name="session" value="([^"]+)"/g)].map((m) => m[1]!);
    t.equal(handles.length, 3, 'the three other sessions, each with a sign-out form');
    t.match(page, 'Chrome on Android');
    t.match(page, 'Firefox on macOS');

    const strangerHandle = services.sessions.handleOf({ id: stranger.cookies.get('sid')! });
    const notMine = await here.post('/account/sessions/end', { csrf_token: csrfOf(page), session: strangerHandle });
    t.equal(notMine.statusCode, 400, "another user's session is not ours to end");
    t.ok(await isSignedIn(stranger));

    const forged = await here.post('/account/sessions/end', { session: handles[0]! });
    t.equal(forged.statusCode, 403);

    const phoneHandle = services.sessions.handleOf({ id: phone.cookies.get('sid')! });
    const one = await here.post('/account/sessions/end', { csrf_token: csrfOf(page), session: phoneHandle });
    t.equal(one.headers.location, '/account?notice=session_ended');
    t.notOk(await isSignedIn(phone), 'that session is over');
    t.ok(await isSignedIn(laptop), 'the others are not');

    const forgedAll = await here.post('/account/sessions/end-others', { csrf_token: 'nope' });
    t.equal(forgedAll.statusCode, 403);
    t.ok(await isSignedIn(laptop));

    const all = await here.post('/account/sessions/end-others', { csrf_token: csrfOf(await accountPage(here)) });
    t.equal(all.headers.location, '/account?notice=others_ended');
    t.notOk(await isSignedIn(laptop));
    t.notOk(await isSignedIn(tablet));
    t.ok(await isSignedIn(here), 'this browser stays');
    t.ok(await isSignedIn(stranger), "another user's session is untouched");
    t.notMatch(await accountPage(here), 'name="session"', 'no other session listed');

    const own = await here.post('/account/sessions/end', { csrf_token: csrfOf(await accountPage(here)), session: services.sessions.handleOf({ id: here.cookies.get('sid')! }) });
    t.equal(own.headers.location, '/login?signed_out=1', "ending this browser's own session signs it out");
    t.notOk(await isSignedIn(here));
  });

  t.test('without SMTP there is no forgot-password: the routes answer 404, the login page has no link', async (t) => {
    t.equal((await app.inject('/forgot-password')).statusCode, 404);
    t.equal((await app.inject('/reset-password?token=x')).statusCode, 404);
    t.equal((await app.inject({ method: 'POST', url: '/forgot-password', payload: 'email=a@b.c', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).statusCode, 404);
    t.notMatch((await app.inject('/login')).body, 'Forgot your password?');
  });

  t.test('signed out, every account form post goes to sign in and comes back to the page it was on', async (t) => {
    const posts: Array<[string, string]> = [
      ['/account/password', '/account'],
      ['/account/apps/revoke', '/account'],
      ['/account/sessions/end', '/account'],
      ['/account/sessions/end-others', '/account'],
      ['/account/authenticator', '/account/authenticator'],
      ['/account/authenticator/recovery-codes', '/account'],
      ['/account/authenticator/remove', '/account'],
      ['/account/linked-providers/remove', '/account'],
      ['/account/passkeys/some-id/remove', '/account'],
    ];
    for (const [action, back] of posts) {
      // Without a cookie, and with a session that never signed in (its own token sent): both are asked to sign in.
      const anonymous = new InjectBrowser(app);
      const withSession = new InjectBrowser(app);
      const session = await services.sessions.create();
      withSession.cookies.set('sid', session.id);
      for (const [how, browser, token] of [
        ['no session', anonymous, 'x'],
        ['a session not signed in', withSession, session.csrfToken],
      ] as const) {
        const res = await browser.post(action, { csrf_token: token });
        t.equal(res.statusCode, 303, `${action}, ${how}: redirected`);
        t.equal(res.headers.location, `/login?next=${encodeURIComponent(back)}`, `${action}, ${how}: to sign in, then back`);
      }
      // The CSRF rule comes first: that session with another token gets the forged-form page.
      t.equal((await withSession.post(action, { csrf_token: 'x' })).statusCode, 403, `${action}: a wrong token is refused first`);
    }
  });
});
