import type { Db, InitialAccessToken, InitialAccessTokenRepo, NewInitialAccessToken, Page } from '../types.js';

interface InitialAccessTokenRow {
  id: string;
  description: string;
  created_at: Date;
  expires_at: Date | null;
  max_uses: number | null;
  uses: number;
  last_used_at: Date | null;
}

/** Never the hash: nothing read back needs it. */
const COLUMNS = 'id, description, created_at, expires_at, max_uses, uses, last_used_at';

function toToken(row: InitialAccessTokenRow): InitialAccessToken {
  return {
    id: row.id,
    description: row.description,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    maxUses: row.max_uses,
    uses: row.uses,
    lastUsedAt: row.last_used_at,
  };
}

export function createInitialAccessTokenRepo(db: Db): InitialAccessTokenRepo {
  return {
    async create(token: NewInitialAccessToken) {
      const rows = await db.query<InitialAccessTokenRow>(
        `INSERT INTO initial_access_tokens (id, token_hash, description, expires_at, max_uses) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
        [token.id, token.tokenHash, token.description, token.expiresAt, token.maxUses],
      );
      return toToken(rows[0]!);
    },
    async list(page: Page) {
      const rows = await db.query<InitialAccessTokenRow>(`SELECT ${COLUMNS} FROM initial_access_tokens ORDER BY created_at DESC, id LIMIT $1 OFFSET $2`, [
        page.limit,
        page.offset,
      ]);
      return rows.map(toToken);
    },
    async count() {
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM initial_access_tokens');
      return rows[0]!.n;
    },
    async findById(id) {
      const rows = await db.query<InitialAccessTokenRow>(`SELECT ${COLUMNS} FROM initial_access_tokens WHERE id = $1`, [id]);
      return rows[0] ? toToken(rows[0]) : null;
    },
    async delete(id) {
      const rows = await db.query('DELETE FROM initial_access_tokens WHERE id = $1 RETURNING id', [id]);
      return rows.length > 0;
    },
    async use(tokenHash, now) {
      const rows = await db.query<InitialAccessTokenRow>(
        `UPDATE initial_access_tokens SET uses = uses + 1, last_used_at = $2
         WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2) AND (max_uses IS NULL OR uses < max_uses)
         RETURNING ${COLUMNS}`,
        [tokenHash, now],
      );
      return rows[0] ? toToken(rows[0]) : null;
    },
  };
}
