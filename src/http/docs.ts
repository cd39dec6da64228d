/**
 * API documentation: the OpenAPI document generated from the routes' own JSON
 * schemas (`@fastify/swagger`, the single source for validation,
 * serialisation and docs) at `GET /openapi.json`, and Swagger UI at `/docs`
 * (`/swagger-ui.html`, the old demo's address, redirects there).
 *
 * The security schemes describe this server itself, so "Authorize" in
 * Swagger UI gets a real token from it: OAuth 2.0 client credentials and
 * authorization code with PKCE (endpoints derived from `ISSUER`), HTTP Basic
 * for the admin API and for client authentication, and a bearer JWT for the
 * resource routes and UserInfo.
 *
 * Must be registered before the route scopes: `@fastify/swagger` collects
 * routes from an `onRoute` hook and sees only routes added after it.
 */
import { readFile } from 'node:fs/promises';
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { DOCS_PREFIX, SWAGGER_UI_CLIENT_ID } from '../clients/swagger-ui-client.js';
import type { Config } from '../config.js';
import { contentSecurityPolicy } from './security-headers.js';

/** Shared schema of every JSON error body (RFC 6749 §5.2 shape); routes may `$ref: 'OAuthError#'`. */
export const ERROR_SCHEMA_ID = 'OAuthError';

const errorSchema = {
  $id: ERROR_SCHEMA_ID,
  type: 'object',
  description: 'Error (RFC 6749 §5.2 shape; also used by the admin API and RFC 6750 resource errors).',
  required: ['error'],
  properties: {
    error: { type: 'string', description: 'Error code, e.g. invalid_request, invalid_client, invalid_grant, invalid_token.' },
    error_description: { type: 'string', description: 'Human-readable explanation, safe to show.' },
  },
} as const;

const SCOPE_WORDS: Record<string, string> = {
  openid: 'Sign you in (OpenID Connect: ID token and UserInfo)',
  profile: 'Your username',
  email: 'Your email address',
  offline_access: 'Stay signed in (refresh token)',
  'api:read': 'Read the sample API',
  'api:write': 'Write through the sample API',
};

/** Tags in the order Swagger UI shows them. */
const TAGS = [
  { name: 'oauth', description: 'Token endpoint, revocation (RFC 7009), introspection (RFC 7662)' },
  { name: 'browser', description: 'Browser flows: authorization endpoint, login, consent, logout, self-registration' },
  { name: 'discovery', description: 'Server metadata (RFC 8414, OpenID Connect Discovery) and signing keys' },
  { name: 'oidc', description: 'OpenID Connect UserInfo' },
  { name: 'resource', description: 'Sample protected resources: call them with a bearer access token' },
  { name: 'admin', description: 'Admin API: clients and users (HTTP Basic as an admin, or an admin bearer token)' },
  { name: 'operations', description: 'Health, readiness and metrics' },
];

/** Which tag and which security a route gets in the docs when its schema does not say. */
interface DocDefaults {
  tag: string;
  security?: Security;
}

type Security = Array<Record<string, string[]>>;
const BEARER: Security = [{ oauth2: [] }, { bearerAuth: [] }];
// Public clients authenticate with no header at all (client_id in the body).
const CLIENT_AUTH: Security = [{ clientBasic: [] }, {}];

function defaultsFor(url: string): DocDefaults | null {
  if (url.startsWith('/admin/')) return { tag: 'admin', security: [{ adminBasic: [] }, { bearerAuth: [] }] };
  if (url.startsWith('/api/')) return { tag: 'resource', security: BEARER };
  if (url === '/userinfo') return { tag: 'oidc', security: BEARER };
  if (url === '/token' || url === '/revoke' || url === '/introspect') return { tag: 'oauth', security: CLIENT_AUTH };
  if (url.startsWith('/.well-known/') || url === '/jwks.json') return { tag: 'discovery' };
  if (['/authorize', '/login', '/consent', '/logout', '/register'].includes(url)) return { tag: 'browser' };
  if (url === '/healthz' || url === '/readyz' || url === '/metrics') return { tag: 'operations' };
  return null;
}

/** Routes that are not part of the API: static assets and the HTML admin console. */
function isHidden(url: string): boolean {
  return url.startsWith('/assets/') || url === '/admin' || url.startsWith('/admin/console') || url.startsWith(DOCS_PREFIX);
}

/**
 * Fills what a route's schema leaves out, for the document only (validation
 * and serialisation keep using the route's own schema): a tag, the security
 * requirement, and the error body for 4xx answers.
 */
function transform({ schema, url, route }: { schema: FastifySchema; url: string; route: { method: string | string[] } }): { schema: FastifySchema; url: string } {
  const s = { ...(schema as Record<string, unknown>) };
  if (isHidden(url)) return { schema: { ...s, hide: true } as FastifySchema, url };
  const defaults = defaultsFor(url);
  if (defaults) {
    if (!Array.isArray(s.tags) || s.tags.length === 0) s.tags = [defaults.tag];
    if (s.security === undefined && defaults.security) s.security = defaults.security;
  }
  const response = { ...((s.response as Record<string, unknown> | undefined) ?? {}) };
  if (defaults?.tag === 'browser' && !Object.keys(response).some((code) => /^[23]/.test(code))) Object.assign(response, pageResponses(url, route.method));
  const documentsErrors = Object.keys(response).some((code) => /^4/.test(code) || code === 'default');
  if (!documentsErrors && url !== '/healthz') {
    response['4xx'] = { description: 'Error', $ref: `${ERROR_SCHEMA_ID}#` };
  }
  s.response = response;
  return { schema: s as FastifySchema, url };
}

const HTML = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } });
const REDIRECT = (description: string) => ({ description, type: 'null' });

/**
 * What the browser pages answer, for the document: they render HTML or
 * redirect, so their routes declare no JSON response schema.
 */
function pageResponses(url: string, method: string | string[]): Record<string, unknown> {
  const post = (Array.isArray(method) ? method : [method]).includes('POST');
  if (url === '/authorize') {
    return {
      '302': REDIRECT(
        'To the sign-in or consent page, or back to the registered redirect_uri with code, state and iss (RFC 9207), or with error, state and iss. Implicit: access_token in the fragment.',
      ),
      '400': HTML('Error page, shown (never redirected) when client_id or redirect_uri is unknown or they do not belong together.'),
    };
  }
  if (url === '/logout') return { '303': REDIRECT('Signed out; to the sign-in page.') };
  if (post) return { '303': REDIRECT('To the next step of the flow (consent, or the client with a code).'), '200': HTML('The form again, with a message.') };
  return { '200': HTML('HTML page.') };
}

async function packageVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The `@fastify/swagger` options: OpenAPI 3.1 with this server's own security schemes. */
export async function openApiOptions(config: Config): Promise<FastifyDynamicSwaggerOptions> {
  const scopes = Object.fromEntries(config.scopes.map((s) => [s, SCOPE_WORDS[s] ?? `Scope ${s}`]));
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'OAuth 2.0 authorization server',
        version: await packageVersion(),
        description: [
          'Authorization code + PKCE, client credentials, refresh-token rotation, JWT access tokens (RFC 9068), on PostgreSQL and Redis.',
          '',
          `Press **Authorize** to get a token from this server: *clientCredentials* with a confidential client's id and secret, or *authorizationCode* (PKCE) with the public client \`${SWAGGER_UI_CLIENT_ID}\` (start the server with \`SWAGGER_UI_CLIENT=true\`). Then call \`GET /api/hello\`.`,
          '',
          `Discovery: [${config.issuer}/.well-known/openid-configuration](${config.issuer}/.well-known/openid-configuration)`,
        ].join('\n'),
      },
      servers: [{ url: config.issuer }],
      tags: TAGS,
      components: {
        securitySchemes: {
          oauth2: {
            type: 'oauth2',
            description: 'This server. Authorization code requires PKCE (S256).',
            flows: {
              clientCredentials: { tokenUrl: `${config.issuer}/token`, scopes },
              authorizationCode: {
                authorizationUrl: `${config.issuer}/authorize`,
                tokenUrl: `${config.issuer}/token`,
                refreshUrl: `${config.issuer}/token`,
                scopes,
              },
            },
          },
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /token (RFC 6750).' },
          adminBasic: { type: 'http', scheme: 'basic', description: "An admin user's username and password." },
          clientBasic: { type: 'http', scheme: 'basic', description: 'client_secret_basic: client_id and client_secret (RFC 6749 §2.3.1).' },
        },
      },
    },
    refResolver: {
      // Keep shared schemas under their own names in components.schemas.
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    transform,
  };
}

/**
 * Registers the OpenAPI generator and Swagger UI. Call before any route
 * scope so every route is captured.
 */
export async function registerDocs(app: FastifyInstance, config: Config): Promise<void> {
  app.addSchema(errorSchema);
  await app.register(swagger, await openApiOptions(config));
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    initOAuth: {
      clientId: config.swaggerUiClient ? SWAGGER_UI_CLIENT_ID : '',
      appName: 'API docs',
      usePkceWithAuthorizationCodeGrant: true,
      scopes: ['openid', 'profile', 'api:read'].filter((s) => config.scopes.includes(s)),
    },
    uiConfig: {
      deepLinking: true,
      // Tokens stay in page memory, not localStorage.
      persistAuthorization: false,
      displayRequestDuration: true,
      tryItOutEnabled: true,
      defaultModelsExpandDepth: 0,
    },
    theme: { title: 'API docs · OAuth 2.0 authorization server' },
    staticCSP: docsCsp(config),
  });

  app.get('/openapi.json', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'no-cache');
    return app.swagger();
  });
  // The old demo served Swagger UI here.
  app.get('/swagger-ui.html', { schema: { hide: true } }, async (_request, reply) => reply.redirect(DOCS_PREFIX, 301));
}

/**
 * The docs pages' Content-Security-Policy: the site-wide strict policy plus
 * what Swagger UI needs: its scripts (served as files from 'self', none
 * inline), fetching the document and "Try it out" calls from the page
 * ('self' and the issuer), and inline `style` attributes, which its React
 * components set. Still no frames, no other origins' scripts.
 */
export function docsCsp(config: Pick<Config, 'issuer' | 'secureCookies'>): string {
  const issuerOrigin = new URL(config.issuer).origin;
  return contentSecurityPolicy(config, {
    'script-src': ["'self'"],
    'connect-src': ["'self'", issuerOrigin],
    'style-src': ["'self'", "'unsafe-inline'"],
  });
}
