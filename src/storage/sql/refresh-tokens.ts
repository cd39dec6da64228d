import type { Db, Executor, NewRefreshToken, RefreshTokenRecord, RefreshTokenRepo, RefreshTokenWithUser } from '../types.js';
import { toUser, type UserRow } from './users.js';

interface RefreshTokenRow {
  token_hash: string;
  family_id: string;
  client_id: string;
  user_id: string;
  scope: string;
  resources: string[] | null;
  auth_time: Date | null;
  access_token_jti: string | null;
  access_token_expires_at: Date | null;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
  dpop_jkt: string | null;
  amr: string[] | null;
  acr: string | null;
  sid: string | null;
}

const COLUMNS =
  'token_hash, family_id, client_id, user_id, scope, resources, auth_time, access_token_jti, access_token_expires_at, created_at, expires_at, used_at, revoked_at, dpop_jkt, amr, acr, sid';

/** Tokens with their users' columns under a prefix, so they cannot collide with the token's (built once: introspection runs it per request). */
const WITH_USER = `SELECT ${COLUMNS.split(', ').map((c) => `t.${c}`).join(', ')},
         u.id AS u_id, u.username AS u_username, u.email AS u_email, u.email_verified AS u_email_verified, u.password_hash AS u_password_hash,
         u.roles AS u_roles, u.disabled AS u_disabled, u.credentials_changed_at AS u_credentials_changed_at,
         u.created_at AS u_created_at, u.updated_at AS u_updated_at
  FROM refresh_tokens t LEFT JOIN users u ON u.id = t.user_id`;
const FIND_WITH_USER = `${WITH_USER} WHERE t.token_hash = $1`;
const FIND_MANY_WITH_USER = `${WITH_USER} WHERE t.token_hash = ANY($1::text[])`;

type RowWithUser = RefreshTokenRow & { [K in keyof UserRow as `u_${K}`]: UserRow[K] | null };

function withUser(row: RowWithUser): RefreshTokenWithUser {
  const user =
    row.u_id === null
      ? null
      : toUser({
          id: row.u_id,
          username: row.u_username!,
          email: row.u_email,
          email_verified: row.u_email_verified!,
          password_hash: row.u_password_hash!,
          roles: row.u_roles!,
          disabled: row.u_disabled!,
          credentials_changed_at: row.u_credentials_changed_at,
          created_at: row.u_created_at!,
          updated_at: row.u_updated_at!,
        });
  return { record: toRecord(row), user };
}

function toRecord(row: RefreshTokenRow): RefreshTokenRecord {
  return {
    tokenHash: row.token_hash,
    familyId: row.family_id,
    clientId: row.client_id,
    userId: row.user_id,
    scope: row.scope,
    resources: row.resources,
    authTime: row.auth_time,
    accessTokenJti: row.access_token_jti,
    accessTokenExpiresAt: row.access_token_expires_at,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
    revokedAt: row.revoked_at,
    dpopJkt: row.dpop_jkt,
    amr: row.amr,
    acr: row.acr,
    sid: row.sid,
  };
}

type JtiRow = { access_token_jti: string; access_token_expires_at: Date };

/**
 * One statement that revokes every family `families` (a query of family ids;
 * `$2` is the time) selects and deny-lists the access tokens recorded on
 * them that have not expired, returning those: atomic without a
 * transaction's BEGIN and COMMIT round trips.
 */
const revokeFamiliesAndAccessTokens = (families: string) => `WITH revoked AS (
   UPDATE refresh_tokens SET revoked_at = $2
   WHERE family_id IN (${families}) AND revoked_at IS NULL
   RETURNING access_token_jti, access_token_expires_at
 ), live AS (
   SELECT access_token_jti, access_token_expires_at FROM revoked
   WHERE access_token_jti IS NOT NULL AND access_token_expires_at > $2
 ), denied AS (
   INSERT INTO revoked_access_tokens (jti, expires_at)
   SELECT access_token_jti, access_token_expires_at FROM live
   ON CONFLICT (jti) DO NOTHING
 )
 SELECT access_token_jti, access_token_expires_at FROM live`;
const REVOKE_FAMILY = revokeFamiliesAndAccessTokens('SELECT $1::text');
// A token counts only at the client it was issued to (RFC 7009 §2.1).
const REVOKE_PRESENTED = revokeFamiliesAndAccessTokens(`SELECT r.family_id FROM refresh_tokens r
   JOIN unnest($1::text[], $3::text[]) AS p (token_hash, client_id)
     ON r.token_hash = p.token_hash AND r.client_id = p.client_id`);
const toJtis = (rows: JtiRow[]) => rows.map((r) => ({ jti: r.access_token_jti, expiresAt: r.access_token_expires_at }));

export function createRefreshTokenRepo(db: Db): RefreshTokenRepo {
  return {
    async insert(t: NewRefreshToken, tx: Executor = db) {
      await tx.query(
        `INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, resources, auth_time, access_token_jti, access_token_expires_at, expires_at, dpop_jkt, amr, acr, sid)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
        [t.tokenHash, t.familyId, t.clientId, t.userId, t.scope, t.resources, t.authTime, t.accessTokenJti, t.accessTokenExpiresAt, t.expiresAt, t.dpopJkt ?? null, t.amr ?? null, t.acr ?? null, t.sid ?? null],
      );
    },
    async findByHash(tokenHash, tx: Executor = db) {
      const rows = await tx.query<RefreshTokenRow>(`SELECT ${COLUMNS} FROM refresh_tokens WHERE token_hash = $1`, [tokenHash]);
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async findByHashWithUser(tokenHash) {
      const rows = await db.query<RowWithUser>(FIND_WITH_USER, [tokenHash]);
      return rows[0] ? withUser(rows[0]) : null;
    },
    async findManyByHashWithUser(tokenHashes) {
      if (tokenHashes.length === 0) return new Map();
      const rows = await db.query<RowWithUser>(FIND_MANY_WITH_USER, [tokenHashes]);
      return new Map(rows.map((row) => [row.token_hash, withUser(row)]));
    },
    async rotate(tokenHash, now, t) {
      // One statement instead of BEGIN, UPDATE, INSERT, COMMIT: a refresh
      // costs three round trips to PostgreSQL fewer, which was most of its
      // time (bench/README.md, "Hot-path changes"). The INSERT takes its row
      // from the UPDATE, so it happens only when the UPDATE won; a concurrent
      // rotation waits on the row lock and then finds used_at set.
      const rows = await db.query(
        `WITH used AS (
           UPDATE refresh_tokens SET used_at = $2
           WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
           RETURNING 1
         )
         INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, resources, auth_time, access_token_jti, access_token_expires_at, expires_at, dpop_jkt, amr, acr, sid)
         SELECT $3, $4, $5, $6, $7, $8::text[], $9::timestamptz, $10, $11::timestamptz, $12::timestamptz, $13::text, $14::text[], $15::text, $16::text FROM used
         RETURNING 1`,
        [
          tokenHash,
          now,
          t.tokenHash,
          t.familyId,
          t.clientId,
          t.userId,
          t.scope,
          t.resources,
          t.authTime,
          t.accessTokenJti,
          t.accessTokenExpiresAt,
          t.expiresAt,
          t.dpopJkt ?? null,
          t.amr ?? null,
          t.acr ?? null,
          t.sid ?? null,
        ],
      );
      return rows.length === 1;
    },
    async revokeFamily(familyId, now, tx: Executor = db) {
      const rows = await tx.query<JtiRow>(
        `UPDATE refresh_tokens SET revoked_at = $2
         WHERE family_id = $1 AND revoked_at IS NULL
         RETURNING access_token_jti, access_token_expires_at`,
        [familyId, now],
      );
      return toJtis(rows.filter((r) => r.access_token_jti !== null && r.access_token_expires_at !== null && r.access_token_expires_at > now));
    },
    async revokeFamilyAndAccessTokens(familyId, now) {
      return toJtis(await db.query<JtiRow>(REVOKE_FAMILY, [familyId, now]));
    },
    async revokePresented(presented, now) {
      if (presented.length === 0) return [];
      const rows = await db.query<JtiRow>(REVOKE_PRESENTED, [presented.map((p) => p.tokenHash), now, presented.map((p) => p.clientId)]);
      return toJtis(rows);
    },
    async revokeForUser(userId, clientId, now, tx: Executor = db) {
      const rows = await tx.query<JtiRow>(
        `UPDATE refresh_tokens SET revoked_at = $3
         WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE user_id = $1 AND ($2::text IS NULL OR client_id = $2))
           AND revoked_at IS NULL
         RETURNING access_token_jti, access_token_expires_at`,
        [userId, clientId, now],
      );
      return toJtis(rows.filter((r) => r.access_token_jti !== null && r.access_token_expires_at !== null && r.access_token_expires_at > now));
    },
    async findLatestInFamily(familyId, tx: Executor = db) {
      const rows = await tx.query<RefreshTokenRow>(
        `SELECT ${COLUMNS} FROM refresh_tokens WHERE family_id = $1 ORDER BY created_at DESC, token_hash LIMIT 1`,
        [familyId],
      );
      return rows[0] ? toRecord(rows[0]) : null;
    },
    async deleteExpired(now) {
      const rows = await db.query('DELETE FROM refresh_tokens WHERE expires_at < $1 RETURNING 1', [now]);
      return rows.length;
    },
  };
}
