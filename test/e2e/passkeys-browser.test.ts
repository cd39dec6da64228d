/**
 * Passkeys end to end in headless Chromium with a virtual authenticator
 * (DevTools protocol `WebAuthn` domain: a platform authenticator with
 * resident keys and user verification), against a listening server whose
 * issuer is `http://localhost:<port>` (a secure context, and a host name an
 * RP ID may be). The page scripts are the real ones: @simplewebauthn's
 * bundle served by the server and public/passkeys.js, under the pages' CSP.
 *
 * One browser, one context: sign in with the password, add a passkey on
 * /account, sign out, then an authorization code flow (oauth4webapi as the
 * client) signed in with "Sign in with a passkey", no username typed, on to
 * consent and the client's redirect; the passkey offered by the username
 * field's autofill (conditional UI); then remove the passkey.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { ROOT } from '../helpers/root.js';
import { freePort } from '../helpers/server-process.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';
import { startCodeFlow } from '../helpers/oauth-client.js';

const STEP_TIMEOUT_MS = 10_000;
const ARTIFACTS = join(ROOT, 'test/artifacts/');

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const noChromium = chromiumSkip(t);

t.test(
  `passkeys in headless Chromium with a virtual authenticator (${backendName})`,
  { skip: noChromium },
  async (t) => {
    const callback = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Client callback</title><p>Back at the client.</p>');
    });
    const REDIRECT = `http://127.0.0.1:${await listen(callback)}/cb`;
    t.teardown(() => new Promise((resolve) => callback.close(resolve)));

    const port = await freePort();
    const { app, services, storage, config } = await buildTestApp(t, { env: { ISSUER: `http://localhost:${port}`, PORT: String(port) } });
    await app.listen({ port, host: '127.0.0.1' });
    const issuer = new URL(config.issuer);
    const http = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }));
    const web = await seedClient(services, {
      client_name: 'Photo Printer',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      scope: 'openid profile',
    });
    const client: oauth.Client = { client_id: web.clientId };
    const alice = await seedUser(services, { username: 'alice' });

    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));

    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    // The virtual authenticator answers a waiting autofill (conditional) request at once, as if the
    // person had picked the passkey in the username field's list: until the last step, the browser
    // says it has no autofill, so the button is what signs in.
    const noAutofill = await page.addInitScript('PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);');

    await t.test('sign in with the password, add a passkey on the account page', async (t) => {
      await page.goto(`${config.issuer}/login`);
      await page.getByLabel('Username').fill(alice.username);
      await page.getByLabel('Password').fill(alice.password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(`${config.issuer}/account`);
      await page.getByLabel('Name of the new passkey').fill('Virtual laptop');
      await page.getByRole('button', { name: 'Add a passkey' }).click();
      await page.locator('.passkey-name', { hasText: 'Virtual laptop' }).waitFor();
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}account-passkeys.png`, fullPage: true });
      const stored = await storage.passkeys.listForUser(alice.id);
      t.equal(stored.length, 1);
      t.match(stored[0], { name: 'Virtual laptop', deviceType: 'singleDevice', backedUp: false });
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      t.equal(credentials.length, 1);
      t.ok(credentials[0]!.isResidentCredential, 'a discoverable credential');
      t.equal(Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'), stored[0]!.credentialId);
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.waitForURL(/\/login\?signed_out=1$/);
    });

    await t.test('"Sign in with a passkey" (no username) through an authorization code flow to the client', async (t) => {
      const { url, verifier, state, nonce } = await startCodeFlow(as, { client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid profile' });
      await page.goto(url);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      t.equal(await page.getByLabel('Username').inputValue(), '', 'no username typed');
      await page.screenshot({ path: `${ARTIFACTS}login-passkey.png`, fullPage: true });
      await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((u) => u.toString().startsWith(REDIRECT));

      const params = oauth.validateAuthResponse(as, client, new URL(page.url()), state);
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, verifier, http);
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true });
      t.equal(oauth.getValidatedIdTokenClaims(tokens)!.sub, alice.id, 'the passkey signed Alice in');
      const sid = (await context.cookies(config.issuer)).find((c) => c.name === 'sid');
      t.same((await services.sessions.load(sid?.value))?.amr, ['hwk'], 'a device-bound passkey: amr hwk');
      t.ok((await storage.passkeys.listForUser(alice.id))[0]!.lastUsedAt, 'last use recorded');
    });

    await t.test('with autofill: the passkey offered in the username field signs in (conditional UI)', async (t) => {
      await noAutofill.dispose();
      await page.goto(`${config.issuer}/account`);
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      // The login page asks for a passkey in the background; picking it (done by the virtual authenticator) signs in.
      await page.waitForURL(`${config.issuer}/account`);
      const sid = (await context.cookies(config.issuer)).find((c) => c.name === 'sid');
      t.equal((await services.sessions.load(sid?.value))?.userId, alice.id);
    });

    await t.test('remove the passkey on the account page', async (t) => {
      await page.goto(`${config.issuer}/account`);
      await page.locator('li', { hasText: 'Virtual laptop' }).getByRole('button', { name: 'Remove', exact: true }).click();
      await page.getByText('You have no passkeys yet.').waitFor();
      t.same(await storage.passkeys.listForUser(alice.id), []);
      t.same(problems, [], 'no script error, no CSP violation');
    });
  },
);
