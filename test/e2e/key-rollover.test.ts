/**
 * Signing-key rollover: a rotated key is published at once and signs only
 * from its stored activation instant, so a verifier holding a JWKS it cached
 * (for the max-age /jwks.json allows) never meets an unknown `kid`. Every
 * instance, also one started in the middle of the window that hears no
 * pub/sub, switches at that instant; during the window every instance
 * accepts tokens of both keys. On both backends, with injected clocks.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import t from 'tap';
import { runCli } from '../../src/admin/cli/run.js';
import { buildTestApp, seedClient } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';

type App = Awaited<ReturnType<typeof buildTestApp>>['app'];

const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
/** A clock that stands still until the test moves it. */
const clock = (start = Date.now()) => {
  let at = start;
  return { now: () => at, set: (ms: number) => void (at = ms) };
};
/** Long enough that no periodic reload happens during a test: only the stored instants and pub/sub can play a part. */
const NO_RELOAD = { tokenTimings: { keyReloadMs: 3_600_000 } };

t.test(`key rollover (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  const main = clock();
  const a = await buildTestApp(t, { db, kv, now: main.now });
  const machine = await seedClient(a.services, { grant_types: ['client_credentials'], scope: 'api:read' });
  const auth = basic(machine.clientId, machine.clientSecret!);
  const issue = async (app: App) => {
    const res = await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: auth });
    if (res.statusCode !== 200) throw new Error(`token request failed: ${res.statusCode} ${res.body}`);
    return res.json().access_token as string;
  };
  const hello = async (app: App, token: string) => (await getWithToken(app, '/api/hello', token)).statusCode;
  const fetchJwks = async (app: App) => {
    const res = await app.inject({ method: 'GET', url: '/jwks.json' });
    return { set: res.json() as JSONWebKeySet, maxAgeMs: Number(/max-age=(\d+)/.exec(String(res.headers['cache-control']))![1]) * 1000 };
  };
  /** Verifies like a resource server that keeps the JWKS it fetched (a local set: no refetch on an unknown kid). */
  const verifiesWith = (set: JSONWebKeySet, token: string, at: number) =>
    jwtVerify(token, createLocalJWKSet(set), { issuer: 'http://localhost:3000', currentDate: new Date(at) }).then(
      () => true,
      (err: { code?: string }) => err.code ?? 'error',
    );

  const oldKid = kidOf(await issue(a.app));
  const cached = await fetchJwks(a.app);
  const fetchedAt = main.now();

  const cli = await (async () => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['keys', 'rotate'], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => '' }, { services: a.services });
    return { code, stdout, stderr };
  })();
  t.equal(cli.code, 0, cli.stderr);
  const pending = (await a.services.tokens.keys.list()).find((k) => k.status === 'pending')!;
  const activatesAt = pending.activatesAt.getTime();
  t.match(
    cli.stdout,
    new RegExp(`new ES256 signing key ${pending.kid} is published now and signs from ${pending.activatesAt.toISOString()} \\(in ${Math.round((activatesAt - fetchedAt) / 1000)} s\\)`),
    'keys rotate says when the new key takes over',
  );
  t.match(cli.stdout, new RegExp(`${oldKid} signs until then and stays published until \\S+, when every token it signed has expired`), 'and what happens to the old one');
  t.ok(activatesAt - fetchedAt >= cached.maxAgeMs, 'activation comes after every JWKS cached before the rotation has expired');

  t.test('a verifier never meets an unknown kid', async (t) => {
    // Up to the last moment its cached copy may be used, every token is signed with a key in it.
    main.set(fetchedAt + cached.maxAgeMs);
    const late = await issue(a.app);
    t.equal(kidOf(late), oldKid, 'the old key signs when the cached copy runs out');
    t.equal(await verifiesWith(cached.set, late, main.now()), true, 'a JWKS cached before the rotation verifies tokens issued while it may be used');
    // Whoever fetched after the rotation holds the new key before it signs.
    main.set(activatesAt - cached.maxAgeMs);
    const refetched = await fetchJwks(a.app);
    main.set(activatesAt);
    const first = await issue(a.app);
    t.equal(kidOf(first), pending.kid, 'the new key signs from its activation');
    t.equal(await verifiesWith(refetched.set, first, main.now()), true, 'a JWKS fetched a max-age before the activation already holds the new key');
    t.equal(await verifiesWith(cached.set, first, main.now()), 'ERR_JWKS_NO_MATCHING_KEY', 'sanity: the pre-rotation JWKS could not have verified it');
    main.set(fetchedAt);
  });

  t.test('an instance started in the middle of the window, hearing no pub/sub, switches at the same instant', async (t) => {
    const late = clock(activatesAt - 1_000);
    // Its own TTL store: no message reaches it; reloads an hour apart: the stored instant alone decides.
    const b = await buildTestApp(t, { db, now: late.now, serviceOptions: NO_RELOAD });
    t.same((await b.services.tokens.keys.list()).map((k) => [k.kid, k.status]).sort(), [[oldKid, 'active'], [pending.kid, 'pending']].concat(
      (await a.services.tokens.keys.list()).filter((k) => k.alg === 'RS256').map((k) => [k.kid, 'active']),
    ).sort(), 'it reads the same plan');
    t.equal(kidOf(await issue(b.app)), oldKid, 'signs with the old key before the instant');
    late.set(activatesAt);
    t.equal(kidOf(await issue(b.app)), pending.kid, 'and with the new one from the instant on');
  });

  t.test('during the window every instance accepts both keys, whatever its clock says', async (t) => {
    const ahead = clock(activatesAt + 1_000);
    const behind = clock(activatesAt - 1_000);
    const fast = await buildTestApp(t, { db, kv, now: ahead.now, serviceOptions: NO_RELOAD });
    const slow = await buildTestApp(t, { db, kv, now: behind.now, serviceOptions: NO_RELOAD });
    const early = await issue(fast.app);
    const tardy = await issue(slow.app);
    t.equal(kidOf(early), pending.kid, 'an instance whose clock runs ahead already signs with the new key');
    t.equal(kidOf(tardy), oldKid, 'one whose clock lags still signs with the old key');
    main.set(activatesAt - 1_000);
    t.equal(await hello(a.app, early), 200, 'a token of the pending key is accepted before the activation');
    main.set(activatesAt + 1_000);
    t.equal(await hello(a.app, tardy), 200, 'a token of the old key is accepted after it');
    main.set(fetchedAt);
  });

  t.test('a second rotation during the window: each key signs in turn, none before it was published for the delay', async (t) => {
    main.set(activatesAt - 10_000);
    const second = await a.services.tokens.keys.rotate();
    const secondAt = second.activatesAt.getTime();
    t.ok(secondAt - main.now() >= cached.maxAgeMs, 'the second key waits its own delay');
    const keys = await a.services.tokens.keys.list();
    t.equal(keys.find((k) => k.kid === oldKid)!.retiredAt!.getTime(), activatesAt, 'the first key keeps its retirement instant');
    t.equal(keys.find((k) => k.kid === pending.kid)!.retiredAt!.getTime(), secondAt, 'the pending key signs until the second one takes over');
    const at = async (ms: number) => {
      main.set(ms);
      return kidOf(await issue(a.app));
    };
    t.same([await at(activatesAt - 1), await at(activatesAt), await at(secondAt - 1), await at(secondAt)], [oldKid, pending.kid, pending.kid, second.kid]);
    main.set(fetchedAt);
  });
});
