/**
 * On PostgreSQL, `pgDb` names each statement so a connection prepares it
 * once and then only binds and executes it; `preparedStatements: false`
 * (PG_PREPARED_STATEMENTS=off, for transaction-mode poolers) sends every
 * statement unnamed. `pg_prepared_statements` lists what the session holds.
 * PGlite has no pool and no such setting; this runs where DATABASE_URL is set.
 */
import pg from 'pg';
import t from 'tap';
import { pgDb } from '../../src/storage/postgres.js';
import { DATABASE_URL } from '../helpers/backend.js';

if (!DATABASE_URL) {
  // Reported as skipped, not passed: without a server nothing here runs (the CI pass with DATABASE_URL set runs it).
  t.plan(0, 'needs real PostgreSQL: DATABASE_URL unset');
} else {
  const url = DATABASE_URL;
  const STATEMENT = 'SELECT $1::int + 1 AS n, (SELECT count(*)::int FROM pg_prepared_statements) AS prepared';

  for (const preparedStatements of [true, false]) {
    t.test(`preparedStatements: ${preparedStatements}`, async (t) => {
      // One connection, so both queries run in the same session.
      const db = pgDb({ connectionString: url, max: 1, preparedStatements });
      t.teardown(() => db.close());
      const first = await db.query<{ n: number; prepared: number }>(STATEMENT, [1]);
      const second = await db.query<{ n: number; prepared: number }>(STATEMENT, [41]);
      t.equal(first[0]!.n, 2);
      t.equal(second[0]!.n, 42, 'parameters are bound anew each time');
      t.equal(second[0]!.prepared, preparedStatements ? 1 : 0, preparedStatements ? 'the session holds the statement, prepared once' : 'nothing is prepared');
    });
  }

  t.test('a replacement connection prepares the statement again', async (t) => {
    const db = pgDb({ connectionString: url, max: 1 });
    t.teardown(() => db.close());
    const [{ pid }] = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')) as [{ pid: number }];
    // Kill the session: the pool's next connection has nothing prepared yet.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    // The first attempt may meet the dead socket (503 at the HTTP layer); a retry gets a fresh connection.
    await db.query('SELECT pg_backend_pid() AS pid').catch(() => {});
    const rows = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    t.not(rows[0]!.pid, pid, 'a new session');
  });
}
