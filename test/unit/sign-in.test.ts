/**
 * The one sign-in path (`users/sign-in.ts`) over the embedded TTL store:
 * every password check is throttled, counted and answered the same way. A
 * hard limit per account AND address, counted before the check (so bursts
 * cannot outrun it); a capped slow-down, never a refusal, per account across
 * addresses and per address across accounts.
 */
import t from 'tap';
import { OAuthError } from '../../src/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createThrottle, SLOW_DOWN, slowDownMs } from '../../src/security/throttle.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import type { User } from '../../src/storage/types.js';
import { createSignIn, type SignInAttempt } from '../../src/users/sign-in.js';

const user = (overrides: Partial<User> = {}): User => ({
  id: 'u1',
  username: 'alice',
  email: null,
  emailVerified: false,
  passwordHash: 'x',
  roles: [],
  disabled: false,
  credentialsChangedAt: null,
  createdAt: new Date(),
  updatedAt: new Date(),
  ...overrides,
});

function setup(account: User, max = 3, options: { failVerify?: () => boolean } = {}) {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const metrics = createMetrics();
  let checks = 0;
  const slept: number[] = [];
  const attempts: SignInAttempt[] = [];
  const signIn = createSignIn({
    throttle: createThrottle(kv, { maxFailedAttempts: max, failedAttemptWindowSeconds: 60 }),
    metrics,
    // Records the slow-down instead of waiting it out.
    sleep: async (ms) => {
      slept.push(ms);
    },
    onAttempt: (attempt) => attempts.push(attempt),
    async verifyCredentials(username, password) {
      // Yield like argon2 does (it runs on the thread pool), so concurrent calls interleave.
      await new Promise((resolve) => setImmediate(resolve));
      if (options.failVerify?.()) throw new Error('database down');
      checks += 1;
      return username.toLowerCase() === account.username && password === 'right password' ? account : null;
    },
  });
  return { signIn, metrics, checks: () => checks, slept, attempts };
}

const failures = async (metrics: ReturnType<typeof createMetrics>, source: string) => {
  const line = (await metrics.render()).body.split('\n').find((l) => l.startsWith(`oauth_login_failures_total{source="${source}"}`));
  return line ? Number(line.split(' ')[1]) : 0;
};

const isThrottled = (err: unknown) => err instanceof OAuthError && err.error === 'too_many_requests' && err.retryAfter !== undefined;

t.test('right password: signed in; wrong one or unknown user: invalid_credentials, counted', async (t) => {
  const { signIn, metrics } = setup(user());
  const ok = await signIn('alice', 'right password', { ip: '192.0.2.1', source: 'login_form' });
  t.ok(ok.ok);
  t.same(await signIn('alice', 'wrong', { ip: '192.0.2.1', source: 'login_form' }), { ok: false, reason: 'invalid_credentials' });
  t.same(await signIn('nobody', 'right password', { ip: '192.0.2.1', source: 'password_grant' }), { ok: false, reason: 'invalid_credentials' });
  t.equal(await failures(metrics, 'login_form'), 1);
  t.equal(await failures(metrics, 'password_grant'), 1);
});

t.test('a burst of concurrent wrong passwords gets at most MAX_FAILED_ATTEMPTS checks per account and address', async (t) => {
  const { signIn, checks, metrics, attempts } = setup(user(), 10);
  const sources = ['login_form', 'password_grant', 'admin_api', 'admin_console'] as const;
  const results = await Promise.allSettled(
    Array.from({ length: 30 }, (_, i) => signIn(i % 2 ? 'alice' : 'ALICE', `guess ${i}`, { ip: '192.0.2.1', source: sources[i % sources.length]! })),
  );
  t.equal(checks(), 10, 'exactly ten passwords were checked');
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 10);
  t.ok(
    results.filter((r) => r.status === 'rejected').every((r) => isThrottled(r.reason)),
    'the other twenty: 429 with Retry-After, unchecked',
  );
  let counted = 0;
  for (const source of sources) counted += await failures(metrics, source);
  t.equal(counted, 10, 'the failure metric counts checks, not refusals');
  t.equal(attempts.filter((a) => a.outcome === 'throttled').length, 20, 'each refusal is reported as throttled');
});

t.test('past the limit: 429 before any password is checked, from every source alike', async (t) => {
  const { signIn, checks } = setup(user(), 3);
  for (const source of ['login_form', 'password_grant', 'admin_api'] as const) await signIn('alice', 'wrong', { ip: '192.0.2.1', source });
  const before = checks();
  const refused = await signIn('alice', 'right password', { ip: '192.0.2.1', source: 'admin_console' }).catch((err: unknown) => err);
  t.ok(isThrottled(refused), '429 with Retry-After');
  t.ok((refused as OAuthError).retryAfter! <= 60, 'at most the window');
  t.equal(checks(), before, 'no password was checked');
});

t.test("an attacker's failures at one address never refuse the real user at another", async (t) => {
  const { signIn, slept, attempts } = setup(user(), 3);
  for (let i = 0; i < 10; i++) await signIn('alice', `guess ${i}`, { ip: '192.0.2.66', source: 'login_form' }).catch(() => {});
  const real = await signIn('alice', 'right password', { ip: '192.0.2.7', source: 'login_form' });
  t.ok(real.ok, 'the right password from another address signs in');
  t.same(slept, [SLOW_DOWN.firstDelayMs], 'after a bounded slow-down: the account has three failures');
  t.match(attempts.at(-1), { outcome: 'signed_in', slowedMs: SLOW_DOWN.firstDelayMs, userId: 'u1', ip: '192.0.2.7' });
});

t.test('an account attacked from many addresses is slowed down, growing and capped, never blocked', async (t) => {
  const { signIn, slept, checks } = setup(user(), 3);
  for (let i = 0; i < 12; i++) {
    const result = await signIn('alice', `guess ${i}`, { ip: `198.51.100.${i}`, source: 'password_grant' });
    t.equal(result.ok, false, 'every guess is checked (and wrong)');
  }
  t.equal(checks(), 12);
  t.same(
    slept,
    [250, 500, 1_000, 2_000, 4_000, 4_000, 4_000, 4_000, 4_000],
    'no delay for the first three failures, then doubling up to the cap',
  );
  t.ok((await signIn('alice', 'right password', { ip: '198.51.100.200', source: 'admin_api' })).ok, 'the real user still gets in');
  t.equal(slept.at(-1), SLOW_DOWN.maxDelayMs);
});

t.test('an address shared by many people (NAT): failures across accounts slow it down, never refuse it', async (t) => {
  const { signIn, slept, attempts } = setup(user(), 3);
  for (let i = 0; i < 6; i++) {
    t.same(await signIn(`someone${i}`, 'wrong', { ip: '203.0.113.5', source: 'login_form' }), { ok: false, reason: 'invalid_credentials' });
  }
  t.same(slept, [250, 500, 1_000], 'slowed once the address passed the limit');
  t.ok((await signIn('alice', 'right password', { ip: '203.0.113.5', source: 'login_form' })).ok, 'another user behind that address signs in');
  t.equal(attempts.at(-1)!.slowedMs, 2_000);
});

t.test('the right password gives its attempt back; failures are never cleared by it', async (t) => {
  const { signIn } = setup(user(), 3);
  const at = { ip: '192.0.2.1', source: 'admin_api' } as const;
  await signIn('alice', 'wrong', at);
  await signIn('alice', 'wrong', at);
  for (let i = 0; i < 10; i++) t.ok((await signIn('alice', 'right password', at)).ok, 'an admin script using Basic on every call is not throttled');
  t.same(await signIn('alice', 'wrong', at), { ok: false, reason: 'invalid_credentials' }, 'the third failure is still checked');
  t.ok(isThrottled(await signIn('alice', 'wrong', at).catch((err: unknown) => err)), 'the fourth is refused: no success erased the first two');
});

t.test('an attempt that could not be checked (the database is down) is not a failure', async (t) => {
  let down = true;
  const { signIn } = setup(user(), 2, { failVerify: () => down });
  const at = { ip: '192.0.2.1', source: 'login_form' } as const;
  for (let i = 0; i < 5; i++) await t.rejects(signIn('alice', 'right password', at), /database down/);
  down = false;
  await signIn('alice', 'wrong', at);
  t.ok((await signIn('alice', 'right password', at)).ok, 'the outage used up none of the attempts');
});

t.test('a store outage before the check is an error, not a throttled attempt', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const attempts: SignInAttempt[] = [];
  const down = { ...kv, increment: async () => Promise.reject(new Error('code store down')) };
  let checks = 0;
  const signIn = createSignIn({
    throttle: createThrottle(down, { maxFailedAttempts: 3, failedAttemptWindowSeconds: 60 }),
    onAttempt: (attempt) => attempts.push(attempt),
    async verifyCredentials() {
      checks += 1;
      return null;
    },
  });
  await t.rejects(signIn('alice', 'guess', { ip: '192.0.2.1', source: 'login_form' }), /code store down/);
  t.equal(checks, 0, 'nothing is checked without the count');
  t.same(attempts, [], 'nothing to report');
});

t.test('a store that times out but counts later (a frozen Redis) gets the attempt back: retried 503s lock nobody out', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  let frozen = true;
  // The INCR reaches the store and is applied, but its answer comes too late: the caller sees a timeout.
  const late = {
    ...kv,
    increment: async (key: string, ttl: number) => {
      const counted = await kv.increment(key, ttl);
      if (frozen) throw new Error('command timed out');
      return counted;
    },
  };
  let checks = 0;
  const signIn = createSignIn({
    throttle: createThrottle(late, { maxFailedAttempts: 3, failedAttemptWindowSeconds: 60 }),
    async verifyCredentials(_username, password) {
      checks += 1;
      return password === 'right password' ? user() : null;
    },
  });
  const at = { ip: '192.0.2.1', source: 'password_grant' } as const;
  for (let i = 0; i < 10; i++) await t.rejects(signIn('alice', 'right password', at), /timed out/);
  frozen = false;
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(checks, 0, 'nothing was checked while frozen');
  t.ok((await signIn('alice', 'right password', at)).ok, 'the right password still signs in');
});

t.test('a disabled account with the right password is refused as disabled', async (t) => {
  const { signIn, metrics } = setup(user({ disabled: true }));
  t.same(await signIn('alice', 'right password', { ip: '192.0.2.1', source: 'admin_api' }), { ok: false, reason: 'disabled' });
  t.equal(await failures(metrics, 'admin_api'), 1, 'a failed sign-in all the same');
});

t.test('slowDownMs: none below the threshold, then doubling, capped', async (t) => {
  t.equal(slowDownMs(0, 10), 0);
  t.equal(slowDownMs(9, 10), 0);
  t.equal(slowDownMs(10, 10), SLOW_DOWN.firstDelayMs);
  t.equal(slowDownMs(11, 10), 2 * SLOW_DOWN.firstDelayMs);
  t.equal(slowDownMs(1_000_000, 10), SLOW_DOWN.maxDelayMs, 'a request is never held longer than the cap');
  t.equal(slowDownMs(Number.NaN, 10), 0);
  t.ok(SLOW_DOWN.maxDelayMs <= 5_000, 'a few seconds at most');
});
