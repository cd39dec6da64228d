/**
 * Bearer-token authentication of resource routes (RFC 6750) and its error
 * dialect: `WWW-Authenticate: Bearer realm=…, error=…, error_description=…`
 * (§3), with no error attribute when the request carried no token at all
 * (§3.1). Tokens are verified locally by the token service: no database or
 * TTL-store round trip per request.
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { invalidRequest, invalidToken, OAuthError } from '../errors.js';
import { B64TOKEN, parseBearer } from '../security/authorization-header.js';
import type { AccessTokenClaims, TokenService } from '../tokens/types.js';
import { logError, toOAuthError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified access token, set by a resource scope's bearer preHandler; null elsewhere. */
    accessToken: AccessTokenClaims | null;
  }
}

/** No credentials at all: RFC 6750 §3.1 wants the bare challenge. */
export class MissingTokenError extends OAuthError {
  constructor() {
    super('invalid_token', 'An access token is required (Authorization: Bearer <token>).', { status: 401 });
  }
}

/**
 * The bearer token of a request: the Authorization header (§2.1) or, when
 * `allowBody`, the `access_token` form parameter (§2.2). More than one →
 * `invalid_request` (§3.1); none → `MissingTokenError`.
 */
export function extractBearerToken(request: FastifyRequest, allowBody: boolean): string {
  const header = request.headers.authorization;
  const body = request.body as Record<string, unknown> | undefined;
  // §2.2: only from a form-encoded body.
  const isForm = /^application\/x-www-form-urlencoded\b/i.test(request.headers['content-type'] ?? '');
  const fromBody = allowBody && isForm && body && typeof body === 'object' ? body.access_token : undefined;
  if (request.query && typeof request.query === 'object' && 'access_token' in request.query) {
    // §2.3 allows it but RFC 9700 §2.3 says never: tokens in URLs leak.
    throw invalidRequest('Send the access token in the Authorization header, not in the URL.');
  }
  if (header !== undefined && fromBody !== undefined) throw invalidRequest('Send the access token in one place only (RFC 6750 §3.1).');
  if (fromBody !== undefined) {
    if (typeof fromBody !== 'string' || !B64TOKEN.test(fromBody)) throw invalidToken('The access token is malformed.');
    return fromBody;
  }
  const bearer = header === undefined ? null : parseBearer(header);
  if (bearer === null) throw new MissingTokenError();
  if (bearer === 'malformed') throw invalidToken('The Authorization header is not "Bearer <token>".');
  return bearer.token;
}

/** preHandler that verifies the bearer token and sets `request.accessToken`. */
export function requireBearer(tokens: Pick<TokenService, 'verifyAccessToken'>, options: { allowBody?: boolean } = {}): preHandlerAsyncHookHandler {
  return async function bearerAuthentication(request) {
    const token = extractBearerToken(request, options.allowBody ?? false);
    request.accessToken = await tokens.verifyAccessToken(token);
  };
}

/** RFC 6750 §3: an auth-param value may hold neither `"` nor `\`, nor non-ASCII. */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '')}"`;
}

export function bearerChallenge(realm: string, err: OAuthError | null, scope?: string): string {
  const parts = [`realm=${quoted(realm)}`];
  if (err && !(err instanceof MissingTokenError)) {
    parts.push(`error=${quoted(err.error)}`, `error_description=${quoted(err.description)}`);
    if (scope) parts.push(`scope=${quoted(scope)}`);
  }
  return `Bearer ${parts.join(', ')}`;
}

/** Errors that carry the scope a route needed (RFC 6750 §3: `scope` attribute). */
export class InsufficientScopeError extends OAuthError {
  constructor(
    description: string,
    readonly scope?: string,
  ) {
    super('insufficient_scope', description);
  }
}

/** The resource scopes' error handler: RFC 6750 §3 challenge plus a JSON body of the same two fields. */
export function bearerErrorHandler(realm: string) {
  return function handleBearerError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const err = toOAuthError(error);
    logError(request, err);
    reply.code(err.status).header('cache-control', 'no-store');
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    if (err.status === 401 || err.status === 403 || err.error === 'invalid_request') {
      reply.header('www-authenticate', bearerChallenge(realm, err, err instanceof InsufficientScopeError ? err.scope : undefined));
    }
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(err.toJSON()));
  };
}
