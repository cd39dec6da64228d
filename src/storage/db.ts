/**
 * The database: a `pg` Pool when `DATABASE_URL` is set (`postgres.ts`, loaded
 * only then), else PGlite (PostgreSQL compiled to WebAssembly) with its files
 * in `DATA_DIR`. Both speak the same SQL, so there is one implementation of
 * every repository.
 *
 * Connection failures become `UnavailableError` (503); SQL errors keep their
 * SQLSTATE `code` so repositories can translate the ones they understand.
 */
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { PGlite, Transaction } from '@electric-sql/pglite';
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

/** SQLSTATEs of a text value PostgreSQL cannot hold: a NUL character (text is NUL-free) or one with no UTF-8 form. */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

/**
 * Rethrows a driver's error as what callers understand. `lost` is the call
 * site's verdict for failures only it can recognise (`isPgConnectionFailure`,
 * PGlite's `isClosed`); everything else is judged by its code.
 */
export function translate(err: unknown, lost = false): never {
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
 * PostgreSQL's shared buffers inside PGlite's WebAssembly memory. The stock
 * 128MB is sized for a server shared by many connections; here one process
 * is the only client, its tables are small, and the OS page cache holds the
 * files anyway. Measured (bench/startup.ts): 16MB takes about 120 MB off
 * the resident memory of a started server.
 */
const PGLITE_SHARED_BUFFERS = '16MB';

/**
 * Has V8 compile WebAssembly with its baseline compiler only (Liftoff), each
 * function when first called: PGlite is PostgreSQL compiled to about 10 MB of
 * WebAssembly, and by default V8 compiles all of it when it loads, then again
 * with its optimising compiler (TurboFan) where it runs hot. Measured on the
 * embedded server (bench/README.md): 0.6 s off a restart, 1.4 s off a first
 * start, 50–60 MiB off its idle resident memory; a warm query alone is slower
 * by about a fifth, which the token and refresh benchmarks do not show. The
 * flags are process-wide and are set before PGlite's module is compiled; they
 * touch nothing but WebAssembly (besides PGlite, only the HTTP parser of
 * undici behind `fetch`).
 */
export function useBaselineWasmCompiler(): void {
  setFlagsFromString('--liftoff-only');
  setFlagsFromString('--wasm-lazy-compilation');
}

/** PGlite's start parameters (`defaults`: `PGlite.defaultStartParams`) with ours. */
export function pgliteStartParams(defaults: readonly string[]): string[] {
  return [...defaults, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`];
}

/**
 * Copies `template` into `dataDir` (which holds no database: the caller
 * checked, under the data-dir lock). PG_VERSION goes last, so a copy cut
 * short is not taken for a database: the next start copies again over it.
 */
async function copyTemplate(template: string, dataDir: string): Promise<void> {
  await cp(template, dataDir, { recursive: true, force: true, filter: (source) => source !== join(template, 'PG_VERSION') });
  await copyFile(join(template, 'PG_VERSION'), join(dataDir, 'PG_VERSION'));
}

/**
 * Opens PGlite with its files in `dataDir` (created if missing, owner-only),
 * holding the data-dir lock until closed: a second process opening the same
 * directory gets `DataDirLockedError` instead of corrupting it (`lock.ts`).
 * A directory holding no database yet gets a copy of `template` (a migrated
 * empty database, `pglite-template.ts`) when given, instead of `initdb`.
 */
export async function openPglite(dataDir: string, options: { template?: string | undefined } = {}): Promise<DbWithScripts> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = await acquireDataDirLock(dataDir);
  try {
    if (options.template && !existsSync(join(dataDir, 'PG_VERSION'))) await copyTemplate(options.template, dataDir);
    useBaselineWasmCompiler();
    const { PGlite } = await import('@electric-sql/pglite');
    const db = pgliteDb(await PGlite.create(dataDir, { startParams: pgliteStartParams(PGlite.defaultStartParams) }));
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
