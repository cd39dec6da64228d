/**
 * `openDb`: a `pg` Pool when `DATABASE_URL` is set, else PGlite (PostgreSQL
 * compiled to WebAssembly) with its files in `DATA_DIR`. Both speak the same
 * SQL, so there is one implementation of every repository.
 *
 * Connection failures become `UnavailableError` (503); SQL errors keep their
 * SQLSTATE `code` so repositories can translate the ones they understand.
 */
import { mkdir } from 'node:fs/promises';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import pg from 'pg';
import { OAuthError, UnavailableError } from '../errors.js';
import { acquireDataDirLock } from './lock.js';
import type { Db, Executor } from './types.js';

/** An executor that can also run a multi-statement script (migrations only). */
export interface ScriptExecutor extends Executor {
  exec(script: string): Promise<void>;
}

export interface DbWithScripts extends Db {
  transaction<T>(fn: (tx: ScriptExecutor) => Promise<T>): Promise<T>;
}

export interface PgOptions {
  connectionString: string;
  max: number;
  /** Fail a checkout after this long instead of queueing forever. */
  connectionTimeoutMs?: number;
  /** Server-side statement timeout. */
  statementTimeoutMs?: number;
  /** Name statements so each connection prepares them once (default true). */
  preparedStatements?: boolean;
}

/**
 * Every statement this server sends is a fixed text with parameters, so each
 * can get a name and pg prepares it once per connection (Parse), then only
 * binds and executes it: PostgreSQL does not parse and plan it again. That
 * raised refresh-token rotation by about a third (bench/README.md, "Hot-path
 * changes"). The cap guards against a future caller building SQL text from
 * data: past it, statements run unnamed. Off (`PG_PREPARED_STATEMENTS=off`)
 * for poolers that cannot carry prepared statements across transactions.
 */
const MAX_NAMED_STATEMENTS = 500;

function statementNamer(enabled: boolean): (text: string) => string | undefined {
  const names = new Map<string, string>();
  return (text) => {
    if (!enabled) return undefined;
    let name = names.get(text);
    if (name === undefined && names.size < MAX_NAMED_STATEMENTS) {
      name = `oauth_${names.size}`;
      names.set(text, name);
    }
    return name;
  };
}

/**
 * Node's codes for a socket that could not connect or was cut. pg hands the
 * socket's own error on (when several addresses were tried, an
 * `AggregateError` carrying the same code).
 */
const SOCKET_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN', 'ENETUNREACH']);

const SQLSTATE = /^[0-9A-Z]{5}$/;

function codeOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/**
 * True when an error says by its code that the database is not reachable
 * rather than that a statement is wrong: an `UnavailableError`, a socket
 * error code, or a SQLSTATE of class 08 (connection exception), 57P
 * (operator intervention: shutdown, crash, not accepting connections yet),
 * 53 (insufficient resources) or 57014 (the statement ran past
 * statement_timeout: an overloaded or locked-up database).
 *
 * Both drivers also fail some calls with neither code nor class of their
 * own (pg: a terminated connection, a timed-out checkout or query, an ended
 * pool; PGlite: a closed instance). Those are recognised where the driver is
 * called, the only place that knows the error came from the driver:
 * `isPgConnectionFailure` and `pgliteDb`'s `isClosed`.
 */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof UnavailableError) return true;
  const code = codeOf(err);
  if (code === undefined) return false;
  if (SOCKET_ERROR_CODES.has(code)) return true;
  return SQLSTATE.test(code) && (code.startsWith('08') || code.startsWith('57P') || code.startsWith('53') || code === '57014');
}

/**
 * For an error a pg call (pool.query, pool.connect, client.query) rejected
 * with: did the pool or its connection fail? pg rejects with a
 * `DatabaseError` when the server answered with an error (its SQLSTATE
 * decides), a `TypeError` when handed a value it cannot serialise (a bug:
 * not an outage), and a plain `Error` for everything about the pool and its
 * connections. Some of those carry a socket code (refused, reset); the rest
 * have no code and no subclass: a connection terminated under a query (the
 * server crashed or was killed), a client left unusable by such a loss, a
 * connection attempt or a pool checkout that timed out, a query with no
 * answer within `query_timeout` (the server hangs), a pool already ended (we
 * are shutting down), a failed TLS or SASL handshake. For those the plain
 * class, seen at a pg call, is the narrowest sign there is. pg's remaining
 * plain-`Error` argument checks (a query without text, values that are not
 * an array, one statement name for two texts) cannot arise from `pgDb`'s
 * executor: it always sends text, an array and names unique per text.
 */
function isPgConnectionFailure(err: unknown): boolean {
  if (err instanceof pg.DatabaseError) return isConnectionError(err);
  return isConnectionError(err) || (err instanceof Error && Object.getPrototypeOf(err) === Error.prototype);
}

/** SQLSTATEs of a text value PostgreSQL cannot hold: a NUL character (text is NUL-free) or one with no UTF-8 form. */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

/**
 * Rethrows a driver's error as what callers understand. `lost` is the call
 * site's verdict for failures only it can recognise (`isPgConnectionFailure`,
 * PGlite's `isClosed`); everything else is judged by its code.
 */
function translate(err: unknown, lost = false): never {
  // Already translated (e.g. the TTL store failed inside a transaction): keep its label.
  if (err instanceof UnavailableError) throw err;
  if (lost || isConnectionError(err)) throw new UnavailableError('database', err);
  // A request value with a NUL (`client_id=%00`) can match no row and cannot be
  // stored: the caller's mistake, answered 400 by every route instead of a 500.
  const code = codeOf(err);
  if (code !== undefined && UNSTORABLE_TEXT.has(code)) {
    throw new OAuthError('invalid_request', 'A parameter contains a character that is not allowed (NUL).', { cause: err });
  }
  throw err;
}

export function pgDb(options: PgOptions): DbWithScripts {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 3_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    // Keep a dead server from holding a request forever.
    query_timeout: (options.statementTimeoutMs ?? 10_000) + 2_000,
    keepAlive: true,
  });
  // An idle client losing its connection emits here; without a listener the
  // process would crash. The next checkout reconnects.
  pool.on('error', () => {});
  const statementName = statementNamer(options.preparedStatements ?? true);

  const executor = (client: pg.Pool | pg.PoolClient): ScriptExecutor => ({
    async query<R>(text: string, params?: readonly unknown[]) {
      try {
        const name = statementName(text);
        const values = params as unknown[] | undefined;
        const result = await (name === undefined ? client.query(text, values) : client.query({ name, text, values }));
        return result.rows as R[];
      } catch (err) {
        return translate(err, isPgConnectionFailure(err));
      }
    },
    async exec(script: string) {
      try {
        await client.query(script);
      } catch (err) {
        translate(err, isPgConnectionFailure(err));
      }
    },
  });
  const root = executor(pool);

  return {
    kind: 'postgres',
    query: root.query,
    async transaction(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        return translate(err, isPgConnectionFailure(err));
      }
      let broken = false;
      // pg-pool removes its own 'error' listener from a checked-out client:
      // a connection lost between two statements of this transaction (the
      // database restarting) would be an unhandled 'error' event and crash
      // the process. The loss still surfaces as the next statement's error.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      // BEGIN and COMMIT are pg calls too: their failures are judged here,
      // like the executor's, before they meet errors thrown by `fn`.
      const control = async (statement: 'BEGIN' | 'COMMIT') => {
        try {
          await client.query(statement);
        } catch (err) {
          translate(err, isPgConnectionFailure(err));
        }
      };
      try {
        await control('BEGIN');
        const result = await fn(executor(client));
        await control('COMMIT');
        return result;
      } catch (err) {
        if (broken || isConnectionError(err)) {
          // A lost or hung connection cannot roll back (the server aborts the
          // transaction of a dead session itself), and waiting for ROLLBACK
          // would double the time a request hangs on an unresponsive server.
          broken = true;
        } else {
          try {
            await client.query('ROLLBACK');
          } catch {
            broken = true;
          }
        }
        return translate(err);
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
    async ping() {
      await root.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}

export function pgliteDb(instance: PGlite): DbWithScripts {
  /**
   * PGlite refuses calls on a closed or closing instance with a plain
   * `Error` and no code, and a call that races `close()` can fail inside the
   * torn-down module with whatever that throws (a `TypeError`). Its `ready`
   * flag, false from the moment closing begins, tells these apart from a
   * bug; an error with a SQLSTATE is the server's answer and judged by it.
   */
  const isClosed = (err: unknown) => codeOf(err) === undefined && !instance.ready;
  const executor = (target: PGlite | Transaction): ScriptExecutor => ({
    async query<R>(text: string, params?: readonly unknown[]) {
      try {
        const result = await target.query<R>(text, params as unknown[] | undefined);
        return result.rows;
      } catch (err) {
        return translate(err, isClosed(err));
      }
    },
    async exec(script: string) {
      try {
        await target.exec(script);
      } catch (err) {
        translate(err, isClosed(err));
      }
    },
  });
  const root = executor(instance);
  return {
    kind: 'pglite',
    query: root.query,
    async transaction(fn) {
      try {
        return await instance.transaction((tx) => fn(executor(tx)));
      } catch (err) {
        return translate(err, isClosed(err));
      }
    },
    async ping() {
      await root.query('SELECT 1');
    },
    async close() {
      if (!instance.closed) await instance.close();
    },
  };
}

/**
 * Opens PGlite with its files in `dataDir` (created if missing, owner-only),
 * holding the data-dir lock until closed: a second process opening the same
 * directory gets `DataDirLockedError` instead of corrupting it (`lock.ts`).
 */
export async function openPglite(dataDir: string): Promise<DbWithScripts> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = await acquireDataDirLock(dataDir);
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = pgliteDb(await PGlite.create(dataDir));
    return {
      ...db,
      async close() {
        try {
          await db.close();
        } finally {
          await lock.release();
        }
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}
