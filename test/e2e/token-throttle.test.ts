/**
 * Failed-attempt throttling at the token endpoint (MAX_FAILED_ATTEMPTS=3),
 * shared by instances over the TTL store: bad client secrets per client and
 * IP (429 with Retry-After, also for a concurrent burst); bad passwords per
 * username AND IP (429), slowed down, never refused, per username across
 * addresses and per IP across usernames.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { basic, postForm } from '../helpers/tokens.js';

t.test(`token endpoint throttling (${backendName})`, async (t) => {
  const env = { MAX_FAILED_ATTEMPTS: '3', FAILED_ATTEMPT_WINDOW: '120' };
  /** The seconds left of the window that opened with the first failure, a moment ago (a second may have passed on a loaded machine). */
  const windowLeft = (header: string | string[] | number | undefined) => Number(header) >= 115 && Number(header) <= 120;
  const db = await testDb(t);
  const kv = await testKv(t);
  // The slow-down is recorded, not waited out.
  const slept: number[] = [];
  const serviceOptions = {
    sleep: async (ms: number) => {
      slept.push(ms);
    },
  };
  const a = await buildTestApp(t, { env, db, kv, serviceOptions });
  const b = await buildTestApp(t, { env, db, kv, serviceOptions });

  t.test('bad client secrets lock the client out from that IP, on every instance', async (t) => {
    const machine = await seedClient(a.services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const other = await seedClient(a.services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const attempt = (app: typeof a.app, secret: string, clientId = machine.clientId) =>
      postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: basic(clientId, secret) });

    t.equal((await attempt(a.app, 'wrong-1')).statusCode, 401);
    t.equal((await attempt(b.app, 'wrong-2')).statusCode, 401, 'counted across instances');
    const locked = await attempt(a.app, 'wrong-3');
    t.equal(locked.statusCode, 429);
    t.equal(locked.json().error, 'too_many_requests');
    t.ok(windowLeft(locked.headers['retry-after']), `Retry-After is what is left of the 120 s window (${String(locked.headers['retry-after'])})`);
    t.equal(locked.headers['cache-control'], 'no-store');

    for (const app of [a.app, b.app]) {
      const right = await attempt(app, machine.clientSecret!);
      t.equal(right.statusCode, 429, 'even the right secret waits out the lockout');
      t.ok(Number(right.headers['retry-after']) > 0);
    }
    t.equal((await attempt(a.app, other.clientSecret!, other.clientId)).statusCode, 200, 'other clients are not affected');
    const elsewhere = await postForm(
      b.app,
      '/token',
      { grant_type: 'client_credentials' },
      { authorization: basic(machine.clientId, machine.clientSecret!), remoteAddress: '10.9.9.9' },
    );
    t.equal(elsewhere.statusCode, 200, 'the lockout is per IP: knowing a client_id is not enough to lock the client out');
  });

  t.test('a concurrent burst of bad client secrets: at most MAX_FAILED_ATTEMPTS checks on an instance', async (t) => {
    const machine = await seedClient(a.services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const failures = async () => {
      const line = (await a.services.metrics.render()).body.split('\n').find((l) => l.startsWith('oauth_login_failures_total{source="client_auth"}'));
      return line ? Number(line.split(' ')[1]) : 0;
    };
    const before = await failures();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        postForm(a.app, '/token', { grant_type: 'client_credentials' }, { authorization: basic(machine.clientId, `guess-${i}`), remoteAddress: '10.8.0.1' }),
      ),
    );
    t.equal((await failures()) - before, 3, 'three secrets were checked');
    t.equal(answers.filter((res) => res.statusCode === 401).length, 2);
    t.equal(answers.filter((res) => res.statusCode === 429).length, 28, 'the third failure and everything after it: 429');
  });

  t.test('bad passwords are limited per username and IP; per username or per IP alone they only slow down', async (t) => {
    const app = await seedClient(a.services, { grant_types: ['password'], scope: 'api:read' });
    const auth = basic(app.clientId, app.clientSecret!);
    const dave = await seedUser(a.services, { username: 'dave' });
    const erin = await seedUser(a.services, { username: 'erin' });
    const login = (target: typeof a.app, username: string, password: string, ip: string) =>
      postForm(target, '/token', { grant_type: 'password', username, password }, { authorization: auth, remoteAddress: ip });

    // Per username and IP: three failures from one address, on two instances, refuse dave there (case-insensitively).
    t.equal((await login(a.app, 'dave', 'wrong', '10.1.0.1')).statusCode, 400);
    t.equal((await login(b.app, 'DAVE', 'wrong', '10.1.0.1')).statusCode, 400);
    t.equal((await login(a.app, 'dave', 'wrong', '10.1.0.1')).statusCode, 400);
    const locked = await login(b.app, 'dave', dave.password, '10.1.0.1');
    t.equal(locked.statusCode, 429);
    t.ok(windowLeft(locked.headers['retry-after']), `Retry-After is what is left of the 120 s window (${String(locked.headers['retry-after'])})`);

    // Per username: the account is slowed down, not locked; dave from another address gets in.
    const sleptBefore = slept.length;
    t.equal((await login(a.app, 'dave', dave.password, '10.1.0.4')).statusCode, 200, 'the real user at another address');
    t.equal(slept.length, sleptBefore + 1, 'after a slow-down: three failures at the account');
    t.equal((await login(a.app, 'erin', erin.password, '10.1.0.1')).statusCode, 200, 'another user from the refused address is fine');

    // Per IP: three failures for three usernames slow the address down (a NAT, a proxy), they do not lock it.
    for (const name of ['nobody1', 'nobody2', 'nobody3']) t.equal((await login(a.app, name, 'wrong', '10.2.0.1')).statusCode, 400);
    const slowed = slept.length;
    t.equal((await login(b.app, 'erin', erin.password, '10.2.0.1')).statusCode, 200, 'erin from that address, on the other instance');
    t.equal(slept.length, slowed + 1, 'after a slow-down');
  });
});
