/**
 * The one sign-in path (`users/sign-in.ts`) over the embedded TTL store:
 * every password check is throttled, counted and answered the same way.
 */
import t from 'tap';
import { OAuthError } from '../../src/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createThrottle } from '../../src/security/throttle.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import type { User } from '../../src/storage/types.js';
import { createSignIn } from '../../src/users/sign-in.js';

const user = (overrides: Partial<User> = {}): User => ({
  id: 'u1',
  username: 'alice',
  email: null,
  passwordHash: 'x',
  roles: [],
  disabled: false,
  credentialsChangedAt: null,
  createdAt: new Date(),
  updatedAt: new Date(),
  ...overrides,
});

function setup(account: User, max = 3) {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const metrics = createMetrics();
  let checks = 0;
  const signIn = createSignIn({
    throttle: createThrottle(kv, { maxFailedAttempts: max, failedAttemptWindowSeconds: 60 }),
    metrics,
    async verifyCredentials(username, password) {
      checks += 1;
      return username.toLowerCase() === account.username && password === 'right password' ? account : null;
    },
  });
  return { signIn, metrics, checks: () => checks };
}

const failures = async (metrics: ReturnType<typeof createMetrics>, source: string) => {
  const line = (await metrics.render()).body.split('\n').find((l) => l.startsWith(`oauth_login_failures_total{source="${source}"}`));
  return line ? Number(line.split(' ')[1]) : 0;
};

t.test('right password: signed in; wrong one or unknown user: invalid_credentials, counted', async (t) => {
  const { signIn, metrics } = setup(user());
  const ok = await signIn('alice', 'right password', { ip: '192.0.2.1', source: 'login_form' });
  t.ok(ok.ok);
  t.same(await signIn('alice', 'wrong', { ip: '192.0.2.1', source: 'login_form' }), { ok: false, reason: 'invalid_credentials' });
  t.same(await signIn('nobody', 'right password', { ip: '192.0.2.1', source: 'password_grant' }), { ok: false, reason: 'invalid_credentials' });
  t.equal(await failures(metrics, 'login_form'), 1);
  t.equal(await failures(metrics, 'password_grant'), 1);
});

t.test('past the limit: 429 before any password is checked, from every source alike', async (t) => {
  const { signIn, checks } = setup(user(), 3);
  for (const source of ['login_form', 'password_grant', 'admin_api'] as const) await signIn('alice', 'wrong', { ip: '192.0.2.1', source });
  const before = checks();
  const refused = await signIn('alice', 'right password', { ip: '192.0.2.1', source: 'admin_console' }).catch((err: unknown) => err);
  t.ok(refused instanceof OAuthError && refused.error === 'too_many_requests' && refused.retryAfter !== undefined, '429 with Retry-After');
  t.equal(checks(), before, 'no password was checked');
});

t.test('a success clears the account counter, not the address counter', async (t) => {
  const { signIn } = setup(user(), 3);
  await signIn('alice', 'wrong', { ip: '192.0.2.1', source: 'login_form' });
  await signIn('alice', 'wrong', { ip: '192.0.2.1', source: 'login_form' });
  t.ok((await signIn('alice', 'right password', { ip: '192.0.2.9', source: 'login_form' })).ok);
  await signIn('alice', 'wrong', { ip: '192.0.2.1', source: 'login_form' });
  await signIn('alice', 'wrong', { ip: '192.0.2.7', source: 'login_form' });
  t.ok((await signIn('alice', 'right password', { ip: '192.0.2.9', source: 'login_form' })).ok, 'the account had room again');
  const third = await signIn('mallory-target', 'x', { ip: '192.0.2.1', source: 'login_form' }).catch((err: unknown) => err);
  t.ok(third instanceof OAuthError && third.error === 'too_many_requests', "the first address's failures still count against it");
});

t.test('a disabled account with the right password is refused as disabled', async (t) => {
  const { signIn, metrics } = setup(user({ disabled: true }));
  t.same(await signIn('alice', 'right password', { ip: '192.0.2.1', source: 'admin_api' }), { ok: false, reason: 'disabled' });
  t.equal(await failures(metrics, 'admin_api'), 1, 'a failed sign-in all the same');
});
