/**
 * Swagger UI's "Authorize" against this very server, in headless Chromium:
 * the authorization-code flow with PKCE through the `swagger-ui` public
 * client (popup → login → consent → back to the docs page), and client
 * credentials; then "Execute" on `GET /api/hello` answers with that token.
 * No Content-Security-Policy violation on the way.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import t from 'tap';
import { ensureSwaggerUiClient } from '../../src/clients/swagger-ui-client.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { freePort } from '../helpers/server-process.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const chromiumFound = existsSync(CHROMIUM);
if (!chromiumFound && process.env.CI) t.fail(`Chromium not found at ${CHROMIUM}: CI must run the browser tests (apt-get install -y chromium)`);

t.test(`Swagger UI gets tokens from this server and calls the API (${backendName})`, { skip: chromiumFound ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)` }, async (t) => {
  // The issuer names the real port: Swagger UI's redirect URI is derived from the page's address.
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const { app, services, config } = await buildTestApp(t, { env: { ISSUER: origin, SWAGGER_UI_CLIENT: 'true' } });
  const docsClient = await ensureSwaggerUiClient(services.clients, config);
  t.same(docsClient.redirectUris, [`${origin}/docs/static/oauth2-redirect.html`]);
  t.equal(docsClient.tokenEndpointAuthMethod, 'none', 'public: no secret in a page anyone can read');
  await seedUser(services, { username: 'alice', password: 'correct horse battery staple' });
  await app.listen({ port, host: '127.0.0.1' });

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  t.teardown(() => browser.close());
  const cspViolations: string[] = [];
  const watch = (page: Page) =>
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });

  async function callHello(page: Page): Promise<{ status: string; body: string }> {
    await page.click('.modal-ux button.close-modal');
    const op = page.locator('.opblock', { hasText: '/api/hello' }).first();
    await op.locator('.opblock-summary').click();
    await op.locator('button.execute').click();
    const status = op.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    return { status: (await status.textContent())!.trim(), body: (await op.locator('.live-responses-table .microlight').first().textContent())! };
  }

  await t.test('authorization code with PKCE (the swagger-ui client)', async (t) => {
    const page = await browser.newPage();
    watch(page);
    await page.goto(`${origin}/docs`);
    await page.click('button.authorize');
    const section = page.locator('.auth-container', { hasText: 'authorizationCode' });
    const [popup] = await Promise.all([page.waitForEvent('popup'), section.locator('button.authorize').click()]);
    watch(popup);
    await popup.waitForLoadState();
    t.match(popup.url(), new RegExp(`^${origin}/login\\?`), 'the popup shows our sign-in page');
    await popup.fill('input[name="username"]', 'alice');
    await popup.fill('input[name="password"]', 'correct horse battery staple');
    await popup.click('button:has-text("Sign in")');
    await Promise.all([popup.waitForEvent('close'), popup.click('button[name="decision"][value="allow"]')]);
    await section.locator('button:has-text("Logout")').waitFor();
    const { status, body } = await callHello(page);
    t.equal(status, '200', body);
    const hello = JSON.parse(body);
    t.equal(hello.message, 'Hello, alice!');
    t.equal(hello.client_id, 'swagger-ui');
  });

  await t.test('client credentials', async (t) => {
    const machine = await seedClient(services, { client_name: 'Docs machine', grant_types: ['client_credentials'], scope: 'api:read' });
    const page = await browser.newPage();
    watch(page);
    await page.goto(`${origin}/docs`);
    await page.click('button.authorize');
    const section = page.locator('.auth-container', { hasText: 'clientCredentials' });
    await section.locator('input[data-name="clientId"]').fill(machine.clientId);
    await section.locator('input[data-name="clientSecret"]').fill(machine.clientSecret!);
    await section.locator('button.authorize').click();
    await section.locator('button:has-text("Logout")').waitFor();
    const { status, body } = await callHello(page);
    t.equal(status, '200');
    t.equal(JSON.parse(body).client_id, machine.clientId);
  });

  t.same(cspViolations, [], 'no Content-Security-Policy violations');
});
