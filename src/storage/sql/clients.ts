import type { GrantType, ResponseType, TokenEndpointAuthMethod } from '../../oauth/protocol.js';
import type { Client, ClientPatch, ClientRepo, Db, NewClient, Page } from '../types.js';

interface ClientRow {
  client_id: string;
  client_secret_hash: string | null;
  client_name: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: string;
  scope: string;
  resource_server: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'client_id, client_secret_hash, client_name, redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, resource_server, created_at, updated_at';

function toClient(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    clientSecretHash: row.client_secret_hash,
    clientName: row.client_name,
    redirectUris: row.redirect_uris,
    grantTypes: row.grant_types as GrantType[],
    responseTypes: row.response_types as ResponseType[],
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    scope: row.scope,
    resourceServer: row.resource_server,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const PATCH_COLUMNS: Record<keyof ClientPatch, string> = {
  clientSecretHash: 'client_secret_hash',
  clientName: 'client_name',
  redirectUris: 'redirect_uris',
  grantTypes: 'grant_types',
  responseTypes: 'response_types',
  tokenEndpointAuthMethod: 'token_endpoint_auth_method',
  scope: 'scope',
  resourceServer: 'resource_server',
};

export function createClientRepo(db: Db): ClientRepo {
  return {
    async create(client: NewClient) {
      const rows = await db.query<ClientRow>(
        `INSERT INTO clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, resource_server)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
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
        params.push(patch[key]);
        sets.push(`${column} = $${params.length}`);
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
  };
}
