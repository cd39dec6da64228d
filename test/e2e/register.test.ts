/**
 * Self-registration (SPEC `GET,POST /register`): JSON and the HTML form, its
 * CSRF token, bad input shown next to the field with what was typed kept
 * (never the password), duplicates, closed registration, per-IP throttling.
 */
import t, { type Test } from 'tap';
import type { DbWithScripts } from '../../src/storage/db.js';
import { PASSWORD_RULE } from '../../src/users/password-policy.js';
import { buildTestApp, checkPassword, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';

const MAX_ATTEMPTS = 6;

t.test(`self-registration (${backendName})`, async (t) => {
  const { app, services, storage } = await buildTestApp(t, { env: { MAX_FAILED_ATTEMPTS: String(MAX_ATTEMPTS) } });
  let ipCounter = 0;
  // Every subtest registers from its own address so the per-IP allowance is its own.
  const freshIp = () => `203.0.113.${++ipCounter}`;

  /** Opens the form: the session cookie and the CSRF token in it. */
  const openForm = async (t: Test, remoteAddress: string) => {
    const res = await app.inject({ method: 'GET', url: '/register', remoteAddress });
    t.equal(res.statusCode, 200);
    const cookie = String(res.headers['set-cookie']).split(';')[0]!;
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(res.body)?.[1];
    t.ok(csrf, 'the form carries a CSRF token');
    return { cookie, csrf: csrf!, html: res.body, headers: res.headers };
  };
  const postForm = (fields: Record<string, string>, cookie: string | undefined, remoteAddress: string) =>
    app.inject({
      method: 'POST',
      url: '/register',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
      payload: new URLSearchParams(fields).toString(),
      remoteAddress,
    });
  const postJson = (payload: unknown, remoteAddress: string) => app.inject({ method: 'POST', url: '/register', payload: payload as object, remoteAddress });

  t.test('the form: fields, CSRF token, not cacheable', async (t) => {
    const { html, headers } = await openForm(t, freshIp());
    for (const name of ['username', 'password', 'email']) t.match(html, new RegExp(`name="${name}"`));
    t.match(html, /<form method="post" action="\/register"/);
    t.equal(headers['cache-control'], 'no-store');
    t.match(String(headers['set-cookie']), /HttpOnly/i);
  });

  t.test('the form shows the password rule next to the password field', async (t) => {
    const { html } = await openForm(t, freshIp());
    t.match(html, /<input type="password" id="password" name="password"[^>]*aria-describedby="password-hint"/, 'the field points at the rule');
    t.ok(html.includes(`<p class="muted" id="password-hint">${PASSWORD_RULE}</p>`), 'the rule, right under the field');
    t.match(PASSWORD_RULE, /At least 8 characters, and not easy to guess/);
  });

  t.test('JSON: weak passwords are refused with what is wrong and the rule; nothing is created', async (t) => {
    const cases: Array<[string, string, RegExp]> = [
      ['weak-common', 'password', /too easy to guess: it is a common password/],
      ['weak-digits', '12345678', /too easy to guess: it is a common password/],
      ['weak-spaces', '        ', /too easy to guess: it repeats characters or words/],
      ['weak-walk', 'zxcvbnm,./', /too easy to guess: it is a keyboard pattern/],
      ['weak-short', '𝒜𝒷𝒸𝒹𝑒𝒻𝑔', /too short \(7 of at least 8 characters\)/],
      ['frederick', 'frederick2024!', /too easy to guess: it is made from your username or email/],
      ['weak-email', 'quintessa.vale', /too easy to guess: it is made from your username or email/],
    ];
    for (const [username, password, why] of cases) {
      const res = await postJson({ username, password, email: username === 'weak-email' ? 'quintessa.vale@example.com' : undefined }, freshIp());
      t.equal(res.statusCode, 400, username);
      const body = res.json();
      t.equal(body.error, 'invalid_request', username);
      t.match(body.error_description, why, `${username}: what is wrong`);
      t.ok(body.error_description.endsWith(PASSWORD_RULE), `${username}: and the rule`);
      if (password !== 'password') t.notOk(res.body.includes(password), `${username}: the password is not echoed`);
      t.equal(await services.users.findByUsername(username), null, `${username}: not created`);
    }
    const res = await postJson({ username: 'margot', password: 'frederick2024!' }, freshIp());
    t.equal(res.statusCode, 201, "frederick's refused password is fine for margot: it was refused for holding the username");
  });

  t.test('JSON: 201 {id, username, email}; the user can sign in', async (t) => {
    const res = await postJson({ username: 'json-user', password: 'json password 1', email: 'json@example.com' }, freshIp());
    t.equal(res.statusCode, 201);
    const body = res.json();
    t.match(body, { id: String, username: 'json-user', email: 'json@example.com' });
    t.same(Object.keys(body).sort(), ['email', 'id', 'username'], 'nothing else (no hash, no roles)');
    const user = await checkPassword(services, 'json-user', 'json password 1');
    t.equal(user?.id, body.id);
    t.same(user?.roles, [], 'self-registered users get no roles');
    const noEmail = await postJson({ username: 'json-user-2', password: 'json password 2' }, freshIp());
    t.equal(noEmail.statusCode, 201);
    t.equal(noEmail.json().email, null);
  });

  t.test('JSON: duplicate username in any case is 409; bad input is 400; other content types 415', async (t) => {
    await seedUser(services, { username: 'taken-name' });
    const ip = freshIp();
    const dupe = await postJson({ username: 'Taken-Name', password: 'long enough' }, ip);
    t.equal(dupe.statusCode, 409);
    t.equal(dupe.json().error, 'conflict');
    const bad: unknown[] = [
      { username: 'ok-name', password: 'short' },
      { username: 'has space', password: 'long enough' },
      { password: 'long enough' },
      { username: 'extra-field', password: 'long enough', roles: ['admin'] },
    ];
    for (const payload of bad) {
      const res = await postJson(payload, freshIp());
      t.equal(res.statusCode, 400, JSON.stringify(payload));
      t.equal(res.json().error, 'invalid_request');
    }
    const text = await app.inject({ method: 'POST', url: '/register', headers: { 'content-type': 'text/plain' }, payload: '{"username":"t","password":"long enough"}', remoteAddress: freshIp() });
    t.equal(text.statusCode, 415);
    t.match(text.headers['content-type'], /^application\/json/, 'a body that is not the form gets JSON, not the HTML form');
    t.equal(text.json().error, 'invalid_request');
    t.equal(await services.users.findByUsername('extra-field'), null, 'nothing was created by refused requests');
  });

  t.test('the form: 201 page; the account exists', async (t) => {
    const ip = freshIp();
    const { cookie, csrf } = await openForm(t, ip);
    const res = await postForm({ username: 'form-user', password: 'form password 1', email: 'form@example.com', csrf_token: csrf }, cookie, ip);
    t.equal(res.statusCode, 201);
    t.match(res.headers['content-type'], /text\/html/);
    t.match(res.body, /form-user/);
    t.match(res.body, /href="\/login"/);
    t.ok(await checkPassword(services, 'form-user', 'form password 1'));
  });

  t.test('the form: refused without the session’s CSRF token', async (t) => {
    const ip = freshIp();
    const { cookie } = await openForm(t, ip);
    const other = await openForm(t, ip);
    const cases: Array<[string, Record<string, string>, string | undefined]> = [
      ['no token', { username: 'csrf-victim', password: 'long enough' }, cookie],
      ['another session’s token', { username: 'csrf-victim', password: 'long enough', csrf_token: other.csrf }, cookie],
      ['no session at all', { username: 'csrf-victim', password: 'long enough', csrf_token: other.csrf }, undefined],
    ];
    for (const [name, fields, sessionCookie] of cases) {
      const res = await postForm(fields, sessionCookie, ip);
      t.equal(res.statusCode, 403, name);
      t.match(res.body, /expired/, `${name}: says why`);
      t.match(res.body, /value="csrf-victim"/, `${name}: what was typed is kept`);
      t.notMatch(res.body, /long enough/, `${name}: never the password`);
    }
    t.equal(await services.users.findByUsername('csrf-victim'), null, 'no account was created');
  });

  t.test('the form: bad input is shown next to the field, typed values kept (escaped), password not', async (t) => {
    const ip = freshIp();
    const { cookie, csrf } = await openForm(t, ip);
    const res = await postForm({ username: '<script>x</script>', password: 'short', email: 'not an email', csrf_token: csrf }, cookie, ip);
    t.equal(res.statusCode, 400);
    t.match(res.body, /id="username-error"/);
    t.match(res.body, /id="password-error"/);
    t.match(res.body, /id="email-error"/);
    t.match(res.body, /value="&lt;script&gt;x&lt;\/script&gt;"/, 'kept and escaped');
    t.notMatch(res.body, /<script>/, 'never raw');
    t.match(res.body, /value="not an email"/);
    t.notMatch(res.body, /value="short"/, 'the password is not echoed');
    t.match(res.body, /id="password-error">This password is too short \(5 of at least 8 characters\)\.</, 'with every field checked at once');

    await seedUser(services, { username: 'form-taken' });
    const again = await openForm(t, ip);
    const dupe = await postForm({ username: 'FORM-TAKEN', password: 'long enough', csrf_token: again.csrf }, again.cookie, ip);
    t.equal(dupe.statusCode, 409);
    t.match(dupe.body, /username is taken/);
    t.match(dupe.body, /value="FORM-TAKEN"/);
  });

  t.test('the form: a weak password is shown next to the field, under the rule; never echoed', async (t) => {
    const ip = freshIp();
    const { cookie, csrf } = await openForm(t, ip);
    const res = await postForm({ username: 'frederick-form', password: 'frederick-form1', email: 'fred@example.com', csrf_token: csrf }, cookie, ip);
    t.equal(res.statusCode, 400);
    t.match(res.body, /id="password-error">This password is too easy to guess: it is made from your username or email\.</);
    t.match(res.body, /aria-describedby="password-hint password-error" aria-invalid="true"/);
    t.ok(res.body.includes(`id="password-hint">${PASSWORD_RULE}<`), 'the rule is still shown');
    t.match(res.body, /value="frederick-form"/, 'the username is kept');
    t.notOk(res.body.includes('frederick-form1'), 'the password is not echoed');
    t.equal(await services.users.findByUsername('frederick-form'), null);

    const again = await openForm(t, ip);
    const ok = await postForm({ username: 'frederick-form', password: 'tawny owl at midnight', csrf_token: again.csrf }, again.cookie, ip);
    t.equal(ok.statusCode, 201, 'a strong password is accepted');
    t.ok(await checkPassword(services, 'frederick-form', 'tawny owl at midnight'));
  });

  t.test('registrations are limited per IP (429 with Retry-After)', async (t) => {
    const ip = freshIp();
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const res = await postJson({ username: `burst${i}`, password: i % 2 ? 'x' : 'long enough' }, ip);
      t.not(res.statusCode, 429, `attempt ${i + 1} allowed`);
    }
    const res = await postJson({ username: 'burst-over', password: 'long enough' }, ip);
    t.equal(res.statusCode, 429);
    t.equal(res.json().error, 'too_many_requests');
    t.ok(Number(res.headers['retry-after']) > 0);
    const form = await postForm({ username: 'burst-form', password: 'long enough' }, undefined, ip);
    t.equal(form.statusCode, 429, 'the form too');
    t.match(form.headers['content-type'], /text\/html/);
    t.match(form.body, /value="burst-form"/);
    t.equal((await postJson({ username: 'elsewhere', password: 'long enough' }, freshIp())).statusCode, 201, 'other addresses unaffected');
  });

  t.test('REGISTRATION=closed: 403, JSON and page', async (t) => {
    const closed = await buildTestApp(t, {
      env: { REGISTRATION: 'closed' },
      db: storage.db as DbWithScripts,
      kv: storage.kv,
    });
    const page = await closed.app.inject({ method: 'GET', url: '/register' });
    t.equal(page.statusCode, 403);
    t.match(page.body, /closed/);
    t.notMatch(page.body, /<form/);
    const json = await closed.app.inject({ method: 'POST', url: '/register', payload: { username: 'shut-out', password: 'long enough' } });
    t.equal(json.statusCode, 403);
    t.match(json.json(), { error: 'forbidden', error_description: /closed/ });
    const form = await closed.app.inject({
      method: 'POST',
      url: '/register',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'username=shut-out&password=long+enough',
    });
    t.equal(form.statusCode, 403);
    t.match(form.body, /closed/);
    t.equal(await services.users.findByUsername('shut-out'), null);
  });
});
