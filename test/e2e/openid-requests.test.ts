/**
 * OpenID Connect authentication requests (OIDC Core §3.1.2.1), with
 * oauth4webapi as the relying party over `app.inject()`: an `id_token_hint`
 * names the user the client expects, so another user signed in must sign in
 * again (`prompt=none`: `login_required`), and a hint this server did not
 * issue names no one; `offline_access` only where a code (and so a refresh
 * token) can come (§11).
 */
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, loginAndConsent, pkcePair, responseParams } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';

const REDIRECT = 'http://127.0.0.1:7004/cb';

t.test(`OpenID Connect authentication requests (${backendName})`, async (t) => {
  let clock = Date.now();
  const { app, services, config } = await buildTestApp(t, { now: () => clock });
  const issuer = new URL(config.issuer);
  const httpOptions = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oidc' }));

  const web = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid profile' });
  const client: oauth.Client = { client_id: web.clientId };
  const alice = await seedUser(services);
  const bob = await seedUser(services);

  /**
   * One authorization request through the browser (signing in as `user` if
   * asked, allowing if asked); the ID token when it ends in a code, else the
   * error it ends in.
   */
  async function authenticate(browser: InjectBrowser, user: { username: string; password: string }, extra: Record<string, string> = {}) {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const path = authorizePath({
      response_type: 'code',
      client_id: web.clientId,
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      state,
      nonce,
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    const result = await loginAndConsent(browser, path, user);
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, client, new URL(result.location), state);
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError) return { ...result, error: err.error, idToken: null, accessToken: null, claims: null };
      throw err;
    }
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, pkce.verifier, httpOptions);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true });
    return { ...result, error: null, idToken: tokens.id_token!, accessToken: tokens.access_token, claims: oauth.getValidatedIdTokenClaims(tokens)! };
  }

  // Alice signs in once; her ID token is the hint of the requests below.
  const browser = new InjectBrowser(app);
  const first = await authenticate(browser, alice);
  t.equal(first.claims?.sub, alice.id);
  const aliceHint = first.idToken!;

  t.test('the signed-in user named by the hint: prompt=none answers at once (oidcc-id-token-hint), even once the hint expired', async (t) => {
    const silent = await authenticate(browser, alice, { prompt: 'none', id_token_hint: aliceHint });
    t.equal(silent.error, null);
    t.notOk(silent.sawLogin || silent.sawConsent, 'no page shown');
    t.equal(silent.claims?.sub, alice.id);
    t.equal(silent.claims?.auth_time, first.claims?.auth_time, 'the same sign-in');

    clock += (config.accessTokenTtlSeconds + 60) * 1000;
    t.ok(decodeJwt(aliceHint).exp! * 1000 < clock, 'the hint has expired');
    const later = await authenticate(browser, alice, { prompt: 'none', id_token_hint: aliceHint });
    t.equal(later.claims?.sub, alice.id, 'an expired ID token is still a hint (OIDC Core §3.1.2.1: previously issued)');
  });

  t.test('another user signed in: prompt=none is login_required; otherwise the sign-in page, and the hinted user gets the code', async (t) => {
    const shared = new InjectBrowser(app);
    t.equal((await authenticate(shared, bob)).claims?.sub, bob.id, 'bob is signed in');

    const silent = await authenticate(shared, alice, { prompt: 'none', id_token_hint: aliceHint });
    t.equal(silent.error, 'login_required', 'never a code for bob when the client expects alice');
    t.notOk(silent.sawLogin, 'as a redirect, never a page');

    const interactive = await authenticate(shared, alice, { id_token_hint: aliceHint });
    t.ok(interactive.sawLogin, 'asked to sign in');
    t.equal(interactive.claims?.sub, alice.id);

    const bobsHint = (await authenticate(new InjectBrowser(app), bob)).idToken!;
    t.equal((await authenticate(shared, bob, { prompt: 'none', id_token_hint: bobsHint })).error, 'login_required', 'alice is signed in now');
  });

  t.test('a hint this server did not issue names no one: prompt=none is login_required, even with its user signed in', async (t) => {
    const [header, payload] = aliceHint.split('.');
    const tampered = `${header}.${payload}.${'A'.repeat(342)}`;
    const { privateKey } = await generateKeyPair('RS256');
    const { kid } = decodeProtectedHeader(aliceHint);
    const foreign = await new SignJWT({ ...decodeJwt(aliceHint) }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: kid! }).sign(privateKey);
    for (const [name, hint] of [
      ['a changed signature', tampered],
      ['signed by a key that is not ours', foreign],
      ['an access token of ours (typ at+jwt)', first.accessToken!],
    ] as const) {
      const silent = await authenticate(browser, alice, { prompt: 'none', id_token_hint: hint });
      t.equal(silent.error, 'login_required', name);
    }
    const malformed = await authenticate(browser, alice, { prompt: 'none', id_token_hint: 'not-an-id-token' });
    t.equal(malformed.error, 'invalid_request', 'not even a JWT: the client is told');
  });

  t.test('offline_access is ignored by the implicit grant, which never issues a refresh token (OIDC Core §11)', async (t) => {
    const legacy = await seedClient(services, {
      redirect_uris: [REDIRECT],
      grant_types: ['implicit'],
      token_endpoint_auth_method: 'none',
      scope: 'openid offline_access api:read',
    });
    const implicitBrowser = new InjectBrowser(app);
    const path = authorizePath({ response_type: 'token', client_id: legacy.clientId, redirect_uri: REDIRECT, scope: 'openid offline_access api:read', state: 's' });
    const login = await implicitBrowser.get(path);
    const signedIn = await implicitBrowser.post('/login', { ...hiddenFields((await implicitBrowser.get(login.headers.location as string)).body, '/login'), ...alice });
    const consent = await implicitBrowser.get(signedIn.headers.location as string);
    t.match(consent.body, /action="\/consent"/, 'the consent page');
    t.notMatch(consent.body, /Stay connected/, 'does not offer to keep access while the user is away');
    const result = await loginAndConsent(implicitBrowser, path, alice);
    const params = responseParams(result.location);
    t.equal(params.get('scope'), 'openid api:read');
    t.equal(decodeJwt(params.get('access_token')!).scope, 'openid api:read');
    t.equal(params.get('refresh_token'), null);
  });
});
