/** Upstream OpenID Connect providers and the upstream accounts linked to local users (migration 0014). */
import type { Db, Executor, IdentityProviderPatch, IdentityProviderRecord, IdentityProviderRepo, LinkedIdentity, LinkedIdentityRepo } from '../types.js';
import { isUniqueViolation } from './errors.js';
import { resealColumn } from './reseal.js';

interface ProviderRow {
  id: string;
  issuer: string;
  client_id: string;
  client_secret: Record<string, unknown>;
  scopes: string;
  display_name: string;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

interface LinkRow {
  provider_id: string;
  subject: string;
  user_id: string;
  email: string | null;
  linked_at: Date;
}

const PROVIDER_COLUMNS = 'id, issuer, client_id, client_secret, scopes, display_name, enabled, created_at, updated_at';
const LINK_COLUMNS = 'provider_id, subject, user_id, email, linked_at';

function toProvider(row: ProviderRow): IdentityProviderRecord {
  return {
    id: row.id,
    issuer: row.issuer,
    clientId: row.client_id,
    clientSecret: row.client_secret,
    scopes: row.scopes,
    displayName: row.display_name,
    enabled: row.enabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toLink(row: LinkRow): LinkedIdentity {
  return { providerId: row.provider_id, subject: row.subject, userId: row.user_id, email: row.email, linkedAt: row.linked_at };
}

type NewProvider = Omit<IdentityProviderRecord, 'createdAt' | 'updatedAt'>;
const values = (p: NewProvider) => [p.id, p.issuer, p.clientId, JSON.stringify(p.clientSecret), p.scopes, p.displayName, p.enabled];

export function createIdentityProviderRepo(db: Db): IdentityProviderRepo {
  return {
    async create(provider) {
      try {
        const rows = await db.query<ProviderRow>(
          `INSERT INTO identity_providers (id, issuer, client_id, client_secret, scopes, display_name, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${PROVIDER_COLUMNS}`,
          values(provider),
        );
        return toProvider(rows[0]!);
      } catch (err) {
        if (isUniqueViolation(err)) return null;
        throw err;
      }
    },
    async upsert(provider) {
      const rows = await db.query<ProviderRow>(
        `INSERT INTO identity_providers (id, issuer, client_id, client_secret, scopes, display_name, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET issuer = $2, client_id = $3, client_secret = $4, scopes = $5, display_name = $6, enabled = $7, updated_at = now()
         RETURNING ${PROVIDER_COLUMNS}`,
        values(provider),
      );
      return toProvider(rows[0]!);
    },
    async find(id) {
      const rows = await db.query<ProviderRow>(`SELECT ${PROVIDER_COLUMNS} FROM identity_providers WHERE id = $1`, [id]);
      return rows[0] ? toProvider(rows[0]) : null;
    },
    async list() {
      const rows = await db.query<ProviderRow>(`SELECT ${PROVIDER_COLUMNS} FROM identity_providers ORDER BY id`);
      return rows.map(toProvider);
    },
    async update(id, patch: IdentityProviderPatch) {
      const sets: string[] = [];
      const params: unknown[] = [id];
      const add = (column: string, value: unknown) => {
        params.push(value);
        sets.push(`${column} = $${params.length}`);
      };
      if (patch.issuer !== undefined) add('issuer', patch.issuer);
      if (patch.clientId !== undefined) add('client_id', patch.clientId);
      if (patch.clientSecret !== undefined) add('client_secret', JSON.stringify(patch.clientSecret));
      if (patch.scopes !== undefined) add('scopes', patch.scopes);
      if (patch.displayName !== undefined) add('display_name', patch.displayName);
      if (patch.enabled !== undefined) add('enabled', patch.enabled);
      const rows = await db.query<ProviderRow>(
        `UPDATE identity_providers SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING ${PROVIDER_COLUMNS}`,
        params,
      );
      return rows[0] ? toProvider(rows[0]) : null;
    },
    async delete(id) {
      const rows = await db.query('DELETE FROM identity_providers WHERE id = $1 RETURNING id', [id]);
      return rows.length > 0;
    },
    resealAll(reseal, tx) {
      return resealColumn(tx, { table: 'identity_providers', key: 'id', column: 'client_secret' }, reseal);
    },
  };
}

export function createLinkedIdentityRepo(db: Db): LinkedIdentityRepo {
  return {
    async find(providerId, subject) {
      const rows = await db.query<LinkRow>(`SELECT ${LINK_COLUMNS} FROM linked_identities WHERE provider_id = $1 AND subject = $2`, [providerId, subject]);
      return rows[0] ? toLink(rows[0]) : null;
    },
    async create(link, tx: Executor = db) {
      try {
        await tx.query('INSERT INTO linked_identities (provider_id, subject, user_id, email) VALUES ($1, $2, $3, $4)', [link.providerId, link.subject, link.userId, link.email]);
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },
    async listForUser(userId) {
      const rows = await db.query<LinkRow>(`SELECT ${LINK_COLUMNS} FROM linked_identities WHERE user_id = $1 ORDER BY linked_at, provider_id`, [userId]);
      return rows.map(toLink);
    },
    async delete(userId, providerId, subject) {
      const rows = await db.query('DELETE FROM linked_identities WHERE user_id = $1 AND provider_id = $2 AND subject = $3 RETURNING subject', [userId, providerId, subject]);
      return rows.length > 0;
    },
  };
}
