/**
 * SPEC "Accounts and brute force": changing a user's password, disabling or
 * deleting the user, or an admin's reset of their second factor (a change of
 * credentials too), ends their browser sessions and refresh tokens; deleting
 * a client ends its tokens; introspection tells `active: true` only to the
 * token's own client or to a resource server.
 */
import t from 'tap';
import { CLI_ACTOR } from '../../src/audit/events.js';
import { buildTestApp, enrolSecondFactor, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { authorizePath, hiddenFields, InjectBrowser, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example/cb';

t.test(`credentials, clients and introspection (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t);
  const web = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid api:read' });
  const webAuth = basic(web.clientId, web.clientSecret!);

  const authorize = (pkce: { challenge: string }, prompt?: string) =>
    authorizePath({ response_type: 'code', client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid api:read', state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256', prompt });
  const redeem = async (code: string, verifier: string) =>
    (await postForm(app, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, { authorization: webAuth })).json() as {
      access_token: string;
      refresh_token: string;
    };
  /** A browser signed in through the login page (a code flow), and what it got. */
  const signedInBrowser = async (user: { username: string; password: string }) => {
    const browser = new InjectBrowser(app);
    const pkce = pkcePair();
    const result = await loginAndConsent(browser, authorize(pkce), user);
    return { browser, tokens: await redeem(result.params.get('code')!, pkce.verifier) };
  };
  /** `prompt=none` with the browser's session: a code when it is still signed in. */
  const silent = async (browser: InjectBrowser) => {
    const res = await browser.get(authorize(pkcePair(), 'none'));
    return new URL(res.headers.location as string).searchParams;
  };

  for (const [change, apply] of [
    ['a new password', (id: string) => services.users.update(id, { password: 'another long passphrase 42' })],
    ['disabling the account', (id: string) => services.users.update(id, { disabled: true })],
    ['deleting the account', (id: string) => services.users.delete(id)],
    [
      "an admin's reset of the second factor",
      async (id: string) => {
        await enrolSecondFactor(services, id);
        await services.secondFactor.reset(await services.users.get(id), { actor: CLI_ACTOR });
      },
    ],
  ] as const) {
    await t.test(`${change} ends the browser sessions and refresh tokens`, async (t) => {
      const user = await seedUser(services);
      const { browser, tokens } = await signedInBrowser(user);
      t.ok((await silent(browser)).get('code'), 'signed in: prompt=none gets a code');
      await apply(user.id);
      t.equal((await silent(browser)).get('error'), 'login_required', 'the old session is signed out');
      const refresh = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { authorization: webAuth });
      t.equal(refresh.json().error, 'invalid_grant', 'the refresh token is revoked');
    });
  }

  await t.test('a session signed in after the change is fine', async (t) => {
    const user = await seedUser(services);
    await services.users.update(user.id, { password: 'another long passphrase 43' });
    const { browser } = await signedInBrowser({ username: user.username, password: 'another long passphrase 43' });
    t.ok((await silent(browser)).get('code'));
  });

  await t.test("a new password ends the admin's console session too", async (t) => {
    const admin = await seedUser(services, { roles: ['admin'] });
    await seedUser(services, { roles: ['admin'] });
    const browser = new InjectBrowser(app);
    const form = await browser.get('/admin/console/sign-in');
    await browser.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: admin.username, password: admin.password });
    t.equal((await browser.get('/admin')).statusCode, 200);
    await services.users.update(admin.id, { password: 'another long passphrase 44' });
    t.equal((await browser.get('/admin')).statusCode, 303, 'sent to sign in again');
  });

  await t.test("deleting a client ends its access tokens at once, every subject's", async (t) => {
    const doomed = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'client_credentials'], scope: 'openid api:read' });
    const auth = basic(doomed.clientId, doomed.clientSecret!);
    const machine = (await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: auth })).json().access_token as string;
    const user = await seedUser(services);
    const pkce = pkcePair();
    const result = await loginAndConsent(
      new InjectBrowser(app),
      authorizePath({ response_type: 'code', client_id: doomed.clientId, redirect_uri: REDIRECT, scope: 'openid api:read', code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
      user,
    );
    const person = (await postForm(app, '/token', { grant_type: 'authorization_code', code: result.params.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier }, { authorization: auth })).json()
      .access_token as string;
    const resourceServer = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read', resource_server: true });
    const introspect = async (token: string) =>
      (await postForm(app, '/introspect', { token }, { authorization: basic(resourceServer.clientId, resourceServer.clientSecret!) })).json().active as boolean;
    for (const token of [machine, person]) {
      t.equal((await getWithToken(app, '/api/hello', token)).statusCode, 200, 'valid before');
      t.equal(await introspect(token), true);
    }
    await services.clients.delete(doomed.clientId);
    for (const token of [machine, person]) {
      t.equal((await getWithToken(app, '/api/hello', token)).statusCode, 401, 'refused by the resource route');
      t.equal(await introspect(token), false, 'inactive at introspection');
    }
    const other = (await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: basic(resourceServer.clientId, resourceServer.clientSecret!) })).json().access_token as string;
    t.equal((await getWithToken(app, '/api/hello', other)).statusCode, 200, "another client's tokens are untouched");
  });

  await t.test("introspection: the token's own client or a resource server, nobody else", async (t) => {
    const owner = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const stranger = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const rs = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const token = (await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: basic(owner.clientId, owner.clientSecret!) })).json().access_token as string;
    const introspectAs = async (c: { clientId: string; clientSecret: string | null }) =>
      (await postForm(app, '/introspect', { token }, { authorization: basic(c.clientId, c.clientSecret!) })).json() as Record<string, unknown>;
    t.match(await introspectAs(owner), { active: true, client_id: owner.clientId });
    t.same(await introspectAs(stranger), { active: false }, 'another client learns nothing');
    t.same(await introspectAs(rs), { active: false }, 'not yet a resource server');
    const admin = await seedUser(services, { roles: ['admin'] });
    const patch = await app.inject({
      method: 'PATCH',
      url: `/admin/clients/${rs.clientId}`,
      headers: { authorization: `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}` },
      payload: { resource_server: true },
    });
    t.equal(patch.statusCode, 200);
    t.equal(patch.json().resource_server, true);
    t.match(await introspectAs(rs), { active: true, client_id: owner.clientId }, 'a resource server may');
    const publicRs = await app.inject({
      method: 'POST',
      url: '/admin/clients',
      headers: { authorization: `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}` },
      payload: { client_name: 'x', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', resource_server: true },
    });
    t.equal(publicRs.json().error, 'invalid_client_metadata', 'a resource server must authenticate');
  });
});
