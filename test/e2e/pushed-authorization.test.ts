/**
 * Pushed authorization requests (RFC 9126), with oauth4webapi as the client
 * over `app.inject()`: a confidential and a public client push, then the
 * browser goes to `/authorize` with `client_id` and `request_uri` and the
 * code flow ends in tokens. Refused: a request_uri used again, used at two
 * instances at once (exactly one wins), expired (the app's clock moved),
 * used with another client_id; a pushed request with a bad redirect URI or
 * other fault answered as JSON, never redirected; and `/authorize` without
 * a pushed request when the client (or REQUIRE_PAR) requires one.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { runCli } from '../../src/admin/cli/run.js';
import { buildTestApp, seedClient, seedUser, type TestApp } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, loginAndConsent, pkcePair, responseParams } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';

const REDIRECT = 'http://127.0.0.1:7009/cb';
const PREFIX = 'urn:ietf:params:oauth:request_uri:';

t.test(`pushed authorization requests (${backendName})`, async (t) => {
  // Two instances over one database and one TTL store; a clock the test can move.
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  const db = await testDb(t);
  const kv = await testKv(t);
  const one: TestApp = await buildTestApp(t, { db, kv, now });
  const two: TestApp = await buildTestApp(t, { db, kv, now });
  const { app, services, config } = one;

  const issuer = new URL(config.issuer);
  const options = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' }));

  const web = await seedClient(services, { client_name: 'Web', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'api:read' });
  const spa = await seedClient(services, { client_name: 'SPA', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', scope: 'api:read' });
  const registered = await services.clients.register({ client_name: 'Strict', redirect_uris: [REDIRECT], scope: 'api:read', require_pushed_authorization_requests: true });
  const strict = { clientId: registered.client.clientId, clientSecret: registered.clientSecret };
  const user = await seedUser(services);

  type Who = { clientId: string; clientSecret: string | null };
  const authOf = (who: Who) => (who.clientSecret ? oauth.ClientSecretBasic(who.clientSecret) : oauth.None());
  const authorizationParams = (pkce = pkcePair(), state = oauth.generateRandomState()) => ({
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'api:read',
    state,
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
  });
  /** Pushes through oauth4webapi; returns the request_uri. */
  async function push(who: Who, params: Record<string, string> = authorizationParams(), at: TestApp = one) {
    const client = { client_id: who.clientId };
    const response = await oauth.pushedAuthorizationRequest(as, client, authOf(who), params, { ...options, [oauth.customFetch]: injectFetch(at.app) });
    const result = await oauth.processPushedAuthorizationResponse(as, client, response);
    t.equal(result.expires_in, 60);
    t.ok(result.request_uri.startsWith(PREFIX));
    return result.request_uri;
  }
  /** A push answered with an error: status and body, and no redirect. */
  async function pushRefused(who: Who, params: Record<string, string>) {
    const response = await oauth.pushedAuthorizationRequest(as, { client_id: who.clientId }, authOf(who), params, options);
    return { status: response.status, location: response.headers.get('location'), contentType: response.headers.get('content-type'), ...((await response.json()) as Record<string, string>) };
  }
  /** Signs in (first time) and consents; returns where the browser ended up. */
  const authorizeWith = (who: Who, requestUri: string, browser = new InjectBrowser(app)) => loginAndConsent(browser, authorizePath({ client_id: who.clientId, request_uri: requestUri }), user);

  t.test('metadata announces the endpoint; REQUIRE_PAR is off by default', async (t) => {
    t.equal(as.pushed_authorization_request_endpoint, `${config.issuer}/par`);
    t.equal(as.require_pushed_authorization_requests, false);
  });

  t.test('a confidential client pushes, the browser brings the request_uri, the code is redeemed', async (t) => {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const requestUri = await push(web, authorizationParams(pkce, state));
    const result = await authorizeWith(web, requestUri);
    const client = { client_id: web.clientId };
    const callback = oauth.validateAuthResponse(as, client, new URL(result.location), state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, authOf(web), callback, REDIRECT, pkce.verifier, options),
    );
    t.equal(tokens.scope, 'api:read');
  });

  t.test('a public client pushes with its client_id alone', async (t) => {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const result = await authorizeWith(spa, await push(spa, authorizationParams(pkce, state)));
    const client = { client_id: spa.clientId };
    const callback = oauth.validateAuthResponse(as, client, new URL(result.location), state);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), callback, REDIRECT, pkce.verifier, options));
    t.ok(tokens.access_token);
  });

  t.test('a private_key_jwt client pushes with an assertion whose aud is the /par endpoint (RFC 9126 §2)', async (t) => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomUUID();
    const { client: signed } = await services.clients.register({
      client_name: 'Signed',
      redirect_uris: [REDIRECT],
      scope: 'api:read',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] },
    });
    const assertion = (aud: string) =>
      new SignJWT({ iss: signed.clientId, sub: signed.clientId, aud, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuedAt(Math.floor(now() / 1000))
        .setExpirationTime(Math.floor(now() / 1000) + 60)
        .sign(privateKey);
    const pushWith = async (aud: string) =>
      app.inject({
        method: 'POST',
        url: '/par',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          ...authorizationParams(),
          client_id: signed.clientId,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(aud),
        }).toString(),
      });
    const pushed = await pushWith(`${config.issuer}/par`);
    t.equal(pushed.statusCode, 201, pushed.body);
    t.ok((pushed.json<{ request_uri: string }>()).request_uri.startsWith(PREFIX));
    t.equal((await pushWith(`${config.issuer}/introspect`)).statusCode, 401, 'another endpoint of this server is not the audience');
  });

  t.test('parameters outside the pushed request are ignored (RFC 9126 §4)', async (t) => {
    const state = oauth.generateRandomState();
    const browser = new InjectBrowser(app);
    const result = await loginAndConsent(browser, authorizePath({ client_id: web.clientId, request_uri: await push(web, authorizationParams(undefined, state)), state: 'other', scope: 'api:write' }), user);
    t.equal(result.params.get('state'), state);
    t.ok(result.params.get('code'));
  });

  /** `/authorize` with a request_uri, expected to show the error page: never a redirect. */
  async function refusedAt(target: TestApp, who: Who, requestUri: string) {
    const res = await new InjectBrowser(target.app).get(authorizePath({ client_id: who.clientId, request_uri: requestUri }));
    return { status: res.statusCode, location: res.headers.location, page: res.body };
  }

  t.test('a request_uri works once', async (t) => {
    const requestUri = await push(web);
    await authorizeWith(web, requestUri);
    t.match(await refusedAt(one, web, requestUri), { status: 400, location: undefined, page: /expired or was already used/ });
  });

  t.test('used at two instances at once, exactly one gets the request', async (t) => {
    const requestUri = await push(web);
    const results = await Promise.all([one, two].map((target) => new InjectBrowser(target.app).get(authorizePath({ client_id: web.clientId, request_uri: requestUri }))));
    const codes = results.map((res) => res.statusCode).sort();
    t.same(codes, [303, 400], 'one goes on to sign-in, the other sees the error page');
    t.match(results.find((res) => res.statusCode === 303)!.headers.location, /^\/login/);
  });

  t.test('a request_uri of another client is refused, and stays usable by its own', async (t) => {
    const requestUri = await push(web);
    t.match(await refusedAt(one, spa, requestUri), { status: 400, location: undefined });
    const result = await authorizeWith(web, requestUri);
    t.ok(result.params.get('code'));
  });

  t.test('without client_id, or not one of ours, a request_uri is refused', async (t) => {
    const requestUri = await push(web);
    const res = await new InjectBrowser(app).get(authorizePath({ request_uri: requestUri }));
    t.equal(res.statusCode, 400);
    t.match(res.body, /no client_id/);
    t.match(await refusedAt(one, web, 'https://attacker.example/request.jwt'), { status: 400, location: undefined, page: /not issued by this server/ });
  });

  t.test('a pushed request with a fault is answered as JSON 400, never redirected', async (t) => {
    const json = /^application\/json/;
    t.match(await pushRefused(web, { ...authorizationParams(), redirect_uri: 'https://attacker.example/cb' }), { status: 400, location: null, contentType: json, error: 'invalid_request', error_description: /redirect_uri/ });
    const { code_challenge: _omitted, ...noPkce } = authorizationParams();
    t.match(await pushRefused(web, noPkce), { status: 400, location: null, error: 'invalid_request', error_description: /code_challenge/ });
    t.match(await pushRefused(web, { ...authorizationParams(), scope: 'payroll' }), { status: 400, location: null, error: 'invalid_scope' });
    t.match(await pushRefused(web, { ...authorizationParams(), request_uri: `${PREFIX}abc` }), { status: 400, error: 'invalid_request', error_description: /request_uri must not be sent/ });
    t.match(await pushRefused(web, { ...authorizationParams(), request: 'eyJhbGciOiJub25lIn0.e30.' }), { status: 400, error: 'request_not_supported' });
    t.match(await pushRefused({ clientId: web.clientId, clientSecret: 'wrong' }, authorizationParams()), { status: 401, error: 'invalid_client' });
    // A confidential client cannot pass as public by sending only its client_id.
    t.match(await pushRefused({ clientId: web.clientId, clientSecret: null }, authorizationParams()), { status: 401, error: 'invalid_client' });
    const form = await app.inject({ method: 'POST', url: '/par', headers: { 'content-type': 'application/json' }, payload: '{}' });
    t.equal(form.statusCode, 400);
  });

  t.test('a client that requires pushed requests is refused at /authorize directly, served through /par', async (t) => {
    const direct = await new InjectBrowser(app).get(authorizePath({ client_id: strict.clientId, ...authorizationParams(undefined, 'xyz') }));
    t.equal(direct.statusCode, 303);
    const params = responseParams(direct.headers.location as string);
    t.equal(params.get('error'), 'invalid_request');
    t.match(params.get('error_description'), /Pushed authorization requests are required/);
    t.equal(params.get('state'), 'xyz');
    const result = await authorizeWith(strict, await push(strict));
    t.ok(result.params.get('code'));
    t.equal(registered.client.requirePushedAuthorizationRequests, true);
  });

  t.test('an admin sets the requirement through the admin API, the CLI and the console', async (t) => {
    const admin = await seedUser(services, { username: 'root', roles: ['admin'] });
    const target = await seedClient(services, { client_name: 'Switched', redirect_uris: [REDIRECT], scope: 'api:read' });
    const required = async () => (await services.clients.get(target.clientId)).requirePushedAuthorizationRequests;
    const refusedDirectly = async () => {
      const res = await new InjectBrowser(app).get(authorizePath({ client_id: target.clientId, ...authorizationParams() }));
      const location = res.headers.location as string;
      return location.startsWith(REDIRECT) && responseParams(location).get('error') === 'invalid_request';
    };

    const basicAuth = `Basic ${Buffer.from(`root:${admin.password}`).toString('base64')}`;
    const patched = await app.inject({
      method: 'PATCH',
      url: `/admin/clients/${target.clientId}`,
      headers: { authorization: basicAuth, 'content-type': 'application/json' },
      payload: { require_pushed_authorization_requests: true },
    });
    t.equal(patched.statusCode, 200, patched.body);
    t.equal(patched.json().require_pushed_authorization_requests, true);
    t.ok(await refusedDirectly(), 'refused at /authorize once the admin API set it');

    let stdout = '';
    const io = { stdout: (text: string) => (stdout += text), stderr: () => {}, readStdin: async () => '' };
    t.equal(await runCli(['clients', 'update', target.clientId, '--no-require-par'], io, { services }), 0, stdout);
    t.match(stdout, /require_pushed_authorization_requests:\s+no/);
    t.equal(await required(), false);
    t.notOk(await refusedDirectly(), 'accepted again once the CLI cleared it');

    const { browser } = await (async () => {
      const console = new InjectBrowser(app);
      const form = await console.get('/admin/console/sign-in');
      await console.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: 'root', password: admin.password });
      return { browser: console };
    })();
    const page = await browser.get(`/admin/console/clients/${target.clientId}`);
    t.match(page.body, /name="require_pushed_authorization_requests"/);
    const saved = await browser.post(`/admin/console/clients/${target.clientId}`, {
      ...hiddenFields(page.body, `/admin/console/clients/${target.clientId}`),
      client_name: 'Switched',
      redirect_uris: REDIRECT,
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: ['api:read'],
      require_pushed_authorization_requests: 'yes',
    });
    t.equal(saved.statusCode, 303, saved.body.slice(0, 300));
    t.equal(await required(), true, 'set by the console checkbox');
    t.match((await browser.get(`/admin/console/clients/${target.clientId}`)).body, /name="require_pushed_authorization_requests" value="yes" checked/);
  });

  t.test('REQUIRE_PAR=true requires it of every client and says so in metadata', async (t) => {
    const required = await buildTestApp(t, { db, kv, now, env: { REQUIRE_PAR: 'true' } });
    const metadata = (await required.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json<Record<string, unknown>>();
    t.equal(metadata.require_pushed_authorization_requests, true);
    const direct = await new InjectBrowser(required.app).get(authorizePath({ client_id: web.clientId, ...authorizationParams() }));
    t.match(responseParams(direct.headers.location as string).get('error'), 'invalid_request');
    const requestUri = await push(web, authorizationParams(), required);
    const res = await new InjectBrowser(required.app).get(authorizePath({ client_id: web.clientId, request_uri: requestUri }));
    t.equal(res.statusCode, 303);
    t.match(res.headers.location, /^\/login/);
  });

  // Last: the clock moves.
  t.test('a request_uri expires after 60 seconds', async (t) => {
    const requestUri = await push(web);
    const stillValid = await push(web);
    offsetMs += 59_000;
    t.equal((await new InjectBrowser(app).get(authorizePath({ client_id: web.clientId, request_uri: stillValid }))).statusCode, 303, 'valid for 59 s');
    offsetMs += 2_000;
    t.match(await refusedAt(one, web, requestUri), { status: 400, location: undefined, page: /expired/ });
  });
});
