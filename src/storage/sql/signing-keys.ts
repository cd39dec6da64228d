import type { Db, Executor, NewSigningKey, SigningKeyRecord, SigningKeyRepo } from '../types.js';

interface SigningKeyRow {
  kid: string;
  alg: string;
  private_jwk: Record<string, unknown>;
  public_jwk: Record<string, unknown>;
  created_at: Date;
  activates_at: Date;
  retired_at: Date | null;
  expires_at: Date | null;
}

const COLUMNS = 'kid, alg, private_jwk, public_jwk, created_at, activates_at, retired_at, expires_at';
/** The key that signs is chosen by activation, so that is the order (ties: newer row first). */
const ORDER = 'ORDER BY activates_at DESC, created_at DESC, kid';

/** Arbitrary constant shared by every instance: "signing keys". */
const LOCK_KEY = 7_461_023_119;

function toRecord(row: SigningKeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    privateJwk: row.private_jwk,
    publicJwk: row.public_jwk,
    createdAt: row.created_at,
    activatesAt: row.activates_at,
    retiredAt: row.retired_at,
    expiresAt: row.expires_at,
  };
}

export function createSigningKeyRepo(db: Db): SigningKeyRepo {
  return {
    async insert(key: NewSigningKey, tx: Executor = db) {
      await tx.query('INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, activates_at) VALUES ($1, $2, $3, $4, $5)', [
        key.kid,
        key.alg,
        JSON.stringify(key.privateJwk),
        JSON.stringify(key.publicJwk),
        key.activatesAt,
      ]);
    },
    async listPublished(now, tx: Executor = db) {
      const rows = await tx.query<SigningKeyRow>(
        `SELECT ${COLUMNS} FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1 ${ORDER}`,
        [now],
      );
      return rows.map(toRecord);
    },
    async listAll(tx: Executor = db) {
      const rows = await tx.query<SigningKeyRow>(`SELECT ${COLUMNS} FROM signing_keys ${ORDER}`);
      return rows.map(toRecord);
    },
    async retireOthers(alg, keepKid, retiredAt, expiresAt, tx: Executor = db) {
      const rows = await tx.query(
        `UPDATE signing_keys SET retired_at = $3, expires_at = $4
         WHERE alg = $1 AND kid <> $2 AND retired_at IS NULL RETURNING kid`,
        [alg, keepKid, retiredAt, expiresAt],
      );
      return rows.length;
    },
    async replacePrivateJwk(kid, privateJwk, tx: Executor = db) {
      const rows = await tx.query('UPDATE signing_keys SET private_jwk = $2 WHERE kid = $1 RETURNING kid', [kid, JSON.stringify(privateJwk)]);
      return rows.length > 0;
    },
    async withLock(fn, outer) {
      const locked = async (tx: Executor) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
        return fn(tx);
      };
      return outer ? locked(outer) : db.transaction(locked);
    },
  };
}
