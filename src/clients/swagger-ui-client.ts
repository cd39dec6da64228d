/**
 * The optional first-party client behind Swagger UI's "Authorize" button
 * (`SWAGGER_UI_CLIENT=true`): public (no secret, so nothing to leak from a
 * page anyone can read), authorization code with PKCE S256 only, and the one
 * redirect URI of this server's own docs page. A fixed, well-known
 * `client_id` lets the docs page pre-fill it.
 *
 * Its redirect URI is where `@fastify/swagger-ui` makes Swagger UI send the
 * browser back: `<docs page>/static/oauth2-redirect.html`. That page hands
 * the code to `window.opener` only when the opener is the same origin, so the
 * client cannot be used to carry codes to another site.
 */
import type { Config } from '../config.js';
import type { Client, ClientRepo } from '../storage/types.js';
import { validateClientMetadata } from './metadata.js';
import type { ClientService } from './service.js';

export const SWAGGER_UI_CLIENT_ID = 'swagger-ui';

/** The Swagger UI route prefix; the OAuth redirect page lives under it. */
export const DOCS_PREFIX = '/docs';

export function swaggerUiRedirectUri(config: Pick<Config, 'issuer'>): string {
  return `${config.issuer}${DOCS_PREFIX}/static/oauth2-redirect.html`;
}

/** The scopes Swagger UI may ask for: everything but `offline_access` (no refresh tokens in a docs page). */
function swaggerUiScopes(config: Pick<Config, 'scopes'>): string {
  return config.scopes.filter((s) => s !== 'offline_access').join(' ');
}

/**
 * Creates the `swagger-ui` client if it is missing, and brings its redirect
 * URI and scopes in line with the current `ISSUER` / `SCOPES` if they
 * changed. Idempotent; safe when several instances start at once.
 */
export async function ensureSwaggerUiClient(
  deps: { repo: ClientRepo; clients: ClientService },
  config: Pick<Config, 'issuer' | 'scopes'>,
): Promise<Client> {
  const wanted = validateClientMetadata(
    {
      client_name: 'Swagger UI (API docs)',
      redirect_uris: [swaggerUiRedirectUri(config)],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
      scope: swaggerUiScopes(config),
    },
    config.scopes,
  );
  const existing = await deps.repo.findById(SWAGGER_UI_CLIENT_ID);
  if (existing) {
    const same =
      existing.redirectUris.join(' ') === wanted.redirectUris.join(' ') &&
      existing.scope === wanted.scope &&
      existing.tokenEndpointAuthMethod === 'none' &&
      existing.grantTypes.join(' ') === wanted.grantTypes.join(' ');
    if (same) return existing;
    const { client } = await deps.clients.update(SWAGGER_UI_CLIENT_ID, {
      redirect_uris: wanted.redirectUris,
      scope: wanted.scope,
      grant_types: wanted.grantTypes,
      response_types: wanted.responseTypes,
      token_endpoint_auth_method: 'none',
    });
    return client;
  }
  try {
    return await deps.repo.create({ clientId: SWAGGER_UI_CLIENT_ID, clientSecretHash: null, ...wanted });
  } catch (err) {
    // Another instance starting at the same moment created it first.
    const raced = await deps.repo.findById(SWAGGER_UI_CLIENT_ID);
    if (raced) return raced;
    throw err;
  }
}
