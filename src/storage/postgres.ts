/**
 * The database on real PostgreSQL: a `pg` Pool behind the same executor as
 * PGlite's (`db.ts`). A module of its own so the embedded default never
 * loads `pg`.
 */
import pg from 'pg';
import { isConnectionError, translate, type DbWithScripts, type ScriptExecutor } from './db.js';

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

