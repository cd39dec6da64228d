/**
 * Several instances over one database (and one TTL store): shared signing
 * keys, rotation that publishes the new key at once, switches every instance
 * to it at one stored instant and keeps old tokens valid, a restart that
 * keeps tokens valid, and revocation reaching every instance's in-memory
 * deny list within a second (pub/sub), or through the database poll when a
 * message cannot arrive.
 */
import t from 'tap';
import { runCli } from '../../src/admin/cli/run.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';

const header = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string; alg: string; typ: string };

/** Polls `probe` every 20 ms until it returns true or `ms` have passed. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test(`keys and revocation across instances (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  // One clock for every instance, stopped and moved forward by the test (key activation is minutes away).
  let offsetMs = 0;
  let stoppedAt: number | null = null;
  const now = () => stoppedAt ?? Date.now() + offsetMs;
  // Only pub/sub can tell B quickly: its database poll is slowed down to a minute.
  const a = await buildTestApp(t, { db, kv, now });
  const b = await buildTestApp(t, { db, kv, now, serviceOptions: { tokenTimings: { denyListPollMs: 60_000 } } });
  // C shares the database but not the TTL store: it hears nothing, and learns from the database only.
  const c = await buildTestApp(t, { db, now, serviceOptions: { tokenTimings: { denyListPollMs: 100, unknownKidReloadMs: 0 } } });
  /** Stops every instance's clock at `at` (ms since the epoch). */
  const setClock = (at: number) => {
    stoppedAt = at;
  };
  /** Lets the clock run on from where it stands. */
  const runClock = () => {
    if (stoppedAt !== null) offsetMs = stoppedAt - Date.now();
    stoppedAt = null;
  };

  const machine = await seedClient(a.services, { grant_types: ['client_credentials'], scope: 'api:read' });
  const auth = basic(machine.clientId, machine.clientSecret!);
  const issue = async (app = a.app) => {
    const res = await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: auth });
    t.equal(res.statusCode, 200);
    return res.json().access_token as string;
  };
  const jwks = async (app = a.app) => ((await app.inject({ method: 'GET', url: '/jwks.json' })).json() as { keys: Array<{ kid: string; alg: string }> }).keys;
  const status = async (app: typeof a.app, token: string) => (await getWithToken(app, '/api/hello', token)).statusCode;

  t.test('instances starting on one database share one key set', async (t) => {
    const keys = await jwks(a.app);
    t.equal(keys.length, 2, 'one ES256 (access tokens) and one RS256 (ID tokens) key');
    t.same(await jwks(b.app), keys);
    t.same(await jwks(c.app), keys);
    const token = await issue(a.app);
    t.equal(header(token).alg, 'ES256');
    t.equal(header(token).typ, 'at+jwt');
    t.ok(keys.some((k) => k.kid === header(token).kid), 'kid is published');
    t.equal(await status(b.app, token), 200);
    t.equal(await status(c.app, token), 200);
  });

  t.test('rotation: published at once, signing from one stored instant on every instance, old tokens stay valid', async (t) => {
    t.teardown(runClock);
    const before = await issue(a.app);
    const oldKid = header(before).kid;
    const rotatedAt = now();
    const rotated = await a.services.tokens.keys.rotate();
    t.equal(rotated.alg, 'ES256');
    t.equal(rotated.status, 'pending', 'the new key waits');
    t.not(rotated.kid, oldKid);
    const activatesAt = rotated.activatesAt.getTime();
    const jwksResponse = await a.app.inject({ method: 'GET', url: '/jwks.json' });
    const maxAgeMs = Number(/max-age=(\d+)/.exec(String(jwksResponse.headers['cache-control']))![1]) * 1000;
    t.ok(activatesAt - rotatedAt >= maxAgeMs, `it signs no sooner than a JWKS served before the rotation expires (${(activatesAt - rotatedAt) / 1000} s >= ${maxAgeMs / 1000} s)`);

    const kids = (await jwks(a.app)).map((k) => k.kid);
    t.ok(kids.includes(oldKid) && kids.includes(rotated.kid), 'JWKS publishes the old and the new key at once');
    t.ok(await within(1_000, async () => (await jwks(b.app)).some((k) => k.kid === rotated.kid)), 'B learns of the new key over pub/sub');

    t.equal(header(await issue(a.app)).kid, oldKid, 'the old key still signs on the rotating instance');
    setClock(activatesAt - 1);
    for (const [name, app] of [['A', a.app], ['B', b.app]] as const) t.equal(header(await issue(app)).kid, oldKid, `${name}: the old key signs until the last millisecond before activation`);

    setClock(activatesAt);
    const after = await issue(a.app);
    t.equal(header(after).kid, rotated.kid, 'A signs with the new key at the activation instant');
    t.equal(header(await issue(b.app)).kid, rotated.kid, 'B switches at the same instant, without being told');
    for (const app of [a.app, b.app]) {
      t.equal(await status(app, before), 200, 'a token of the retired key is still valid');
      t.equal(await status(app, after), 200);
    }
    // C never heard of the rotation: the unknown kid makes it reload.
    t.equal(await status(c.app, after), 200, 'an unknown kid triggers a reload');

    const listed = await a.services.tokens.keys.list();
    const old = listed.find((k) => k.kid === oldKid)!;
    t.equal(old.status, 'retired');
    t.equal(old.retiredAt?.getTime(), activatesAt, 'the old key stopped signing when the new one started');
    t.ok(old.expiresAt!.getTime() > activatesAt + 900_000, 'published at least as long as its tokens live');
    t.equal(listed.find((k) => k.kid === rotated.kid)?.status, 'active');
    t.equal(listed.filter((k) => k.alg === 'ES256' && k.status === 'active').length, 1);
  });

  t.test('CLI: keys list and keys rotate --alg RS256 (the ID-token key)', async (t) => {
    t.teardown(runClock);
    const run = async (argv: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => '' }, { services: a.services });
      return { code, stdout, stderr };
    };
    const listed = await run(['keys', 'list', '--json']);
    t.equal(listed.code, 0);
    const before = JSON.parse(listed.stdout) as Array<{ kid: string; alg: string; status: string }>;
    const oldRs = before.find((k) => k.alg === 'RS256' && k.status === 'active')!;
    const rotated = await run(['keys', 'rotate', '--alg', 'RS256', '--json']);
    t.equal(rotated.code, 0, rotated.stderr);
    const key = JSON.parse(rotated.stdout) as { kid: string; alg: string; status: string; activates_at: string; replaces: string[] };
    t.equal(key.alg, 'RS256');
    t.not(key.kid, oldRs.kid);
    t.equal(key.status, 'pending');
    t.same(key.replaces, [oldRs.kid], 'names the key it takes over from');
    const statuses = async () => new Map((JSON.parse((await run(['keys', 'list', '--json'])).stdout) as Array<{ kid: string; status: string }>).map((k) => [k.kid, k.status]));
    let state = await statuses();
    t.equal(state.get(oldRs.kid), 'active', 'the old key signs until the activation');
    t.equal(state.get(key.kid), 'pending');
    setClock(Date.parse(key.activates_at));
    state = await statuses();
    t.equal(state.get(oldRs.kid), 'retired');
    t.equal(state.get(key.kid), 'active');
    t.equal((await run(['keys', 'rotate', '--alg', 'HS256'])).code, 2, 'an unknown algorithm is a usage error');
    const human = await run(['keys', 'list']);
    t.match(human.stdout, /KID\s+ALG\s+STATUS\s+SIGNS FROM\s+SIGNS UNTIL\s+UNPUBLISHED AFTER/);
  });

  t.test('a restarted instance (new process, same database) accepts earlier tokens', async (t) => {
    const token = await issue(a.app);
    const restarted = await buildTestApp(t, { db, now });
    t.same((await jwks(restarted.app)).map((k) => k.kid).sort(), (await jwks(a.app)).map((k) => k.kid).sort(), 'no new keys created');
    t.equal(await status(restarted.app, token), 200);
    t.equal(header(await issue(restarted.app)).kid, header(token).kid);
    await restarted.app.close();
  });

  t.test('a revoked access token is refused by every instance within a second', async (t) => {
    const token = await issue(a.app);
    t.equal(await status(b.app, token), 200);
    t.equal(await status(c.app, token), 200);
    const revoked = await postForm(a.app, '/revoke', { token }, { authorization: auth });
    t.equal(revoked.statusCode, 200);
    t.equal(await status(a.app, token), 401, 'at once on the revoking instance');
    t.ok(await within(1_000, async () => (await status(b.app, token)) === 401), 'B (pub/sub) refuses it within a second');
    t.ok(await within(1_000, async () => (await status(c.app, token)) === 401), 'C (database poll) refuses it too');
    const introspected = await postForm(b.app, '/introspect', { token }, { authorization: auth });
    t.equal(introspected.body, '{"active":false}', 'introspection on any instance sees it at once');
  });

  t.test("disabling a user reaches every instance's resource routes", async (t) => {
    const app = await seedClient(a.services, { grant_types: ['password'], scope: 'api:read' });
    const user = await seedUser(a.services, { username: 'frank' });
    const res = await postForm(a.app, '/token', { grant_type: 'password', username: 'frank', password: user.password }, { authorization: basic(app.clientId, app.clientSecret!) });
    const token = res.json().access_token as string;
    t.equal(await status(b.app, token), 200);
    await a.services.users.update(user.id, { disabled: true });
    t.ok(await within(1_000, async () => (await status(b.app, token)) === 401), 'B refuses it within a second');
    t.ok(await within(1_000, async () => (await status(c.app, token)) === 401), 'C refuses it after its poll');
  });
});
