/**
 * Authentication of the admin API and `/metrics` (SPEC "Admin API"): HTTP
 * Basic with an admin user's username and password, or a bearer access
 * token that carries the scope `admin` (granted only to admins, only when
 * asked for by name, only to clients an operator registered for it; see
 * `oauth/scope.ts`). An admin's token of any other scope opens nothing
 * here: an app the admin signed in to must not become an admin API key.
 *
 * - No or unusable credentials: 401 with `WWW-Authenticate: Basic
 *   realm="admin", charset="UTF-8"` (RFC 7235 §3.1, RFC 7617 §2.1) and a
 *   Bearer challenge.
 * - Passwords go through the server's one sign-in path (`users.signIn`):
 *   throttled per account and address with the login page's counters; a
 *   wrong one is 401, past the limit 429 with `Retry-After`.
 * - Right credentials, but the user is disabled or lacks role `admin`: 403.
 * - Basic is a password alone: refused (403) for a user with an
 *   authenticator app, and for every admin when `REQUIRE_MFA_FOR_ADMINS` is
 *   set. They use a bearer token with the scope `admin`, whose sign-in asked
 *   for the second factor.
 * - Bearer tokens are verified locally and must carry the scope `admin`
 *   (else 403); then the user's CURRENT roles are read (a role removed a
 *   minute ago must not linger for the token's lifetime). A client's own
 *   token (client credentials) has no user: 403.
 *
 * Registered as the scope's `onRequest` hook, so nothing of a request (not
 * even its body) is read before the caller is known to be an admin.
 */
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { ChangeContext } from '../audit/events.js';
import { OAuthError } from '../errors.js';
import { logError, sendJsonError, toOAuthError } from '../http/errors.js';
import { ADMIN_SCOPE } from '../oauth/scope.js';
import { parseBasic, parseBearer } from '../security/authorization-header.js';
import type { Services } from '../services.js';
import { ADMIN_ROLE, isAdmin } from '../users/account.js';

/** Who is calling the admin API, set on `request.adminPrincipal` by the hook. */
export interface AdminPrincipal {
  method: 'basic' | 'bearer';
  /** User id (the `sub` of a bearer token). */
  userId: string;
  username: string;
  roles: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the admin scope's authentication hook; null elsewhere. */
    adminPrincipal: AdminPrincipal | null;
  }
}

/** Who changes something through the admin API, and from where (the audit trail's actor and address). */
export function changeContextOf(request: FastifyRequest): ChangeContext {
  const principal = request.adminPrincipal!;
  return { actor: { type: 'user', id: principal.userId, username: principal.username }, ip: request.ip };
}

const CHALLENGES = ['Basic realm="admin", charset="UTF-8"', 'Bearer realm="admin"'];

const NOT_ADMIN = new OAuthError('forbidden', `The admin API needs a user with role "${ADMIN_ROLE}".`);
const NO_ADMIN_SCOPE = new OAuthError('forbidden', `The admin API needs an access token with the scope "${ADMIN_SCOPE}".`);
const DISABLED = new OAuthError('forbidden', 'This account is disabled.');

function refuse(reply: FastifyReply, request: FastifyRequest, err: OAuthError, challenges?: string[]): FastifyReply {
  logError(request, err);
  if (challenges) reply.header('www-authenticate', challenges);
  return sendJsonError(reply, err);
}

/** The admin scope's authentication hook (see the file comment). */
const PASSWORD_NOT_ENOUGH = new OAuthError(
  'forbidden',
  'This account signs in with a second factor, which HTTP Basic cannot carry: use a bearer access token with the scope "admin".',
);

export function createAdminAuth({ config, users, secondFactor, tokens }: Pick<Services, 'config' | 'users' | 'secondFactor' | 'tokens'>): onRequestAsyncHookHandler {
  async function withPassword(request: FastifyRequest, reply: FastifyReply, username: string, password: string): Promise<FastifyReply | undefined> {
    const result = await users.signIn(username, password, { ip: request.ip, source: 'admin_api' });
    if (!result.ok) {
      if (result.reason === 'disabled') return refuse(reply, request, DISABLED);
      return refuse(reply, request, new OAuthError('unauthorized', 'Invalid username or password.'), CHALLENGES);
    }
    if (!isAdmin(result.user)) return refuse(reply, request, NOT_ADMIN);
    if (config.requireMfaForAdmins || (await secondFactor.isEnrolled(result.user.id))) return refuse(reply, request, PASSWORD_NOT_ENOUGH);
    request.adminPrincipal = { method: 'basic', userId: result.user.id, username: result.user.username, roles: result.user.roles };
    return undefined;
  }

  async function withBearer(request: FastifyRequest, reply: FastifyReply, token: string): Promise<FastifyReply | undefined> {
    // Not a resource of RESOURCES but the authorization server's own API: any of its access tokens, gated by the admin scope below.
    const claims = await tokens.verifyAccessToken(token, { anyResource: true }).catch(() => null);
    const invalid = () =>
      refuse(reply, request, new OAuthError('invalid_token', 'The access token is invalid or expired.'), [CHALLENGES[0]!, 'Bearer realm="admin", error="invalid_token"']);
    if (!claims) return invalid();
    // RFC 9449 §7.2: a DPoP-bound token is never good as a bearer token (the admin API takes no DPoP proofs).
    if (claims.cnf !== undefined) return invalid();
    // A client's own token (client credentials) carries no roles: it speaks for no user.
    if (claims.roles === undefined) return refuse(reply, request, NOT_ADMIN);
    if (!claims.scope.split(' ').includes(ADMIN_SCOPE)) return refuse(reply, request, NO_ADMIN_SCOPE);
    const user = await users.findEnabled(claims.sub);
    if (!user) return invalid();
    if (!isAdmin(user)) return refuse(reply, request, NOT_ADMIN);
    request.adminPrincipal = { method: 'bearer', userId: user.id, username: user.username, roles: user.roles };
    return undefined;
  }

  return async function adminAuthentication(request, reply) {
    const header = request.headers.authorization;
    try {
      if (header !== undefined) {
        const basic = parseBasic(header);
        // RFC 7617 §2: neither part may contain control characters; an empty username is no username.
        if (basic !== null && basic !== 'malformed' && basic.user !== '' && !/[\x00-\x1f\x7f]/.test(basic.user + basic.password)) {
          return await withPassword(request, reply, basic.user, basic.password);
        }
        const bearer = parseBearer(header);
        if (bearer !== null && bearer !== 'malformed') return await withBearer(request, reply, bearer.token);
      }
    } catch (err) {
      // 429 from the throttle, 503 from a dead store: answered here, in this scope's dialect.
      return refuse(reply, request, toOAuthError(err));
    }
    const description =
      header === undefined
        ? "Authentication required: HTTP Basic with an admin user's username and password."
        : "Unsupported or malformed Authorization header; use HTTP Basic with an admin user's username and password.";
    return refuse(reply, request, new OAuthError('unauthorized', description), CHALLENGES);
  };
}
