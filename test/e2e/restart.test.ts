/**
 * Stop the server, start it again: users and clients are still there (on the
 * test backend, and on the embedded database in a real DATA_DIR on disk).
 * Two instances starting at once on one fresh database: migrations and the
 * admin bootstrap each happen exactly once, and both instances work.
 */
import { spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { verifyClientSecret } from '../../src/clients/secret.js';
import { ConfigError, loadConfig, type Config } from '../../src/config.js';
import { createServices } from '../../src/services.js';
import type { DbWithScripts } from '../../src/storage/db.js';
import { createStorage, type StorageOverrides } from '../../src/storage/index.js';
import { hashPassword } from '../../src/users/password.js';
import { PASSWORD_RULE } from '../../src/users/password-policy.js';
import { buildTestApp, checkPassword } from '../helpers/app.js';
import { backendName, dbKinds, openTestDb, seedDataDir, testKv } from '../helpers/backend.js';
import { entryPoint } from '../helpers/entry-point.js';
import { ROOT } from '../helpers/root.js';
import { tempDir } from '../helpers/temp-dir.js';
import { userBasic } from '../helpers/tokens.js';

const ADMIN = { ADMIN_USERNAME: 'boot-admin', ADMIN_PASSWORD: 'first light on the harbour' };
const auth = userBasic(ADMIN.ADMIN_USERNAME, ADMIN.ADMIN_PASSWORD);

/** What `main.ts` does before listening: storage (migrations), services, app, admin bootstrap. */
async function startInstance(config: Config, overrides: StorageOverrides = {}) {
  const storage = await createStorage(config, overrides);
  const services = createServices(config, storage);
  const app = await buildApp(config, services, { logger: false });
  await services.start();
  const admin = await services.bootstrap();
  await app.ready();
  return { app, services, storage, admin };
}

/** Registers a client and a user through the admin API of `app`. */
async function populate(t: Test, app: Awaited<ReturnType<typeof startInstance>>['app']) {
  const client = await app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { authorization: auth },
    payload: { client_name: 'Survivor', redirect_uris: ['http://localhost:8080/cb'], scope: 'openid' },
  });
  t.equal(client.statusCode, 201);
  const user = await app.inject({ method: 'POST', url: '/admin/users', headers: { authorization: auth }, payload: { username: 'survivor', password: 'still here after restart' } });
  t.equal(user.statusCode, 201);
  return { clientId: client.json().client_id as string, secret: client.json().client_secret as string, userId: user.json().id as string };
}

async function checkPopulated(t: Test, instance: Awaited<ReturnType<typeof startInstance>>, data: Awaited<ReturnType<typeof populate>>) {
  const client = await instance.app.inject({ method: 'GET', url: `/admin/clients/${data.clientId}`, headers: { authorization: auth } });
  t.equal(client.statusCode, 200, 'the client is still there');
  t.equal(client.json().client_name, 'Survivor');
  t.ok(verifyClientSecret(data.secret, (await instance.storage.clients.findById(data.clientId))!.clientSecretHash!), 'and its secret still works');
  const user = await instance.app.inject({ method: 'GET', url: `/admin/users/${data.userId}`, headers: { authorization: auth } });
  t.equal(user.statusCode, 200, 'the user is still there');
  t.ok(await checkPassword(instance.services, 'survivor', 'still here after restart'), 'with their password');
}

t.test(`restart on the same database (${backendName})`, async (t) => {
  const db = await openTestDb();
  t.teardown(() => db.close());
  const kv = await testKv(t);
  const first = await buildTestApp(t, { db, kv, env: ADMIN });
  await first.services.users.ensureAdmin(first.config);
  const data = await populate(t, first.app);
  await first.app.close();

  const second = await buildTestApp(t, { db, kv, env: ADMIN });
  const admin = await second.services.users.ensureAdmin(second.config);
  t.equal(admin?.generatedPassword, null, 'the admin is not created again');
  await checkPopulated(t, { ...second, admin }, data);
});

t.test(`a weak ADMIN_PASSWORD is refused at start, naming the variable (${backendName})`, async (t) => {
  const db = await openTestDb();
  t.teardown(() => db.close());
  const kv = await testKv(t);
  const expectRefused = async (t: Test, bootstrap: Promise<unknown>, password: string) => {
    const err = await bootstrap.then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof ConfigError, 'a configuration error');
    t.equal((err as ConfigError).variable, 'ADMIN_PASSWORD');
    t.match((err as ConfigError).message, /^ADMIN_PASSWORD: refused for ADMIN_USERNAME "boot-admin"\. This password is too easy to guess/);
    t.ok((err as ConfigError).message.endsWith(PASSWORD_RULE), 'with the rule');
    t.notOk((err as ConfigError).message.includes(password), 'never the password');
  };

  const fresh = await buildTestApp(t, { db, kv, env: { ADMIN_USERNAME: 'boot-admin', ADMIN_PASSWORD: 'boot-admin1' } });
  await expectRefused(t, fresh.services.bootstrap(), 'boot-admin1');
  t.equal(await fresh.services.users.findByUsername('boot-admin'), null, 'no admin was created with it');

  // An admin who already has that password (set before the rule existed) is refused too.
  const strong = await buildTestApp(t, { db, kv, env: ADMIN });
  const admin = (await strong.services.bootstrap())!.user;
  await strong.storage.users.update(admin.id, { passwordHash: await hashPassword('12345678') });
  const weak = await buildTestApp(t, { db, kv, env: { ADMIN_USERNAME: 'boot-admin', ADMIN_PASSWORD: '12345678' } });
  await expectRefused(t, weak.services.bootstrap(), '12345678');
});

t.test('the server does not start with a weak ADMIN_PASSWORD: exit 2, the variable and the rule on stderr, nothing else', async (t) => {
  const dir = await tempDir(t, 'oauth-weak-admin-');
  await seedDataDir(dir);
  // LOG_LEVEL=warn: a background task still running when the database closes would say so.
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dir, PORT: '0', LOG_LEVEL: 'warn', ADMIN_USERNAME: 'boot-admin', ADMIN_PASSWORD: 'qwertyuiop' };
  const child = spawn(process.execPath, entryPoint('main'), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 2, stderr);
  t.match(stderr, /^Configuration error: ADMIN_PASSWORD: refused for ADMIN_USERNAME "boot-admin"\. This password is too easy to guess: it is a common password/m);
  t.ok(stderr.includes(PASSWORD_RULE), 'with the rule');
  t.notOk(stderr.includes('qwertyuiop') || stdout.includes('qwertyuiop'), 'never the password');
  t.notMatch(stdout, /listening at/, 'it never listened');
  t.equal(stdout, '', 'no warning or error logged: the services stopped before the database closed');
  t.equal(stderr.split('\n').filter(Boolean).length, 1, 'the configuration error alone');
});

t.test('restart on the embedded database in a DATA_DIR on disk', async (t) => {
  const dir = await tempDir(t, 'oauth-restart-');
  await seedDataDir(dir);
  const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', ...ADMIN });

  const first = await startInstance(config);
  const data = await populate(t, first.app);
  await first.app.close(); // closes the database and gives back the DATA_DIR lock

  const second = await startInstance(config);
  t.teardown(() => second.app.close());
  await checkPopulated(t, second, data);
});

for (const kind of dbKinds) {
  t.test(`two instances starting at once on one fresh ${kind} database`, async (t) => {
    const db = await openTestDb({ kind, migrated: false });
    t.teardown(() => db.close());

    // Each instance gets its own connection pool (PostgreSQL) or, on PGlite,
    // which one process alone may open, the same database object.
    const start = (env: Record<string, string>) => {
      const config = loadConfig({ LOG_LEVEL: 'silent', ...env, ...(kind === 'postgres' ? { DATABASE_URL: db.url! } : {}) });
      return startInstance(config, kind === 'postgres' ? {} : { db: { ...db, close: async () => {} } as DbWithScripts });
    };

    t.test('without ADMIN_*: exactly one admin is generated', async (t) => {
      const [a, b] = await Promise.all([start({}), start({})]);
      t.teardown(async () => {
        await a.app.close();
        await b.app.close();
      });
      const generated = [a.admin, b.admin].filter((x) => x?.generatedPassword);
      t.equal(generated.length, 1, 'one instance created it and printed its password');
      const admins = (await a.services.users.list({ limit: 100, offset: 0 })).users.filter((u) => u.roles.includes('admin'));
      t.equal(admins.length, 1);
      const migrations = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      t.ok(migrations[0]!.n >= 1);
      const password = generated[0]!.generatedPassword!;
      for (const instance of [a, b]) {
        const res = await instance.app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(admins[0]!.username, password) } });
        t.equal(res.statusCode, 200, 'both instances serve the admin API');
      }
    });

    t.test('with ADMIN_USERNAME/ADMIN_PASSWORD: one user, both instances agree', async (t) => {
      const [a, b] = await Promise.all([start(ADMIN), start(ADMIN)]);
      t.teardown(async () => {
        await a.app.close();
        await b.app.close();
      });
      t.equal(a.admin?.user.id, b.admin?.user.id);
      t.equal((await a.services.users.findByUsername(ADMIN.ADMIN_USERNAME))?.roles.includes('admin'), true);
      const res = await b.app.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: auth } });
      t.equal(res.statusCode, 200);
    });
  });
}
