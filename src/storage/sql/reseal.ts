/**
 * `keys reencrypt` for a table of sealed secrets (authenticator-app secrets,
 * identity providers' client secrets): every row's JSON value opened and
 * sealed anew inside the caller's transaction (the one that re-encrypts the
 * signing keys too), the rows locked, and every new value made before the
 * first write, so a secret that cannot be opened throws before anything of
 * this table changed and the caller's rollback undoes the rest.
 */
import type { Executor } from '../types.js';

/** A stored sealed value, given its row's key, sealed again. */
export type Reseal = (key: string, sealed: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** `table`, `key` and `column` are the repositories' own names, never input. Returns how many rows. */
export async function resealColumn(tx: Executor, where: { table: string; key: string; column: string }, reseal: Reseal): Promise<number> {
  const { table, key, column } = where;
  const rows = await tx.query<{ key: string; sealed: Record<string, unknown> }>(`SELECT ${key} AS key, ${column} AS sealed FROM ${table} ORDER BY ${key} FOR UPDATE`);
  const next = [];
  for (const row of rows) next.push({ key: row.key, sealed: await reseal(row.key, row.sealed) });
  for (const row of next) await tx.query(`UPDATE ${table} SET ${column} = $2 WHERE ${key} = $1`, [row.key, JSON.stringify(row.sealed)]);
  return next.length;
}
