/**
 * The migrated, empty embedded database, made once at build time so a
 * fresh `DATA_DIR` starts from a copy instead of running `initdb` and every
 * migration.
 *
 * PGlite's first start in an empty directory runs `initdb` (a second PGlite
 * and the initdb WebAssembly module besides the server's own: seconds of CPU
 * and, until the collector gets to them, some 500 MB of memory), then the
 * migrations run statement by statement in WebAssembly (about a second).
 * What that produces depends only on the PGlite release and the migration
 * files, so `npm run build` (scripts/build-if-stale.mjs) does it once into
 * `dist/pglite/<release>-<migrations hash>/` and shuts that database down
 * cleanly; a fresh `DATA_DIR` gets a file copy of it (`openPglite`) (a cold copy of a
 * cleanly shut down cluster, as PostgreSQL's own file-level backup is).
 * Without a template for exactly this release and these migrations (an
 * install that skipped the build, PGlite upgraded, a migration added since)
 * the server runs `initdb` and the migrations as before. Migrations run at
 * every start anyway, so a copied database is checked like any other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgliteDb, pgliteStartParams } from './db.js';
import { migrate, readMigrations, type Migration } from './migrate.js';

/** `dist/pglite/`, reached the same way from `src/storage/` (tests under tsx) and `dist/storage/`. */
const TEMPLATE_ROOT = fileURLToPath(new URL('../../dist/pglite/', import.meta.url));

/** The file that makes a directory a database (PGlite runs initdb without it). */
const PG_VERSION = 'PG_VERSION';

/** The installed PGlite release (its package.json, next to the entry point its exports map allows). */
async function pgliteVersion(): Promise<string> {
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const pkg = JSON.parse(await readFile(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || !/^[\w.+-]+$/.test(pkg.version)) throw new Error('cannot tell the installed PGlite version');
  return pkg.version;
}

async function templateDir(migrations: readonly Migration[]): Promise<string> {
  const hash = createHash('sha256')
    .update(migrations.map((m) => `${m.name}:${m.checksum}`).join('\n'))
    .digest('hex')
    .slice(0, 16);
  return join(TEMPLATE_ROOT, `${await pgliteVersion()}-${hash}`);
}

/** The template for the installed PGlite and these migrations, or undefined when none was built. */
export async function findPgliteTemplate(migrations: readonly Migration[]): Promise<string | undefined> {
  const dir = await templateDir(migrations);
  return existsSync(join(dir, PG_VERSION)) ? dir : undefined;
}

/** Makes the template for the installed PGlite and the current migrations unless it exists; drops older ones. */
export async function buildPgliteTemplate(): Promise<string> {
  const migrations = await readMigrations();
  const dir = await templateDir(migrations);
  if (!existsSync(join(dir, PG_VERSION))) {
    const partial = `${dir}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(partial, { recursive: true, mode: 0o700 });
    const { PGlite } = await import('@electric-sql/pglite');
    const instance = await PGlite.create(partial, { startParams: pgliteStartParams(PGlite.defaultStartParams) });
    try {
      await migrate(pgliteDb(instance), migrations);
    } finally {
      // A clean shutdown: everything is in the data files, nothing left to recover.
      await instance.close();
    }
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
  }
  for (const entry of await readdir(TEMPLATE_ROOT)) {
    if (join(TEMPLATE_ROOT, entry) !== dir) await rm(join(TEMPLATE_ROOT, entry), { recursive: true, force: true });
  }
  return dir;
}
