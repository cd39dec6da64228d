/**
 * Password guessing over HTTP (SPEC "Accounts and brute force", issue 11
 * findings 2, 3 and 7), through the three doors that check passwords: the
 * login page, the password grant and the admin API's Basic auth.
 *
 * - A burst of concurrent wrong passwords at one account from one address
 *   gets at most MAX_FAILED_ATTEMPTS password checks, all doors together.
 * - An attacker's failures from one address never refuse the real user at
 *   another; an address shared by many people is slowed down, never refused.
 * - TRUST_PROXY decides which X-Forwarded-For entry is the address.
 *
 * Distinct client addresses come from `app.inject({ remoteAddress })`. The
 * slow-down is recorded by an injected sleep instead of being waited out.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import type { Services } from '../../src/services.js';
import { SLOW_DOWN } from '../../src/security/throttle.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser } from '../helpers/browser-flow.js';
import { basic, postForm, userBasic } from '../helpers/tokens.js';

const MAX_FAILED = 10;

/** Password checks that failed so far, every door together (`oauth_login_failures_total`). */
async function checkedFailures(services: Services): Promise<number> {
  const { body } = await services.metrics.render();
  return body
    .split('\n')
    .filter((line) => line.startsWith('oauth_login_failures_total{') && !line.includes('source="client_auth"'))
    .reduce((sum, line) => sum + Number(line.split(' ')[1]), 0);
}

/** The three doors, each from a given client address. */
function doors(app: FastifyInstance, passwordClient: { clientId: string; clientSecret: string | null }) {
  return {
    /** Opens the login form first (no password is checked), then returns the post. */
    async loginPage(ip: string) {
      const browser = new InjectBrowser(app, ip);
      const form = await browser.get('/login');
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(form.body)![1]!;
      return (username: string, password: string) => browser.post('/login', { csrf_token: csrf, username, password });
    },
    passwordGrant: (ip: string, username: string, password: string) =>
      postForm(app, '/token', { grant_type: 'password', username, password }, { authorization: basic(passwordClient.clientId, passwordClient.clientSecret!), remoteAddress: ip }),
    adminBasic: (ip: string, username: string, password: string) =>
      app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(username, password) }, remoteAddress: ip }),
  };
}

t.test(`brute force over HTTP (${backendName})`, async (t) => {
  const slept: number[] = [];
  const { app, services } = await buildTestApp(t, {
    env: { MAX_FAILED_ATTEMPTS: String(MAX_FAILED) },
    serviceOptions: {
      sleep: async (ms) => {
        slept.push(ms);
      },
    },
  });
  const client = await seedClient(services, { grant_types: ['password'], scope: 'api:read' });
  const door = doors(app, client);

  t.test('30 concurrent wrong passwords at one account from one address: at most MAX_FAILED_ATTEMPTS checks, all doors together', async (t) => {
    const victim = await seedUser(services, { roles: ['admin'] });
    const ip = '127.0.1.2';
    const posts = await Promise.all(Array.from({ length: 10 }, () => door.loginPage(ip)));
    const before = await checkedFailures(services);

    const burst: Array<Promise<LightMyRequestResponse>> = [];
    for (let i = 0; i < 10; i++) {
      burst.push(posts[i]!(victim.username, `login guess ${i}`));
      burst.push(door.passwordGrant(ip, victim.username, `grant guess ${i}`));
      burst.push(door.adminBasic(ip, victim.username, `basic guess ${i}`));
    }
    const answers = await Promise.all(burst);

    t.equal((await checkedFailures(services)) - before, MAX_FAILED, 'exactly MAX_FAILED_ATTEMPTS passwords were checked');
    const statuses = answers.map((res) => res.statusCode);
    t.equal(statuses.filter((s) => s === 429).length, 30 - MAX_FAILED, 'the rest: 429, unchecked');
    t.ok(
      statuses.filter((s) => s !== 429).every((s) => s === 400 || s === 401),
      'the checked ones: wrong password (400 from the login page and the grant, 401 from the admin API)',
    );
    for (const res of answers.filter((r) => r.statusCode === 429)) t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After');

    const right = await door.adminBasic(ip, victim.username, victim.password);
    t.equal(right.statusCode, 429, 'from that address even the right password waits out the window');
  });

  t.test("wrong passwords from 127.0.0.2 never lock the real user out at 127.0.0.3: login page, password grant, admin Basic", async (t) => {
    const victim = await seedUser(services, { roles: ['admin'] });
    const login = await door.loginPage('127.0.0.2');
    for (let i = 0; i < 12; i++) {
      await login(victim.username, `guess ${i}`);
      await door.passwordGrant('127.0.0.2', victim.username, `guess ${i}`);
      await door.adminBasic('127.0.0.2', victim.username, `guess ${i}`);
    }
    t.equal((await door.passwordGrant('127.0.0.2', victim.username, victim.password)).statusCode, 429, 'the attacking address is refused');

    const sleptBefore = slept.length;
    const page = await (await door.loginPage('127.0.0.3'))(victim.username, victim.password);
    t.equal(page.statusCode, 303, 'the login page signs the real user in');
    t.equal((await door.passwordGrant('127.0.0.3', victim.username, victim.password)).statusCode, 200, 'the password grant issues tokens');
    t.equal((await door.adminBasic('127.0.0.3', victim.username, victim.password)).statusCode, 200, 'the admin API answers');
    const delays = slept.slice(sleptBefore);
    t.equal(delays.length, 3, 'each of them after a slow-down: the account is under attack');
    t.ok(delays.every((ms) => ms > 0 && ms <= SLOW_DOWN.maxDelayMs), 'bounded');
  });

  t.test('one user’s burst from an address (a NAT) does not lock another user at that address out', async (t) => {
    const bob = await seedUser(services);
    const carol = await seedUser(services, { roles: ['admin'] });
    const nat = '127.0.2.1';
    // Bob mistypes, a lot, and in parallel; then a script behind the same NAT tries twenty other accounts.
    await Promise.all(Array.from({ length: 20 }, (_, i) => door.passwordGrant(nat, bob.username, `typo ${i}`)));
    for (let i = 0; i < 20; i++) {
      const res = await door.passwordGrant(nat, `someone${i}`, 'Winter2024!');
      t.equal(res.statusCode, 400, 'credential stuffing is slowed down, not refused');
    }
    t.ok(slept.at(-1)! > 0, 'slowed down');

    const sleptBefore = slept.length;
    t.equal((await door.adminBasic(nat, carol.username, carol.password)).statusCode, 200, 'carol, behind the same address, gets into the admin API');
    t.equal((await (await door.loginPage(nat))(carol.username, carol.password)).statusCode, 303, 'and the login page');
    t.equal((await door.passwordGrant(nat, carol.username, carol.password)).statusCode, 200, 'and the password grant');
    t.same(slept.slice(sleptBefore), [SLOW_DOWN.maxDelayMs, SLOW_DOWN.maxDelayMs, SLOW_DOWN.maxDelayMs], 'after the capped slow-down of that address');
  });
});

/**
 * A user, and `max` wrong passwords at them through the password grant, sent
 * as `headersOf(i)` says; returns `attempt` to try again (by default with the
 * right password).
 */
async function guessThroughProxy(
  t: Test,
  app: FastifyInstance,
  services: Services,
  headersOf: (i: number) => { remoteAddress: string; xff: string },
  max: number,
): Promise<{ username: string; password: string; attempt: (remoteAddress: string, xff: string, password?: string) => Promise<LightMyRequestResponse> }> {
  const client = await seedClient(services, { grant_types: ['password'], scope: 'api:read' });
  const user = await seedUser(services);
  const attempt = (remoteAddress: string, xff: string, password = user.password) =>
    app.inject({
      method: 'POST',
      url: '/token',
      remoteAddress,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret!), 'x-forwarded-for': xff },
      payload: new URLSearchParams({ grant_type: 'password', username: user.username, password }).toString(),
    });
  for (let i = 0; i < max; i++) {
    const { remoteAddress, xff } = headersOf(i);
    t.equal((await attempt(remoteAddress, xff, `guess ${i}`)).statusCode, 400);
  }
  return { ...user, attempt };
}

t.test(`TRUST_PROXY picks the client address from X-Forwarded-For (${backendName})`, async (t) => {
  const max = 3;
  const noSleep = { sleep: async () => {} };

  t.test('TRUST_PROXY=1: the last hop is the address; a forged left-most entry is ignored', async (t) => {
    const { app, services } = await buildTestApp(t, { env: { TRUST_PROXY: '1', MAX_FAILED_ATTEMPTS: String(max) }, serviceOptions: noSleep });
    // The proxy at 127.0.0.1 appends the client's address (203.0.113.9) to whatever the client sent.
    const { attempt } = await guessThroughProxy(t, app, services, (i) => ({ remoteAddress: '127.0.0.1', xff: `10.66.0.${i}, 203.0.113.9` }), max);
    t.equal((await attempt('127.0.0.1', '10.66.0.99, 203.0.113.9')).statusCode, 429, 'a new forged entry does not make a new address');
    t.equal((await attempt('127.0.0.1', '203.0.113.10')).statusCode, 200, 'another client behind the proxy is another address');
  });

  t.test('TRUST_PROXY=<CIDR list>: entries from listed proxies are skipped from the right; other peers are not believed', async (t) => {
    const { app, services } = await buildTestApp(t, { env: { TRUST_PROXY: '127.0.0.1/32, 10.0.0.0/8', MAX_FAILED_ATTEMPTS: String(max) }, serviceOptions: noSleep });
    // Client 198.51.100.7 → load balancer 10.0.0.5 → local proxy 127.0.0.1 → server.
    const { attempt } = await guessThroughProxy(t, app, services, (i) => ({ remoteAddress: '127.0.0.1', xff: `10.66.0.${i}, 198.51.100.7, 10.0.0.5` }), max);
    t.equal((await attempt('127.0.0.1', '192.0.2.1, 198.51.100.7, 10.0.0.5')).statusCode, 429, 'the address is 198.51.100.7 whatever the client prepends');
    t.equal((await attempt('192.0.2.50', '198.51.100.7')).statusCode, 200, 'a peer that is not a listed proxy is its own address, whatever it claims');
  });
});
