/**
 * A fresh DATA_DIR starts from a copy of the migrated empty database made at
 * build time (`storage/pglite-template.ts`, `openPglite`'s `template`): the
 * copy is a working, fully migrated database; a copy cut short (no
 * PG_VERSION yet) is copied again rather than opened; a directory that
 * already holds a database is never overwritten. The build's template is
 * found for exactly the installed PGlite and the current migrations.
 */
import { existsSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { openPglite } from '../../src/storage/db.js';
import { migrate, readMigrations } from '../../src/storage/migrate.js';
import { buildPgliteTemplate, findPgliteTemplate } from '../../src/storage/pglite-template.js';
import { seedDataDir } from '../helpers/backend.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('a fresh DATA_DIR gets the template, migrated, and keeps its data on the next open', async (t) => {
  const template = await tempDir(t, 'oauth-template-');
  await seedDataDir(template);
  const dataDir = await tempDir(t, 'oauth-data-');

  const db = await openPglite(dataDir, { template });
  try {
    t.same(await migrate(db), [], 'every migration is already applied');
    const applied = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    t.same(
      applied.map((r) => r.name),
      (await readMigrations()).map((m) => m.name),
    );
    await db.query("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('kept', now() + interval '1 hour')");
  } finally {
    await db.close();
  }

  const again = await openPglite(dataDir, { template });
  try {
    t.same(await again.query('SELECT jti FROM revoked_access_tokens'), [{ jti: 'kept' }], 'an existing database is opened, not replaced');
  } finally {
    await again.close();
  }
  t.ok(existsSync(join(template, 'PG_VERSION')), 'the template itself is untouched');
});

t.test('a copy cut short (no PG_VERSION) is copied again, not opened', async (t) => {
  const template = await tempDir(t, 'oauth-template-');
  await seedDataDir(template);
  const dataDir = await tempDir(t, 'oauth-data-');
  // What a start killed while copying leaves: files, but no PG_VERSION.
  await cp(template, dataDir, { recursive: true });
  await rm(join(dataDir, 'PG_VERSION'));
  await rm(join(dataDir, 'global'), { recursive: true });

  const db = await openPglite(dataDir, { template });
  try {
    t.same(await migrate(db), []);
    t.same(await db.query('SELECT count(*)::int AS n FROM users'), [{ n: 0 }]);
  } finally {
    await db.close();
  }
});

t.test('the build makes the template for these migrations, and only those find it', async (t) => {
  const migrations = await readMigrations();
  const dir = await buildPgliteTemplate();
  t.equal(await findPgliteTemplate(migrations), dir);
  t.ok(existsSync(join(dir, 'PG_VERSION')));
  const changed = migrations.map((m, i) => (i === migrations.length - 1 ? { ...m, checksum: 'changed' } : m));
  t.equal(await findPgliteTemplate(changed), undefined, 'a changed migration has no template');
  t.equal(await findPgliteTemplate(migrations.slice(0, -1)), undefined, 'nor a different set');
});
