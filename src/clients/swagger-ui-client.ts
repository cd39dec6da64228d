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
import type { Client } from '../storage/types.js';
import type { ClientService } from './service.js';

export const SWAGGER_UI_CLIENT_ID = 'swagger-ui';

/** The Swagger UI route prefix; the OAuth redirect page lives under it. */
export const DOCS_PREFIX = '/docs';

export function swaggerUiRedirectUri(config: Pick<Config, 'issuer'>): string {
  return `${config.issuer}${DOCS_PREFIX}/static/oauth2-redirect.html`;
}

/** The scopes of the `swagger-ui` client: every configured scope but `offline_access` (no refresh tokens in a docs page). */
export function swaggerUiScopes(config: Pick<Config, 'scopes'>): string[] {
  return config.scopes.filter((s) => s !== 'offline_access');
}

/**
 * Creates the `swagger-ui` client if it is missing, and brings its redirect
 * URI and scopes in line with the current `ISSUER` / `SCOPES` (everything
 * but `offline_access`: no refresh tokens in a docs page) if they changed.
 */
export function ensureSwaggerUiClient(clients: Pick<ClientService, 'ensurePublic'>, config: Pick<Config, 'issuer' | 'scopes'>): Promise<Client> {
  return clients.ensurePublic(SWAGGER_UI_CLIENT_ID, {
    client_name: 'Swagger UI (API docs)',
    redirect_uris: [swaggerUiRedirectUri(config)],
    grant_types: ['authorization_code'],
    scope: swaggerUiScopes(config).join(' '),
  });
}
