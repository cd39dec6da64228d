/**
 * Redis Cluster (`REDIS_CLUSTER_NODES`): a 3-master cluster on loopback,
 * created by this test (`redis-server --cluster-enabled yes`, `redis-cli
 * --cluster create`), under the TTL store contract (atomic take, increment,
 * pub/sub between connections to different nodes) and under the whole
 * server: code + PKCE through oauth4webapi, refresh rotation and reuse
 * detection, browser sessions, sign-in throttling, and revocation reaching a
 * second instance over the cluster's pub/sub.
 */
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { openKv } from '../../src/storage/index.js';
import type { KvStore } from '../../src/storage/types.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb } from '../helpers/backend.js';
import { authorizePath, InjectBrowser, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { injectFetch } from '../helpers/inject-fetch.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';
import { faultTestsSkipReason, redisAvailability, startRedisCluster } from '../helpers/throwaway.js';

const REDIRECT = 'http://127.0.0.1:7003/cb';

function skipReason(): string | null {
  const fault = faultTestsSkipReason();
  if (fault) return fault;
  const redis = redisAvailability();
  if ('reason' in redis) return redis.reason;
  if (!redis.cli) return 'redis-cli is not on PATH (needed to create the cluster)';
  return null;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

/** A TTL store on the cluster, opened through the configuration exactly as the server does. */
async function clusterKv(tap: Tap, nodes: readonly string[], prefix: string): Promise<KvStore> {
  const config = loadConfig({ REDIS_CLUSTER_NODES: nodes.join(','), REDIS_KEY_PREFIX: prefix });
  const kv = await openKv(config);
  tap.teardown(() => kv.close());
  return kv;
}

/** Polls `probe` until it returns true; false after `ms`. */
async function eventually(ms: number, probe: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
}

const skip = skipReason();

t.test(`Redis Cluster: 3 masters on loopback (${backendName.split('+')[0]} database)`, { skip: skip ?? false }, async (t) => {
  const cluster = await startRedisCluster(t, 3);

  t.test('KvStore contract on the cluster', async (t) => {
    const kv = await clusterKv(t, cluster.nodes, 'contract:');
    t.equal(kv.kind, 'redis-cluster');

    // Keys spread over the masters: nothing needs them on one node (no multi-key commands, no hash tags).
    for (let i = 0; i < 60; i++) await kv.set(`spread:${i}`, String(i), 60);
    const perNode = cluster.nodes.map((node) => {
      const [host, port] = node.split(':');
      return Number(spawnSync('redis-cli', ['-h', host!, '-p', port!, 'dbsize'], { encoding: 'utf8' }).stdout.trim());
    });
    t.ok(perNode.every((n) => n > 0), `every master holds some of the keys (${perNode.join(', ')})`);
    const values = await Promise.all(Array.from({ length: 60 }, (_, i) => kv.get(`spread:${i}`)));
    t.same(values, Array.from({ length: 60 }, (_, i) => String(i)), 'every key reads back');

    await kv.set('taken', 'value', 60);
    const takes = await Promise.all(Array.from({ length: 50 }, () => kv.take('taken')));
    t.equal(takes.filter((v) => v === 'value').length, 1, 'take: exactly one of 50 concurrent callers gets the value');
    t.equal(await kv.get('taken'), null);

    t.equal(await kv.setIfAbsent('once', 'a', 60), true);
    t.equal(await kv.setIfAbsent('once', 'b', 60), false);
    t.equal(await kv.get('once'), 'a');

    const counts = await Promise.all(Array.from({ length: 20 }, () => kv.increment('counter', 30)));
    t.same(
      counts.map((c) => c.count).sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i + 1),
      'increment: 20 concurrent increments count 1..20',
    );
    t.ok(counts.every((c) => c.ttlSeconds > 0 && c.ttlSeconds <= 30), 'the window is set once, not extended');

    // Pub/sub across the cluster: another store (its own connections, to whichever node) publishes.
    const other = await clusterKv(t, [...cluster.nodes].reverse(), 'contract:');
    const received: string[] = [];
    const unsubscribe = await kv.subscribe('events', (message) => received.push(message));
    // The SUBSCRIBE is sent asynchronously; publish until the first message arrives.
    t.ok(
      await eventually(5_000, async () => {
        await other.publish('events', 'hello');
        await sleep(50);
        return received.length > 0;
      }),
      'a message published through another connection arrives',
    );
    await unsubscribe();
  });

  t.test('the server on the cluster: flows, sessions, throttling, revocation across instances', async (t) => {
    const prefix = 'server:';
    const env = { REDIS_CLUSTER_NODES: cluster.nodes.join(','), MAX_FAILED_ATTEMPTS: '3' };
    const db = await testDb(t);
    const kvA = await clusterKv(t, cluster.nodes, prefix);
    const kvB = await clusterKv(t, cluster.nodes, prefix);
    const a = await buildTestApp(t, { env, db, kv: kvA });
    // B hears revocations only over pub/sub: its database poll is a minute apart.
    const b = await buildTestApp(t, { env, db, kv: kvB, serviceOptions: { tokenTimings: { denyListPollMs: 60_000 } } });
    t.equal(a.storage.kv.kind, 'redis-cluster');

    const web = await seedClient(a.services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid api:read' });
    const user = await seedUser(a.services);
    const auth = basic(web.clientId, web.clientSecret!);
    const browser = new InjectBrowser(a.app);

    const issuer = new URL(a.config.issuer);
    const httpOptions = { [oauth.customFetch]: injectFetch(b.app), [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...httpOptions, algorithm: 'oauth2' }));
    const client: oauth.Client = { client_id: web.clientId };

    let refreshToken = '';
    let accessToken = '';

    t.test('code + PKCE (sessions, pending requests and codes on the cluster), redeemed at the other instance', async (t) => {
      const pkce = pkcePair();
      const state = oauth.generateRandomState();
      const flow = await loginAndConsent(
        browser,
        authorizePath({ response_type: 'code', client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid api:read', state, code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
        user,
      );
      t.ok(flow.sawLogin && flow.sawConsent);
      const params = oauth.validateAuthResponse(as, client, new URL(flow.location), state);
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), params, REDIRECT, pkce.verifier, httpOptions);
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
      t.ok(tokens.refresh_token);
      refreshToken = tokens.refresh_token!;
      accessToken = tokens.access_token;
      t.equal((await getWithToken(a.app, '/api/hello', accessToken)).statusCode, 200);

      // Single use on the cluster: a replay is refused.
      const replay = await postForm(a.app, '/token', { grant_type: 'authorization_code', code: params.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier }, { authorization: auth });
      t.equal(replay.statusCode, 400);
      t.equal(replay.json().error, 'invalid_grant');
    });

    t.test('refresh rotation and reuse detection', async (t) => {
      // The replay above revoked that grant; start a fresh one from the remembered session and consent.
      const pkce = pkcePair();
      const flow = await loginAndConsent(
        browser,
        authorizePath({ response_type: 'code', client_id: web.clientId, redirect_uri: REDIRECT, scope: 'openid api:read', state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
        user,
      );
      t.notOk(flow.sawLogin, 'the session (on the cluster) is remembered');
      t.notOk(flow.sawConsent);
      const first = await postForm(b.app, '/token', { grant_type: 'authorization_code', code: flow.params.get('code')!, redirect_uri: REDIRECT, code_verifier: pkce.verifier }, { authorization: auth });
      t.equal(first.statusCode, 200);
      refreshToken = first.json().refresh_token;

      const response = await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretBasic(web.clientSecret!), refreshToken, httpOptions);
      const rotated = await oauth.processRefreshTokenResponse(as, client, response);
      t.not(rotated.refresh_token, refreshToken, 'a new refresh token');
      accessToken = rotated.access_token;
      const reuse = await postForm(a.app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: auth });
      t.equal(reuse.statusCode, 400);
      t.equal(reuse.json().error, 'invalid_grant');
      // The reuse revoked the family; B learns of it over the cluster's pub/sub.
      t.ok(await eventually(2_000, async () => (await getWithToken(b.app, '/api/hello', accessToken)).statusCode === 401), 'B refuses the revoked access token');
      t.equal((await postForm(b.app, '/token', { grant_type: 'refresh_token', refresh_token: rotated.refresh_token! }, { authorization: auth })).statusCode, 400);
    });

    t.test('sign-in throttling counts on the cluster, across instances', async (t) => {
      const victim = await seedUser(a.services);
      const wrong = { username: victim.username, password: 'not the password' };
      for (const app of [a.app, b.app, a.app]) {
        const page = new InjectBrowser(app, '10.9.8.7');
        const form = await page.get('/login');
        const res = await page.post('/login', { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(form.body)![1]!, ...wrong });
        t.equal(res.statusCode, 400);
      }
      const page = new InjectBrowser(b.app, '10.9.8.7');
      const form = await page.get('/login');
      const limited = await page.post('/login', { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(form.body)![1]!, username: victim.username, password: victim.password });
      t.equal(limited.statusCode, 429, 'the fourth attempt from that address, on B, is refused: 3 failures counted on A and B');
      t.ok(Number(limited.headers['retry-after']) > 0);
      const owner = new InjectBrowser(b.app, '10.9.8.6');
      const ownerForm = await owner.get('/login');
      const signedIn = await owner.post('/login', { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(ownerForm.body)![1]!, username: victim.username, password: victim.password });
      t.equal(signedIn.statusCode, 303, 'the real user at another address is slowed down, never locked out');
    });
  });
});
