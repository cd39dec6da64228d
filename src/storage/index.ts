/**
 * `createStorage(config)`: opens the database (PostgreSQL or PGlite), applies
 * migrations, opens the TTL store (Redis, Redis Cluster or in-process) and
 * returns every repository over them.
 */
import type { Config } from '../config.js';
import { UnavailableError } from '../errors.js';
import { openPglite, type DbWithScripts } from './db.js';
import { createMemoryKv } from './kv/memory.js';
import { migrate, readMigrations } from './migrate.js';
import { findPgliteTemplate } from './pglite-template.js';
import { createAuditEventRepo } from './sql/audit-events.js';
import { createClientRepo } from './sql/clients.js';
import { createConsentRepo } from './sql/consents.js';
import { createIdentityProviderRepo, createLinkedIdentityRepo } from './sql/identity-providers.js';
import { createInitialAccessTokenRepo } from './sql/initial-access-tokens.js';
import { createPasskeyRepo } from './sql/passkeys.js';
import { createRefreshTokenRepo } from './sql/refresh-tokens.js';
import { createRevocationRepo } from './sql/revocations.js';
import { createSigningKeyRepo } from './sql/signing-keys.js';
import { createTotpRepo } from './sql/totp.js';
import { createUserRepo } from './sql/users.js';
import type { KvStore, Storage } from './types.js';

export type { Storage } from './types.js';
export { DataDirLockedError } from './lock.js';

export interface StorageOverrides {
  /** Use this database instead of opening one from config (tests). */
  db?: DbWithScripts;
  /** Use this TTL store instead of opening one from config (tests). */
  kv?: KvStore;
  /** Redis key prefix (tests give each run its own). Default `REDIS_KEY_PREFIX` (`oauth:`). */
  redisPrefix?: string;
  onRedisError?: (err: Error) => void;
  /** Skip migrations (the database is known to be migrated). */
  skipMigrations?: boolean;
}

export async function openDatabase(config: Config): Promise<DbWithScripts> {
  if (config.databaseUrl) {
    // Loaded only here: the embedded default never needs pg (nor ioredis, below).
    const { pgDb } = await import('./postgres.js');
    return pgDb({
      connectionString: config.databaseUrl,
      max: config.pgPoolMax,
      connectionTimeoutMs: config.pgConnectTimeoutMs,
      statementTimeoutMs: config.pgStatementTimeoutMs,
      preparedStatements: config.pgPreparedStatements,
    });
  }
  return openPglite(config.dataDir, { template: await findPgliteTemplate(await readMigrations()) });
}

export async function openKv(config: Config, overrides: StorageOverrides = {}): Promise<KvStore> {
  if (config.redisClusterNodes || config.redisUrl) {
    const { createRedisKv } = await import('./kv/redis.js');
    return createRedisKv({
      url: config.redisUrl,
      clusterNodes: config.redisClusterNodes,
      prefix: overrides.redisPrefix ?? config.redisKeyPrefix,
      onError: overrides.onRedisError,
      commandTimeoutMs: config.redisCommandTimeoutMs,
    });
  }
  return createMemoryKv();
}

/** Where `DATABASE_URL` points, for people: host, port, database and user; never the password. */
export function describePostgresUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(url.username);
  return `${url.hostname || 'localhost'}:${url.port || '5432'}${database ? `, database "${database}"` : ''}${user ? `, user "${user}"` : ''}`;
}

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** The driver's reason, also from a connection attempt to several addresses (an `AggregateError` with an empty message). */
function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') return [...new Set(err.errors.map(reasonOf))].join('; ');
  if (err instanceof Error && err.message !== '') return err.message;
  const code = codeOf(err);
  return typeof code === 'string' ? code : String(err);
}

/**
 * The first use of PostgreSQL failed (`createStorage` migrates first): say
 * where it was looked for and why it failed, instead of the 503 text a
 * request would get ("The database is unavailable").
 */
function cannotUsePostgres(databaseUrl: string, err: unknown): Error {
  const cause = err instanceof UnavailableError ? err.cause : err;
  let reason = reasonOf(cause);
  // SQLSTATE 3D000 invalid_catalog_name: the server is there, the database is not.
  if (codeOf(cause) === '3D000') reason += '; create it first (README: "On real PostgreSQL and Redis")';
  return new Error(`cannot use PostgreSQL at ${describePostgresUrl(databaseUrl)}: ${reason}`, { cause: err });
}

export async function createStorage(config: Config, overrides: StorageOverrides = {}): Promise<Storage> {
  const db = overrides.db ?? (await openDatabase(config));
  let kv: KvStore | undefined;
  try {
    if (!overrides.skipMigrations) {
      await migrate(db).catch((err: unknown) => {
        throw db.kind === 'postgres' && config.databaseUrl ? cannotUsePostgres(config.databaseUrl, err) : err;
      });
    }
    kv = overrides.kv ?? (await openKv(config, overrides));
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  const store = kv;
  return {
    db,
    kv: store,
    users: createUserRepo(db),
    clients: createClientRepo(db),
    consents: createConsentRepo(db),
    identityProviders: createIdentityProviderRepo(db),
    linkedIdentities: createLinkedIdentityRepo(db),
    refreshTokens: createRefreshTokenRepo(db),
    signingKeys: createSigningKeyRepo(db),
    revocations: createRevocationRepo(db),
    auditEvents: createAuditEventRepo(db),
    initialAccessTokens: createInitialAccessTokenRepo(db),
    passkeys: createPasskeyRepo(db),
    totp: createTotpRepo(db),
    describe() {
      const database =
        db.kind === 'postgres' && config.databaseUrl
          ? `PostgreSQL at ${describePostgresUrl(config.databaseUrl)} (DATABASE_URL)`
          : `embedded PostgreSQL (PGlite in ${config.dataDir})`;
      const codes =
        store.kind === 'memory' ? 'in-process TTL store' : store.kind === 'redis-cluster' ? 'Redis Cluster (REDIS_CLUSTER_NODES)' : 'Redis (REDIS_URL)';
      return `storage: ${database}; codes and sessions: ${codes}`;
    },
    async close() {
      await Promise.allSettled([store.close(), db.close()]);
    },
  };
}
