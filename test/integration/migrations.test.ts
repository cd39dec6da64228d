/**
 * Migrations on an empty database, on every backend available: applied in
 * order once, a second run is a no-op, a changed file is refused, and two
 * concurrent runs (two pools on PostgreSQL, two calls on PGlite) apply each
 * file exactly once.
 */
import t from 'tap';
import type { DbWithScripts } from '../../src/storage/db.js';
import { pgDb } from '../../src/storage/postgres.js';
import { migrate, MigrationError, readMigrations } from '../../src/storage/migrate.js';
import { createRefreshTokenRepo } from '../../src/storage/sql/refresh-tokens.js';
import { dbKinds, testDb } from '../helpers/backend.js';

for (const kind of dbKinds) {
  t.test(`migrations on ${kind}`, async (t) => {
    const all = await readMigrations();
    t.ok(all.length >= 1);
    t.same(
      all.map((m) => m.name),
      [...all.map((m) => m.name)].sort(),
      'read in file-name order',
    );

    t.test('empty database: all applied once, then nothing to do', async (t) => {
      const db = await testDb(t, { kind, migrated: false });
      t.same(await migrate(db), all.map((m) => m.name));
      t.same(await migrate(db), [], 'second run is a no-op');
      const rows = await db.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations ORDER BY name');
      t.same(rows, all.map((m) => ({ name: m.name, checksum: m.checksum })));
      const tables = await db.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
      );
      for (const table of ['users', 'clients', 'consents', 'refresh_tokens', 'signing_keys', 'revoked_access_tokens', 'audit_events', 'initial_access_tokens']) {
        t.ok(tables.some((r) => r.table_name === table), `${table} exists`);
      }
    });

    t.test('a changed migration is refused', async (t) => {
      const db = await testDb(t, { kind, migrated: false });
      await migrate(db);
      const changed = all.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited`, checksum: `${m.checksum}x` } : m));
      await t.rejects(migrate(db, changed), MigrationError);
      await t.rejects(migrate(db, changed), /was changed after it was applied/);
    });

    t.test('a new migration is applied after the old ones', async (t) => {
      const db = await testDb(t, { kind, migrated: false });
      await migrate(db);
      const extra = { name: '9999_test_extra.sql', sql: 'CREATE TABLE test_extra (id int)', checksum: 'test-extra' };
      t.same(await migrate(db, [...all, extra]), ['9999_test_extra.sql']);
      t.same(await db.query('SELECT count(*)::int AS n FROM test_extra'), [{ n: 0 }]);
    });

    t.test('two concurrent runs apply each file exactly once', async (t) => {
      const db = await testDb(t, { kind, migrated: false });
      let other: DbWithScripts = db;
      if (kind === 'postgres') {
        // A second instance: its own pool on the same database.
        other = pgDb({ connectionString: db.url!, max: 2 });
        t.teardown(() => other.close());
      }
      const [a, b] = await Promise.all([migrate(db), migrate(other)]);
      t.same([...a, ...b].sort(), all.map((m) => m.name).sort(), 'every file applied by exactly one of them');
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      t.equal(rows[0]!.n, all.length);
    });

    t.test('0006 and 0015 keep the refresh tokens stored before them, covering no listed resource (read as the default), with no amr or acr', async (t) => {
      const db = await testDb(t, { kind, migrated: false });
      const before = all.filter((m) => m.name < '0006');
      await migrate(db, before);
      await db.query("INSERT INTO users (id, username, password_hash) VALUES ('u1', 'olduser', 'x')");
      await db.query(
        "INSERT INTO clients (client_id, client_secret_hash, client_name, grant_types, token_endpoint_auth_method) VALUES ('c1', 'sha256$x', 'Old', '{refresh_token}', 'client_secret_basic')",
      );
      await db.query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, expires_at) VALUES ('h1', 'f1', 'c1', 'u1', 'openid', now() + interval '1 day')",
      );
      t.same(await migrate(db), all.filter((m) => m.name >= '0006').map((m) => m.name));
      const record = await createRefreshTokenRepo(db).findByHash('h1');
      t.equal(record?.scope, 'openid', 'the row is still there');
      t.equal(record?.resources, null, 'with no resources: the token service reads that as the default resource');
      t.same([record?.amr, record?.acr], [null, null], 'and no amr or acr (0015): a refreshed ID token has none, as before');
    });
  });
}
