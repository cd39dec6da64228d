/**
 * `npm run screenshots`: the pictures in the README, taken from the real
 * pages. Starts the server in this process on a temp embedded data dir (a
 * free port; SMTP configured but never used), seeds a user,
 * an app holding consent and a second session, and drives headless Chromium
 * (playwright-core, `/usr/bin/chromium` or CHROMIUM_PATH) through them:
 *
 * - docs/images/login.png: the sign-in page;
 * - docs/images/account.png: the account page of a signed-in user;
 * - docs/images/second-factor.png: the code page after the password, for a
 *   user with an authenticator app.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createServices, type Services } from '../src/services.js';
import { createStorage } from '../src/storage/index.js';
import { launchChromium } from '../test/helpers/chromium.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const IMAGES = join(ROOT, 'docs/images');
const USER = { username: 'ada', password: 'analytical engine 1843', email: 'ada@example.com' };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Signs in through the login form of `page` (already on it). */
async function signIn(page: Page): Promise<void> {
  await page.fill('#username', USER.username);
  await page.fill('#password', USER.password);
  await Promise.all([page.waitForURL(/\/account/), page.click('button[type=submit]')]);
}

/**
 * The second-factor page (TOTP, SPEC "Signing in"): enrols `USER`'s
 * authenticator app through `services`, signs in with the password in a
 * fresh page so the server asks for the code, and writes
 * docs/images/second-factor.png.
 */
async function captureSecondFactor(services: Services, newPage: () => Promise<Page>, baseUrl: string): Promise<void> {
  const user = (await services.users.findByUsername(USER.username))!;
  const { secret } = await services.secondFactor.beginEnrolment(user);
  const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate();
  if (!(await services.secondFactor.confirmEnrolment(user, code, '127.0.0.1'))) throw new Error('the enrolment code was refused');
  const page = await newPage();
  await page.goto(`${baseUrl}/login`);
  await page.fill('#username', USER.username);
  await page.fill('#password', USER.password);
  await Promise.all([page.waitForURL(/\/login\/second-factor/), page.click('button[type=submit]')]);
  await page.screenshot({ path: join(IMAGES, 'second-factor.png'), fullPage: true });
}

async function main(): Promise<void> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'oauth-screenshots-'));
  const baseUrl = `http://localhost:${port}`;
  const config = loadConfig({ PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn', ADMIN_USERNAME: 'admin', ADMIN_PASSWORD: 'screenshots only 9431',
    // Only so the login page shows "Forgot your password?": no mail is sent while the pictures are taken.
    SMTP_URL: 'smtp://127.0.0.1:25',
    SMTP_FROM: 'auth@example.com',
  });
  const services = createServices(config, await createStorage(config));
  const app = await buildApp(config, services, { logger: false });
  try {
    await services.start();
    await services.bootstrap();
    await app.listen({ port, host: '127.0.0.1' });

    const user = await services.users.create({ ...USER });
    const { client } = await services.clients.register({ client_name: 'Photo Gallery', redirect_uris: ['https://photos.example.com/callback'], scope: 'openid profile api:read' });
    await services.consents.grant(user.id, client.clientId, ['openid', 'profile', 'api:read'], [`${config.issuer}/api`]);

    await mkdir(IMAGES, { recursive: true });
    const browser = await launchChromium();
    try {
      const newPage = async (userAgent?: string) => {
        const context = await browser.newContext({ viewport: { width: 900, height: 600 }, deviceScaleFactor: 1, ...(userAgent ? { userAgent } : {}) });
        return context.newPage();
      };
      // Another session of the same user, on a "phone", so the list of sessions has two entries.
      const phone = await newPage('Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1');
      await phone.goto(`${baseUrl}/login`);
      await signIn(phone);

      const page = await newPage();
      await page.goto(`${baseUrl}/login`);
      await page.screenshot({ path: join(IMAGES, 'login.png'), fullPage: true });
      await signIn(page);
      await page.screenshot({ path: join(IMAGES, 'account.png'), fullPage: true });
      await captureSecondFactor(services, () => newPage(), baseUrl);
      process.stdout.write('Wrote docs/images/login.png, docs/images/account.png, docs/images/second-factor.png\n');
    } finally {
      await browser.close();
    }
  } finally {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
