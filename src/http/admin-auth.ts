/**
 * Authentication of the admin API (SPEC: "HTTP Basic with an admin user's
 * username and password, or a bearer access token of a user with role
 * admin").
 *
 * - No or unusable credentials: 401 with `WWW-Authenticate: Basic
 *   realm="admin", charset="UTF-8"` (RFC 7235 §3.1, RFC 7617 §2.1).
 * - Wrong username or password: 401 as well, counted per username and per
 *   client IP in the shared failed-attempt store; past the limit, 429 with
 *   `Retry-After` before any password is even checked.
 * - Right password, but the user is disabled or lacks role `admin`: 403.
 *
 * Registered as the admin scope's `onRequest` hook, so nothing of a request
 * (not even its body) is read before the caller is known to be an admin.
 * Bearer tokens are verified by a `BearerVerifier` that the token service
 * passes in; without one, a bearer credential is simply not accepted here.
 */
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { OAuthError } from '../errors.js';
import { throttleKeys } from '../security/throttle.js';
import type { Services } from '../services.js';
import type { User } from '../storage/types.js';
import { logError, sendJsonError, toOAuthError } from './errors.js';

/** Who is calling the admin API, set on `request.adminPrincipal` by the hook. */
export interface AdminPrincipal {
  method: 'basic' | 'bearer';
  /** User id (the `sub` of a bearer token). */
  userId: string;
  username: string | null;
  roles: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the admin scope's authentication hook; null elsewhere. */
    adminPrincipal: AdminPrincipal | null;
  }
}

/** What a verified bearer access token says about its user. */
export interface BearerIdentity {
  sub: string;
  roles: readonly string[];
  username?: string | null;
}

/**
 * Verifies a bearer access token (RFC 6750) for the admin API; resolves to
 * null when the token is not valid. Provided by the token service.
 */
export type BearerVerifier = (token: string, request: FastifyRequest) => Promise<BearerIdentity | null>;

export interface AdminAuthOptions {
  services: Services;
  /** Accept `Authorization: Bearer` access tokens of users with role `admin`. Absent: Basic only. */
  verifyBearer?: BearerVerifier | undefined;
}

export const ADMIN_ROLE = 'admin';
export const BASIC_CHALLENGE = 'Basic realm="admin", charset="UTF-8"';

export interface BasicCredentials {
  username: string;
  password: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// RFC 7617 §2: neither part may contain control characters.
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Decodes the credentials of an `Authorization: Basic` header value (RFC 7617
 * §2): strict base64, UTF-8, split at the first colon. Null when any of it is
 * malformed, so a broken header is "no credentials", never a server error.
 */
export function parseBasic(header: string | undefined): BasicCredentials | null {
  if (header === undefined) return null;
  const match = /^Basic +(\S+) *$/i.exec(header);
  if (!match) return null;
  const encoded = match[1]!;
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(encoded, 'base64'));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (CONTROL.test(username) || CONTROL.test(password)) return null;
  return { username, password };
}

function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  // RFC 6750 §2.1: b64token
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return match ? match[1]! : null;
}

function challenges(options: AdminAuthOptions, bearerError?: string): string[] {
  const list = [BASIC_CHALLENGE];
  if (options.verifyBearer) list.push(bearerError ? `Bearer realm="admin", error="${bearerError}"` : 'Bearer realm="admin"');
  return list;
}

function refuse(reply: FastifyReply, request: FastifyRequest, err: OAuthError, wwwAuthenticate?: string[]): FastifyReply {
  logError(request, err);
  if (wwwAuthenticate) reply.header('www-authenticate', wwwAuthenticate.length === 1 ? wwwAuthenticate[0] : wwwAuthenticate);
  return sendJsonError(reply, err);
}

/** 403 unless the user may administer this server. */
function checkAdmin(user: Pick<User, 'disabled' | 'roles'>): OAuthError | null {
  if (user.disabled) return new OAuthError('forbidden', 'This account is disabled.');
  if (!user.roles.includes(ADMIN_ROLE)) return new OAuthError('forbidden', `The admin API needs a user with role "${ADMIN_ROLE}".`);
  return null;
}

/** The admin scope's authentication hook (see the file comment). */
export function createAdminAuth(options: AdminAuthOptions): onRequestAsyncHookHandler {
  const { services } = options;

  async function verifyBasic(request: FastifyRequest, reply: FastifyReply, credentials: BasicCredentials): Promise<FastifyReply | undefined> {
    const keys = [throttleKeys.user(credentials.username), throttleKeys.ip(request.ip)];
    for (const key of keys) await services.throttle.check(key);
    const user = await services.users.verifyCredentials(credentials.username, credentials.password);
    if (!user) {
      await services.throttle.fail(...keys);
      services.metrics.loginFailed('admin_api');
      return refuse(reply, request, new OAuthError('unauthorized', 'Invalid username or password.'), challenges(options));
    }
    await services.throttle.reset(keys[0]!);
    const denied = checkAdmin(user);
    if (denied) return refuse(reply, request, denied);
    request.adminPrincipal = { method: 'basic', userId: user.id, username: user.username, roles: user.roles };
    return undefined;
  }

  async function verifyBearerToken(request: FastifyRequest, reply: FastifyReply, token: string): Promise<FastifyReply | undefined> {
    const identity = await options.verifyBearer!(token, request);
    if (!identity) {
      return refuse(reply, request, new OAuthError('invalid_token', 'The access token is invalid or expired.'), challenges(options, 'invalid_token'));
    }
    const denied = checkAdmin({ disabled: false, roles: [...identity.roles] });
    if (denied) return refuse(reply, request, denied);
    request.adminPrincipal = { method: 'bearer', userId: identity.sub, username: identity.username ?? null, roles: [...identity.roles] };
    return undefined;
  }

  return async function adminAuthentication(request, reply) {
    try {
      const header = request.headers.authorization;
      const basic = parseBasic(header);
      if (basic) return await verifyBasic(request, reply, basic);
      const token = options.verifyBearer ? bearerToken(header) : null;
      if (token) return await verifyBearerToken(request, reply, token);
      const description =
        header === undefined
          ? 'Authentication required: HTTP Basic with an admin user\'s username and password.'
          : 'Unsupported or malformed Authorization header; use HTTP Basic with an admin user\'s username and password.';
      return refuse(reply, request, new OAuthError('unauthorized', description), challenges(options));
    } catch (err) {
      // 429 from the throttle, 503 from a dead store: answered here, in this scope's dialect.
      return refuse(reply, request, toOAuthError(err));
    }
  };
}
