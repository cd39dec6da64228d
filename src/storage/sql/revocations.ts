import type { Db, Executor, RevocationRepo, RevokedJti } from '../types.js';

interface RevokedRow {
  jti: string;
  expires_at: Date;
  revoked_at: Date;
}

export function createRevocationRepo(db: Db): RevocationRepo {
  return {
    async revoke(entries, tx: Executor = db) {
      if (entries.length === 0) return;
      await tx.query(
        `INSERT INTO revoked_access_tokens (jti, expires_at)
         SELECT * FROM unnest($1::text[], $2::timestamptz[])
         ON CONFLICT (jti) DO NOTHING`,
        [entries.map((e) => e.jti), entries.map((e) => e.expiresAt.toISOString())],
      );
    },
    async isRevoked(jti) {
      const rows = await db.query('SELECT 1 FROM revoked_access_tokens WHERE jti = $1', [jti]);
      return rows.length > 0;
    },
    async listSince(since, now) {
      const rows = await db.query<RevokedRow>(
        `SELECT jti, expires_at, revoked_at FROM revoked_access_tokens
         WHERE expires_at > $1 AND ($2::timestamptz IS NULL OR revoked_at >= $2)
         ORDER BY revoked_at`,
        [now, since],
      );
      return rows.map((r): RevokedJti => ({ jti: r.jti, expiresAt: r.expires_at, revokedAt: r.revoked_at }));
    },
    async deleteExpired(now) {
      const rows = await db.query('DELETE FROM revoked_access_tokens WHERE expires_at < $1 RETURNING 1', [now]);
      return rows.length;
    },
  };
}
