import type { Db, TotpRecord, TotpRepo } from '../types.js';
import { resealColumn } from './reseal.js';

interface TotpRow {
  user_id: string;
  secret: Record<string, unknown>;
  confirmed_at: Date | null;
  last_used_step: string | number | null;
}

function toRecord(row: TotpRow): TotpRecord {
  return {
    userId: row.user_id,
    secret: row.secret,
    confirmedAt: row.confirmed_at,
    // bigint comes back as a string from pg: steps are far below 2^53.
    lastUsedStep: row.last_used_step === null ? null : Number(row.last_used_step),
  };
}

export function createTotpRepo(db: Db): TotpRepo {
  return {
    async find(userId) {
      const rows = await db.query<TotpRow>('SELECT user_id, secret, confirmed_at, last_used_step FROM totp_credentials WHERE user_id = $1', [userId]);
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async saveUnconfirmed(userId, secret) {
      const rows = await db.query(
        `INSERT INTO totp_credentials (user_id, secret) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, last_used_step = NULL, created_at = now()
           WHERE totp_credentials.confirmed_at IS NULL
         RETURNING user_id`,
        [userId, JSON.stringify(secret)],
      );
      return rows.length > 0;
    },
    async acceptStep(userId, step, confirmed) {
      // The replay guard is this one conditional UPDATE (RFC 6238 §5.2: a code is accepted once).
      const rows = await db.query(
        `UPDATE totp_credentials
            SET last_used_step = $2, confirmed_at = COALESCE(confirmed_at, now())
          WHERE user_id = $1
            AND (confirmed_at IS NOT NULL) = $3
            AND (last_used_step IS NULL OR last_used_step < $2)
          RETURNING user_id`,
        [userId, step, confirmed],
      );
      return rows.length > 0;
    },
    async delete(userId) {
      return db.transaction(async (tx) => {
        await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId]);
        const rows = await tx.query('DELETE FROM totp_credentials WHERE user_id = $1 RETURNING user_id', [userId]);
        return rows.length > 0;
      });
    },
    async replaceRecoveryCodes(userId, codeHashes) {
      await db.transaction(async (tx) => {
        await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId]);
        await tx.query('INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, h FROM unnest($2::text[]) AS h', [userId, [...codeHashes]]);
      });
    },
    async useRecoveryCode(userId, codeHash) {
      const rows = await db.query(
        'UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id',
        [userId, codeHash],
      );
      return rows.length > 0;
    },
    resealAll(reseal, tx) {
      return resealColumn(tx, { table: 'totp_credentials', key: 'user_id', column: 'secret' }, reseal);
    },
    async countRecoveryCodes(userId) {
      const rows = await db.query<{ n: number | string }>('SELECT count(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL', [userId]);
      return Number(rows[0]?.n ?? 0);
    },
  };
}
