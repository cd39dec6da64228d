/**
 * Two-step sign-in in real headless Chromium (one launch): set up an
 * authenticator app on the account page, sign out, then sign in to a client
 * application (oauth4webapi) with the password and a code. Codes are computed
 * here from the secret the setup page shows; the server's clock is injected
 * and moved one time step between the two codes, so nothing waits.
 *
 * Chromium enforces the CSP: the QR code (a data: image) must load, and the
 * code page's form must be allowed to end in the redirect to the client.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { Secret, TOTP } from 'otpauth';
import t from 'tap';
import { ACR_MFA } from '../../src/oauth/acr.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { freePort } from '../helpers/server-process.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';
import { startCodeFlow } from '../helpers/oauth-client.js';

const STEP_TIMEOUT_MS = 10_000;
const noChromium = chromiumSkip(t);

t.test(
  `two-step sign-in in headless Chromium (${backendName})`,
  { skip: noChromium },
  async (t) => {
    const callback = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Client callback</title><p>Back at the client.</p>');
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise((resolve) => callback.close(resolve)));
    const REDIRECT = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;

    let clock = Date.now();
    const port = await freePort();
    const { app, services, config } = await buildTestApp(t, { now: () => clock, env: { ISSUER: `http://127.0.0.1:${port}`, PORT: String(port) } });
    await app.listen({ port, host: '127.0.0.1' });
    const web = await seedClient(services, { client_name: 'Photo Printer', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid api:read' });
    const user = await seedUser(services, { username: 'alice' });
    const issuer = new URL(config.issuer);
    const http = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }));

    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    const signIn = async () => {
      await page.getByLabel('Username').fill(user.username);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    };

    // Set up: signed in with the password, from the account page.
    await page.goto(`${config.issuer}/account`);
    await signIn();
    await page.waitForURL(`${config.issuer}/account`);
    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await page.waitForURL(`${config.issuer}/account/authenticator`);
    const secret = (await page.locator('#totp-secret').textContent())!.trim();
    t.match(await page.locator('a[href^="otpauth://totp/"]').getAttribute('href'), `secret=${secret}`, 'the otpauth link carries the shown secret');
    const qr = await page.locator('img[alt^="QR code"]').evaluate((img) => ({ complete: (img as unknown as { complete: boolean }).complete, width: (img as unknown as { naturalWidth: number }).naturalWidth }));
    t.ok(qr.complete && qr.width > 0, 'the QR code loads under the CSP');
    const codeNow = () => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: clock });
    await page.getByLabel('The code the app shows now').fill(codeNow());
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('.recovery-code').first().waitFor();
    t.equal(await page.locator('.recovery-code').count(), 10, 'ten recovery codes');

    // Sign out, then sign in to the client: password, then a code of the next time step.
    await page.goto(`${config.issuer}/account`);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(/\/login\?signed_out=1$/);
    clock += 30_000;

    const { url, verifier, state, nonce } = await startCodeFlow(as, { client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid api:read' });
    await page.goto(url);
    await signIn();
    await page.waitForURL(/\/login\/second-factor\?rid=/);
    await page.getByLabel('Code').fill(codeNow());
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.toString().startsWith(REDIRECT));

    const client: oauth.Client = { client_id: web.clientId };
    const params = oauth.validateAuthResponse(as, client, new URL(page.url()), state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, verifier, http);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true });
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    t.same(claims.amr, ['pwd', 'otp']);
    t.equal(claims.acr, ACR_MFA);
    t.same(cspViolations, [], 'no CSP violation on any page');
  },
);
