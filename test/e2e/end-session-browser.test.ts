/**
 * RP-initiated logout end to end in real headless Chromium, with
 * oauth4webapi as the client application: sign in through the real login
 * and consent pages, get an ID token, send the browser to the
 * `end_session_endpoint` from discovery with `id_token_hint`,
 * `post_logout_redirect_uri` and `state`, confirm, and land back at the
 * client with `state`; the next `prompt=none` request is `login_required`.
 *
 * Chromium enforces CSP `form-action` on the redirect that follows the
 * confirmation's POST, so this fails if the confirmation page forbids the
 * 303 to the client's post-logout redirect URI.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';
import { startCodeFlow } from '../helpers/oauth-client.js';
import { freePort } from '../helpers/server-process.js';

const STEP_TIMEOUT_MS = 10_000;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const noChromium = chromiumSkip(t);

t.test(`RP-initiated logout in headless Chromium (${backendName})`, { skip: noChromium }, async (t) => {
  // The client application: a loopback listener of its own (another origin than the server).
  const rp = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Client</title><p>Back at the client.</p>');
  });
  const rpPort = await listen(rp);
  t.teardown(() => new Promise((resolve) => rp.close(resolve)));
  const REDIRECT = `http://127.0.0.1:${rpPort}/cb`;
  const BYE = `http://127.0.0.1:${rpPort}/signed-out`;

  const port = await freePort();
  const { app, services, config } = await buildTestApp(t, { env: { ISSUER: `http://127.0.0.1:${port}`, PORT: String(port) } });
  await app.listen({ port, host: '127.0.0.1' });
  const issuer = new URL(config.issuer);
  const http = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }));

  const web = await seedClient(services, {
    client_name: 'Photo Printer',
    redirect_uris: [REDIRECT],
    post_logout_redirect_uris: [BYE],
    grant_types: ['authorization_code'],
    scope: 'openid profile',
  });
  const client: oauth.Client = { client_id: web.clientId };
  const alice = await seedUser(services, { username: `alice${Date.now() % 100000}` });

  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page: Page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });

  /** What the client application does to start: PKCE, state, nonce, the URL. */
  const startAuthorization = (extra: Record<string, string> = {}) =>
    startCodeFlow(as, { client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid profile', ...extra });
  const atClient = (prefix: string) => page.waitForURL((url) => url.toString().startsWith(prefix));

  await t.test('sign in, log out from the client with confirmation, land back with state; prompt=none is then login_required', async (t) => {
    const flow = await startAuthorization();
    await page.goto(flow.url);
    await page.getByLabel('Username').fill(alice.username);
    await page.getByLabel('Password').fill(alice.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await atClient(REDIRECT);
    const params = oauth.validateAuthResponse(as, client, new URL(page.url()), flow.state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, flow.verifier, http);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: flow.nonce, requireIdToken: true });
    t.equal(oauth.getValidatedIdTokenClaims(tokens)!.sub, alice.id);

    t.equal(as.end_session_endpoint, `${config.issuer}/end-session`, 'discovery names the endpoint');
    const logoutState = oauth.generateRandomState();
    const logout = new URL(as.end_session_endpoint!);
    logout.search = new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: logoutState }).toString();
    await page.goto(logout.toString());
    await page.getByRole('heading', { name: `Sign out of ${issuer.host}?` }).waitFor();
    t.match(await page.textContent('main'), 'Photo Printer asks to sign you out');
    t.match(await page.textContent('main'), `You are signed in as ${alice.username}`);

    // Opening the link signed nobody out: the account page in another tab still knows alice.
    const tab = await context.newPage();
    await tab.goto(`${config.issuer}/account`);
    t.match(await tab.textContent('main'), `You are signed in as ${alice.username}`, 'still signed in after the GET');
    await tab.close();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await atClient(BYE);
    const landed = new URL(page.url());
    t.equal(`${landed.origin}${landed.pathname}`, BYE);
    t.equal(landed.searchParams.get('state'), logoutState, 'state comes back');
    t.same(cspViolations, [], 'no CSP violation (form-action allows the redirect to the client)');

    const silent = await startAuthorization({ prompt: 'none' });
    await page.goto(silent.url);
    await atClient(REDIRECT);
    let error: string | null = null;
    try {
      oauth.validateAuthResponse(as, client, new URL(page.url()), silent.state);
    } catch (err) {
      if (!(err instanceof oauth.AuthorizationResponseError)) throw err;
      error = err.error;
    }
    t.equal(error, 'login_required', 'signed out: a silent request needs a sign-in');
  });
});
