/**
 * The admin console in a real browser (headless Chromium through
 * playwright-core): sign in, register a client and see its secret once,
 * rotate it, edit it, delete it, change a user's roles and disable them.
 * Security properties (CSRF, role check, throttling, escaping) are checked
 * at the HTTP level on the same app.
 */
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { verifyClientSecret } from '../../src/clients/secret.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { buildTestApp, enrolSecondFactor, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { hiddenFields, InjectBrowser } from '../helpers/browser-flow.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const PASSWORD = 'correct horse battery staple';

const { app, services } = await buildTestApp(t, { env: { MAX_FAILED_ATTEMPTS: '3' } });
await app.listen({ port: 0, host: '127.0.0.1' });
const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
const root = await seedUser(services, { username: 'root', password: PASSWORD, roles: ['admin'] });
const bob = await seedUser(services, { username: 'bob', password: PASSWORD, email: 'bob@example.com' });

const noChromium = chromiumSkip(t);

t.test(`admin console in Chromium (${backendName})`, { skip: noChromium }, async (t) => {
  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page: Page = await context.newPage();
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });

  await t.test('an anonymous visit is sent to sign-in; a wrong password keeps the username', async (t) => {
    await page.goto(`${origin}/admin`);
    t.match(page.url(), /\/admin\/console\/sign-in\?next=%2Fadmin$/);
    await page.fill('#username', 'root');
    await page.fill('#password', 'not the password');
    await page.click('button:has-text("Sign in")');
    t.equal(await page.textContent('.error'), 'Wrong username or password.');
    t.equal(await page.inputValue('#username'), 'root', 'username kept');
    t.equal(await page.inputValue('#password'), '', 'password not echoed');
  });

  await t.test('an admin signs in and lands on the dashboard', async (t) => {
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(`${origin}/admin`), page.click('button:has-text("Sign in")')]);
    t.equal(await page.textContent('h1'), 'Dashboard');
    t.match(await page.textContent('.admin-nav'), /Signed in as root/);
  });

  let clientId = '';
  let firstSecret = '';
  await t.test('register a client: bad redirect URI is shown next to the field, input kept', async (t) => {
    await page.click('a:has-text("Register a client")');
    await page.fill('#client_name', 'Billing app');
    await page.fill('#redirect_uris', 'http://billing.example/callback');
    await page.click('button:has-text("Register client")');
    t.match(await page.textContent('#redirect_uris-error'), /https/);
    t.equal(await page.inputValue('#client_name'), 'Billing app');
    t.equal(await page.inputValue('#redirect_uris'), 'http://billing.example/callback');
    await page.fill('#redirect_uris', 'https://billing.example/callback');
    await page.click('button:has-text("Register client")');
    t.equal(await page.textContent('h1'), 'Client registered');
    clientId = (await page.textContent('#client-id'))!.trim();
    firstSecret = (await page.textContent('#client-secret'))!.trim();
    const stored = await services.clients.get(clientId);
    t.equal(stored.clientName, 'Billing app');
    t.same(stored.redirectUris, ['https://billing.example/callback']);
    t.ok(verifyClientSecret(firstSecret, stored.clientSecretHash!), 'the secret shown is the one stored (hashed)');
  });

  await t.test('the copy button puts the secret on the clipboard', async (t) => {
    await page.click('button[data-copy="client-secret"]');
    await page.waitForSelector('.copy-status:has-text("Copied")');
    t.equal(await page.evaluate('navigator.clipboard.readText()'), firstSecret);
  });

  await t.test('the secret is shown only once', async (t) => {
    await page.click('a:has-text("Client settings")');
    t.equal(await page.textContent('h1'), 'Client Billing app');
    t.notOk((await page.content()).includes(firstSecret), 'the settings page does not contain the secret');
  });

  await t.test('rotate the secret: a new one is shown, the old one stops working', async (t) => {
    await page.click('button:has-text("Rotate secret")');
    t.equal(await page.textContent('h1'), 'New client secret');
    const secret = (await page.textContent('#client-secret'))!.trim();
    t.not(secret, firstSecret);
    const stored = await services.clients.get(clientId);
    t.ok(verifyClientSecret(secret, stored.clientSecretHash!));
    t.notOk(verifyClientSecret(firstSecret, stored.clientSecretHash!));
  });

  await t.test('edit redirect URIs and grants', async (t) => {
    await page.goto(`${origin}/admin/console/clients/${clientId}`);
    await page.fill('#redirect_uris', 'https://billing.example/callback\nhttps://billing.example/other');
    await page.check('input[name="grant_types"][value="client_credentials"]');
    await page.uncheck('input[name="grant_types"][value="refresh_token"]');
    await page.click('button:has-text("Save changes")');
    t.equal(await page.textContent('.notice'), 'Changes saved.');
    const stored = await services.clients.get(clientId);
    t.same(stored.redirectUris, ['https://billing.example/callback', 'https://billing.example/other']);
    t.same([...stored.grantTypes].sort(), ['authorization_code', 'client_credentials']);
  });

  await t.test('edit post-logout redirect URIs: a bad one is shown next to the field; cleared by emptying it', async (t) => {
    await page.goto(`${origin}/admin/console/clients/${clientId}`);
    await page.fill('#post_logout_redirect_uris', 'https://billing.example/bye#fragment');
    await page.click('button:has-text("Save changes")');
    t.match(await page.textContent('#post_logout_redirect_uris-error'), /post-logout redirect URI .* fragment/);
    t.same((await services.clients.get(clientId)).postLogoutRedirectUris, [], 'nothing saved');
    await page.fill('#post_logout_redirect_uris', 'https://billing.example/bye\nhttps://billing.example/signed-out');
    await page.click('button:has-text("Save changes")');
    t.equal(await page.textContent('.notice'), 'Changes saved.');
    t.same((await services.clients.get(clientId)).postLogoutRedirectUris, ['https://billing.example/bye', 'https://billing.example/signed-out']);
    t.equal(await page.inputValue('#post_logout_redirect_uris'), 'https://billing.example/bye\nhttps://billing.example/signed-out', 'shown again');
    await page.fill('#post_logout_redirect_uris', '');
    await page.click('button:has-text("Save changes")');
    t.same((await services.clients.get(clientId)).postLogoutRedirectUris, []);
  });

  await t.test('edit the back-channel logout URI: a bad one is shown next to the field; cleared by emptying it', async (t) => {
    await page.goto(`${origin}/admin/console/clients/${clientId}`);
    await page.fill('#backchannel_logout_uri', 'https://billing.example/bc#fragment');
    await page.click('button:has-text("Save changes")');
    t.match(await page.textContent('#backchannel_logout_uri-error'), /back-channel logout URI .* fragment/);
    t.equal((await services.clients.get(clientId)).backchannelLogoutUri, null, 'nothing saved');
    await page.fill('#backchannel_logout_uri', 'http://billing.internal:8080/bc');
    await page.check('input[name="backchannel_logout_session_required"]');
    await page.click('button:has-text("Save changes")');
    t.equal(await page.textContent('.notice'), 'Changes saved.');
    const saved = await services.clients.get(clientId);
    t.equal(saved.backchannelLogoutUri, 'http://billing.internal:8080/bc');
    t.equal(saved.backchannelLogoutSessionRequired, true);
    t.equal(await page.inputValue('#backchannel_logout_uri'), 'http://billing.internal:8080/bc', 'shown again');
    await page.fill('#backchannel_logout_uri', '');
    await page.uncheck('input[name="backchannel_logout_session_required"]');
    await page.click('button:has-text("Save changes")');
    const cleared = await services.clients.get(clientId);
    t.equal(cleared.backchannelLogoutUri, null);
    t.equal(cleared.backchannelLogoutSessionRequired, false);
  });

  await t.test('layout: the card stays at the top, so the navigation never moves; client ids never wrap', async (t) => {
    const navTop = async (path: string) => {
      await page.goto(`${origin}${path}`);
      return (await page.locator('.admin-nav').boundingBox())!.y;
    };
    // Pages of very different heights: a short dashboard, a list, the long metrics page.
    const tops = [await navTop('/admin'), await navTop('/admin/console/clients'), await navTop(`/admin/console/clients/${clientId}`), await navTop('/admin/console/metrics')];
    t.ok(tops.every((y) => y === tops[0]), `the navigation at the same height on every page (${tops.join(', ')})`);

    // A narrow window: a client id is one line (one box), however little room there is.
    await page.setViewportSize({ width: 420, height: 800 });
    try {
      const lines = async (selector: string) => page.locator(selector).first().evaluate((el) => el.getClientRects().length);
      await page.goto(`${origin}/admin/console/clients`);
      t.equal(await lines(`td code:has-text("${clientId}")`), 1, 'in the list of clients');
      await page.goto(`${origin}/admin/console/clients/${clientId}`);
      t.equal(await lines(`.lead code:has-text("${clientId}")`), 1, "on the client's page");
    } finally {
      await page.setViewportSize({ width: 1280, height: 720 });
    }
  });

  await t.test("the dashboard's metrics link shows a signed-in admin the metrics, with no Basic prompt", async (t) => {
    await page.goto(`${origin}/admin`);
    const statuses: number[] = [];
    const onResponse = (r: { status(): number }) => statuses.push(r.status());
    page.on('response', onResponse);
    await Promise.all([page.waitForURL(`${origin}/admin/console/metrics`), page.click('main ul.links a:has-text("Metrics")')]);
    page.off('response', onResponse);
    t.notOk(statuses.includes(401), 'nothing answered 401 (which makes the browser ask for a password)');
    t.equal(await page.textContent('h1'), 'Metrics');
    t.match(await page.textContent('pre.metrics'), /^http_requests_total\{/m, "this instance's Prometheus metrics");
  });

  await t.test('delete asks first, then deletes', async (t) => {
    await page.goto(`${origin}/admin/console/clients/${clientId}`);
    await page.click('a:has-text("Delete client")');
    t.match(await page.textContent('h1'), /Delete “Billing app”\?/);
    t.ok(await services.clients.get(clientId), 'nothing deleted by the confirmation page');
    await page.click('button:has-text("Delete client")');
    t.match(page.url(), /\/admin\/console\/clients$/);
    t.match(await page.textContent('.notice'), /was deleted/);
    const gone = await services.clients.get(clientId).then(
      () => null,
      (err: { error?: string }) => err.error,
    );
    t.equal(gone, 'not_found');
  });

  await t.test("change a user's roles; a bad role is shown next to the field, input kept", async (t) => {
    await page.click('.admin-nav a:has-text("Users")');
    await page.click('a:has-text("bob")');
    await page.fill('#roles', 'support Bad!Role');
    await page.click('button:has-text("Save roles")');
    t.match(await page.textContent('#roles-error'), /Bad!Role/);
    t.equal(await page.inputValue('#roles'), 'support Bad!Role');
    await page.fill('#roles', 'support admin');
    await page.click('button:has-text("Save roles")');
    t.equal(await page.textContent('.notice'), 'Roles saved.');
    t.same((await services.users.get(bob.id)).roles, ['admin', 'support']);
  });

  await t.test('disable and enable a user', async (t) => {
    await page.click('button:has-text("Disable account")');
    t.match(await page.textContent('.notice'), /disabled/);
    t.equal((await services.users.get(bob.id)).disabled, true);
    await page.click('button:has-text("Enable account")');
    t.equal((await services.users.get(bob.id)).disabled, false);
  });

  await t.test("remove a user's lost authenticator app", async (t) => {
    await enrolSecondFactor(services, bob.id);
    await page.reload();
    t.match(await page.textContent('#second-factor-title + p'), /Authenticator app set up; recovery codes left: 10\./);
    await page.click('button:has-text("Remove authenticator app")');
    t.match(await page.textContent('.notice'), /Authenticator app removed/);
    t.notOk(await services.secondFactor.isEnrolled(bob.id));
    t.equal(await page.locator('button:has-text("Remove authenticator app")').count(), 0, 'nothing left to remove');
  });

  await t.test('sign out ends the session', async (t) => {
    await page.click('button:has-text("Sign out")');
    t.match(page.url(), /\/admin\/console\/sign-in$/);
    await page.goto(`${origin}/admin/console/clients`);
    t.match(page.url(), /\/admin\/console\/sign-in\?next=/);
  });

  t.same(cspViolations, [], 'no Content-Security-Policy violations on any page');
});

/** Signs `username` in through the HTTP form; returns the browser and the sign-in response. */
async function signIn(username: string, password: string, remoteAddress = '127.0.0.1') {
  const browser = new InjectBrowser(app, remoteAddress);
  const form = await browser.get('/admin/console/sign-in');
  const res = await browser.post('/admin/console/sign-in', { ...hiddenFields(form.body), username, password });
  return { browser, res };
}

t.test('HTTP level: CSRF, roles, escaping, throttling, headers', async (t) => {
  await t.test('a POST without the CSRF token changes nothing', async (t) => {
    const { browser, res } = await signIn('root', PASSWORD);
    t.equal(res.statusCode, 303);
    const victim = await seedClient(services, { client_name: 'Victim', grant_types: ['client_credentials'] });
    const forged = await browser.post(`/admin/console/clients/${victim.clientId}/delete`, {});
    t.equal(forged.statusCode, 403);
    const wrong = await browser.post(`/admin/console/clients/${victim.clientId}/delete`, { csrf_token: 'x'.repeat(43) });
    t.equal(wrong.statusCode, 403);
    t.ok(await services.clients.get(victim.clientId), 'client still there');
    const rotated = await browser.post(`/admin/console/clients/${victim.clientId}/secret`, {});
    t.equal(rotated.statusCode, 403);
    t.ok(verifyClientSecret(victim.clientSecret!, (await services.clients.get(victim.clientId)).clientSecretHash!), 'secret unchanged');
  });

  await t.test('a sign-in POST without the form token is refused (login CSRF)', async (t) => {
    const browser = new InjectBrowser(app);
    const res = await browser.post('/admin/console/sign-in', { username: 'root', password: PASSWORD });
    t.equal(res.statusCode, 403);
    t.notOk(res.headers.location);
  });

  await t.test('a user without role admin cannot sign in, nor use a session from the login page', async (t) => {
    const carol = await seedUser(services, { username: 'carol', password: PASSWORD });
    const { browser, res } = await signIn(carol.username, PASSWORD);
    t.equal(res.statusCode, 403);
    t.match(res.body, /Only administrators/);
    // Even a session signed in as carol (as /login would make) is not let in.
    const session = await services.sessions.signIn(await services.sessions.create(), carol.id);
    browser.cookies.set('sid', session.id);
    const page = await browser.get('/admin/console/users');
    t.equal(page.statusCode, 303);
    t.match(page.headers.location, /^\/admin\/console\/sign-in/);
  });

  await t.test('taking the admin role away locks the console at once', async (t) => {
    const dave = await seedUser(services, { username: 'dave', password: PASSWORD, roles: ['admin'] });
    const { browser } = await signIn(dave.username, PASSWORD);
    t.equal((await browser.get('/admin/console/users')).statusCode, 200);
    await services.users.update(dave.id, { roles: [] });
    t.equal((await browser.get('/admin/console/users')).statusCode, 303);
  });

  await t.test('an admin cannot lock themselves out', async (t) => {
    const { browser } = await signIn('root', PASSWORD);
    const page = await browser.get(`/admin/console/users/${root.id}`);
    const fields = hiddenFields(page.body, `/admin/console/users/${root.id}/roles`);
    const res = await browser.post(`/admin/console/users/${root.id}/roles`, { ...fields, roles: 'support' });
    t.equal(res.statusCode, 400);
    t.same((await services.users.get(root.id)).roles, ['admin']);
  });

  await t.test("removing a user's authenticator app: needs the CSRF token, ends their sessions, is recorded; not one's own", async (t) => {
    const gus = await seedUser(services, { username: 'gus', password: PASSWORD });
    const gusBrowser = new InjectBrowser(app);
    const login = await gusBrowser.get('/login');
    t.equal((await gusBrowser.post('/login', { ...hiddenFields(login.body, '/login'), username: 'gus', password: PASSWORD })).statusCode, 303);
    await enrolSecondFactor(services, gus.id);
    t.equal((await gusBrowser.get('/account')).statusCode, 200, 'gus is signed in');

    const { browser } = await signIn('root', PASSWORD, '198.51.100.40');
    const page = await browser.get(`/admin/console/users/${gus.id}`);
    t.match(page.body, /recovery codes left: <strong>10<\/strong>/);
    const action = `/admin/console/users/${gus.id}/second-factor/reset`;
    const fields = hiddenFields(page.body, action);
    t.equal((await browser.post(action, {})).statusCode, 403, 'no CSRF token');
    t.equal((await browser.post(action, { csrf_token: 'x'.repeat(43) })).statusCode, 403, 'a wrong one');
    t.ok(await services.secondFactor.isEnrolled(gus.id), 'still there');

    const done = await browser.post(action, fields);
    t.equal(done.statusCode, 303);
    t.equal(done.headers.location, `/admin/console/users/${gus.id}`);
    t.notOk(await services.secondFactor.isEnrolled(gus.id));
    const after = await browser.get(done.headers.location as string);
    t.match(after.body, /Authenticator app removed/);
    t.match(after.body, /No authenticator app set up\./);
    t.equal((await gusBrowser.get('/account')).statusCode, 303, "gus's session has ended");
    t.match((await services.audit.list({ subject: gus.id, type: 'second_factor.reset' }, { limit: 5, offset: 0 })).events, [
      { actor: { type: 'user', id: root.id, username: 'root' }, ip: '198.51.100.40', details: { username: 'gus' } },
    ]);
    const twice = await browser.post(action, fields);
    t.equal(twice.statusCode, 404, 'nothing left to remove');
    t.match(twice.body, /has no authenticator app/);

    // An admin's own app is removed on the account page, with a code or the password.
    const ivy = await seedUser(services, { username: 'ivy', password: PASSWORD, roles: ['admin'] });
    const { browser: ivyBrowser } = await signIn('ivy', PASSWORD);
    await enrolSecondFactor(services, ivy.id);
    const own = await ivyBrowser.get(`/admin/console/users/${ivy.id}`);
    t.match(own.body, /<button type="submit" class="danger" disabled title="Remove your own on your account page">Remove authenticator app<\/button>/);
    const refused = await ivyBrowser.post(`/admin/console/users/${ivy.id}/second-factor/reset`, hiddenFields(own.body, `/admin/console/users/${ivy.id}/second-factor/reset`));
    t.equal(refused.statusCode, 400);
    t.match(refused.body, /your account page/);
    t.ok(await services.secondFactor.isEnrolled(ivy.id));
  });

  await t.test('client-supplied text is escaped', async (t) => {
    await seedClient(services, { client_name: '<img src=x onerror=alert(1)>', grant_types: ['client_credentials'] });
    const { browser } = await signIn('root', PASSWORD);
    const list = await browser.get('/admin/console/clients');
    t.equal(list.statusCode, 200);
    t.notOk(list.body.includes('<img src=x'), 'no raw markup');
    t.ok(list.body.includes('&lt;img src=x onerror=alert(1)&gt;'));
  });

  await t.test('register a private_key_jwt client with its JWK Set; text that is not JSON is shown next to the field', async (t) => {
    const { browser } = await signIn('root', PASSWORD);
    const page = await browser.get('/admin/console/clients/new');
    t.match(page.body, /name="jwks"/);
    t.match(page.body, /name="jwks_uri"/);
    const fields = hiddenFields(page.body, '/admin/console/clients');
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'console-key' };
    const submit = (jwks: string) =>
      browser.post('/admin/console/clients', { ...fields, client_name: 'Signed job', grant_types: 'client_credentials', token_endpoint_auth_method: 'private_key_jwt', scope: 'api:read', jwks });
    const bad = await submit('{"keys": [');
    t.equal(bad.statusCode, 400);
    t.match(bad.body, /id="jwks-error"/);
    const created = await submit(JSON.stringify({ keys: [jwk] }));
    t.equal(created.statusCode, 201, created.body.slice(0, 500));
    const clientId = /<code id="client-id">([^<]+)<\/code>/.exec(created.body)?.[1];
    t.match(created.body, /its own registered keys/);
    t.ok(clientId, 'the new client id is shown');
    const client = await services.clients.get(clientId!);
    t.equal(client.tokenEndpointAuthMethod, 'private_key_jwt');
    t.same(client.jwks?.keys.map((k) => k.kid), ['console-key']);
    t.equal(client.clientSecretHash, null, 'no secret');
    const edit = await browser.get(`/admin/console/clients/${clientId}`);
    t.match(edit.body, /console-key/, 'the form shows the registered keys');
    t.notMatch(edit.body, /Rotate secret/, 'and offers no secret to rotate');
  });

  await t.test('pages are no-store and framed by nobody', async (t) => {
    const { browser } = await signIn('root', PASSWORD);
    const res = await browser.get('/admin/console/clients');
    t.equal(res.headers['cache-control'], 'no-store');
    t.equal(res.headers['x-frame-options'], 'DENY');
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/);
  });

  await t.test('a hostile next goes to the dashboard, never a 500: signed in, and at sign-in (the session cookie kept)', async (t) => {
    const hostile = ['/admin/console/%E2%9C%93', '/admin/console/%0D%0ASet-Cookie:%20x=1', '/admin/console/%00', '//evil.example', 'https://evil.example/admin'];
    const { browser } = await signIn('root', PASSWORD);
    for (const next of hostile) {
      const res = await browser.get(`/admin/console/sign-in?next=${next}`);
      t.equal(res.statusCode, 303, `GET, signed in: ${next}`);
      t.equal(res.headers.location, '/admin');
    }
    t.equal((await browser.get('/admin/console/sign-in?next=%2Fadmin%2Fconsole%2Fusers')).headers.location, '/admin/console/users', 'a console page is kept');
    for (const next of hostile) {
      const fresh = new InjectBrowser(app);
      const form = await fresh.get('/admin/console/sign-in');
      const res = await fresh.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: 'root', password: PASSWORD, next: decodeURIComponent(next) });
      t.equal(res.statusCode, 303, `POST with the right password: ${next}`);
      t.equal(res.headers.location, '/admin');
      t.equal((await fresh.get('/admin')).statusCode, 200, 'and signed in');
    }
  });

  await t.test('repeated wrong passwords are throttled (429 with Retry-After)', async (t) => {
    const ip = '10.9.8.7';
    for (let i = 0; i < 3; i++) {
      const { res } = await signIn('root', `wrong ${i}`, ip);
      t.equal(res.statusCode, 401);
    }
    const { res } = await signIn('root', PASSWORD, ip);
    t.equal(res.statusCode, 429, 'even the right password waits');
    t.ok(Number(res.headers['retry-after']) > 0);
  });
});

t.test('ADMIN_SESSION_TTL is an idle timeout: each use renews the session and its cookie, idleness ends it', async (t) => {
  let clock = Date.UTC(2026, 0, 1);
  const now = () => clock;
  const kv = createMemoryKv({ now });
  t.teardown(() => kv.close());
  const idle = await buildTestApp(t, { env: { ADMIN_SESSION_TTL: '60' }, now, kv });
  const admin = await seedUser(idle.services, { username: 'idle-admin', password: PASSWORD, roles: ['admin'] });
  const browser = new InjectBrowser(idle.app);
  const form = await browser.get('/admin/console/sign-in');
  const signedIn = await browser.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: admin.username, password: PASSWORD });
  t.equal(signedIn.statusCode, 303);
  const at = async (seconds: number) => {
    clock = Date.UTC(2026, 0, 1) + seconds * 1000;
    return browser.get('/admin');
  };
  t.equal((await at(1)).statusCode, 200);
  const renewed = await at(35);
  t.equal(renewed.statusCode, 200);
  t.equal(renewed.cookies.find((c) => c.name === 'admin')?.maxAge, 60, "the cookie's Max-Age starts again");
  t.equal((await at(50)).statusCode, 200);
  t.equal((await at(70)).statusCode, 200, 'used 20 s before: still signed in');
  t.equal((await at(125)).statusCode, 200, 'used 55 s before: still signed in');
  const late = await at(195);
  t.equal(late.statusCode, 303, '70 s without use: signed out');
  t.match(late.headers.location, /^\/admin\/console\/sign-in/);
});
