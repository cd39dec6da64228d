/**
 * Resource routes, protected by bearer access tokens verified locally (no
 * I/O per request), each answering errors in the RFC 6750 dialect:
 *
 * - the sample API (`/api/hello`, `/api/admin/hello`): the resource
 *   `${ISSUER}/api`, so only tokens whose `aud` names it (RFC 8707), and its
 *   401s point to its metadata (RFC 9728). Served while `RESOURCES` lists it.
 * - OIDC UserInfo (`/userinfo`, Core §5.3): the authorization server's own
 *   endpoint, no resource of `RESOURCES`; any of this server's access tokens
 *   with scope `openid`, whichever resource it was issued for.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import type { AccessTokenClaims } from '../tokens/types.js';
import { ADMIN_ROLE } from '../users/account.js';
import { bearerErrorHandler, InsufficientScopeError, requireBearer, type BearerRoute } from './bearer.js';
import { sampleResource } from './resource-metadata.js';
import { errorResponses, SECURITY } from './schemas.js';

const errors = errorResponses(400, 401, 403);

/**
 * Route policy: readable by browser-based apps from `CORS_ORIGINS` (they
 * send their own bearer header, never cookies), and called at high rates,
 * so their request lines log at debug.
 */
const RESOURCE = { cors: 'app', accessLog: 'debug', securityHeaders: 'api' } as const;

const helloSchema = {
  type: 'object',
  properties: {
    message: { type: 'string' },
    sub: { type: 'string' },
    client_id: { type: 'string' },
    scope: { type: 'string' },
  },
  required: ['message', 'sub', 'client_id', 'scope'],
} as const;

const userinfoSchema = {
  type: 'object',
  description: 'OIDC Core §5.3.2: `sub` always; `preferred_username`, `name`, `updated_at` with scope profile; `email`, `email_verified` with scope email.',
  properties: {
    sub: { type: 'string' },
    preferred_username: { type: 'string' },
    name: { type: 'string' },
    updated_at: { type: 'integer' },
    email: { type: 'string' },
    email_verified: { type: 'boolean' },
  },
  required: ['sub'],
} as const;

/** Who the token speaks for: the user's name, or the client acting on its own behalf. */
function displayName(claims: AccessTokenClaims): string {
  return typeof claims.preferred_username === 'string' ? claims.preferred_username : claims.client_id;
}

function hello(claims: AccessTokenClaims, message: string) {
  return { message, sub: claims.sub, client_id: claims.client_id, scope: claims.scope };
}

export const resourceRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'tokens' | 'users' | 'resources' | 'dpop'> }> = async (app, { services }) => {
  app.decorateRequest('accessToken', null);
  // Each route answers its own errors (`requireBearer`); this one is for any route added without it.
  app.setErrorHandler(bearerErrorHandler({ realm: services.config.issuer }));

  const api = sampleResource(services, 'api');
  if (api !== null) sampleApiRoutes(app, requireBearer(services, { resource: api }));

  // OIDC Core §5.3.1: GET and POST; POST may carry the token in the form body (RFC 6750 §2.2).
  const userinfo = async (claims: AccessTokenClaims) => {
    const scopes = claims.scope.split(' ');
    // A client's own token (client credentials) has no user behind it.
    if (claims.roles === undefined) throw new OAuthError('invalid_token', 'This access token was not issued for a user.');
    const user = await services.users.findEnabled(claims.sub);
    if (!user) throw new OAuthError('invalid_token', 'The user of this access token no longer exists or is disabled.');
    const out: Record<string, unknown> = { sub: user.id };
    if (scopes.includes('profile')) {
      out.preferred_username = user.username;
      out.name = user.username;
      out.updated_at = Math.floor(user.updatedAt.getTime() / 1000);
    }
    if (scopes.includes('email') && user.email !== null) {
      out.email = user.email;
      // True only once the user opened a mailed link (REQUIRE_EMAIL_VERIFICATION); clients may trust it for account linking.
      out.email_verified = user.emailVerified;
    }
    return out;
  };

  const userinfoDoc = (method: string) => ({
    tags: ['oidc'],
    security: SECURITY.bearer,
    summary: `OpenID Connect UserInfo (${method})`,
    response: { 200: userinfoSchema, ...errors },
  });
  // Any of this server's access tokens (whichever resource it is for), with scope openid (403 naming it otherwise).
  const userinfoBearer = { anyResource: true, scope: 'openid' } as const;
  app.get('/userinfo', { ...requireBearer(services, userinfoBearer), config: RESOURCE, schema: userinfoDoc('GET') }, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    return userinfo(request.accessToken!);
  });
  app.post(
    '/userinfo',
    { ...requireBearer(services, { ...userinfoBearer, allowBody: true }), config: RESOURCE, schema: userinfoDoc('POST') },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return userinfo(request.accessToken!);
    },
  );
};

/** The sample API, the resource `${ISSUER}/api`: tokens for it only. */
function sampleApiRoutes(app: FastifyInstance, bearer: BearerRoute): void {
  app.get(
    '/api/hello',
    {
      ...bearer,
      config: RESOURCE,
      schema: {
        tags: ['resource'],
        security: SECURITY.bearer,
        summary: 'Sample protected resource: any valid access token for the resource $ISSUER/api',
        response: { 200: helloSchema, ...errors },
      },
    },
    async (request) => {
      const claims = request.accessToken!;
      return hello(claims, `Hello, ${displayName(claims)}!`);
    },
  );

  app.get(
    '/api/admin/hello',
    {
      ...bearer,
      config: RESOURCE,
      schema: {
        tags: ['resource'],
        security: SECURITY.bearer,
        summary: 'Sample protected resource: needs a user with role admin',
        response: { 200: helloSchema, ...errors },
      },
    },
    async (request) => {
      const claims = request.accessToken!;
      // RFC 6750 §3.1: a valid token without the needed privilege is 403 insufficient_scope;
      // the privilege is a role, which no scope grants, so the challenge names none.
      if (!claims.roles?.includes(ADMIN_ROLE)) throw new InsufficientScopeError('This resource needs a user with role admin.');
      return hello(claims, `Hello, admin ${displayName(claims)}!`);
    },
  );
}
