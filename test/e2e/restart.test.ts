/**
 * Stop the server, start it again: users and clients are still there (on the
 * test backend, and on the embedded database in a real DATA_DIR on disk).
 * Two instances starting at once on one fresh database: migrations and the
 * admin bootstrap each happen exactly once, and both instances work.
 */
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { verifyClientSecret } from '../../src/clients/secret.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices } from '../../src/services.js';
import type { DbWithScripts } from '../../src/storage/db.js';
import { createStorage, type StorageOverrides } from '../../src/storage/index.js';
import { buildTestApp, checkPassword } from '../helpers/app.js';
import { backendName, dbKinds, openTestDb, seedDataDir, testKv } from '../helpers/backend.js';
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
