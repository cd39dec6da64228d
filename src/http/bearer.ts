/**
 * Access-token authentication of resource routes, Bearer (RFC 6750) and
 * DPoP (RFC 9449 §7), and its error dialect: `WWW-Authenticate: Bearer
 * realm=…, resource_metadata=…, error=…, error_description=…, scope=…`
 * (RFC 6750 §3, RFC 9728 §5.1), then `DPoP [error=…, error_description=…,]
 * algs=…` (RFC 9449 §7.1); the error goes in the challenge of the scheme
 * the request used, and none when it carried no token at all (§3.1). Each
 * route says which resource it is (the audience its tokens must name) and
 * the scope it needs. Tokens are verified locally by the token service: no
 * database or TTL-store round trip per request, except a DPoP proof's `jti`
 * (one atomic write to the TTL store, so a replay fails on every instance).
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { invalidRequest, invalidToken, OAuthError, protocolText } from '../errors.js';
import { resourceMetadataUrl } from '../oauth/resource-uri.js';
import { B64TOKEN, parseAccessTokenHeader } from '../security/authorization-header.js';
import type { Services } from '../services.js';
import { DPOP_ALGORITHMS, normalizeHtu } from '../tokens/dpop.js';
import type { AccessTokenClaims, AudienceRequirement } from '../tokens/types.js';
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
    super('invalid_token', 'An access token is required (Authorization: Bearer <token>, or DPoP <token> with a DPoP proof).', { status: 401 });
  }
}

/** An access token as presented: the token and the scheme it came in (a form parameter is Bearer). */
export interface PresentedToken {
  scheme: 'Bearer' | 'DPoP';
  token: string;
}

/**
 * The access token of a request: the Authorization header, Bearer (RFC 6750
 * §2.1) or DPoP (RFC 9449 §7.1), or, when `allowBody`, the `access_token`
 * form parameter (§2.2, Bearer). More than one → `invalid_request` (§3.1);
 * none → `MissingTokenError`.
 */
export function extractAccessToken(request: FastifyRequest, allowBody: boolean): PresentedToken {
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
    // A parameter sent twice is a malformed request, not a bad token (§3.1).
    if (Array.isArray(fromBody)) throw invalidRequest('Send access_token once (RFC 6750 §3.1).');
    if (typeof fromBody !== 'string' || !B64TOKEN.test(fromBody)) throw invalidToken('The access token is malformed.');
    return { scheme: 'Bearer', token: fromBody };
  }
  const presented = header === undefined ? null : parseAccessTokenHeader(header);
  if (presented === null) throw new MissingTokenError();
  if (presented === 'malformed') throw invalidToken('The Authorization header is not "Bearer <token>" or "DPoP <token>".');
  return presented;
}

/** What a route's challenges say besides the error (RFC 6750 §3, RFC 9728 §5.1). */
export interface BearerChallenge {
  realm: string;
  /** The route's protected resource metadata URL (RFC 9728 §3.1), for a route that is a resource of `RESOURCES`. */
  resourceMetadata?: string | undefined;
  /** The scope the route needs (RFC 6750 §3), when it needs one. */
  scope?: string | undefined;
}

/**
 * How a route takes bearer tokens: the audience its tokens must have
 * (`{ resource }`: the resource the route is, one of `RESOURCES`; `{
 * anyResource: true }`: the authorization server's own endpoints, see
 * `AudienceRequirement`), and optionally:
 *
 * - `scope`: the scopes a request needs, space-separated. A token without
 *   all of them is 403 `insufficient_scope`; every challenge of the route
 *   names them (RFC 6750 §3), so a client knows what to ask for.
 * - `allowBody`: the token may come as the form parameter `access_token`
 *   (RFC 6750 §2.2; UserInfo's POST).
 */
export type BearerOptions = AudienceRequirement & { scope?: string; allowBody?: boolean };

/** A route's bearer authentication, to spread into its options: `{ ...requireBearer(services, { resource }), config, schema }`. */
export interface BearerRoute {
  /** Verifies the token (locally, no I/O), checks the scope, sets `request.accessToken`. */
  preHandler: preHandlerAsyncHookHandler;
  /** Every error of the route in the RFC 6750 dialect, with the route's `resource_metadata` and `scope`. */
  errorHandler: (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply;
}

/**
 * The bearer authentication of one route. Everything about the route is
 * worked out here, once, when the route is built: the configured spelling
 * of its resource (a resource that is not one of `RESOURCES` throws: no
 * token could ever be for it), its metadata URL and its challenge. The
 * sample MCP server mounts with
 * `{ ...requireBearer(services, { resource: `${services.config.issuer}/mcp` }), … }`.
 */
export function requireBearer(services: Pick<Services, 'config' | 'tokens' | 'resources' | 'dpop'>, options: BearerOptions): BearerRoute {
  let audience: AudienceRequirement = { anyResource: true };
  let resourceMetadata: string | undefined;
  if ('resource' in options) {
    const identifier = services.resources.find(options.resource);
    if (identifier === null) throw new Error(`requireBearer: ${options.resource} is not one of RESOURCES (${services.resources.identifiers.join(' ')})`);
    audience = { resource: identifier };
    resourceMetadata = resourceMetadataUrl(identifier);
  }
  const needed = options.scope?.split(' ').filter(Boolean) ?? [];
  const scope = needed.length > 0 ? needed.join(' ') : undefined;
  const allowBody = options.allowBody ?? false;
  const { tokens, dpop } = services;
  const issuer = services.config.issuer;

  /** RFC 9449 §7.1: a DPoP-bound token only with a proof by its key, for this request and this token. */
  async function checkSenderConstraint(request: FastifyRequest, reply: FastifyReply, presented: PresentedToken, claims: AccessTokenClaims): Promise<void> {
    const jkt = claims.cnf?.jkt;
    if (presented.scheme === 'Bearer') {
      // §7.2: sent as Bearer, a bound token would be usable by anyone who saw it.
      if (jkt !== undefined) throw invalidToken('This access token is DPoP-bound: send it as "Authorization: DPoP <token>" with a DPoP proof.');
      return;
    }
    if (jkt === undefined) throw invalidToken('This access token is not DPoP-bound: send it as "Authorization: Bearer <token>".');
    if (dpop.nonces !== null) reply.header('dpop-nonce', await dpop.nonces.current());
    const path = request.url.split('?', 1)[0]!;
    const url = normalizeHtu(`${issuer}${path}`);
    if (url === null) throw invalidToken('The request URL cannot be checked against a DPoP proof.');
    await dpop.verifier.verify(request.headers.dpop, { method: request.method, url, accessToken: presented.token, jkt });
  }

  return {
    async preHandler(request, reply) {
      const presented = extractAccessToken(request, allowBody);
      const claims = await tokens.verifyAccessToken(presented.token, audience);
      await checkSenderConstraint(request, reply, presented, claims);
      if (scope !== undefined) {
        const granted = claims.scope.split(' ');
        // RFC 6750 §3.1: a valid token without the needed scope is 403 insufficient_scope, naming the scope.
        if (!needed.every((s) => granted.includes(s))) throw new InsufficientScopeError(`This resource needs an access token with scope ${scope}.`, scope);
      }
      request.accessToken = claims;
    },
    errorHandler: bearerErrorHandler({ realm: services.config.issuer, resourceMetadata, scope }),
  };
}

/** RFC 6750 §3: an auth-param value may hold neither `"` nor `\`, nor non-ASCII. */
function quoted(value: string): string {
  return `"${protocolText(value)}"`;
}

/**
 * The `WWW-Authenticate` value for `err` on a route: `realm`, the
 * resource's metadata URL (RFC 9728 §5.1) on every answer, the error and
 * its description unless the request carried no token at all (RFC 6750
 * §3.1), and the scope: the one an `InsufficientScopeError` names (step-up),
 * else the route's.
 */
export function bearerChallenge(challenge: BearerChallenge, err: OAuthError | null, scheme: PresentedToken['scheme'] = 'Bearer'): string {
  const errorParts = err && !(err instanceof MissingTokenError) ? [`error=${quoted(err.error)}`, `error_description=${quoted(err.description)}`] : [];
  const parts = [`realm=${quoted(challenge.realm)}`];
  if (challenge.resourceMetadata !== undefined) parts.push(`resource_metadata=${quoted(challenge.resourceMetadata)}`);
  if (scheme === 'Bearer') parts.push(...errorParts);
  const scope = err instanceof InsufficientScopeError && err.scope !== undefined ? err.scope : challenge.scope;
  if (scope !== undefined) parts.push(`scope=${quoted(scope)}`);
  // RFC 9449 §7.1: the DPoP challenge names the proof algorithms; it carries the error when the request used DPoP.
  const dpop = scheme === 'DPoP' ? [...errorParts] : [];
  if (scheme === 'DPoP' && err instanceof InsufficientScopeError && scope !== undefined) dpop.push(`scope=${quoted(scope)}`);
  dpop.push(`algs=${quoted(DPOP_ALGORITHMS.join(' '))}`);
  return `Bearer ${parts.join(', ')}, DPoP ${dpop.join(', ')}`;
}

/**
 * 403 `insufficient_scope` (RFC 6750 §3.1). `scope`: the scope the request
 * needs, named in the challenge so a client can ask for it (step-up);
 * leave it out only when no scope would help (a role the user lacks).
 */
export class InsufficientScopeError extends OAuthError {
  constructor(
    description: string,
    readonly scope?: string,
  ) {
    super('insufficient_scope', description);
  }
}

/** RFC 6750 §3 challenge plus a JSON body of the same two fields: a route's (`requireBearer`) or a resource scope's. */
export function bearerErrorHandler(challenge: BearerChallenge) {
  return function handleBearerError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    let err = toOAuthError(error);
    // RFC 9449 §7.1: at a resource a refused proof is a 401 challenge, like a refused token.
    if (err.error === 'invalid_dpop_proof' || err.error === 'use_dpop_nonce') err = new OAuthError(err.error, err.description, { status: 401, cause: err });
    logError(request, err);
    reply.code(err.status).header('cache-control', 'no-store');
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    const scheme = /^DPoP(\s|$)/i.test(request.headers.authorization ?? '') ? 'DPoP' : 'Bearer';
    if (err.status === 401 || err.status === 403 || err.error === 'invalid_request') reply.header('www-authenticate', bearerChallenge(challenge, err, scheme));
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(err.toProtocolJSON()));
  };
}
