import type { Db, Executor, RevocationRepo, RevokedJti, RevokedSubject } from '../types.js';

interface SubjectRow {
  sub: string;
  not_before: Date;
  expires_at: Date;
}

const toSubject = (r: SubjectRow): RevokedSubject => ({ sub: r.sub, notBefore: r.not_before, expiresAt: r.expires_at });

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
      const subjects = await db.query('DELETE FROM revoked_subjects WHERE expires_at < $1 RETURNING 1', [now]);
      return rows.length + subjects.length;
    },
    async revokeSubject(entry, tx: Executor = db) {
      await tx.query(
        `INSERT INTO revoked_subjects (sub, not_before, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (sub) DO UPDATE
           SET not_before = GREATEST(revoked_subjects.not_before, EXCLUDED.not_before),
               expires_at = GREATEST(revoked_subjects.expires_at, EXCLUDED.expires_at)`,
        [entry.sub, entry.notBefore, entry.expiresAt],
      );
    },
    async findSubject(sub, now) {
      const rows = await db.query<SubjectRow>('SELECT sub, not_before, expires_at FROM revoked_subjects WHERE sub = $1 AND expires_at > $2', [sub, now]);
      return rows[0] ? toSubject(rows[0]) : null;
    },
    async standing(jti, subs, now) {
      const rows = await db.query<{ revoked: boolean; not_before: Date | null }>(
        `SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) AS revoked,
                (SELECT max(not_before) FROM revoked_subjects WHERE sub = ANY($2::text[]) AND expires_at > $3) AS not_before`,
        [jti, subs, now],
      );
      return { revoked: rows[0]!.revoked, notBefore: rows[0]!.not_before };
    },
    async listSubjectsSince(since, now) {
      const rows = await db.query<SubjectRow>(
        `SELECT sub, not_before, expires_at FROM revoked_subjects
         WHERE expires_at > $1 AND ($2::timestamptz IS NULL OR not_before >= $2)
         ORDER BY not_before`,
        [now, since],
      );
      return rows.map(toSubject);
    },
  };
}
