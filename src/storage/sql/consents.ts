import type { Consent, ConsentRepo, Db } from '../types.js';

interface ConsentRow {
  user_id: string;
  client_id: string;
  scopes: string[];
  resources: string[] | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'user_id, client_id, scopes, resources, created_at, updated_at';

function toConsent(row: ConsentRow): Consent {
  return { userId: row.user_id, clientId: row.client_id, scopes: row.scopes, resources: row.resources, createdAt: row.created_at, updatedAt: row.updated_at };
}

export function createConsentRepo(db: Db): ConsentRepo {
  return {
    async find(userId, clientId) {
      const rows = await db.query<ConsentRow>(`SELECT ${COLUMNS} FROM consents WHERE user_id = $1 AND client_id = $2`, [userId, clientId]);
      return rows[0] ? toConsent(rows[0]) : null;
    },
    async grant(userId, clientId, scopes, resources) {
      const rows = await db.query<ConsentRow>(
        `INSERT INTO consents (user_id, client_id, scopes, resources) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, client_id) DO UPDATE
           SET scopes = ARRAY(SELECT DISTINCT s FROM unnest(consents.scopes || EXCLUDED.scopes) AS s ORDER BY s),
               resources = ARRAY(SELECT DISTINCT r FROM unnest(COALESCE(consents.resources, '{}') || EXCLUDED.resources) AS r ORDER BY r),
               updated_at = now()
         RETURNING ${COLUMNS}`,
        [userId, clientId, [...new Set(scopes)].sort(), [...new Set(resources)].sort()],
      );
      return toConsent(rows[0]!);
    },
    async listForUser(userId) {
      const rows = await db.query<ConsentRow>(`SELECT ${COLUMNS} FROM consents WHERE user_id = $1 ORDER BY client_id`, [userId]);
      return rows.map(toConsent);
    },
    async revoke(userId, clientId) {
      const rows = await db.query('DELETE FROM consents WHERE user_id = $1 AND client_id = $2 RETURNING user_id', [userId, clientId]);
      return rows.length > 0;
    },
  };
}
