import type { Db, NewPasskey, Passkey, PasskeyDeviceType, PasskeyRepo } from '../types.js';
import { isUniqueViolation } from './errors.js';

interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: string;
  /** bigint: a string from pg, a number or bigint from PGlite. */
  counter: string | number | bigint;
  transports: string[];
  device_type: PasskeyDeviceType;
  backed_up: boolean;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = 'id, user_id, credential_id, public_key, counter, transports, device_type, backed_up, name, created_at, last_used_at';

function toPasskey(row: PasskeyRow): Passkey {
  return {
    id: row.id,
    userId: row.user_id,
    credentialId: row.credential_id,
    publicKey: row.public_key,
    counter: Number(row.counter),
    transports: row.transports,
    deviceType: row.device_type,
    backedUp: row.backed_up,
    name: row.name,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

export function createPasskeyRepo(db: Db): PasskeyRepo {
  return {
    async create(passkey: NewPasskey) {
      try {
        const rows = await db.query<PasskeyRow>(
          `INSERT INTO passkeys (id, user_id, credential_id, public_key, counter, transports, device_type, backed_up, name)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
          [passkey.id, passkey.userId, passkey.credentialId, passkey.publicKey, passkey.counter, passkey.transports, passkey.deviceType, passkey.backedUp, passkey.name],
        );
        return toPasskey(rows[0]!);
      } catch (err) {
        if (isUniqueViolation(err)) return null;
        throw err;
      }
    },
    async listForUser(userId) {
      const rows = await db.query<PasskeyRow>(`SELECT ${COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`, [userId]);
      return rows.map(toPasskey);
    },
    async findByCredentialId(credentialId) {
      const rows = await db.query<PasskeyRow>(`SELECT ${COLUMNS} FROM passkeys WHERE credential_id = $1`, [credentialId]);
      return rows[0] ? toPasskey(rows[0]) : null;
    },
    async recordUse(id, use) {
      // The comparison happens in the UPDATE, so two uses racing with one counter cannot both pass.
      const rows = await db.query(
        `UPDATE passkeys SET counter = $2, device_type = $3, backed_up = $4, last_used_at = $5
         WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0))
         RETURNING id`,
        [id, use.counter, use.deviceType, use.backedUp, use.usedAt],
      );
      return rows.length > 0;
    },
    async delete(userId, id) {
      const rows = await db.query<PasskeyRow>(`DELETE FROM passkeys WHERE user_id = $1 AND id = $2 RETURNING ${COLUMNS}`, [userId, id]);
      return rows[0] ? toPasskey(rows[0]) : null;
    },
  };
}
