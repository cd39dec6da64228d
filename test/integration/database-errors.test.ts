/**
 * Storage failures are recognised by class and code (storage/db.ts): a
 * closed embedded database is "unavailable" (503), a statement the
 * database refuses is not.
 */
import t from 'tap';
import { UnavailableError } from '../../src/errors.js';
import { openTestDb } from '../helpers/backend.js';

t.test('a closed PGlite answers UnavailableError; a bad statement stays a plain error', async (t) => {
  const db = await openTestDb({ kind: 'pglite' });
  const syntax = await db.query('SELEC 1').catch((err: unknown) => err);
  t.notOk(syntax instanceof UnavailableError, 'a syntax error is not an outage');
  t.equal((syntax as { code?: string }).code, '42601', 'the SQLSTATE is kept');
  await db.close();
  await t.rejects(db.query('SELECT 1'), UnavailableError, 'query after close');
  await t.rejects(db.ping(), UnavailableError, 'ping after close');
  await t.rejects(db.transaction(async (tx) => tx.query('SELECT 1')), UnavailableError, 'transaction after close');
});
