/**
 * SPEC "Admin API": a bearer token opens the admin API only with the scope
 * `admin`, which is granted only to users with role admin, only when asked
 * for by name, and only to clients an operator registered for it. The
 * console has its own sign-in: signing in to an app never opens it.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { authorizePath, hiddenFields, InjectBrowser, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { basic, decodePayload, getWithToken, postForm } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example/cb';

t.test(`the admin scope (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t);
  const admin = await seedUser(services, { username: 'root', roles: ['admin'] });
  const plain = await seedUser(services, { username: 'pat' });
  // A third-party app, not registered for the admin scope, and an operator's tool that is.
  const app3p = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid profile api:read' });
  const tool = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'password'], scope: 'openid api:read admin' });

  /** Signs `user` in to `client` with the browser flow and redeems the code. */
  interface Issued {
    browser: InjectBrowser;
    error?: string | null;
    access_token?: string;
    scope?: string;
  }
  const codeFlow = async (client: { clientId: string; clientSecret: string | null }, user: { username: string; password: string }, scope?: string): Promise<Issued> => {
    const pkce = pkcePair();
    const browser = new InjectBrowser(app);
    const result = await loginAndConsent(
      browser,
      authorizePath({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope, state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
      user,
    );
    const code = result.params.get('code');
    if (!code) return { error: result.params.get('error'), browser };
    const res = await postForm(app, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce.verifier }, { authorization: basic(client.clientId, client.clientSecret!) });
    return { ...(res.json() as { access_token: string; scope: string }), browser };
  };
  const adminApi = (token: string) => getWithToken(app, '/admin/users', token);

  await t.test("an admin's sign-in to an app does not give the app the admin API", async (t) => {
    const issued = await codeFlow(app3p, admin, 'openid');
    t.equal(issued.scope, 'openid');
    const res = await adminApi(issued.access_token!);
    t.equal(res.statusCode, 403);
    t.match(res.json().error_description, /scope "admin"/);
    t.equal((await getWithToken(app, '/metrics', issued.access_token!)).statusCode, 403, '/metrics neither');
    const create = await app.inject({
      method: 'POST',
      url: '/admin/users',
      headers: { authorization: `Bearer ${issued.access_token}` },
      payload: { username: 'planted', password: 'a long enough passphrase', roles: ['admin'] },
    });
    t.equal(create.statusCode, 403, 'no admin can be planted');
  });

  await t.test('an app not registered for it cannot ask for it', async (t) => {
    const issued = await codeFlow(app3p, admin, 'openid admin');
    t.equal(issued.scope, 'openid', 'granted without it');
    const only = await codeFlow(app3p, admin, 'admin');
    t.equal(only.error, 'invalid_scope');
  });

  await t.test('a registered client gets it only when asking by name, and only for an admin', async (t) => {
    const byDefault = await codeFlow(tool, admin);
    t.notMatch(byDefault.scope!, /\badmin\b/, 'not part of the default');
    t.equal((await adminApi(byDefault.access_token!)).statusCode, 403);

    const asked = await codeFlow(tool, admin, 'openid admin');
    t.equal(asked.scope, 'openid admin');
    t.equal((await adminApi(asked.access_token!)).statusCode, 200, 'the admin API opens');

    const notAdmin = await codeFlow(tool, plain, 'openid admin');
    t.equal(notAdmin.scope, 'openid', 'a user without the role is not granted it');
    t.equal((await codeFlow(tool, plain, 'admin')).error, 'invalid_scope', 'and nothing is left when it was all they asked for');

    const grant = (user: { username: string; password: string }, scope: string) =>
      postForm(app, '/token', { grant_type: 'password', username: user.username, password: user.password, scope }, { authorization: basic(tool.clientId, tool.clientSecret!) });
    t.equal((await grant(admin, 'admin')).json().scope, 'admin', 'password grant: an admin');
    t.equal((await grant(plain, 'admin')).json().error, 'invalid_scope', 'password grant: not for others');
  });

  await t.test('a refresh drops it once the user no longer has the role', async (t) => {
    const demoted = await seedUser(services, { username: 'demoted', roles: ['admin'] });
    const refresher = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'api:read admin' });
    const auth = { authorization: basic(refresher.clientId, refresher.clientSecret!) };
    const first = (await postForm(app, '/token', { grant_type: 'password', username: demoted.username, password: demoted.password, scope: 'admin api:read' }, auth)).json();
    t.equal(first.scope, 'admin api:read');
    await services.users.update(demoted.id, { roles: [] });
    const refreshed = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, auth);
    t.equal(refreshed.statusCode, 200);
    t.equal(refreshed.json().scope, 'api:read', 'no admin scope for a user without the role');
    t.notMatch(decodePayload(refreshed.json().access_token).scope, /\badmin\b/);
    // Back in the role, the grant (which still names the scope) carries it again.
    await services.users.update(demoted.id, { roles: ['admin'] });
    const restored = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshed.json().refresh_token }, auth);
    t.equal(restored.json().scope, 'admin api:read');
    await services.users.update(demoted.id, { roles: [] });
    const onlyAdmin = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: restored.json().refresh_token, scope: 'admin' }, auth);
    t.equal(onlyAdmin.json().error, 'invalid_scope', 'nothing left to grant');
  });

  await t.test('client credentials never carry it', async (t) => {
    const machine = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read admin' });
    const res = await postForm(app, '/token', { grant_type: 'client_credentials', scope: 'admin' }, { authorization: basic(machine.clientId, machine.clientSecret!) });
    t.equal(res.json().error, 'invalid_scope');
  });

  await t.test('the console does not ride on the single sign-on session', async (t) => {
    const { browser } = await codeFlow(app3p, admin, 'openid');
    const dashboard = await browser.get('/admin');
    t.equal(dashboard.statusCode, 303);
    t.match(dashboard.headers.location, /^\/admin\/console\/sign-in/, 'signed in to an app, but sent to the console sign-in');
    const form = await browser.get('/admin/console/sign-in');
    t.equal(form.statusCode, 200);
    t.match(form.body, /action="\/admin\/console\/sign-in"/, 'asked for the password again');
    const signedIn = await browser.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: admin.username, password: admin.password });
    t.equal(signedIn.statusCode, 303);
    t.equal((await browser.get('/admin')).statusCode, 200, 'then the console opens');
    const cookie = signedIn.cookies.find((c) => c.name === 'admin');
    t.ok(cookie, 'its own cookie');
    t.equal(cookie?.sameSite, 'Strict');
    t.equal(cookie?.maxAge, 1_800, 'ADMIN_SESSION_TTL: 30 minutes by default');
  });
});
