/**
 * API documentation: the OpenAPI document generated from the routes' own JSON
 * schemas (`@fastify/swagger`, the single source for validation,
 * serialisation and docs) at `GET /openapi.json`, and Swagger UI at `/docs`
 * (`/swagger-ui.html`, the old demo's address, redirects there).
 *
 * The security schemes describe this server itself, so "Authorize" in
 * Swagger UI gets a real token from it: OAuth 2.0 authorization code with
 * PKCE (endpoints derived from `ISSUER`), HTTP Basic for the admin API and
 * for client authentication, and a bearer JWT for the resource routes and
 * UserInfo. The one OAuth flow offered is the one the public `swagger-ui`
 * client can run, since Swagger UI pre-fills its `client_id` into every
 * OAuth flow of the dialog: client credentials, which needs a confidential
 * client's secret, is explained in the description instead (Basic at
 * `POST /token`, then the token under `bearerAuth`).
 *
 * Must be registered before the route scopes: `@fastify/swagger` collects
 * routes from an `onRoute` hook and sees only routes added after it.
 */
import { readFile } from 'node:fs/promises';
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { DOCS_PREFIX, SWAGGER_UI_CLIENT_ID, swaggerUiRedirectUri, swaggerUiScopes } from '../clients/swagger-ui-client.js';
import type { Config } from '../config.js';
import { ERROR_SCHEMA, jsonError } from './schemas.js';
import { contentSecurityPolicy } from './security-headers.js';

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
  { name: 'registration', description: 'Dynamic client registration (RFC 7591) and client configuration (RFC 7592)' },
  { name: 'browser', description: 'Browser flows: authorization endpoint, login, consent, logout, self-registration' },
  { name: 'discovery', description: 'Server metadata (RFC 8414, OpenID Connect Discovery) and signing keys' },
  { name: 'oidc', description: 'OpenID Connect UserInfo' },
  { name: 'resource', description: 'Sample protected resources: call them with a bearer access token' },
  { name: 'mcp', description: 'Sample MCP server (Streamable HTTP): connect an MCP client to $ISSUER/mcp' },
  { name: 'admin', description: 'Admin API: clients and users (HTTP Basic as an admin, or an admin bearer token)' },
  { name: 'operations', description: 'Health, readiness and metrics' },
];

/** Methods whose body Fastify reads before any route code runs, refusing one past BODY_LIMIT with 413. */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

function takesBody(method: string | string[]): boolean {
  return (Array.isArray(method) ? method : [method]).some((m) => BODY_METHODS.has(m));
}

/**
 * Fills in, for the document only (validation and serialisation keep using
 * the route's own schema), the JSON error body for the 4xx answers of a
 * route that documents none, and 413 for a route taking a body that lists
 * its errors code by code without it: the body limit is enforced before the
 * route runs, so no route would think to list it. Always under
 * `application/json` (never the route's `produces`): page scopes, whose
 * errors are HTML, document theirs as such (`usePageErrors`). Tags,
 * security and the other answers are declared on each route; routes outside
 * the API (pages of the admin console, assets) declare `hide`.
 */
function transform({ schema, url, route }: { schema: FastifySchema; url: string; route: { method: string | string[] } }): { schema: FastifySchema; url: string } {
  const s = { ...(schema as Record<string, unknown>) };
  const response = { ...((s.response as Record<string, unknown> | undefined) ?? {}) };
  const codes = Object.keys(response);
  if (!codes.some((code) => /^4/.test(code) || code === 'default')) {
    response['4xx'] = jsonError('Error');
  } else if (takesBody(route.method) && !codes.some((code) => /^(413|4xx|default)$/i.test(code))) {
    response['413'] = jsonError('The body is larger than BODY_LIMIT (invalid_request).');
  }
  s.response = response;
  return { schema: s as FastifySchema, url };
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
          `Press **Authorize** and sign in under *oauth2*: authorization code with PKCE through the public client \`${SWAGGER_UI_CLIENT_ID}\`, pre-filled when the server runs with \`SWAGGER_UI_CLIENT=true\` (leave client_secret empty: a public client has none). Then call \`GET /api/hello\`.`,
          '',
          "Client credentials (a backend calling as itself) needs a confidential client's secret, which does not belong in a browser page, so it is not offered under *oauth2*. To try it here: **Authorize** under *clientBasic* with the client's id and secret, **Try it out** on `POST /token` with `grant_type=client_credentials` (empty the other fields), and paste the `access_token` under *bearerAuth*.",
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
            description: config.swaggerUiClient
              ? `Sign in to this server through the public client \`${SWAGGER_UI_CLIENT_ID}\` (pre-filled): authorization code with PKCE (S256). Leave client_secret empty.`
              : `Authorization code with PKCE (S256). Start the server with \`SWAGGER_UI_CLIENT=true\` to register the public client \`${SWAGGER_UI_CLIENT_ID}\` for this page (or enter a client registered with the redirect URI ${swaggerUiRedirectUri(config)}).`,
            flows: {
              authorizationCode: {
                authorizationUrl: `${config.issuer}/authorize`,
                tokenUrl: `${config.issuer}/token`,
                scopes: Object.fromEntries(swaggerUiScopes(config).map((s) => [s, scopes[s]!])),
              },
            },
          },
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /token (RFC 6750).' },
          adminBasic: { type: 'http', scheme: 'basic', description: "An admin user's username and password." },
          clientBasic: {
            type: 'http',
            scheme: 'basic',
            description: 'client_secret_basic: a confidential client\'s client_id and client_secret (RFC 6749 §2.3.1), for `POST /token` (e.g. `grant_type=client_credentials`), `/revoke` and `/introspect`.',
          },
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
  app.addSchema(ERROR_SCHEMA);
  await app.register(swagger, await openApiOptions(config));
  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    initOAuth: {
      clientId: config.swaggerUiClient ? SWAGGER_UI_CLIENT_ID : '',
      appName: 'API docs',
      usePkceWithAuthorizationCodeGrant: true,
      scopes: ['openid', 'profile', 'api:read'].filter((s) => swaggerUiScopes(config).includes(s)),
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
