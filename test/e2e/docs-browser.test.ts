/**
 * Swagger UI's "Authorize" against this very server, in headless Chromium:
 * the authorization-code flow with PKCE through the `swagger-ui` public
 * client (popup → login → consent → back to the docs page), the only OAuth
 * flow the dialog offers; client credentials the documented way (Basic at
 * `POST /token`, the token under bearerAuth); then "Execute" on
 * `GET /api/hello` answers with that token.
 * No Content-Security-Policy violation on the way.
 */
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { ensureSwaggerUiClient } from '../../src/clients/swagger-ui-client.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { freePort } from '../helpers/server-process.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

const noChromium = chromiumSkip(t);

t.test(`Swagger UI gets tokens from this server and calls the API (${backendName})`, { skip: noChromium }, async (t) => {
  // The issuer names the real port: Swagger UI's redirect URI is derived from the page's address.
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const { app, services, config } = await buildTestApp(t, { env: { ISSUER: origin, SWAGGER_UI_CLIENT: 'true' } });
  const docsClient = await ensureSwaggerUiClient(services.clients, config);
  t.same(docsClient.redirectUris, [`${origin}/docs/static/oauth2-redirect.html`]);
  t.equal(docsClient.tokenEndpointAuthMethod, 'none', 'public: no secret in a page anyone can read');
  await seedUser(services, { username: 'alice', password: 'correct horse battery staple' });
  await app.listen({ port, host: '127.0.0.1' });

  const browser: Browser = await launchChromium();
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

  await t.test('the Authorize dialog offers only what the swagger-ui client can run, with its hints', async (t) => {
    const page = await browser.newPage();
    watch(page);
    await page.goto(`${origin}/docs`);
    await page.click('button.authorize');
    const flows = await page.locator('.auth-container .flow code').allTextContents();
    t.same(flows, ['authorizationCode with PKCE'], 'one OAuth flow: authorization code with PKCE');
    t.notOk(await page.locator('.auth-container', { hasText: 'clientCredentials' }).count(), 'no client credentials pre-filled with a public client');
    const section = page.locator('.auth-container', { hasText: 'authorizationCode' });
    t.equal(await section.locator('input[data-name="clientId"]').inputValue(), 'swagger-ui', 'the public client, pre-filled');
    t.match(await section.textContent(), /public client swagger-ui \(pre-filled\): authorization code with PKCE \(S256\)\. Leave client_secret empty\./);
    const scopes = await section.locator('.scopes input[type="checkbox"]').evaluateAll((boxes) => boxes.map((b) => b.id));
    t.notOk(scopes.some((id) => id.includes('offline_access')), 'no scope the client cannot get (no refresh tokens in a docs page)');
  });

  await t.test('client credentials, as documented for a confidential client: Basic at POST /token, the token under bearerAuth', async (t) => {
    const machine = await seedClient(services, { client_name: 'Docs machine', grant_types: ['client_credentials'], scope: 'api:read' });
    const page = await browser.newPage();
    watch(page);
    await page.goto(`${origin}/docs`);
    await page.click('button.authorize');
    const basic = page.locator('.auth-container', { hasText: 'clientBasic' });
    await basic.locator('input[name="username"]').fill(machine.clientId);
    await basic.locator('input[name="password"]').fill(machine.clientSecret!);
    await basic.locator('button.authorize').click();
    await basic.locator('button:has-text("Logout")').waitFor();
    await page.click('.modal-ux button.close-modal');

    const token = page.locator('.opblock-post', { hasText: '/token' }).first();
    await token.locator('.opblock-summary').click();
    await token.locator('tr[data-property-name="grant_type"] select').selectOption('client_credentials');
    // Swagger UI fills every optional field with "string": empty them, as the description says.
    for (const input of await token.locator('tr[data-property-name] input[type="text"]').all()) await input.fill('');
    await token.locator('tr[data-property-name="scope"] input[type="text"]').fill('api:read');
    await token.locator('button.execute').click();
    const status = token.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    const answer = (await token.locator('.live-responses-table .microlight').first().textContent())!;
    t.equal((await status.textContent())!.trim(), '200', answer);
    const accessToken = (JSON.parse(answer) as { access_token: string }).access_token;

    await page.click('button.authorize');
    const bearer = page.locator('.auth-container', { hasText: 'bearerAuth' });
    await bearer.locator('input').fill(accessToken);
    await bearer.locator('button.authorize').click();
    await bearer.locator('button:has-text("Logout")').waitFor();
    const { status: helloStatus, body } = await callHello(page);
    t.equal(helloStatus, '200');
    t.equal(JSON.parse(body).client_id, machine.clientId);
  });

  t.same(cspViolations, [], 'no Content-Security-Policy violations');
});
