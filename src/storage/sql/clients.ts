import type { GrantType, ResponseType, TokenEndpointAuthMethod } from '../../oauth/protocol.js';
import type { Client, ClientJwks, ClientOrigin, ClientPatch, ClientRepo, Db, NewClient, Page } from '../types.js';

interface ClientRow {
  client_id: string;
  client_secret_hash: string | null;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  backchannel_logout_session_required: boolean;
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: string;
  scope: string;
  resource_server: boolean;
  jwks: ClientJwks | null;
  jwks_uri: string | null;
  dpop_bound_access_tokens: boolean;
  require_pushed_authorization_requests: boolean;
  origin: string;
  registration_access_token_hash: string | null;
  last_used_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'client_id, client_secret_hash, client_name, redirect_uris, post_logout_redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, ' +
  'resource_server, jwks, jwks_uri, dpop_bound_access_tokens, require_pushed_authorization_requests, origin, registration_access_token_hash, last_used_at, created_at, updated_at, ' +
  'backchannel_logout_uri, backchannel_logout_session_required';

function toClient(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    clientSecretHash: row.client_secret_hash,
    clientName: row.client_name,
    redirectUris: row.redirect_uris,
    postLogoutRedirectUris: row.post_logout_redirect_uris,
    backchannelLogoutUri: row.backchannel_logout_uri,
    backchannelLogoutSessionRequired: row.backchannel_logout_session_required,
    grantTypes: row.grant_types as GrantType[],
    responseTypes: row.response_types as ResponseType[],
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    scope: row.scope,
    resourceServer: row.resource_server,
    jwks: row.jwks,
    jwksUri: row.jwks_uri,
    dpopBoundAccessTokens: row.dpop_bound_access_tokens,
    requirePushedAuthorizationRequests: row.require_pushed_authorization_requests,
    origin: row.origin as ClientOrigin,
    registrationAccessTokenHash: row.registration_access_token_hash,
    lastUsedAt: row.last_used_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const PATCH_COLUMNS: Record<keyof ClientPatch, string> = {
  clientSecretHash: 'client_secret_hash',
  clientName: 'client_name',
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  backchannelLogoutUri: 'backchannel_logout_uri',
  backchannelLogoutSessionRequired: 'backchannel_logout_session_required',
  grantTypes: 'grant_types',
  responseTypes: 'response_types',
  tokenEndpointAuthMethod: 'token_endpoint_auth_method',
  scope: 'scope',
  resourceServer: 'resource_server',
  jwks: 'jwks',
  jwksUri: 'jwks_uri',
  dpopBoundAccessTokens: 'dpop_bound_access_tokens',
  requirePushedAuthorizationRequests: 'require_pushed_authorization_requests',
  origin: 'origin',
  registrationAccessTokenHash: 'registration_access_token_hash',
};

/** A JWK Set as a jsonb parameter: its JSON text (both drivers parse the column back into an object). */
function jsonb(value: ClientJwks | null | undefined): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

/** Clients no admin registered: the ones the idle reaper may remove. */
const NOT_ADMIN = "origin <> 'admin'";
/** When such a client was last used, or registered when never used (the expression of clients_idle_idx). */
const IDLE_SINCE = 'coalesce(last_used_at, created_at)';

export function createClientRepo(db: Db): ClientRepo {
  return {
    async create(client: NewClient) {
      const rows = await db.query<ClientRow>(
        `INSERT INTO clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, resource_server,
                              origin, registration_access_token_hash, jwks, jwks_uri, dpop_bound_access_tokens, require_pushed_authorization_requests,
                              post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17, $18) RETURNING ${COLUMNS}`,
        [
          client.clientId,
          client.clientSecretHash,
          client.clientName,
          client.redirectUris,
          client.grantTypes,
          client.responseTypes,
          client.tokenEndpointAuthMethod,
          client.scope,
          client.resourceServer,
          client.origin ?? 'admin',
          client.registrationAccessTokenHash ?? null,
          jsonb(client.jwks),
          client.jwksUri ?? null,
          client.dpopBoundAccessTokens ?? false,
          client.requirePushedAuthorizationRequests ?? false,
          client.postLogoutRedirectUris ?? [],
          client.backchannelLogoutUri ?? null,
          client.backchannelLogoutSessionRequired ?? false,
        ],
      );
      return toClient(rows[0]!);
    },
    async findById(clientId) {
      const rows = await db.query<ClientRow>(`SELECT ${COLUMNS} FROM clients WHERE client_id = $1`, [clientId]);
      return rows[0] ? toClient(rows[0]) : null;
    },
    async list(page: Page) {
      const rows = await db.query<ClientRow>(`SELECT ${COLUMNS} FROM clients ORDER BY created_at, client_id LIMIT $1 OFFSET $2`, [
        page.limit,
        page.offset,
      ]);
      return rows.map(toClient);
    },
    async count() {
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM clients');
      return rows[0]!.n;
    },
    async update(clientId, patch: ClientPatch) {
      const sets: string[] = [];
      const params: unknown[] = [clientId];
      for (const [key, column] of Object.entries(PATCH_COLUMNS) as Array<[keyof ClientPatch, string]>) {
        if (patch[key] === undefined) continue;
        params.push(key === 'jwks' ? jsonb(patch.jwks) : patch[key]);
        sets.push(`${column} = $${params.length}${key === 'jwks' ? '::jsonb' : ''}`);
      }
      const rows = await db.query<ClientRow>(
        `UPDATE clients SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE client_id = $1 RETURNING ${COLUMNS}`,
        params,
      );
      return rows[0] ? toClient(rows[0]) : null;
    },
    async delete(clientId) {
      const rows = await db.query('DELETE FROM clients WHERE client_id = $1 RETURNING client_id', [clientId]);
      return rows.length > 0;
    },
    async touch(clientId, at, notBefore) {
      const rows = await db.query(
        'UPDATE clients SET last_used_at = $2 WHERE client_id = $1 AND (last_used_at IS NULL OR last_used_at < $3) RETURNING client_id',
        [clientId, at, notBefore],
      );
      return rows.length > 0;
    },
    async upsertMetadataDocumentClient(client, usedAt) {
      // xmax is 0 on a row this statement inserted, not on one it updated.
      const rows = await db.query<ClientRow & { inserted: boolean }>(
        `INSERT INTO clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, resource_server,
                              origin, last_used_at, post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required)
         VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, 'metadata_document', $9, $10, $11, $12)
         ON CONFLICT (client_id) DO UPDATE SET
           client_name = EXCLUDED.client_name, redirect_uris = EXCLUDED.redirect_uris, post_logout_redirect_uris = EXCLUDED.post_logout_redirect_uris,
           backchannel_logout_uri = EXCLUDED.backchannel_logout_uri, backchannel_logout_session_required = EXCLUDED.backchannel_logout_session_required,
           grant_types = EXCLUDED.grant_types,
           response_types = EXCLUDED.response_types, token_endpoint_auth_method = EXCLUDED.token_endpoint_auth_method, scope = EXCLUDED.scope,
           resource_server = EXCLUDED.resource_server, last_used_at = EXCLUDED.last_used_at, updated_at = now()
         WHERE clients.origin = 'metadata_document'
         RETURNING ${COLUMNS}, (xmax = 0) AS inserted`,
        [
          client.clientId,
          client.clientName,
          client.redirectUris,
          client.grantTypes,
          client.responseTypes,
          client.tokenEndpointAuthMethod,
          client.scope,
          client.resourceServer,
          usedAt,
          client.postLogoutRedirectUris ?? [],
          client.backchannelLogoutUri ?? null,
          client.backchannelLogoutSessionRequired ?? false,
        ],
      );
      return rows[0] ? { client: toClient(rows[0]), created: rows[0].inserted } : null;
    },
    async listIdle(cutoff, limit) {
      const rows = await db.query<{ client_id: string }>(
        `SELECT client_id FROM clients WHERE ${NOT_ADMIN} AND ${IDLE_SINCE} < $1 ORDER BY ${IDLE_SINCE}, client_id LIMIT $2`,
        [cutoff, limit],
      );
      return rows.map((r) => r.client_id);
    },
  };
}
