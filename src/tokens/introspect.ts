/**
 * Token introspection (RFC 7662) for an authenticated client. Unlike the
 * resource routes it reads the database, so a revocation made on any
 * instance counts at once, and a disabled or deleted user's tokens are
 * inactive.
 */
import { isEnabled } from '../users/account.js';
import type { Config } from '../config.js';
import type { Client, RefreshTokenRepo, RevocationRepo, User, UserRepo } from '../storage/types.js';
import { clientSubject, type DenyList } from './deny-list.js';
import { asAccessTokenClaims, looksLikeJwt } from './jwt.js';
import { hashRefreshToken, isRefreshTokenShape } from './refresh-tokens.js';
import type { AccessTokenClaims, IntrospectionResponse } from './types.js';
import type { Verifier } from './verify.js';

export interface IntrospectorDeps {
  config: Pick<Config, 'issuer'>;
  now: () => number;
  verifier: Pick<Verifier, 'verify'>;
  denyList: Pick<DenyList, 'isDenied'>;
  revocations: Pick<RevocationRepo, 'isRevoked' | 'findSubject'>;
  refreshTokens: Pick<RefreshTokenRepo, 'findByHash'>;
  users: Pick<UserRepo, 'findById'>;
}

/** RFC 7662 §2.2: an inactive token is answered with nothing but this. */
const INACTIVE: IntrospectionResponse = Object.freeze({ active: false }) as IntrospectionResponse;

/** An access token of ours that is active now, with its user (null for a client's own token). */
interface ActiveAccessToken {
  claims: AccessTokenClaims;
  user: User | null;
}

interface Introspector {
  /** `TokenService.introspect`. */
  introspect(token: string, hint: string | undefined, caller: Client): Promise<IntrospectionResponse>;
  /** `TokenService.activeAccessToken`: the rules of introspection, for any caller. */
  activeAccessToken(token: string): Promise<ActiveAccessToken | null>;
}

/** Creates `TokenService.introspect` and `TokenService.activeAccessToken`. */
export function createIntrospector(deps: IntrospectorDeps): Introspector {
  const { config, now, verifier, denyList, revocations, refreshTokens, users } = deps;

  async function activeUser(userId: string): Promise<User | null> {
    const user = await users.findById(userId);
    return isEnabled(user) ? user : null;
  }

  /**
   * One of our access tokens, for any of `RESOURCES`, unexpired and not
   * revoked, by the database (a revocation on another instance counts at
   * once): not its jti, not its subject's or client's cut-off, and a user's
   * token only while the user is enabled. Null otherwise.
   */
  async function activeAccessToken(token: string): Promise<ActiveAccessToken | null> {
    if (!looksLikeJwt(token)) return null;
    let claims: AccessTokenClaims;
    try {
      claims = asAccessTokenClaims((await verifier.verify(token, 'at+jwt')).payload);
    } catch {
      return null;
    }
    const at = new Date(now());
    const [revoked, subject, client] = await Promise.all([
      revocations.isRevoked(claims.jti),
      revocations.findSubject(claims.sub, at),
      revocations.findSubject(clientSubject(claims.client_id), at),
    ]);
    if (revoked || denyList.isDenied(claims.jti, claims.sub, claims.iat, claims.client_id)) return null;
    for (const cutOff of [subject, client]) if (cutOff && claims.iat * 1000 < cutOff.notBefore.getTime()) return null;
    // Users' tokens carry roles; a client's own token (client credentials) does not.
    const isUserToken = claims.roles !== undefined;
    const user = isUserToken ? await activeUser(claims.sub) : null;
    if (isUserToken && !user) return null;
    return { claims, user };
  }

  async function introspectAccessToken(token: string, caller: Client): Promise<IntrospectionResponse | null> {
    if (!looksLikeJwt(token)) return null;
    const active = await activeAccessToken(token);
    if (!active) return INACTIVE;
    const { claims, user } = active;
    // SPEC: only the client the token was issued to, or a resource server, learns it is active.
    if (claims.client_id !== caller.clientId && !caller.resourceServer) return INACTIVE;
    const out: IntrospectionResponse = {
      active: true,
      // RFC 9449 §6.2: a bound token says so, and which key it is bound to.
      token_type: claims.cnf ? 'DPoP' : 'Bearer',
      scope: claims.scope,
      client_id: claims.client_id,
      sub: claims.sub,
      aud: claims.aud,
      iss: claims.iss,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
    };
    if (user) {
      out.username = user.username;
      out.roles = [...user.roles];
    }
    if (claims.auth_time !== undefined) out.auth_time = claims.auth_time;
    if (claims.cnf) out.cnf = { jkt: claims.cnf.jkt };
    return out;
  }

  async function introspectRefreshToken(token: string, caller: Client): Promise<IntrospectionResponse | null> {
    const record = await refreshTokens.findByHash(hashRefreshToken(token));
    if (!record) return null;
    // Only the client it belongs to learns anything about a refresh token.
    if (record.clientId !== caller.clientId) return INACTIVE;
    if (record.usedAt !== null || record.revokedAt !== null || record.expiresAt.getTime() <= now()) return INACTIVE;
    const user = await activeUser(record.userId);
    if (!user) return INACTIVE;
    const out: IntrospectionResponse = {
      active: true,
      token_type: 'refresh_token',
      scope: record.scope,
      client_id: record.clientId,
      sub: record.userId,
      username: user.username,
      iss: config.issuer,
      exp: Math.floor(record.expiresAt.getTime() / 1000),
      iat: Math.floor(record.createdAt.getTime() / 1000),
    };
    if (record.authTime !== null) out.auth_time = Math.floor(record.authTime.getTime() / 1000);
    return out;
  }

  return {
    async introspect(token, _hint, caller) {
      // Refresh tokens (43 base64url characters) and JWTs (dotted) cannot be
      // mistaken for each other, so the shape decides where to look and
      // `token_type_hint` (RFC 7662 §2.1: only an optimisation) is not needed.
      if (isRefreshTokenShape(token)) return (await introspectRefreshToken(token, caller)) ?? INACTIVE;
      return (await introspectAccessToken(token, caller)) ?? INACTIVE;
    },
    activeAccessToken,
  };
}
