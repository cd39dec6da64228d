/**
 * Token introspection (RFC 7662) for an authenticated client. A revocation
 * made on any instance counts at once, and a disabled or deleted user's
 * tokens are inactive (disabling or deleting a user cuts off their tokens).
 *
 * An access token is judged by the deny list while its copy is current
 * (`deny-list.ts`: subscribed without a break since a completed sync, so it
 * holds every revocation committed anywhere): no I/O, as at the resource
 * routes. While it is not (the TTL store's subscription dropped), by the
 * database: one query for the token's jti and its subject's and client's
 * cut-offs, and the user's row. A refresh token is one query, with its user,
 * shared with the other refresh tokens asked about at the same moment.
 */
import { isEnabled } from '../users/account.js';
import type { Config } from '../config.js';
import type { Client, RefreshTokenRepo, RefreshTokenWithUser, RevocationRepo, User, UserRepo } from '../storage/types.js';
import { clientSubject, type DenyList } from './deny-list.js';
import { grouped } from './grouped.js';
import { asAccessTokenClaims, isActorClaim, looksLikeJwt } from './jwt.js';
import { hashRefreshToken, isRefreshTokenShape } from './refresh-tokens.js';
import type { AccessTokenClaims, IntrospectionResponse } from './types.js';
import type { Verifier } from './verify.js';

export interface IntrospectorDeps {
  config: Pick<Config, 'issuer'>;
  now: () => number;
  verifier: Pick<Verifier, 'verify'>;
  denyList: Pick<DenyList, 'isDenied' | 'isCurrent'>;
  revocations: Pick<RevocationRepo, 'standing'>;
  refreshTokens: Pick<RefreshTokenRepo, 'findManyByHashWithUser'>;
  users: Pick<UserRepo, 'findById'>;
}

/** RFC 7662 §2.2: an inactive token is answered with nothing but this. */
const INACTIVE: IntrospectionResponse = Object.freeze({ active: false }) as IntrospectionResponse;

/** An access token of ours that is active now, and whose it is (null: a client's own token). */
interface ActiveAccessToken {
  claims: AccessTokenClaims;
  userId: string | null;
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

  /** The database's word on a verified token: revoked (by jti, subject or client cut-off) or its user gone or disabled. */
  async function refusedByDatabase(claims: AccessTokenClaims, isUserToken: boolean): Promise<boolean> {
    const [standing, user] = await Promise.all([
      revocations.standing(claims.jti, [claims.sub, clientSubject(claims.client_id)], new Date(now())),
      isUserToken ? activeUser(claims.sub) : null,
    ]);
    if (standing.revoked || (standing.notBefore !== null && claims.iat * 1000 < standing.notBefore.getTime())) return true;
    return isUserToken && user === null;
  }

  /**
   * One of our access tokens, for any of `RESOURCES`, unexpired and not
   * revoked anywhere: not its jti, not its subject's or client's cut-off,
   * and a user's token only while the user is enabled. Null otherwise.
   */
  async function activeAccessToken(token: string): Promise<ActiveAccessToken | null> {
    if (!looksLikeJwt(token)) return null;
    let claims: AccessTokenClaims;
    try {
      claims = asAccessTokenClaims((await verifier.verify(token, 'at+jwt')).payload);
    } catch {
      return null;
    }
    // Users' tokens carry roles; a client's own token (client credentials) does not.
    const isUserToken = claims.roles !== undefined;
    if (denyList.isDenied(claims.jti, claims.sub, claims.iat, claims.client_id)) return null;
    if (!denyList.isCurrent() && (await refusedByDatabase(claims, isUserToken))) return null;
    return { claims, userId: isUserToken ? claims.sub : null };
  }

  async function introspectAccessToken(token: string, caller: Client): Promise<IntrospectionResponse> {
    const active = await activeAccessToken(token);
    if (!active) return INACTIVE;
    const { claims, userId } = active;
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
    // As the token says (what a resource server verifying it locally sees too).
    if (userId !== null) {
      if (typeof claims.preferred_username === 'string') out.username = claims.preferred_username;
      out.roles = [...(claims.roles ?? [])];
    }
    if (claims.auth_time !== undefined) out.auth_time = claims.auth_time;
    if (claims.cnf) out.cnf = { jkt: claims.cnf.jkt };
    // RFC 8693 §4.1, §7.2: who acts for the user, for a token from token exchange.
    if (isActorClaim(claims.act)) out.act = claims.act;
    return out;
  }

  /**
   * Refresh tokens looked up in groups (`grouped.ts`): concurrent requests
   * share one query, each read begun after its request arrived, so a
   * rotation or revocation committed anywhere before it counts.
   */
  const findRefreshToken = grouped<string, RefreshTokenWithUser | null>(async (hashes) => {
    const found = await refreshTokens.findManyByHashWithUser(hashes);
    return hashes.map((hash) => found.get(hash) ?? null);
  });

  async function introspectRefreshToken(token: string, caller: Client): Promise<IntrospectionResponse | null> {
    const found = await findRefreshToken(hashRefreshToken(token));
    if (!found) return null;
    const { record } = found;
    // Only the client it belongs to learns anything about a refresh token.
    if (record.clientId !== caller.clientId) return INACTIVE;
    if (record.usedAt !== null || record.revokedAt !== null || record.expiresAt.getTime() <= now()) return INACTIVE;
    const user = isEnabled(found.user) ? found.user : null;
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
      return introspectAccessToken(token, caller);
    },
    activeAccessToken,
  };
}
