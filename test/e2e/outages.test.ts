/**
 * Outages of PostgreSQL and Redis, on throwaway servers this test stops,
 * hangs (SIGSTOP) and restarts: requests that need the missing store answer
 * 503 `temporarily_unavailable` (never a 500, never a hang), `/readyz` names
 * the store, requests that do not need it keep working, memory stays flat,
 * and when the store returns the same process serves again. Data committed
 * before an outage survives it; a code issued before Redis restarts without
 * persistence fails cleanly with `invalid_grant`.
 *
 * The instances run in-process (the real `createStorage` → `createServices`
 * → `buildApp` path of `main.ts`, so the heap can be measured), and the last
 * subtest repeats the essentials against the real server process.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createServices, type ServiceOptions, type Services } from '../../src/services.js';
import { createStorage } from '../../src/storage/index.js';
import { createRedisKv } from '../../src/storage/kv/redis.js';
import { seedClient, seedUser } from '../helpers/app.js';
import { authorizePath, InjectBrowser, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { heapAfterGc } from '../helpers/heap.js';
import { startServer } from '../helpers/server-process.js';
import { basic, postForm } from '../helpers/tokens.js';
import { faultTestsSkipReason, postgresAvailability, redisAvailability, startThrowawayPostgres, startThrowawayRedis } from '../helpers/throwaway.js';
import { eventually as poll } from '../helpers/wait.js';

const pgAvailable = postgresAvailability();
const redisAvailable = redisAvailability();
const skip =
  faultTestsSkipReason() ?? ('reason' in pgAvailable ? pgAvailable.reason : null) ?? ('reason' in redisAvailable ? redisAvailable.reason : null);

const ISSUER = 'http://localhost:3000';
const REDIRECT_URI = 'http://localhost:8080/cb';
/** Short store timeouts, so a hanging store is detected quickly; every request must settle well within this. */
const TIMEOUTS = { PG_CONNECT_TIMEOUT_MS: '1000', PG_STATEMENT_TIMEOUT_MS: '1000', REDIS_COMMAND_TIMEOUT_MS: '1000' };
const REQUEST_BOUND_MS = 10_000;

/** Rejects when `promise` has not settled within `ms`: a hang is a failure, not a slow test. */
async function bounded<T>(what: string, promise: Promise<T>, ms = REQUEST_BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` every 50 ms until it returns true; false after `ms`. */
const eventually = (ms: number, probe: () => Promise<boolean>) => poll(ms, probe, 50);

interface Instance {
  app: FastifyInstance;
  services: Services;
}

/** One server instance in-process, exactly as `main.ts` builds it (migrations included). */
async function startInstance(tap: Tap, env: Record<string, string>, options: ServiceOptions = {}): Promise<Instance> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ISSUER, ...TIMEOUTS, ...env });
  const storage = await createStorage(config);
  const services = createServices(config, storage, options);
  const app = await buildApp(config, services, { logger: false });
  await services.start();
  tap.teardown(() => app.close());
  await app.ready();
  return { app, services };
}

interface Tap {
  teardown(fn: () => unknown): void;
}

interface Asserts {
  equal(found: unknown, wanted: unknown, ...rest: [string]): boolean;
  match(found: unknown, pattern: unknown, ...rest: [string]): boolean;
  notMatch(found: unknown, pattern: unknown, ...rest: [string]): boolean;
}

/** The RFC 6749 §5.2 body of a 503: `temporarily_unavailable`, no-store, nothing internal. */
function assertUnavailable(tap: Asserts, res: LightMyRequestResponse, store: RegExp, what: string): void {
  tap.equal(res.statusCode, 503, `${what}: 503`);
  tap.match(res.headers['content-type'], /application\/json/, `${what}: JSON`);
  tap.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`);
  const body = res.json() as { error: string; error_description: string };
  tap.equal(body.error, 'temporarily_unavailable', `${what}: temporarily_unavailable`);
  tap.match(body.error_description, store, `${what}: names the store`);
  tap.notMatch(res.body, /ECONNREFUSED|at .*\.(ts|js):\d+|stack|pg_|ioredis/i, `${what}: nothing internal`);
}

const sendForm = (app: FastifyInstance, url: string, params: Record<string, string>, authorization?: string) =>
  bounded(`POST ${url}`, postForm(app, url, params, authorization ? { authorization } : {}));

t.test('outages of PostgreSQL and Redis (throwaway servers)', { skip: skip ?? false }, async (t) => {
  const top = t;
  const [pg, redis] = await Promise.all([startThrowawayPostgres(t), startThrowawayRedis(t)]);
  const env = { DATABASE_URL: pg.url, REDIS_URL: redis.url };
  // B hears revocations only over pub/sub (its database poll is slowed to a minute): it shows pub/sub works after an outage.
  const a = await startInstance(t, env);
  const b = await startInstance(t, env, { tokenTimings: { denyListPollMs: 60_000 } });

  // Every change of a subscription's liveness (`KvStore.subscribe`'s onLive), as the deny list sees them.
  const watcher = await createRedisKv({ url: redis.url, prefix: 'watch:' });
  t.teardown(() => watcher.close());
  const liveness: boolean[] = [];
  await watcher.subscribe('revocations', () => {}, (live) => liveness.push(live));

  const admin = await seedUser(a.services, { roles: ['admin'] });
  const adminAuth = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
  const alice = await seedUser(a.services);
  const web = await seedClient(a.services, {
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile api:read',
  });
  const webAuth = basic(web.clientId, web.clientSecret!);
  const machine = await seedClient(a.services, { grant_types: ['client_credentials'], scope: 'api:read' });
  const machineAuth = basic(machine.clientId, machine.clientSecret!);
  /** Never used before the outage, so never in any instance's client cache. */
  const cold = await seedClient(a.services, { grant_types: ['client_credentials', 'password'], scope: 'api:read' });
  const coldAuth = basic(cold.clientId, cold.clientSecret!);
  const coldWeb = await seedClient(a.services, { redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], scope: 'api:read' });

  const browser = new InjectBrowser(a.app);
  const authorize = (pkce = pkcePair(), state = 'st', clientId = web.clientId) =>
    authorizePath({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT_URI,
      scope: 'openid api:read',
      state,
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
    });
  const redeem = (app: FastifyInstance, code: string, verifier: string) =>
    sendForm(app, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }, webAuth);
  const refresh = (app: FastifyInstance, token: string) => sendForm(app, '/token', { grant_type: 'refresh_token', refresh_token: token }, webAuth);
  const hello = (app: FastifyInstance, token: string) =>
    bounded('GET /api/hello', app.inject({ method: 'GET', url: '/api/hello', headers: { authorization: `Bearer ${token}` } }));
  const ready = async (app: FastifyInstance) => (await bounded('GET /readyz', app.inject({ method: 'GET', url: '/readyz' }))).json() as { status: string; checks: Record<string, string> };

  let refreshToken = '';
  /**
   * Revoked by the requests below. Not `refreshToken`: a revocation answered 503 while PostgreSQL
   * hangs may still take effect when it resumes (its statement was sent), as any write can.
   */
  let revocable = '';
  let accessToken = '';
  let machineToken = '';

  t.test('before: sign-in, consent, code, tokens', async (t) => {
    const pkce = pkcePair();
    const flow = await loginAndConsent(browser, authorize(pkce), alice);
    t.ok(flow.sawLogin && flow.sawConsent);
    const res = await redeem(a.app, flow.params.get('code')!, pkce.verifier);
    t.equal(res.statusCode, 200);
    ({ refresh_token: refreshToken, access_token: accessToken } = res.json() as { refresh_token: string; access_token: string });
    const second = pkcePair();
    const again = await redeem(a.app, (await loginAndConsent(browser, authorize(second), alice)).params.get('code')!, second.verifier);
    t.equal(again.statusCode, 200);
    revocable = (again.json() as { refresh_token: string }).refresh_token;
    const cc = await sendForm(a.app, '/token', { grant_type: 'client_credentials' }, machineAuth);
    t.equal(cc.statusCode, 200);
    machineToken = (cc.json() as { access_token: string }).access_token;
    t.same(await ready(a.app), { status: 'ok', checks: { database: 'ok', code_store: 'ok' } });
  });

  /** Requests that need PostgreSQL, each with a fresh reason to reach it. */
  const databaseRequests = (i: number): Array<[string, () => Promise<LightMyRequestResponse>]> => [
    ['token: refresh_token', () => refresh(a.app, refreshToken)],
    ['token: password grant (cold client)', () => sendForm(a.app, '/token', { grant_type: 'password', username: alice.username, password: alice.password }, coldAuth)],
    ['token: client_credentials (cold client)', () => sendForm(a.app, '/token', { grant_type: 'client_credentials' }, coldAuth)],
    // A refresh token is only in the database (an access token is judged by the deny list: see below).
    ['introspect (refresh token)', () => sendForm(a.app, '/introspect', { token: refreshToken }, webAuth)],
    ['revoke', () => sendForm(a.app, '/revoke', { token: revocable }, webAuth)],
    ['admin: list clients', () => bounded('GET /admin/clients', a.app.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: adminAuth } }))],
    [
      'register',
      () =>
        bounded(
          'POST /register',
          a.app.inject({ method: 'POST', url: '/register', remoteAddress: `10.0.${i % 250}.${Math.floor(i / 250) % 250}`, payload: { username: `new${i}`, password: 'correct horse battery' } }),
        ),
    ],
  ];

  t.test('PostgreSQL stopped: 503 where the database is needed, the rest serves', async (t) => {
    // A's copy of the revocations current, so introspecting an access token needs no database: on a
    // loaded machine a sync after the start may have timed out, and until one completes A rightly
    // asks the database (the next sync is at most 5 s away).
    const deadline = Date.now() + 15_000;
    while (!a.services.tokens.revocationsCurrent() && Date.now() < deadline) await sleep(100);
    t.ok(a.services.tokens.revocationsCurrent(), "A's copy of the revocations is current");
    // The web client put back in A's 5 s client cache just before the outage: on a loaded machine
    // "before" may be longer ago than that, and the checks below rely on the cache.
    t.equal((await sendForm(a.app, '/introspect', { token: accessToken }, webAuth)).statusCode, 200);
    await pg.stop('fast');
    t.same(await ready(a.app), { status: 'unavailable', checks: { database: 'unavailable', code_store: 'ok' } }, '/readyz names the database');
    const readyz = await a.app.inject({ method: 'GET', url: '/readyz' });
    t.equal(readyz.statusCode, 503);

    // Introspection of an access token answers from the deny list, current while pub/sub is up
    // (nothing can be revoked while the database is down). First, while the client is in the 5 s cache.
    const introspected = await sendForm(a.app, '/introspect', { token: accessToken }, webAuth);
    t.equal(introspected.statusCode, 200, `introspection of an access token needs no database (${introspected.body.slice(0, 200)})`);
    t.equal((introspected.json() as { active: boolean }).active, true);

    for (const [what, send] of databaseRequests(0)) assertUnavailable(t, await send(), /database/, what);

    // /authorize cannot verify a client it has not cached: the error page (503), never a redirect.
    const page = await bounded('GET /authorize', new InjectBrowser(a.app).get(authorize(pkcePair(), 'st', coldWeb.clientId)));
    t.equal(page.statusCode, 503, '/authorize: 503 page');
    t.equal(page.headers.location, undefined, '/authorize: no redirect to an unverified client');
    t.match(page.body, /Temporarily unavailable/);
    // A client verified moments ago (the 5 s client cache) gets the error at its redirect URI (RFC 6749 §4.1.2.1).
    const redirect = await bounded('GET /authorize', browser.get(authorize(pkcePair(), 'abc')));
    t.equal(redirect.statusCode, 303);
    const location = new URL(redirect.headers.location as string);
    t.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    t.equal(location.searchParams.get('error'), 'temporarily_unavailable');
    t.equal(location.searchParams.get('state'), 'abc');

    // What needs no database keeps working: local JWT verification, JWKS, liveness.
    t.equal((await hello(a.app, machineToken)).statusCode, 200, '/api/hello verifies locally');
    t.equal((await a.app.inject({ method: 'GET', url: '/jwks.json' })).statusCode, 200);
    t.equal((await a.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });

  t.test('PostgreSQL stopped: memory stays flat across failing requests', async (t) => {
    const round = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) {
        // (Registration hashes the password before it reaches the database: 50 ms each, left out here.)
        const requests = databaseRequests(i).filter(([what]) => what !== 'register');
        const [what, send] = requests[i % requests.length]!;
        const res = await send();
        if (res.statusCode !== 503) t.fail(`${what}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
    };
    await round(0, 150); // warm-up: caches, JIT, pools reach their steady size
    const before = await heapAfterGc();
    await round(150, 500);
    const growth = (await heapAfterGc()) - before;
    t.comment(`heap growth across 500 failing requests: ${(growth / 1024).toFixed(0)} KiB`);
    // About 1 MiB without a leak; a leak of 5 KiB per failing request (a queued command, a listener, a pending checkout) exceeds this.
    t.ok(growth < 2.5 * 1024 * 1024, `heap grew ${(growth / 1024).toFixed(0)} KiB (bound 2.5 MiB)`);
  });

  t.test('PostgreSQL back: the same process serves again; data from before is there', async (t) => {
    await pg.start();
    t.ok(await eventually(15_000, async () => (await ready(a.app)).status === 'ok'), '/readyz recovers without a restart');
    // Refresh tokens survived: the one issued before the outage still rotates.
    const res = await refresh(a.app, refreshToken);
    t.equal(res.statusCode, 200, 'refresh token from before the outage');
    refreshToken = (res.json() as { refresh_token: string }).refresh_token;
    // Users, clients and consents survived: a new authorization by the signed-in user needs no consent page.
    const pkce = pkcePair();
    const flow = await loginAndConsent(browser, authorize(pkce), alice);
    t.notOk(flow.sawConsent, 'remembered consent survived');
    t.equal((await redeem(a.app, flow.params.get('code')!, pkce.verifier)).statusCode, 200);
    const clients = await a.app.inject({ method: 'GET', url: `/admin/clients/${web.clientId}`, headers: { authorization: adminAuth } });
    t.equal(clients.statusCode, 200, 'admin API: client from before');
    t.equal((await sendForm(a.app, '/token', { grant_type: 'client_credentials' }, coldAuth)).statusCode, 200);
  });

  t.test('PostgreSQL hanging (SIGSTOP): every request settles with 503 within bounds', async (t) => {
    pg.pause();
    try {
      // Concurrent, more than the pool holds: checkouts must time out, not queue forever.
      // (The cold client is cached by now: client credentials need no database any more.)
      const requests = (i: number) => databaseRequests(i).filter(([what]) => !what.includes('client_credentials'));
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => requests(1000 + i)[i % 6]![1]()));
      for (const res of results) t.equal(res.statusCode, 503);
      t.equal((await ready(a.app)).checks.database, 'unavailable');
      t.equal((await hello(a.app, machineToken)).statusCode, 200, 'local verification does not wait for the database');
    } finally {
      pg.resume();
    }
    t.ok(await eventually(15_000, async () => (await ready(a.app)).status === 'ok'), 'recovers after the hang');
    t.equal((await refresh(a.app, refreshToken)).statusCode, 200);
    refreshToken = '';
  });

  // A code issued before Redis restarts without persistence; redeemed afterwards.
  const kept = { code: '', verifier: '' };

  t.test('Redis stopped: 503 where the code store is needed, redirects say temporarily_unavailable', async (t) => {
    const pkce = pkcePair();
    const flow = await loginAndConsent(browser, authorize(pkce), alice);
    kept.code = flow.params.get('code')!;
    kept.verifier = pkce.verifier;
    t.ok(kept.code);

    t.same(liveness, [true], 'the subscription is live');
    await redis.stop();
    t.same(await ready(a.app), { status: 'unavailable', checks: { database: 'ok', code_store: 'unavailable' } }, '/readyz names the code store');
    t.ok(await eventually(5_000, async () => liveness.at(-1) === false), 'a dropped connection ends it');

    assertUnavailable(t, await redeem(a.app, kept.code, kept.verifier), /code store/, 'token: authorization_code');
    assertUnavailable(t, await sendForm(a.app, '/token', { grant_type: 'password', username: alice.username, password: alice.password }, coldAuth), /code store/, 'token: password (throttle)');
    assertUnavailable(
      t,
      await bounded('GET /admin/users', a.app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: adminAuth } })),
      /code store/,
      'admin API (sign-in throttle)',
    );

    // The client and redirect URI are verified (database): the outage goes back to the client (RFC 6749 §4.1.2.1).
    const res = await bounded('GET /authorize', browser.get(authorize(pkcePair(), 'xyz')));
    t.equal(res.statusCode, 303);
    const location = new URL(res.headers.location as string);
    t.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    t.equal(location.searchParams.get('error'), 'temporarily_unavailable');
    t.equal(location.searchParams.get('state'), 'xyz');
    t.equal(location.searchParams.get('iss'), ISSUER);

    const login = await bounded('GET /login', new InjectBrowser(a.app).get('/login'));
    t.equal(login.statusCode, 503, 'sign-in page: 503 page');

    // What needs no Redis: client credentials with a correct secret, local verification.
    const cc = await sendForm(a.app, '/token', { grant_type: 'client_credentials' }, machineAuth);
    t.equal(cc.statusCode, 200, 'client_credentials');
    t.equal((await hello(a.app, machineToken)).statusCode, 200);

    // A revocation now cannot be announced (no pub/sub), and B's database poll is a minute away:
    // B's deny list is not current, so its introspection asks the database and sees it at once.
    const fresh = (cc.json() as { access_token: string }).access_token;
    const introspect = async (app: FastifyInstance) => (await sendForm(app, '/introspect', { token: fresh }, machineAuth)).json() as { active: boolean };
    t.equal((await introspect(b.app)).active, true, 'B: active before the revocation');
    t.equal((await sendForm(a.app, '/revoke', { token: fresh }, machineAuth)).statusCode, 200, 'revocation works without Redis');
    t.same(await introspect(b.app), { active: false }, 'B: inactive at once, by the database');
    t.same(await introspect(a.app), { active: false }, 'A: inactive');
  });

  t.test('Redis stopped: memory stays flat across failing requests', async (t) => {
    const send = (i: number) =>
      i % 2 === 0
        ? redeem(a.app, kept.code, kept.verifier)
        : sendForm(a.app, '/token', { grant_type: 'password', username: alice.username, password: 'wrong' }, coldAuth);
    for (let i = 0; i < 150; i++) await send(i);
    const before = await heapAfterGc();
    for (let i = 0; i < 500; i++) {
      const res = await send(i);
      if (res.statusCode !== 503) t.fail(`${res.statusCode} ${res.body.slice(0, 200)}`);
    }
    const growth = (await heapAfterGc()) - before;
    t.comment(`heap growth across 500 failing requests: ${(growth / 1024).toFixed(0)} KiB`);
    t.ok(growth < 2.5 * 1024 * 1024, `heap grew ${(growth / 1024).toFixed(0)} KiB (bound 2.5 MiB)`);
  });

  let c: Instance | null = null;

  t.test('an instance can start while Redis is down', async (t) => {
    // Like B it hears revocations only over pub/sub; it must subscribe once Redis comes up.
    c = await startInstance(top, env, { tokenTimings: { denyListPollMs: 60_000 } });
    t.equal((await ready(c.app)).checks.code_store, 'unavailable');
    t.equal((await hello(c.app, machineToken)).statusCode, 200);
  });

  t.test('Redis back, empty: serves again; the old code fails invalid_grant; pub/sub reaches every instance', async (t) => {
    await redis.start();
    t.ok(await eventually(15_000, async () => liveness.at(-1) === true), 'live again once resubscribed');
    for (const app of [a.app, b.app, c!.app]) {
      t.ok(await eventually(15_000, async () => (await ready(app)).status === 'ok'), '/readyz recovers without a restart');
    }
    const res = await redeem(a.app, kept.code, kept.verifier);
    t.equal(res.statusCode, 400);
    t.equal((res.json() as { error: string }).error, 'invalid_grant', 'a code from before the restart is gone: invalid_grant');

    // Sessions lived in Redis: the user signs in again; consent (PostgreSQL) is still remembered.
    const pkce = pkcePair();
    const flow = await loginAndConsent(browser, authorize(pkce), alice);
    t.ok(flow.sawLogin, 'the session is gone with Redis');
    t.notOk(flow.sawConsent, 'consent is remembered');
    const tokens = await redeem(b.app, flow.params.get('code')!, pkce.verifier);
    t.equal(tokens.statusCode, 200, 'a new code, redeemed on another instance');
    const access = (tokens.json() as { access_token: string }).access_token;

    // Revocation reaches B and C over pub/sub (their database polls are a minute apart).
    await Promise.all([b.app, c!.app].map(async (app) => t.ok(await eventually(5_000, async () => (await hello(app, access)).statusCode === 200))));
    t.equal((await sendForm(a.app, '/revoke', { token: access }, webAuth)).statusCode, 200);
    for (const [name, app] of [['B', b.app], ['C (started while Redis was down)', c!.app]] as const) {
      t.ok(await eventually(2_000, async () => (await hello(app, access)).statusCode === 401), `${name} refuses the revoked token within 2 s`);
    }
  });

  t.test('Redis hanging (SIGSTOP): requests settle with 503 within bounds', async (t) => {
    redis.pause();
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          i % 2 === 0 ? redeem(a.app, kept.code, kept.verifier) : bounded('GET /login', new InjectBrowser(a.app).get('/login')),
        ),
      );
      for (const res of results) t.equal(res.statusCode, 503);
      t.equal((await ready(a.app)).checks.code_store, 'unavailable');
    } finally {
      redis.resume();
    }
    t.ok(await eventually(15_000, async () => (await ready(a.app)).status === 'ok'), 'recovers after the hang');
  });

  t.test('the real server process: stays up through both outages and recovers by itself', async (t) => {
    const server = await startServer(t, {
      env: { ...TIMEOUTS, DATABASE_URL: pg.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'proc:' },
    });
    const get = async (path: string, init: RequestInit = {}) => {
      const res = await bounded(`${init.method ?? 'GET'} ${path}`, fetch(server.url + path, init));
      return { status: res.status, body: await res.text() };
    };
    const token = () =>
      get('/token', { method: 'POST', headers: { authorization: coldAuth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]) * 1024;

    // The process has not looked up this client yet, so every request below needs the database.
    t.equal((await get('/readyz')).status, 200);
    await pg.stop('immediate');
    for (let i = 0; i < 50; i++) await token(); // warm-up
    const before = rss();
    for (let i = 0; i < 300; i++) {
      const res = await token();
      if (res.status !== 503) t.fail(`token with the database down: ${res.status} ${res.body.slice(0, 200)}`);
    }
    const growth = rss() - before;
    t.comment(`server RSS growth across 300 failing requests: ${(growth / 1024 / 1024).toFixed(1)} MiB`);
    t.ok(growth < 48 * 1024 * 1024, 'RSS stays flat (bound 48 MiB)');
    t.match(JSON.parse((await get('/readyz')).body), { checks: { database: 'unavailable' } });
    t.equal(server.child.exitCode, null, 'still running');

    await pg.start();
    t.ok(await eventually(15_000, async () => (await get('/readyz')).status === 200), 'ready again');
    t.equal((await token()).status, 200);

    await redis.stop();
    t.match(JSON.parse((await get('/readyz')).body), { checks: { code_store: 'unavailable', database: 'ok' } });
    t.equal((await get('/login')).status, 503);
    await redis.start();
    t.ok(await eventually(15_000, async () => (await get('/readyz')).status === 200), 'ready again');
    t.equal((await get('/login')).status, 200);
    t.equal(server.child.exitCode, null, 'never exited');
    t.notMatch(server.stderr(), /unhandled|uncaught/i);
  });
});
