/**
 * "Forgot password" against a real SMTP server started here: the same answer
 * for an unknown address (and no mail), a link under the issuer that works
 * once, refused when reused or after 30 minutes (the app's clock moved), and
 * using it ends the account's sessions and refresh tokens. (Without SMTP:
 * account.test.ts, whose app has none.)
 */
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { buildTestApp, checkPassword, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { hiddenFields, InjectBrowser } from '../helpers/browser-flow.js';
import { startTestSmtp } from '../helpers/smtp.js';
import { basic, postForm } from '../helpers/tokens.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const ISSUER = 'http://localhost:3000';
const noChromium = chromiumSkip(t);

t.test(`forgot password over SMTP (${backendName})`, async (t) => {
  const smtp = await startTestSmtp(t);
  let now = Date.now();
  const { app, services } = await buildTestApp(t, { now: () => now, env: { SMTP_URL: smtp.url, SMTP_FROM: 'Sign-in <auth@example.test>', REQUIRE_EMAIL_VERIFICATION: 'true' } });
  const user = await seedUser(services, { username: 'forgetful', email: 'Forgetful@Example.test' });
  const client = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'api:read offline_access' });

  /** Asks for a reset link from a fresh browser; returns the answer page. */
  const ask = async (email: string, address = '127.0.0.1') => {
    const browser = new InjectBrowser(app, address);
    const form = await browser.get('/forgot-password');
    t.equal(form.statusCode, 200);
    t.match(form.body, /<input type="email" id="email" name="email"/);
    return browser.post('/forgot-password', { ...hiddenFields(form.body, '/forgot-password'), email });
  };
  /** The reset link of a mail, as a path on this server (checked to be under the issuer). */
  const linkOf = (text: string) => {
    const match = /(http:\/\/localhost:3000\/reset-password\?token=[\w-]+)/.exec(text);
    t.ok(match, 'the mail carries a link under the issuer');
    return match![1]!.slice(ISSUER.length);
  };
  const reset = async (path: string, password: string) => {
    const browser = new InjectBrowser(app);
    const form = await browser.get(path);
    if (form.statusCode !== 200) return form;
    t.match(form.body, /<input type="password" id="password" name="password"/);
    return browser.post('/reset-password', { ...hiddenFields(form.body, '/reset-password'), password });
  };

  t.test('the login page links to the form', async (t) => {
    const login = await new InjectBrowser(app).get('/login');
    t.match(login.body, '<a href="/forgot-password">Forgot your password?</a>');
  });

  t.test('the same answer for an unknown address, and no mail; a known one gets a mail', async (t) => {
    const unknown = await ask('nobody@example.test');
    const known = await ask('forgetful@example.test');
    t.equal(unknown.statusCode, 200);
    t.equal(known.statusCode, 200);
    const strip = (html: string, email: string) => html.replace(email, 'EMAIL');
    t.equal(strip(unknown.body, 'nobody@example.test'), strip(known.body, 'forgetful@example.test'), 'the pages are identical but for the address typed');
    const mail = await smtp.nextMail();
    t.same(mail.to.map((a) => a.toLowerCase()), ['forgetful@example.test'], 'the first mail is the known address: none went to the unknown one');
    t.match(mail.text, 'forgetful');
    t.match(mail.text, /From: "?Sign-in"? <auth@example\.test>/);
    linkOf(mail.text);
  });

  t.test('the link works once; it ends sessions and refresh tokens; a reused link is refused', async (t) => {
    const browser = new InjectBrowser(app, '203.0.113.9');
    const login = await browser.get('/login');
    await browser.post('/login', { ...hiddenFields(login.body, '/login'), username: user.username, password: user.password });
    t.equal((await browser.get('/account')).statusCode, 200, 'signed in somewhere');
    const token = await postForm(app, '/token', { grant_type: 'password', username: user.username, password: user.password, scope: 'api:read offline_access' }, { authorization: basic(client.clientId, client.clientSecret!) });
    const refreshToken = (token.json() as { refresh_token: string }).refresh_token;

    await ask('forgetful@example.test');
    const path = linkOf((await smtp.nextMail()).text);

    const weak = await reset(path, 'password');
    t.equal(weak.statusCode, 400, 'the password rule applies');
    t.match(weak.body, 'role="alert"');

    const forged = await new InjectBrowser(app).post('/reset-password', { token: new URL(path, ISSUER).searchParams.get('token')!, password: 'a fresh start 2026!' });
    t.equal(forged.statusCode, 403, 'no CSRF token');

    const done = await reset(path, 'a fresh start 2026!');
    t.equal(done.statusCode, 200);
    t.match(done.body, 'has been changed');
    t.ok(await checkPassword(services, user.username, 'a fresh start 2026!'), 'the new password works');
    t.equal((await browser.get('/account')).statusCode, 303, 'the session is over');
    const refreshed = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: basic(client.clientId, client.clientSecret!) });
    t.equal(refreshed.statusCode, 400, 'the refresh token is revoked');

    const reused = await reset(path, 'yet another passphrase 9');
    t.equal(reused.statusCode, 400, 'a used link is refused');
    t.match(reused.body, 'not valid any more');
    t.notOk(await checkPassword(services, user.username, 'yet another passphrase 9'));

    const events = await services.audit.list({ type: 'user.password_changed' } as never, { limit: 10, offset: 0 });
    t.ok(events.events.some((e) => e.subject?.id === user.id && e.actor.id === user.id), 'audit: the user changed their password');
  });

  t.test('a link older than 30 minutes is refused', async (t) => {
    await ask('forgetful@example.test');
    const path = linkOf((await smtp.nextMail()).text);
    now += 30 * 60 * 1000 + 1;
    const late = await reset(path, 'too late for this 123');
    t.equal(late.statusCode, 400);
    t.match(late.body, 'not valid any more');
    t.notOk(await checkPassword(services, user.username, 'too late for this 123'));
  });

  t.test('a link mailed to an address the account no longer has is refused', async (t) => {
    const moving = await seedUser(services, { username: 'moving', email: 'old@example.test' });
    await ask('old@example.test');
    const path = linkOf((await smtp.nextMail()).text);
    t.equal((await new InjectBrowser(app).get(path)).statusCode, 200, 'valid while the address stands');
    await services.users.update(moving.id, { email: 'new@example.test' });
    const late = await reset(path, 'taken over by the old mailbox 9');
    t.equal(late.statusCode, 400);
    t.notOk(await checkPassword(services, moving.username, 'taken over by the old mailbox 9'));
  });

  t.test('an unknown or malformed token is refused', async (t) => {
    t.equal((await reset('/reset-password?token=' + 'A'.repeat(43), 'whatever 12345 abc')).statusCode, 400);
    t.equal((await reset('/reset-password', 'whatever 12345 abc')).statusCode, 400);
  });

  t.test('REQUIRE_EMAIL_VERIFICATION: registration needs an address, a mailed link verifies it once, UserInfo tells the truth', async (t) => {
    const register = (body: Record<string, string>) => app.inject({ method: 'POST', url: '/register', payload: body, remoteAddress: '192.0.2.50' });
    t.equal((await register({ username: 'noaddress', password: 'a good long passphrase 1' })).statusCode, 400, 'an address is required');
    const created = await register({ username: 'verifier', password: 'a good long passphrase 1', email: 'verifier@example.test' });
    t.equal(created.statusCode, 201);
    const mail = await smtp.nextMail();
    t.same(mail.to, ['verifier@example.test']);
    const match = /http:\/\/localhost:3000(\/verify-email\?token=[\w-]+)/.exec(mail.text);
    t.ok(match, 'a verification link under the issuer');

    const openid = await seedClient(services, { grant_types: ['password'], scope: 'openid email' });
    const emailVerified = async () => {
      const token = await postForm(app, '/token', { grant_type: 'password', username: 'verifier', password: 'a good long passphrase 1', scope: 'openid email' }, { authorization: basic(openid.clientId, openid.clientSecret!) });
      const info = await app.inject({ url: '/userinfo', headers: { authorization: `Bearer ${(token.json() as { access_token: string }).access_token}` } });
      return (info.json() as { email_verified: boolean }).email_verified;
    };
    t.equal(await emailVerified(), false, 'not verified before the link');
    // Opening the link (what a mail scanner does to every link) changes nothing: the address
    // would link an upstream sign-in to this account, so only the person's click verifies it.
    const browser = new InjectBrowser(app);
    const opened = await browser.get(match![1]!);
    t.equal(opened.statusCode, 200);
    t.match(opened.body, '<strong>verifier@example.test</strong>');
    t.match(opened.body, '<button type="submit">Verify my email address</button>');
    t.equal((await app.inject(match![1]!)).statusCode, 200, 'opened again: still usable');
    t.equal(await emailVerified(), false, 'opening the link verifies nothing');
    const fields = hiddenFields(opened.body, '/verify-email');
    t.equal((await new InjectBrowser(app).post('/verify-email', { token: fields.token! })).statusCode, 403, 'no CSRF token');
    const verified = await browser.post('/verify-email', fields);
    t.equal(verified.statusCode, 200);
    t.match(verified.body, 'is verified');
    t.equal(await emailVerified(), true, 'verified after the button');
    t.equal((await browser.post('/verify-email', fields)).statusCode, 400, 'the link works once');
    t.equal((await app.inject(match![1]!)).statusCode, 400, 'and then opens nothing');

    const id = (created.json() as { id: string }).id;
    await services.users.update(id, { email: 'elsewhere@example.test' });
    t.equal(await emailVerified(), false, 'a new address is not verified');
  });

  t.test('requests are throttled per address', async (t) => {
    let last;
    for (let i = 0; i <= services.config.maxFailedAttempts; i++) last = await ask(`someone${i}@example.test`, '198.51.100.77');
    t.equal(last!.statusCode, 429);
    t.ok(last!.headers['retry-after']);
  });

  t.test(
    'in Chromium: forgot password, the mail, a new password, signed in with it (no script, no CSP violation)',
    { skip: noChromium },
    async (t) => {
      const person = await seedUser(services, { username: 'browsing', email: 'browsing@example.test' });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const browser = await launchChromium();
      t.teardown(() => browser.close());
      const page = await (await browser.newContext()).newPage();
      page.setDefaultTimeout(10_000);
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });

      await page.goto(`${base}/login`);
      await page.click('text=Forgot your password?');
      await page.fill('#email', 'browsing@example.test');
      await page.click('button[type=submit]');
      await page.waitForSelector('text=a link to choose a new password is on its way');
      const path = linkOf((await smtp.nextMail()).text);

      await page.goto(base + path);
      await page.fill('#password', 'chromium chose this one 77');
      await page.click('button[type=submit]');
      await page.waitForSelector('text=has been changed');
      await page.click('text=Sign in');
      await page.fill('#username', person.username);
      await page.fill('#password', 'chromium chose this one 77');
      await Promise.all([page.waitForURL(/\/account$/), page.click('button[type=submit]')]);
      t.match(await page.textContent('main'), 'You are signed in as browsing');
      t.same(violations, [], 'no CSP violation on the way');
    },
  );
});
