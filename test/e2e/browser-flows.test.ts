/**
 * The browser flows end to end in real headless Chromium (Debian `chromium`
 * driven by playwright-core) against a listening server, with oauth4webapi
 * as the client application: it builds the authorization URL, validates the
 * callback (state and RFC 9207 `iss`) and redeems the code.
 *
 * Chromium matters here beyond realism: it enforces CSP `form-action` on the
 * redirects that follow a form POST, so these tests fail if the login or
 * consent page forbids the 303 to the client's redirect URI.
 *
 * One browser for the file; each scenario gets its own context (cookie jar).
 * Screenshots of the login and consent pages go to test/artifacts/.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { ROOT } from '../helpers/root.js';
import { freePort } from '../helpers/server-process.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';
import { startCodeFlow } from '../helpers/oauth-client.js';

const ARTIFACTS = join(ROOT, 'test/artifacts/');
const STEP_TIMEOUT_MS = 10_000;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const noChromium = chromiumSkip(t);

t.test(
  `browser flows in headless Chromium (${backendName})`,
  { skip: noChromium },
  async (t) => {
    // The client's callback: a loopback listener of its own (another origin than the server).
    const callback = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Client callback</title><p>Back at the client.</p>');
    });
    const callbackPort = await listen(callback);
    t.teardown(() => new Promise((resolve) => callback.close(resolve)));
    const REDIRECT = `http://127.0.0.1:${callbackPort}/cb`;

    const port = await freePort();
    const { app, services, config } = await buildTestApp(t, { env: { ISSUER: `http://127.0.0.1:${port}`, PORT: String(port) } });
    await app.listen({ port, host: '127.0.0.1' });
    const issuer = new URL(config.issuer);
    const http = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }));

    const web = await seedClient(services, {
      client_name: 'Photo Printer',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile api:read',
    });
    const legacy = await seedClient(services, {
      client_name: 'Legacy Widget',
      redirect_uris: [REDIRECT],
      grant_types: ['implicit'],
      token_endpoint_auth_method: 'none',
      scope: 'api:read',
    });
    const alice = await seedUser(services, { username: `alice${Date.now() % 100000}` });
    const bob = await seedUser(services, { username: `bob${Date.now() % 100000}` });
    const client: oauth.Client = { client_id: web.clientId };

    await mkdir(ARTIFACTS, { recursive: true });
    const browser: Browser = await launchChromium();
    t.teardown(() => browser.close());

    /** A fresh cookie jar, with CSP violations collected from the console. */
    async function newContext(): Promise<{ context: BrowserContext; page: Page; cspViolations: string[] }> {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      const cspViolations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
      });
      return { context, page, cspViolations };
    }

    /** What the client application does to start: PKCE, state, nonce, the URL. */
    const startAuthorization = (extra: Record<string, string> = {}) =>
      startCodeFlow(as, { client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid profile api:read', ...extra });

    /** The client's callback handling: validate (state, iss) and redeem the code. */
    async function finish(page: Page, flow: { verifier: string; state: string; nonce: string }) {
      const params = oauth.validateAuthResponse(as, client, new URL(page.url()), flow.state);
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, flow.verifier, http);
      return oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: flow.nonce, requireIdToken: true });
    }

    /** The error response at the callback, as oauth4webapi reports it after checking state and iss; null if none. */
    function authError(page: Page, state: string): oauth.AuthorizationResponseError | null {
      try {
        oauth.validateAuthResponse(as, client, new URL(page.url()), state);
        return null;
      } catch (err) {
        if (err instanceof oauth.AuthorizationResponseError) return err;
        throw err;
      }
    }

    const atCallback = (page: Page) => page.waitForURL((url) => url.toString().startsWith(REDIRECT));

    async function signIn(page: Page, user: { username: string; password: string }) {
      await page.getByLabel('Username').fill(user.username);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    }

    async function hello(accessToken: string) {
      const res = await fetch(`${config.issuer}/api/hello`, { headers: { authorization: `Bearer ${accessToken}` } });
      return { status: res.status, body: (await res.json()) as { message?: string } };
    }

    // Alice's browser: signs in, consents, and is remembered for the later scenarios.
    const alicesBrowser = await newContext();
    t.teardown(() => alicesBrowser.context.close());

    t.test('code + PKCE through the real login and consent pages', async (t) => {
      const { page, cspViolations } = alicesBrowser;
      const flow = await startAuthorization();
      await page.goto(flow.url);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      t.match(await page.textContent('main'), 'Photo Printer', 'the login page names the client');
      t.ok(await page.getByRole('link', { name: 'Create an account' }).isVisible(), 'registration link');
      t.equal(await page.getByLabel('Username').getAttribute('autocomplete'), 'username');
      t.equal(await page.getByLabel('Password').getAttribute('autocomplete'), 'current-password');
      await page.screenshot({ path: `${ARTIFACTS}login.png`, fullPage: true });

      await signIn(page, alice);
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      const consent = (await page.textContent('main')) ?? '';
      t.match(consent, 'Photo Printer');
      t.match(consent, 'Sign you in');
      t.match(consent, 'See your profile');
      t.match(consent, 'Read your data');
      await page.screenshot({ path: `${ARTIFACTS}consent.png`, fullPage: true });

      await page.getByRole('button', { name: 'Allow' }).click();
      await atCallback(page);
      const tokens = await finish(page, flow);
      t.ok(tokens.refresh_token);
      const idToken = oauth.getValidatedIdTokenClaims(tokens)!;
      t.equal(idToken.sub, alice.id);
      t.equal(idToken.nonce, flow.nonce);
      const res = await hello(tokens.access_token);
      t.equal(res.status, 200);
      t.equal(res.body.message, `Hello, ${alice.username}!`);
      t.same(cspViolations, [], 'no CSP violation (form-action allows the redirect to the client)');
    });

    t.test('remembered consent: the second run goes straight back to the client', async (t) => {
      const { page } = alicesBrowser;
      const seen: string[] = [];
      const onNavigate = (frame: { url(): string }) => seen.push(frame.url());
      page.on('framenavigated', onNavigate);
      const flow = await startAuthorization();
      await page.goto(flow.url);
      await atCallback(page);
      page.off('framenavigated', onNavigate);
      t.notOk(seen.some((u) => u.includes('/login') || u.includes('/consent')), 'neither login nor consent was shown');
      const tokens = await finish(page, flow);
      t.equal((await hello(tokens.access_token)).status, 200);
    });

    t.test('remembered consent in a new browser: sign in, then straight back to the client', async (t) => {
      const { context, page, cspViolations } = await newContext();
      t.teardown(() => context.close());
      const flow = await startAuthorization();
      await page.goto(flow.url);
      await signIn(page, alice);
      // The login form's POST is answered with a 303 to the client: form-action must allow it.
      await atCallback(page);
      const tokens = await finish(page, flow);
      t.ok(tokens.access_token);
      t.same(cspViolations, []);
    });

    t.test('deny: the client gets access_denied', async (t) => {
      const { context, page } = await newContext();
      t.teardown(() => context.close());
      const flow = await startAuthorization();
      await page.goto(flow.url);
      await signIn(page, bob);
      await page.getByRole('button', { name: 'Deny' }).click();
      await atCallback(page);
      const err = authError(page, flow.state);
      t.ok(err instanceof oauth.AuthorizationResponseError, 'an error response, validated (state, iss) by oauth4webapi');
      t.equal(err?.error, 'access_denied');
    });

    t.test('implicit: the access token arrives in the fragment', async (t) => {
      const { page } = alicesBrowser;
      const state = oauth.generateRandomState();
      const url = new URL(as.authorization_endpoint!);
      url.search = new URLSearchParams({ response_type: 'token', client_id: legacy.clientId, redirect_uri: REDIRECT, scope: 'api:read', state }).toString();
      await page.goto(url.toString());
      await page.getByRole('button', { name: 'Allow' }).click();
      await atCallback(page);
      const fragment = new URLSearchParams(new URL(page.url()).hash.slice(1));
      t.equal(fragment.get('token_type'), 'Bearer');
      t.equal(fragment.get('state'), state);
      t.equal(fragment.get('iss'), config.issuer);
      t.equal(fragment.get('scope'), 'api:read');
      t.ok(Number(fragment.get('expires_in')) > 0);
      t.equal(fragment.get('refresh_token'), null);
      t.equal((await hello(fragment.get('access_token')!)).status, 200);
    });

    t.test('prompt=none: login_required without a session, a code with one', async (t) => {
      const { context, page } = await newContext();
      t.teardown(() => context.close());
      const anonymous = await startAuthorization({ prompt: 'none' });
      await page.goto(anonymous.url);
      await atCallback(page);
      const refused = authError(page, anonymous.state);
      t.equal(refused?.error, 'login_required');

      const signedIn = await startAuthorization({ prompt: 'none' });
      await alicesBrowser.page.goto(signedIn.url);
      await atCallback(alicesBrowser.page);
      const tokens = await finish(alicesBrowser.page, signedIn);
      t.ok(tokens.access_token);
    });

    t.test('logout ends the session', async (t) => {
      const { page } = alicesBrowser;
      await page.goto(`${config.issuer}/login`);
      t.match(await page.textContent('main'), 'You are signed in');
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.getByText('You have signed out.').waitFor();
      const flow = await startAuthorization();
      await page.goto(flow.url);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      t.ok(await page.getByLabel('Password').isVisible(), 'the next authorization asks to sign in again');
    });
  },
);
