/**
 * Where our server keeps its data during a run: a fresh database created on
 * the given PostgreSQL (dropped afterwards, so runs never see each other's
 * rows) and the given Redis, or the embedded defaults (PGlite in a temporary
 * DATA_DIR, in-process TTL store).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface Backend {
  /** Environment for the server: DATABASE_URL / REDIS_URL, or DATA_DIR. */
  env: Record<string, string>;
  /** One line for the report. */
  describe: string;
  embedded: boolean;
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

export async function prepareBackend(options: { embedded: boolean; databaseUrl: string | undefined; redisUrl: string | undefined }): Promise<Backend> {
  if (options.embedded) {
    const dataDir = await mkdtemp(join(tmpdir(), 'oauth-bench-'));
    return {
      env: { DATA_DIR: dataDir },
      describe: 'embedded (PGlite in a temporary DATA_DIR, in-process TTL store)',
      embedded: true,
      cleanup: () => rm(dataDir, { recursive: true, force: true }),
    };
  }
  if (!options.databaseUrl || !options.redisUrl) {
    throw new Error('real services need DATABASE_URL and REDIS_URL (or --database-url / --redis-url); use --embedded for the embedded defaults');
  }
  const database = `oauth_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: options.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  return {
    env: { DATABASE_URL: withDatabase(options.databaseUrl, database), REDIS_URL: options.redisUrl },
    describe: `PostgreSQL ${redactUrl(withDatabase(options.databaseUrl, database))} (created for this run), Redis ${redactUrl(options.redisUrl)}`,
    embedded: false,
    async cleanup() {
      const client = new pg.Client({ connectionString: options.databaseUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
