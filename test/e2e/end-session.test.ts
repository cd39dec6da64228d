/**
 * OpenID Connect RP-Initiated Logout 1.0 over `app.inject()`, with
 * oauth4webapi as the relying party that gets the ID token: opening
 * `/end-session` signs nobody out (the person confirms, with the session's
 * CSRF token), a confirmed logout ends the session as `POST /logout` does
 * and goes back to a registered post-logout redirect URI with `state`, and
 * every refusal (an unregistered URI, a client that does not match the
 * hint, a hint this server did not sign) is a page, never a redirect.
 */
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';

const REDIRECT = 'http://127.0.0.1:7031/cb';
const BYE = 'http://127.0.0.1:7031/signed-out?from=op';
const OTHER_BYE = 'https://other.example/bye';

t.test(`RP-initiated logout (${backendName})`, async (t) => {
  let clock = Date.now();
  const { app, services, config } = await buildTestApp(t, { now: () => clock });
  const issuer = new URL(config.issuer);
  const httpOptions = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oidc' }));

  const web = await seedClient(services, { client_name: 'Web <app>', redirect_uris: [REDIRECT], post_logout_redirect_uris: [BYE], grant_types: ['authorization_code'], scope: 'openid profile' });
  const other = await seedClient(services, { client_name: 'Other', redirect_uris: ['https://other.example/cb'], post_logout_redirect_uris: [OTHER_BYE], scope: 'openid' });
  const client: oauth.Client = { client_id: web.clientId };
  const alice = await seedUser(services);
  const bob = await seedUser(services);

  let serial = 0;
  const browser = () => new InjectBrowser(app, `10.31.0.${++serial}`);
  const whoIn = async (b: InjectBrowser) => (await services.sessions.load(b.cookies.get('sid')))?.userId ?? null;

  /** Signs `user` in through the login and consent pages; the ID token the client gets. */
  async function signIn(b: InjectBrowser, user: { username: string; password: string }, extra: Record<string, string> = {}) {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const path = authorizePath({ response_type: 'code', client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid profile', state, nonce, code_challenge: pkce.challenge, code_challenge_method: 'S256', ...extra });
    const result = await loginAndConsent(b, path, user);
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, client, new URL(result.location), state);
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError) return { error: err.error, idToken: null };
      throw err;
    }
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, pkce.verifier, httpOptions);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true });
    return { error: null, idToken: tokens.id_token! };
  }

  const endSession = (params: Record<string, string>) => `/end-session?${new URLSearchParams(params).toString()}`;

  /** The refusal page: 400, HTML, no Location anywhere. */
  function refusedPage(t: Tap, res: Awaited<ReturnType<InjectBrowser['get']>>, why: RegExp) {
    t.equal(res.statusCode, 400, res.body.slice(0, 200));
    t.equal(res.headers.location, undefined, 'never a redirect');
    t.match(res.headers['content-type'], /text\/html/);
    t.match(res.body, /This sign-out link is not valid/);
    t.match(res.body, why);
  }
  type Tap = typeof t;

  t.test('discovery advertises end_session_endpoint', async (t) => {
    t.equal(as.end_session_endpoint, `${config.issuer}/end-session`);
  });

  t.test('opening the link signs nobody out; confirming does, and goes back with state; then prompt=none is login_required', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    t.equal(await whoIn(b), alice.id);
    const sid = b.cookies.get('sid')!;

    const page = await b.get(endSession({ id_token_hint: idToken!, post_logout_redirect_uri: BYE, state: 'st 1&2' }));
    t.equal(page.statusCode, 200);
    t.equal(page.headers['cache-control'], 'no-store');
    t.match(page.body, new RegExp(`Sign out of ${issuer.host}\\?`));
    t.match(page.body, /<strong>Web &lt;app&gt;<\/strong> asks to sign you out/, 'the client named, escaped');
    t.notMatch(page.body, /id="other-user"/);
    t.match(page.headers['content-security-policy'], /form-action 'self' http:\/\/127\.0\.0\.1:7031/, 'the redirect after the form may reach the client');
    t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/);
    t.equal(await whoIn(b), alice.id, 'the GET changed nothing');

    const fields = hiddenFields(page.body, '/end-session');
    t.same(Object.keys(fields).sort(), ['confirm', 'csrf_token', 'id_token_hint', 'post_logout_redirect_uri', 'state']);
    const done = await b.post('/end-session', fields);
    t.equal(done.statusCode, 303);
    t.equal(done.headers.location, `${BYE}&state=st+1%262`, 'the registered URI, its query kept, state added');
    t.equal(b.cookies.get('sid'), undefined, 'the cookie is cleared');
    t.equal(await services.sessions.load(sid), null, 'the session is over');
    t.equal((await signIn(b, alice, { prompt: 'none' })).error, 'login_required');
  });

  t.test('without post_logout_redirect_uri: the signed-out page', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    const page = await b.get(endSession({ id_token_hint: idToken! }));
    const done = await b.post('/end-session', hiddenFields(page.body, '/end-session'));
    t.equal(done.statusCode, 200);
    t.match(done.body, /You are signed out/);
    t.equal(await whoIn(b), null);
  });

  t.test('nobody signed in: nothing to confirm, straight to the client or the signed-out page', async (t) => {
    const b = browser();
    const { idToken } = await signIn(browser(), alice);
    const res = await b.get(endSession({ id_token_hint: idToken!, post_logout_redirect_uri: BYE, state: 's' }));
    t.equal(res.statusCode, 303);
    t.equal(res.headers.location, `${BYE}&state=s`);
    const page = await b.get(endSession({ client_id: web.clientId }));
    t.equal(page.statusCode, 200);
    t.match(page.body, /You are signed out/);
  });

  t.test('post_logout_redirect_uri must be registered for the client, exactly: else a page, and nothing changes', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    for (const uri of ['http://127.0.0.1:7031/signed-out', `${BYE}&x=1`, 'https://evil.example/bye', REDIRECT, OTHER_BYE]) {
      refusedPage(t, await b.get(endSession({ id_token_hint: idToken!, post_logout_redirect_uri: uri, state: 's' })), /post_logout_redirect_uri is not one this client registered/);
      refusedPage(t, await b.get(endSession({ client_id: web.clientId, post_logout_redirect_uri: uri })), /not one this client registered/);
    }
    refusedPage(t, await b.get(endSession({ post_logout_redirect_uri: BYE })), /needs client_id or id_token_hint/);
    // The confirmation is judged again: a form whose fields were changed signs nobody out.
    const fields = hiddenFields((await b.get(endSession({ id_token_hint: idToken!, post_logout_redirect_uri: BYE }))).body, '/end-session');
    refusedPage(t, await b.post('/end-session', { ...fields, post_logout_redirect_uri: 'https://evil.example/bye' }), /not one this client registered/);
    t.equal(await whoIn(b), alice.id, 'still signed in');
  });

  t.test('client_id and the hint’s audience must agree', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    refusedPage(t, await b.get(endSession({ id_token_hint: idToken!, client_id: other.clientId, post_logout_redirect_uri: OTHER_BYE })), /client_id is not the client the id_token_hint was issued to/);
    refusedPage(t, await b.get(endSession({ id_token_hint: idToken!, client_id: other.clientId })), /client_id is not the client/);
    const agreeing = await b.get(endSession({ id_token_hint: idToken!, client_id: web.clientId, post_logout_redirect_uri: BYE }));
    t.equal(agreeing.statusCode, 200);
    refusedPage(t, await b.get(endSession({ client_id: 'no-such-client' })), /names no client/);
    t.equal(await whoIn(b), alice.id);
  });

  t.test('an expired ID token is still a hint (RP-Initiated Logout §4)', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    clock += (config.accessTokenTtlSeconds + 60) * 1000;
    t.ok(decodeJwt(idToken!).exp! * 1000 < clock, 'the hint has expired');
    const page = await b.get(endSession({ id_token_hint: idToken!, post_logout_redirect_uri: BYE, state: 'late' }));
    t.equal(page.statusCode, 200, page.body.slice(0, 300));
    const done = await b.post('/end-session', hiddenFields(page.body, '/end-session'));
    t.equal(done.headers.location, `${BYE}&state=late`);
    t.equal(await whoIn(b), null);
  });

  t.test('a hint this server did not sign is refused: a changed signature, another key, another issuer, an access token, not a JWT', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    const [header, payload] = idToken!.split('.');
    const { privateKey } = await generateKeyPair('RS256');
    const { kid } = decodeProtectedHeader(idToken!);
    const foreignKey = await new SignJWT({ ...decodeJwt(idToken!) }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: kid! }).sign(privateKey);
    const foreignIssuer = await new SignJWT({ ...decodeJwt(idToken!), iss: 'https://elsewhere.example' }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: 'theirs' }).sign(privateKey);
    for (const [name, hint] of [
      ['a changed signature', `${header}.${payload}.${'A'.repeat(342)}`],
      ['signed by a key that is not ours', foreignKey],
      ['another issuer', foreignIssuer],
      ['not a JWT', 'garbage'],
    ] as const) {
      const res = await b.get(endSession({ id_token_hint: hint, post_logout_redirect_uri: BYE, state: 's' }));
      refusedPage(t, res, /id_token_hint is not an ID token issued by this server/);
      t.pass(name);
    }
    t.equal(await whoIn(b), alice.id);
  });

  t.test('a hint naming another user than the one signed in: still asked, still allowed', async (t) => {
    const b = browser();
    const { idToken: alicesHint } = await signIn(browser(), alice);
    await signIn(b, bob);
    const page = await b.get(endSession({ id_token_hint: alicesHint!, post_logout_redirect_uri: BYE }));
    t.equal(page.statusCode, 200);
    t.match(page.body, /id="other-user"/);
    t.match(page.body, new RegExp(`this still signs out <strong>${bob.username}</strong>`));
    const done = await b.post('/end-session', hiddenFields(page.body, '/end-session'));
    t.equal(done.headers.location, BYE);
    t.equal(await whoIn(b), null, 'bob is signed out');
  });

  t.test('a confirmation without the session’s CSRF token changes nothing', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    const fields = hiddenFields((await b.get(endSession({ id_token_hint: idToken!, post_logout_redirect_uri: BYE }))).body, '/end-session');
    const { csrf_token: _, ...withoutToken } = fields;
    for (const forged of [{ ...fields, csrf_token: 'guessed' }, withoutToken]) {
      const res = await b.post('/end-session', forged);
      t.equal(res.statusCode, 403);
      t.match(res.body, /This form has expired or was not sent from this site/);
      t.equal(res.headers.location, undefined);
      t.equal(await whoIn(b), alice.id);
    }
    // Without confirm it is a logout request again: the confirmation page.
    const { confirm: __, ...request } = withoutToken;
    const asked = await b.post('/end-session', request);
    t.equal(asked.statusCode, 200);
    t.match(asked.body, /action="\/end-session"/);
    t.equal(await whoIn(b), alice.id);
  });

  t.test('a relying party’s form post: asked the same way; without the (SameSite=Lax) cookie, sent on as a GET', async (t) => {
    const b = browser();
    const { idToken } = await signIn(b, alice);
    const params = { id_token_hint: idToken!, post_logout_redirect_uri: BYE, state: 'p' };
    const sameSite = await b.post('/end-session', params);
    t.equal(sameSite.statusCode, 200);
    t.match(sameSite.body, /Sign out of/);
    const crossSite = await app.inject({ method: 'POST', url: '/end-session', payload: new URLSearchParams(params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    t.equal(crossSite.statusCode, 303);
    t.equal(crossSite.headers.location, endSession(params), 'the same request as a top-level GET');
    const followed = await b.get(crossSite.headers.location as string);
    t.equal(followed.statusCode, 200, 'which finds the session and asks');
    t.equal(await whoIn(b), alice.id);
  });

  t.test('bad input is a 400 page, never a 500: repeats, oversized values, garbage; JSON bodies are 415', async (t) => {
    const b = browser();
    await signIn(b, alice);
    for (const query of [
      'state=a&state=b',
      'client_id=a&client_id=b',
      `state=${'x'.repeat(5000)}`,
      `id_token_hint=${'a'.repeat(9000)}`,
      `post_logout_redirect_uri=${'x'.repeat(3000)}`,
      'id_token_hint=a.b.c',
      'id_token_hint=%00%01',
      `client_id=${'x'.repeat(300)}`,
      'logout_hint=a&logout_hint=b',
      'ui_locales[]=x',
    ]) {
      const res = await b.get(`/end-session?${query}`);
      t.ok(res.statusCode === 400 || res.statusCode === 200, `${query.slice(0, 40)}: ${res.statusCode}`);
      t.match(res.headers['content-type'], /text\/html/);
    }
    t.equal((await b.get('/end-session?state=a&state=b')).statusCode, 400);
    t.equal((await b.get(`/end-session?client_id=${'x'.repeat(300)}`)).statusCode, 400);
    const json = await app.inject({ method: 'POST', url: '/end-session', payload: '{"client_id":"x"}', headers: { 'content-type': 'application/json' } });
    t.equal(json.statusCode, 415);
    t.equal(await whoIn(b), alice.id);
  });
});
