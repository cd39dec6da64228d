/**
 * Test backends. Real PostgreSQL and Redis when `DATABASE_URL` / `REDIS_URL`
 * are set (each call gets its own fresh database and its own Redis key
 * prefix, removed afterwards); otherwise embedded PGlite and the in-process
 * TTL store.
 *
 * A new PGlite costs seconds to initialise, so the first caller builds a
 * migrated template once per migration set and saves its dump in the OS temp
 * dir; every later PGlite is loaded from that dump (under half a second), which
 * each test process reads once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pgliteDb, pgliteStartParams, useBaselineWasmCompiler, type DbWithScripts } from '../../src/storage/db.js';
import { pgDb } from '../../src/storage/postgres.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { createRedisKv } from '../../src/storage/kv/redis.js';
import { migrate, readMigrations } from '../../src/storage/migrate.js';
import type { KvStore } from '../../src/storage/types.js';

export const DATABASE_URL = process.env.DATABASE_URL || undefined;
export const REDIS_URL = process.env.REDIS_URL || undefined;

/** "postgres" or "pglite", "redis" or "memory": for test names. */
export const backendName = `${DATABASE_URL ? 'postgres' : 'pglite'}+${REDIS_URL ? 'redis' : 'memory'}`;

interface Teardown {
  teardown(fn: () => unknown): void;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * A new PGlite (in memory, or in `dataDir`), compiled and started as the server compiles and
 * starts it (storage/db.ts): with its smaller shared_buffers a PGlite opens in about half the
 * CPU time it takes with PGlite's default 128MB.
 */
async function newPglite(dataDir?: string, loadDataDir?: Blob) {
  useBaselineWasmCompiler();
  const { PGlite } = await import('@electric-sql/pglite');
  return PGlite.create(dataDir, { ...(loadDataDir ? { loadDataDir } : {}), startParams: pgliteStartParams(PGlite.defaultStartParams) });
}

/**
 * A dump that PGlite reads as one ArrayBuffer (it only calls `arrayBuffer()` and copies every
 * file out of the result; `size` and `stream()` of this Blob are those of an empty one). A
 * plain Blob of the same 41 MB costs 0.6 s CPU per load on this machine: it copies its source
 * when built and reads itself back in chunks on each call, which was more than half of opening
 * a test database.
 */
class DumpBlob extends Blob {
  readonly #dump: ArrayBuffer;

  constructor(dump: ArrayBuffer) {
    super([]);
    this.#dump = dump;
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#dump);
  }
}

/** Per process, migrated (true) or empty (false): read once, migration files included. */
const templates = new Map<boolean, Promise<Blob>>();

/**
 * A dump of a fresh PGlite database, migrated (default; built once per
 * migration set) or empty, cached in the temp dir and, once read, in this process.
 */
export function pgliteTemplate(migrated = true): Promise<Blob> {
  let template = templates.get(migrated);
  if (!template) {
    template = readTemplate(migrated);
    templates.set(migrated, template);
    template.catch(() => templates.delete(migrated));
  }
  return template;
}

async function readTemplate(migrated: boolean): Promise<Blob> {
  const migrations = migrated ? await readMigrations() : [];
  const key = migrated
    ? createHash('sha256')
        .update(migrations.map((m) => `${m.name}:${m.checksum}`).join('\n'))
        .digest('hex')
        .slice(0, 16)
    : 'empty';
  const dir = join(tmpdir(), 'oauth-server-tests');
  const file = join(dir, `pglite-${key}.tar`);
  if (!(await exists(file))) {
    const instance = await newPglite();
    if (migrated) await migrate(pgliteDb(instance), migrations);
    const dump = await instance.dumpDataDir('none');
    await instance.close();
    await mkdir(dir, { recursive: true });
    // Write-then-rename so a parallel test file never reads half a dump.
    const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, file);
  }
  const bytes = await readFile(file);
  // A file this size gets a buffer of its own (no copy); a pooled one would be sliced out.
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return new DumpBlob((whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as ArrayBuffer);
}

/**
 * Fills `dataDir` with a migrated, empty embedded database (from the template,
 * much faster than a first `PGlite.create`), as a server would leave it.
 */
export async function seedDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const instance = await newPglite(dataDir, await pgliteTemplate());
  await instance.close();
}

export interface TestDbOptions {
  migrated?: boolean;
  /** Which backend; default: PostgreSQL when DATABASE_URL is set, else PGlite. */
  kind?: 'postgres' | 'pglite';
}

/** The database backends available here: PGlite always, PostgreSQL when DATABASE_URL is set. */
export const dbKinds: Array<'postgres' | 'pglite'> = DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

/** A migrated, empty database of its own, dropped (or discarded) when closed. */
export async function openTestDb(options: TestDbOptions = {}): Promise<DbWithScripts & { url?: string }> {
  const migrated = options.migrated ?? true;
  const kind = options.kind ?? (DATABASE_URL ? 'postgres' : 'pglite');
  if (kind === 'postgres') {
    if (!DATABASE_URL) throw new Error('openTestDb: kind "postgres" needs DATABASE_URL');
    const name = uniqueName('oauth_test');
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(DATABASE_URL);
    url.pathname = `/${name}`;
    const db = pgDb({ connectionString: url.toString(), max: 10 });
    if (migrated) await migrate(db);
    const close = db.close.bind(db);
    return Object.assign(db, {
      async close() {
        await close();
        const dropper = new pg.Client({ connectionString: DATABASE_URL });
        await dropper.connect();
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await dropper.end();
      },
      /** The connection string of this test's own database (for a second instance). */
      url: url.toString(),
    });
  }
  return pgliteDb(await newPglite(undefined, await pgliteTemplate(migrated)));
}

/** A TTL store of its own: a fresh key prefix on the real Redis, or a new in-process map. */
export async function openTestKv(options: { prefix?: string } = {}): Promise<KvStore & { prefix: string }> {
  const prefix = options.prefix ?? `${uniqueName('test')}:`;
  if (!REDIS_URL) return Object.assign(createMemoryKv(), { prefix });
  const kv = await createRedisKv({ url: REDIS_URL, prefix });
  const close = kv.close.bind(kv);
  return Object.assign(kv, {
    prefix,
    async close() {
      await close();
      await deleteRedisPrefix(prefix);
    },
  });
}

/** Removes every key under `prefix` from the test Redis. */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  if (!REDIS_URL) return;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Opens a test database and registers its closing with `t`. */
export async function testDb(t: Teardown, options: TestDbOptions = {}): Promise<DbWithScripts & { url?: string }> {
  const db = await openTestDb(options);
  t.teardown(() => db.close());
  return db;
}

/** Opens a test TTL store and registers its closing with `t`. */
export async function testKv(t: Teardown): Promise<KvStore & { prefix: string }> {
  const kv = await openTestKv();
  t.teardown(() => kv.close());
  return kv;
}
