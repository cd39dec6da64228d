/**
 * Every HTML form post refuses a post without its session's CSRF token, one
 * row per form: the form is opened as a person would (a session cookie, and
 * signed in where the form wants it), then its own fields are posted without
 * `csrf_token`, and with another session's. Each is refused (the forged-form
 * page, or the route's own answer: the sign-up form again, the admin
 * console's pages) and what the form changes stays as it was. The same post
 * with the token then does change it, so each row's fields and the state it
 * reads are the real ones.
 */
import t from 'tap';
import { Secret, TOTP } from 'otpauth';
import type { User } from '../../src/storage/types.js';
import { buildTestApp, checkPassword, enrolSecondFactor, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { authorizePath, hiddenFields, InjectBrowser, pkcePair } from '../helpers/browser-flow.js';
import { startTestSmtp } from '../helpers/smtp.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';

const REDIRECT = 'http://127.0.0.1:7021/cb';
const REDIRECT_BYE = 'http://127.0.0.1:7021/bye';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const FORGED = { status: 403, text: /This form has expired or was not sent from this site/ };

/** A form as the browser has it: where it posts, its fields (the CSRF token among them), and what the post changes. */
interface OpenForm {
  browser: InjectBrowser;
  action: string;
  fields: Record<string, string>;
  state: () => Promise<unknown>;
}

t.test(`every form post needs its session's CSRF token (${backendName})`, async (t) => {
  const smtp = await startTestSmtp(t);
  // TOTP codes are single use per time step: the clock moves a step before each code.
  let clock = Date.now();
  const tick = () => (clock += 30_000);
  const { app, services, storage, config } = await buildTestApp(t, {
    now: () => clock,
    env: { SMTP_URL: smtp.url, SMTP_FROM: 'Sign-in <auth@example.test>', REQUIRE_EMAIL_VERIFICATION: 'true' },
  });
  const web = await seedClient(services, { client_name: 'Web app', redirect_uris: [REDIRECT], post_logout_redirect_uris: [REDIRECT_BYE], grant_types: ['authorization_code'], scope: 'openid api:read', token_endpoint_auth_method: 'none' });
  const tv = await seedClient(services, { client_name: 'TV', grant_types: [DEVICE_GRANT], scope: 'api:read', token_endpoint_auth_method: 'none' });
  const admin = await seedUser(services, { username: 'root', roles: ['admin'] });

  let serial = 0;
  /** Each browser at its own address, so no throttle of one row reaches another. */
  const browser = () => new InjectBrowser(app, `10.21.0.${++serial}`);
  const userOf = (id: string): Promise<User> => services.users.get(id);
  const codeOf = (secret: string) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: tick() });
  const whoIn = async (b: InjectBrowser) => (await services.sessions.load(b.cookies.get('sid')))?.userId ?? null;
  const consoleWhoIn = async (b: InjectBrowser) => (await services.consoleSessions.load(b.cookies.get('admin')))?.userId ?? null;

  /** A browser whose session is signed in as `userId` (as after the sign-in form). */
  async function signedIn(userId: string): Promise<InjectBrowser> {
    const b = browser();
    const session = await services.sessions.signIn(await services.sessions.create(), userId, ['pwd']);
    b.cookies.set('sid', session.id);
    return b;
  }
  /** The form posting to `action` on the page at `path`, with more fields. */
  async function formOn(b: InjectBrowser, path: string, action: string, more: Record<string, string> = {}) {
    const page = await b.get(path);
    if (page.statusCode !== 200) throw new Error(`${path}: ${page.statusCode}`);
    return { browser: b, action, fields: { ...hiddenFields(page.body, action), ...more } };
  }
  /** The link to `path` in the next mail, as a path on this server. */
  async function mailedLink(path: string): Promise<string> {
    const link = new RegExp(`http://localhost:3000(${path}\\?token=[\\w-]+)`).exec((await smtp.nextMail()).text);
    if (!link) throw new Error(`no ${path} link in the mail`);
    return link[1]!;
  }
  const mailsTo = (address: string) => smtp.received.filter((m) => m.to.includes(address)).length;

  const rows: Array<{
    name: string;
    open: () => Promise<OpenForm>;
    /** The route's own refusal; by default the forged-form page. */
    refused?: { status: number; text: RegExp };
    /** Waits for what the genuine post does after its answer. */
    settle?: () => Promise<unknown>;
  }> = [
    {
      name: 'POST /login',
      async open() {
        const bob = await seedUser(services);
        const b = browser();
        return { ...(await formOn(b, '/login', '/login', { username: bob.username, password: bob.password })), state: () => whoIn(b) };
      },
    },
    {
      name: 'POST /logout',
      async open() {
        const b = await signedIn((await seedUser(services)).id);
        return { ...(await formOn(b, '/account', '/logout')), state: () => whoIn(b) };
      },
    },
    {
      name: 'POST /end-session (the confirmation of an RP-initiated logout)',
      async open() {
        const b = await signedIn((await seedUser(services)).id);
        return { ...(await formOn(b, `/end-session?client_id=${web.clientId}&post_logout_redirect_uri=${encodeURIComponent(REDIRECT_BYE)}&state=s`, '/end-session')), state: () => whoIn(b) };
      },
    },
    {
      name: 'POST /consent',
      async open() {
        const user = await seedUser(services);
        const b = await signedIn(user.id);
        const asked = await b.get(authorizePath({ response_type: 'code', client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid api:read', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', state: 's' }));
        const form = await formOn(b, asked.headers.location as string, '/consent', { decision: 'allow' });
        return { ...form, state: () => storage.consents.find(user.id, web.clientId) };
      },
    },
    {
      name: 'POST /login/second-factor',
      async open() {
        const user = await seedUser(services);
        const { secret } = await enrolSecondFactor(services, user.id);
        const b = browser();
        const login = await formOn(b, '/login', '/login', { username: user.username, password: user.password });
        const next = await b.post('/login', login.fields);
        return { ...(await formOn(b, next.headers.location as string, '/login/second-factor', { code: codeOf(secret) })), state: () => whoIn(b) };
      },
    },
    {
      name: 'POST /device',
      async open() {
        const user = await seedUser(services);
        const b = await signedIn(user.id);
        const started = await services.devices.authorize(await services.clients.get(tv.clientId), { scope: 'api:read' });
        const form = await formOn(b, `/device?user_code=${started.user_code}`, '/device', { user_code: started.user_code, decision: 'allow' });
        return { ...form, state: async () => (await services.devices.find(started.user_code, await userOf(user.id), { amr: ['pwd'], ip: '127.0.0.1' })) !== null };
      },
    },
    {
      name: 'POST /verify-email',
      async open() {
        const user = await seedUser(services, { email: `verify${++serial}@example.test` });
        await services.emailVerification!.send(await userOf(user.id));
        const form = await formOn(browser(), await mailedLink('/verify-email'), '/verify-email');
        return { ...form, state: async () => (await userOf(user.id)).emailVerified };
      },
    },
    {
      name: 'POST /forgot-password',
      async open() {
        const email = `forgot${++serial}@example.test`;
        await seedUser(services, { email });
        const form = await formOn(browser(), '/forgot-password', '/forgot-password', { email });
        return { ...form, state: async () => mailsTo(email) };
      },
      // The mail goes out after the answer.
      settle: () => smtp.nextMail(),
    },
    {
      name: 'POST /reset-password',
      async open() {
        const email = `reset${++serial}@example.test`;
        const user = await seedUser(services, { email });
        await services.passwordReset!.request(email, '127.0.0.1');
        const form = await formOn(browser(), await mailedLink('/reset-password'), '/reset-password', { password: 'a fresh start 2026!' });
        return { ...form, state: async () => (await checkPassword(services, user.username, user.password)) !== null };
      },
    },
    {
      name: 'POST /register (the form)',
      refused: { status: 403, text: /This form has expired\. Check your details and submit it again\./ },
      async open() {
        const username = `newcomer${++serial}`;
        const form = await formOn(browser(), '/register', '/register', { username, password: 'a long enough passphrase', email: `${username}@example.test` });
        return { ...form, state: async () => (await services.users.findByUsername(username)) !== null };
      },
      // Its verification mail, out of the way of the next row that reads one.
      settle: () => smtp.nextMail(),
    },
    {
      name: 'POST /account/password',
      async open() {
        const user = await seedUser(services);
        const form = await formOn(await signedIn(user.id), '/account', '/account/password', { current_password: user.password, new_password: 'a brand new passphrase 42' });
        return { ...form, state: async () => (await checkPassword(services, user.username, user.password)) !== null };
      },
    },
    {
      name: 'POST /account/apps/revoke',
      async open() {
        const user = await seedUser(services);
        await storage.consents.grant(user.id, web.clientId, ['api:read'], []);
        const form = await formOn(await signedIn(user.id), '/account', '/account/apps/revoke', { client_id: web.clientId });
        return { ...form, state: () => storage.consents.find(user.id, web.clientId) };
      },
    },
    // Signing out another session, or every other one.
    ...['/account/sessions/end', '/account/sessions/end-others'].map((action) => ({
      name: `POST ${action}`,
      async open() {
        const user = await seedUser(services);
        const elsewhere = await signedIn(user.id);
        const form = await formOn(await signedIn(user.id), '/account', action);
        return { ...form, state: () => whoIn(elsewhere) };
      },
    })),
    {
      name: 'POST /account/authenticator',
      async open() {
        const user = await seedUser(services);
        const b = await signedIn(user.id);
        const setup = await b.get('/account/authenticator');
        const secret = /<code id="totp-secret">([A-Z2-7]+)<\/code>/.exec(setup.body)![1]!;
        return { browser: b, action: '/account/authenticator', fields: { ...hiddenFields(setup.body, '/account/authenticator'), code: codeOf(secret) }, state: () => services.secondFactor.isEnrolled(user.id) };
      },
    },
    {
      name: 'POST /account/authenticator/recovery-codes',
      async open() {
        const user = await seedUser(services);
        const { secret, recoveryCodes } = await enrolSecondFactor(services, user.id);
        // One used, so that new codes show in the count.
        await services.secondFactor.verify(await userOf(user.id), recoveryCodes[0]!, '127.0.0.1');
        const form = await formOn(await signedIn(user.id), '/account', '/account/authenticator/recovery-codes', { code: codeOf(secret) });
        return { ...form, state: async () => (await services.secondFactor.status(user.id)).recoveryCodesLeft };
      },
    },
    {
      name: 'POST /account/authenticator/remove',
      async open() {
        const user = await seedUser(services);
        await enrolSecondFactor(services, user.id);
        const form = await formOn(await signedIn(user.id), '/account', '/account/authenticator/remove', { password: user.password });
        return { ...form, state: () => services.secondFactor.isEnrolled(user.id) };
      },
    },
    {
      name: 'POST /account/linked-providers/remove',
      async open() {
        const user = await seedUser(services);
        if (!(await storage.identityProviders.find('corp'))) {
          await storage.identityProviders.create({ id: 'corp', issuer: 'https://login.corp.example', clientId: 'auth', clientSecret: { plain: 'x' }, scopes: 'openid', displayName: 'Corp', enabled: true });
        }
        await storage.linkedIdentities.create({ providerId: 'corp', subject: user.username, userId: user.id, email: null });
        const form = await formOn(await signedIn(user.id), '/account', '/account/linked-providers/remove');
        return { ...form, state: () => storage.linkedIdentities.find('corp', user.username) };
      },
    },
    {
      name: 'POST /account/passkeys/:id/remove',
      async open() {
        const user = await seedUser(services);
        const b = await signedIn(user.id);
        const csrf = hiddenFields((await b.get('/account')).body, '/logout').csrf_token!;
        const options = await b.postJson('/account/passkeys/options', {}, { 'x-csrf-token': csrf });
        const { response } = new SoftAuthenticator(new URL(config.issuer).origin).create(options.json());
        const { id } = (await b.postJson('/account/passkeys', { response }, { 'x-csrf-token': csrf })).json<{ id: string }>();
        const form = await formOn(b, '/account', `/account/passkeys/${id}/remove`);
        return { ...form, state: async () => (await storage.passkeys.listForUser(user.id)).length };
      },
    },
    {
      name: 'POST /admin/console/sign-in',
      refused: { status: 403, text: /This form has expired\. Sign in again\./ },
      async open() {
        const b = browser();
        return { ...(await formOn(b, '/admin/console/sign-in', '/admin/console/sign-in', { username: admin.username, password: admin.password })), state: () => consoleWhoIn(b) };
      },
    },
    {
      name: 'POST /admin/console/sign-in/code',
      refused: { status: 403, text: /This form is out of date or was not sent from this console\. Sign in again\./ },
      async open() {
        const user = await seedUser(services, { roles: ['admin'] });
        const { secret } = await enrolSecondFactor(services, user.id);
        const b = browser();
        const signIn = await formOn(b, '/admin/console/sign-in', '/admin/console/sign-in', { username: user.username, password: user.password });
        const next = await b.post('/admin/console/sign-in', signIn.fields);
        const form = await formOn(b, next.headers.location as string, '/admin/console/sign-in/code', { code: codeOf(secret) });
        return { ...form, state: () => consoleWhoIn(b) };
      },
    },
    {
      name: 'POST /admin/console/sign-out (as every guarded console form)',
      refused: { status: 403, text: /This form is out of date or was not sent from this console\. Go back, reload the page and try again\./ },
      async open() {
        const b = browser();
        const session = await services.consoleSessions.signIn(await services.consoleSessions.create(), admin.id);
        b.cookies.set('admin', session.id);
        return { ...(await formOn(b, '/admin', '/admin/console/sign-out')), state: () => consoleWhoIn(b) };
      },
    },
  ];

  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const { browser: b, action, fields, state } = await row.open();
      const { csrf_token: token, ...withoutToken } = fields;
      t.ok(token, 'the form carries a CSRF token');
      const before = await state();
      const refused = row.refused ?? FORGED;
      const anotherSessions = (await services.sessions.create()).csrfToken;
      for (const [how, form] of [
        ['without csrf_token', withoutToken],
        ["with another session's token", { ...withoutToken, csrf_token: anotherSessions }],
      ] as const) {
        const res = await b.post(action, form);
        t.equal(res.statusCode, refused.status, `${how}: refused`);
        t.match(res.body, refused.text, `${how}: says why`);
        t.same(await state(), before, `${how}: nothing changed`);
      }
      const genuine = await b.post(action, fields);
      t.not(genuine.statusCode, 403, 'with its token the same post goes through');
      await row.settle?.();
      t.notSame(await state(), before, 'and changes what the forged posts left alone');
    });
  }
});
