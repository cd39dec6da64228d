/**
 * Failed-attempt throttling at the token endpoint (MAX_FAILED_ATTEMPTS=3):
 * bad client secrets per client and IP, bad passwords per username and per IP,
 * shared by instances over the TTL store; 429 with Retry-After.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { basic, postForm } from '../helpers/tokens.js';

t.test(`token endpoint throttling (${backendName})`, async (t) => {
  const env = { MAX_FAILED_ATTEMPTS: '3', FAILED_ATTEMPT_WINDOW: '120' };
  const db = await testDb(t);
  const kv = await testKv(t);
  const a = await buildTestApp(t, { env, db, kv });
  const b = await buildTestApp(t, { env, db, kv });

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
    t.equal(locked.headers['retry-after'], '120');
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

  t.test('bad passwords are limited per username and per IP', async (t) => {
    const app = await seedClient(a.services, { grant_types: ['password'], scope: 'api:read' });
    const auth = basic(app.clientId, app.clientSecret!);
    const dave = await seedUser(a.services, { username: 'dave' });
    const erin = await seedUser(a.services, { username: 'erin' });
    const login = (target: typeof a.app, username: string, password: string, ip: string) =>
      postForm(target, '/token', { grant_type: 'password', username, password }, { authorization: auth, remoteAddress: ip });

    // Per username: three failures from three addresses lock dave's account (case-insensitively).
    t.equal((await login(a.app, 'dave', 'wrong', '10.1.0.1')).statusCode, 400);
    t.equal((await login(b.app, 'DAVE', 'wrong', '10.1.0.2')).statusCode, 400);
    t.equal((await login(a.app, 'dave', 'wrong', '10.1.0.3')).statusCode, 400);
    const lockedUser = await login(b.app, 'dave', dave.password, '10.1.0.4');
    t.equal(lockedUser.statusCode, 429);
    t.equal(lockedUser.headers['retry-after'], '120');
    t.equal((await login(a.app, 'erin', erin.password, '10.1.0.4')).statusCode, 200, 'another user from that address is fine');

    // Per IP: three failures for three usernames lock the address.
    for (const name of ['nobody1', 'nobody2', 'nobody3']) t.equal((await login(a.app, name, 'wrong', '10.2.0.1')).statusCode, 400);
    const lockedIp = await login(b.app, 'erin', erin.password, '10.2.0.1');
    t.equal(lockedIp.statusCode, 429);
    t.equal((await login(b.app, 'erin', erin.password, '10.2.0.2')).statusCode, 200, 'erin from another address is fine');
  });
});
