/**
 * OpenID Connect Back-Channel Logout 1.0 over `app.inject()`: a local HTTP
 * receiver on 127.0.0.1 plays the relying parties' back-channel endpoints.
 * Signing in through the login and consent pages puts `sid` in the ID
 * token; ending the session (POST /logout, a confirmed /end-session, the
 * account page) posts one logout token, verified with jose against the
 * server's JWKS, to each client the session signed in to that registered a
 * URI, in the background: a receiver that is down or slow changes nothing
 * for the sign-out. Clients no admin registered are held to the SSRF guard.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import t, { type Test } from 'tap';
import type { BackchannelLogoutOutcome } from '../../src/oauth/backchannel-logout.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/tokens/jwt.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, hiddenFields, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';
import { makeTestCertificates, startHttpsServer } from '../helpers/tls.js';

type Tap = Test;

interface Received {
  path: string;
  method: string;
  contentType: string | undefined;
  form: URLSearchParams;
}

/** An HTTP server on 127.0.0.1 recording every request; `hold` keeps answers back until released. */
async function startReceiver(t: Tap) {
  const received: Received[] = [];
  const held: Array<() => void> = [];
  let hold = false;
  let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(200, { 'cache-control': 'no-store' }).end();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', method: req.method ?? '', contentType: req.headers['content-type'], form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')) });
      if (hold) held.push(() => answer(req, res));
      else answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    at: (path: string) => received.filter((r) => r.path === path),
    clear: () => received.splice(0),
    answerWith: (fn: typeof answer) => (answer = fn),
    holdAnswers: (on: boolean) => {
      hold = on;
      if (!on) for (const release of held.splice(0)) release();
    },
  };
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const REDIRECT = 'http://127.0.0.1:7032/cb';

t.test(`back-channel logout (${backendName})`, async (t) => {
  const receiver = await startReceiver(t);
  const outcomes: BackchannelLogoutOutcome[] = [];
  const { app, services, config } = await buildTestApp(t, {
    serviceOptions: { onBackchannelLogout: (o) => outcomes.push(o), backchannelLogoutRetryDelayMs: 20 },
  });
  const issuer = new URL(config.issuer);
  const httpOptions = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oidc' }));
  const jwks = createLocalJWKSet(JSON.parse((await app.inject('/jwks.json')).body));

  const web = await seedClient(services, { client_name: 'Web', redirect_uris: [REDIRECT], post_logout_redirect_uris: [REDIRECT], scope: 'openid profile', grant_types: ['authorization_code', 'refresh_token'] });
  await services.clients.update(web.clientId, { backchannel_logout_uri: receiver.url('/bc/web'), backchannel_logout_session_required: true });
  const mail = await seedClient(services, { client_name: 'Mail', redirect_uris: [REDIRECT], scope: 'openid' });
  await services.clients.update(mail.clientId, { backchannel_logout_uri: receiver.url('/bc/mail?tenant=1') });
  const plain = await seedClient(services, { client_name: 'Plain', redirect_uris: [REDIRECT], scope: 'openid' });
  const alice = await seedUser(services);

  let serial = 0;
  const browser = () => new InjectBrowser(app, `10.32.0.${++serial}`);

  /** Signs `user` in to `client` through the pages (or single sign-on); the tokens the client gets. */
  async function signIn(b: InjectBrowser, client: { clientId: string; clientSecret: string | null }, user: { username: string; password: string } = alice) {
    const pkce = pkcePair();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const path = authorizePath({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'openid', state, nonce, code_challenge: pkce.challenge, code_challenge_method: 'S256' });
    const result = await loginAndConsent(b, path, user);
    const rp: oauth.Client = { client_id: client.clientId };
    const params = oauth.validateAuthResponse(as, rp, new URL(result.location), state);
    const response = await oauth.authorizationCodeGrantRequest(as, rp, oauth.ClientSecretBasic(client.clientSecret!), params, REDIRECT, pkce.verifier, httpOptions);
    const tokens = await oauth.processAuthorizationCodeResponse(as, rp, response, { expectedNonce: nonce, requireIdToken: true });
    return { idToken: tokens.id_token!, claims: oauth.getValidatedIdTokenClaims(tokens)!, refreshToken: tokens.refresh_token };
  }

  const signOut = async (b: InjectBrowser) => {
    const page = await b.get('/account');
    return b.post('/logout', { csrf_token: hiddenFields(page.body, '/logout').csrf_token! });
  };

  /** Verifies a received logout token as a relying party would (Back-Channel Logout §2.6). */
  async function verifyLogoutToken(t: Tap, token: string, audience: string): Promise<JWTPayload> {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: config.issuer, audience, typ: 'logout+jwt', algorithms: ['RS256'] });
    t.equal(protectedHeader.typ, 'logout+jwt');
    t.equal(protectedHeader.alg, 'RS256', 'signed like ID tokens');
    t.same(payload.events, { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    t.notOk('nonce' in payload, 'no nonce (§2.4)');
    t.type(payload.jti, 'string');
    t.ok(payload.exp! - payload.iat! > 0 && payload.exp! - payload.iat! <= 120, `short-lived (${payload.exp! - payload.iat!} s)`);
    return payload;
  }

  t.test('discovery advertises back-channel logout with sid', async (t) => {
    t.equal(as.backchannel_logout_supported, true);
    t.equal(as.backchannel_logout_session_supported, true);
  });

  t.test('the ID token carries sid, the same for each sign-in of the session, never the cookie; a refreshed one keeps it', async (t) => {
    const b = browser();
    const first = await signIn(b, web);
    const sid = first.claims.sid as string;
    t.type(sid, 'string');
    t.ok(sid.length >= 20, 'opaque and long');
    const cookie = b.cookies.get('sid')!;
    t.not(sid, cookie, 'not the cookie');
    t.not(sid, services.sessions.handleOf({ id: cookie }), 'not the store key either');
    const again = await signIn(b, web);
    t.equal(again.claims.sid, sid, 'single sign-on: the same sid');
    const elsewhere = browser();
    const other = await signIn(elsewhere, web);
    t.not(other.claims.sid, sid, 'another browser session: another sid');

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      { client_id: web.clientId },
      await oauth.refreshTokenGrantRequest(as, { client_id: web.clientId }, oauth.ClientSecretBasic(web.clientSecret!), first.refreshToken!, httpOptions),
    );
    t.equal(decodeJwt(refreshed.id_token!).sid, sid, 'refreshed ID token: the sid of the original session');
    await signOut(b);
    await signOut(elsewhere);
    await services.backchannelLogout.idle();
    receiver.clear();
    outcomes.splice(0);
  });

  t.test('POST /logout: exactly one logout token to the client, verified against the JWKS; sid equal to the ID token\'s', async (t) => {
    const b = browser();
    const { claims } = await signIn(b, web);
    const res = await signOut(b);
    t.equal(res.statusCode, 303);
    await services.backchannelLogout.idle();
    const got = receiver.at('/bc/web');
    t.equal(got.length, 1, 'exactly one');
    t.equal(got[0]!.method, 'POST');
    t.equal(got[0]!.contentType, 'application/x-www-form-urlencoded');
    t.same([...got[0]!.form.keys()], ['logout_token']);
    const payload = await verifyLogoutToken(t, got[0]!.form.get('logout_token')!, web.clientId);
    t.equal(payload.sub, alice.id);
    t.equal(payload.sub, claims.sub);
    t.equal(payload.sid, claims.sid, 'the sid of the ID token');
    t.equal(payload.aud, web.clientId);
    t.match(outcomes, [{ clientId: web.clientId, ok: true, attempts: 1, status: 200 }]);
    t.notOk(JSON.stringify(outcomes).includes(got[0]!.form.get('logout_token')!), 'the outcome never holds the token');
    receiver.clear();
    outcomes.splice(0);
  });

  t.test('a confirmed /end-session sends it too; a client without a URI gets nothing; two clients of one session one each', async (t) => {
    const b = browser();
    const { idToken, claims } = await signIn(b, web);
    await signIn(b, mail);
    await signIn(b, plain);
    const page = await b.get(`/end-session?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: REDIRECT }).toString()}`);
    t.equal(receiver.received.length, 0, 'opening the page sends nothing');
    const done = await b.post('/end-session', hiddenFields(page.body, '/end-session'));
    t.equal(done.statusCode, 303);
    await services.backchannelLogout.idle();
    t.equal(receiver.at('/bc/web').length, 1);
    const toMail = receiver.at('/bc/mail?tenant=1');
    t.equal(toMail.length, 1, 'the registered URI, its query kept');
    t.equal(receiver.received.length, 2, 'nothing for the client without a URI');
    const payload = await verifyLogoutToken(t, toMail[0]!.form.get('logout_token')!, mail.clientId);
    t.equal(payload.sid, claims.sid, 'the same session');
    t.equal(payload.sub, alice.id);
    await t.rejects(jwtVerify(toMail[0]!.form.get('logout_token')!, jwks, { issuer: config.issuer, audience: web.clientId }), 'each token is for its own client');
    receiver.clear();
    outcomes.splice(0);
  });

  t.test('the account page: "sign out other sessions" and ending one session tell their clients', async (t) => {
    const bob = await seedUser(services);
    const here = browser();
    const phone = browser();
    const tablet = browser();
    await signIn(here, mail, bob);
    const onPhone = await signIn(phone, web, bob);
    const onTablet = await signIn(tablet, web, bob);
    const csrfOf = async () => hiddenFields((await here.get('/account')).body, '/logout').csrf_token!;
    const handle = services.sessions.handleOf({ id: phone.cookies.get('sid')! });
    t.equal((await here.post('/account/sessions/end', { csrf_token: await csrfOf(), session: handle })).statusCode, 303);
    await services.backchannelLogout.idle();
    t.equal(receiver.received.length, 1);
    t.equal((await verifyLogoutToken(t, receiver.at('/bc/web')[0]!.form.get('logout_token')!, web.clientId)).sid, onPhone.claims.sid, 'the phone session');
    receiver.clear();
    t.equal((await here.post('/account/sessions/end-others', { csrf_token: await csrfOf() })).statusCode, 303);
    await services.backchannelLogout.idle();
    t.equal(receiver.received.length, 1, 'the tablet only: this session goes on');
    t.equal((await verifyLogoutToken(t, receiver.at('/bc/web')[0]!.form.get('logout_token')!, web.clientId)).sid, onTablet.claims.sid);
    receiver.clear();
    outcomes.splice(0);
  });

  t.test('an admin disabling or deleting the user, or setting a new password, ends the browser sessions and tells their clients', async (t) => {
    for (const change of ['disable', 'password', 'delete'] as const) {
      const carol = await seedUser(services);
      const b = browser();
      const { claims } = await signIn(b, web, carol);
      if (change === 'disable') await services.users.update(carol.id, { disabled: true });
      if (change === 'password') await services.users.update(carol.id, { password: 'a brand new passphrase 42' });
      if (change === 'delete') await services.users.delete(carol.id);
      await services.backchannelLogout.idle();
      const got = receiver.at('/bc/web');
      t.equal(got.length, 1, `${change}: one logout token`);
      const payload = await verifyLogoutToken(t, got[0]!.form.get('logout_token')!, web.clientId);
      t.equal(payload.sid, claims.sid, `${change}: for the session it signed in through`);
      t.equal(payload.sub, carol.id);
      t.same(await services.sessions.listForUser(carol.id), [], `${change}: no session of the user is left`);
      receiver.clear();
    }
    outcomes.splice(0);
  });

  t.test('a receiver that is down or slow does not hold up or break the sign-out', async (t) => {
    const down = await seedClient(services, { client_name: 'Down', redirect_uris: [REDIRECT], scope: 'openid' });
    await services.clients.update(down.clientId, { backchannel_logout_uri: `http://127.0.0.1:${await closedPort()}/bc` });
    const b = browser();
    await signIn(b, down);
    const cookie = b.cookies.get('sid')!;
    const res = await signOut(b);
    t.equal(res.statusCode, 303);
    t.equal(await services.sessions.load(cookie), null, 'signed out');
    await services.backchannelLogout.idle();
    t.match(outcomes, [{ clientId: down.clientId, ok: false, attempts: 2 }], 'tried once more, then given up');
    outcomes.splice(0);

    // A receiver that has not answered yet: the 303 comes back first.
    receiver.holdAnswers(true);
    const slow = browser();
    await signIn(slow, web);
    const out = await signOut(slow);
    t.equal(out.statusCode, 303);
    t.equal(outcomes.length, 0, 'the sign-out answered while the logout token was still unanswered');
    receiver.holdAnswers(false);
    await services.backchannelLogout.idle();
    t.match(outcomes, [{ clientId: web.clientId, ok: true }]);
    receiver.clear();
    outcomes.splice(0);
  });

  t.test('redirects are not followed; a 4xx is not retried, a 5xx once', async (t) => {
    receiver.answerWith((req, res) => {
      if (req.url === '/bc/web') res.writeHead(302, { location: receiver.url('/elsewhere') }).end();
      else res.writeHead(200).end();
    });
    const b = browser();
    await signIn(b, web);
    await signOut(b);
    await services.backchannelLogout.idle();
    t.equal(receiver.at('/elsewhere').length, 0, 'the redirect was not followed');
    t.match(outcomes, [{ ok: false, attempts: 1, reason: /redirects are not followed/ }]);
    outcomes.splice(0);
    for (const [status, attempts] of [[400, 1], [503, 2]] as const) {
      receiver.answerWith((_req, res) => res.writeHead(status).end());
      const again = browser();
      await signIn(again, web);
      await signOut(again);
      await services.backchannelLogout.idle();
      t.match(outcomes, [{ ok: false, attempts, status }], `${status}: ${attempts} attempt(s)`);
      outcomes.splice(0);
    }
    receiver.answerWith((_req, res) => res.writeHead(204).end());
    const fine = browser();
    await signIn(fine, web);
    await signOut(fine);
    await services.backchannelLogout.idle();
    t.match(outcomes, [{ ok: true, status: 204 }], '204 counts as done');
    receiver.answerWith((_req, res) => res.writeHead(200).end());
    receiver.clear();
    outcomes.splice(0);
  });

  t.test('the audit trail records each delivery, never the token', async (t) => {
    const b = browser();
    await signIn(b, web);
    await signOut(b);
    await services.backchannelLogout.idle();
    await services.audit.flush();
    const token = receiver.at('/bc/web')[0]!.form.get('logout_token')!;
    const events = (await services.audit.list({ type: 'backchannel_logout.sent' }, { limit: 100, offset: 0 })).events;
    t.ok(events.some((e) => e.clientId === web.clientId && e.outcome === 'success' && e.subject?.id === alice.id));
    t.ok(events.some((e) => e.outcome === 'failure'), 'failures too');
    t.notOk(JSON.stringify(events).includes(token));
    receiver.clear();
    outcomes.splice(0);
  });
});

t.test(`back-channel logout of clients no admin registered: the SSRF guard (${backendName})`, async (t) => {
  const certs = await makeTestCertificates(t, ['rp.test']);
  const rp = await startHttpsServer(t, certs);
  const bodies: string[] = [];
  rp.on('/bc', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200).end();
    });
  });
  const resolve = async (hostname: string) => (hostname === 'rp.test' ? [{ address: '127.0.0.1', family: 4 }] : []);

  async function setUp(t: Tap, env: Record<string, string>) {
    const outcomes: BackchannelLogoutOutcome[] = [];
    const { app, services } = await buildTestApp(t, {
      env: { DYNAMIC_REGISTRATION: 'open', ...env },
      serviceOptions: { onBackchannelLogout: (o) => outcomes.push(o), backchannelLogoutRetryDelayMs: 20, outbound: { extraCaCerts: [certs.caPem], resolve } },
    });
    const reg = await app.inject({
      method: 'POST',
      url: '/oauth/register',
      payload: { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', backchannel_logout_uri: `https://rp.test:${rp.port}/bc` },
    });
    t.equal(reg.statusCode, 201, reg.body);
    const clientId = reg.json<{ client_id: string }>().client_id;
    const alice = await seedUser(services);
    const b = new InjectBrowser(app, '10.33.0.1');
    const pkce = pkcePair();
    const path = authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid', state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256' });
    t.ok((await loginAndConsent(b, path, alice)).params.get('code'));
    const page = await b.get('/account');
    t.equal((await b.post('/logout', { csrf_token: hiddenFields(page.body, '/logout').csrf_token! })).statusCode, 303);
    await services.backchannelLogout.idle();
    return { outcomes, clientId };
  }

  t.test('a name that resolves to a private address is not posted to', async (t) => {
    bodies.splice(0);
    const { outcomes, clientId } = await setUp(t, {});
    t.equal(bodies.length, 0, 'nothing reached the receiver');
    t.match(outcomes, [{ clientId, ok: false, attempts: 1, reason: /not a public address/ }]);
  });

  t.test('CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS=true lifts the address rule (https still)', async (t) => {
    bodies.splice(0);
    const { outcomes, clientId } = await setUp(t, { CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS: 'true' });
    t.equal(bodies.length, 1);
    const token = new URLSearchParams(bodies[0]).get('logout_token')!;
    t.equal(decodeProtectedHeader(token).typ, 'logout+jwt');
    t.equal(decodeJwt(token).aud, clientId);
    t.match(outcomes, [{ clientId, ok: true }]);
  });
});
