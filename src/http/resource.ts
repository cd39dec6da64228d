/**
 * Resource routes, protected by bearer access tokens verified locally (no
 * I/O per request): the sample API (`/api/hello`, `/api/admin/hello`) and
 * OIDC UserInfo (`/userinfo`, Core §5.3), each answering errors in the
 * RFC 6750 dialect.
 */
import type { FastifyPluginAsync } from 'fastify';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import type { AccessTokenClaims } from '../tokens/types.js';
import { ADMIN_ROLE } from '../users/account.js';
import { bearerErrorHandler, InsufficientScopeError, requireBearer } from './bearer.js';
import { errorResponses, SECURITY } from './schemas.js';

const errors = errorResponses(400, 401, 403);

/**
 * Route policy: readable by browser-based apps from `CORS_ORIGINS` (they
 * send their own bearer header, never cookies), and called at high rates,
 * so their request lines log at debug.
 */
const RESOURCE = { cors: 'app', accessLog: 'debug' } as const;

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

export const resourceRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'tokens' | 'users'> }> = async (app, { services }) => {
  app.decorateRequest('accessToken', null);
  app.setErrorHandler(bearerErrorHandler(services.config.issuer));
  const bearer = requireBearer(services.tokens);

  app.get(
    '/api/hello',
    {
      preHandler: bearer,
      config: RESOURCE,
      schema: { tags: ['resource'], security: SECURITY.bearer, summary: 'Sample protected resource: any valid access token', response: { 200: helloSchema, ...errors } },
    },
    async (request) => {
      const claims = request.accessToken!;
      return hello(claims, `Hello, ${displayName(claims)}!`);
    },
  );

  app.get(
    '/api/admin/hello',
    {
      preHandler: bearer,
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
      // RFC 6750 §3.1: a valid token without the needed privilege is 403 insufficient_scope.
      if (!claims.roles?.includes(ADMIN_ROLE)) throw new InsufficientScopeError('This resource needs a user with role admin.');
      return hello(claims, `Hello, admin ${displayName(claims)}!`);
    },
  );

  // OIDC Core §5.3.1: GET and POST; POST may carry the token in the form body (RFC 6750 §2.2).
  const userinfo = async (claims: AccessTokenClaims) => {
    const scopes = claims.scope.split(' ');
    if (!scopes.includes('openid')) throw new InsufficientScopeError('UserInfo needs an access token with scope openid.', 'openid');
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
      // This server does not verify addresses; saying so keeps clients from trusting them for account linking.
      out.email_verified = false;
    }
    return out;
  };

  const userinfoDoc = (method: string) => ({
    tags: ['oidc'],
    security: SECURITY.bearer,
    summary: `OpenID Connect UserInfo (${method})`,
    response: { 200: userinfoSchema, ...errors },
  });
  app.get('/userinfo', { preHandler: bearer, config: RESOURCE, schema: userinfoDoc('GET') }, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    return userinfo(request.accessToken!);
  });
  app.post(
    '/userinfo',
    { preHandler: requireBearer(services.tokens, { allowBody: true }), config: RESOURCE, schema: userinfoDoc('POST') },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return userinfo(request.accessToken!);
    },
  );
};
