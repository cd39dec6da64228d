/**
 * JWTs this server signs: RFC 9068 access tokens and OIDC ID tokens (claims
 * built by pure functions, signed with jose), and local verification of
 * access tokens with jose, its errors translated by `err.code`.
 */
import { createHash } from 'node:crypto';
import { CompactSign, compactVerify, jwtVerify, type CryptoKey, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { invalidToken, isOAuthError, type OAuthError } from '../errors.js';
import type { Client, User } from '../storage/types.js';
import type { AccessTokenClaims, ActorClaim } from './types.js';

const encoder = new TextEncoder();

export interface ClaimContext {
  issuer: string;
  /** Epoch seconds. */
  iat: number;
  ttlSeconds: number;
}

/**
 * RFC 9068 §2.2 claims. `sub` is the user id, or the client_id for a
 * client acting on its own behalf (§2.2: client credentials). Users' tokens
 * also carry `roles` and `preferred_username` (§2.2.3.1 allows identity
 * claims; the sample API greets the user by it without a lookup).
 */
export function accessTokenClaims(
  input: {
    client: Client;
    user: User | null;
    scopes: readonly string[];
    authTime?: number | null | undefined;
    audience: string;
    jti: string;
    /** RFC 9449 §6.1: bind the token to this DPoP key. */
    dpopJkt?: string | null;
    /** RFC 8693 §4.1: who acts for the subject (token exchange). */
    act?: ActorClaim | undefined;
  },
  ctx: ClaimContext,
): AccessTokenClaims {
  const claims: AccessTokenClaims = {
    iss: ctx.issuer,
    sub: input.user ? input.user.id : input.client.clientId,
    aud: input.audience,
    client_id: input.client.clientId,
    scope: input.scopes.join(' '),
    iat: ctx.iat,
    exp: ctx.iat + ctx.ttlSeconds,
    jti: input.jti,
  };
  if (input.user) {
    claims.roles = [...input.user.roles];
    claims.preferred_username = input.user.username;
    if (input.authTime !== undefined && input.authTime !== null) claims.auth_time = input.authTime;
  }
  if (input.dpopJkt) claims.cnf = { jkt: input.dpopJkt };
  // RFC 8693 §4.1: a delegated token names who acts for the subject.
  if (input.act !== undefined) claims.act = input.act;
  return claims;
}

/**
 * OIDC Core §3.1.3.6 `at_hash`: the left half of the SHA-256 of the access
 * token's ASCII octets (SHA-256 because the ID token is RS256), base64url.
 */
export function atHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url');
}

export interface IdTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  azp: string;
  auth_time?: number;
  nonce?: string;
  acr?: string;
  amr?: string[];
  /** The browser session (Back-Channel Logout §2.4, Front-Channel Logout §3): opaque, not the cookie. */
  sid?: string;
  at_hash: string;
}

/** OIDC Core §2 and §3.1.3.6: the ID token of a user for one client. */
export function idTokenClaims(
  input: {
    client: Client;
    user: User;
    accessToken: string;
    nonce?: string | undefined;
    authTime: number | null;
    amr?: readonly string[] | undefined;
    acr?: string | undefined;
    sid?: string | undefined;
  },
  ctx: ClaimContext,
): IdTokenClaims {
  const claims: IdTokenClaims = {
    iss: ctx.issuer,
    sub: input.user.id,
    aud: input.client.clientId,
    exp: ctx.iat + ctx.ttlSeconds,
    iat: ctx.iat,
    // §2: azp is the party the token was issued to; with one audience it is
    // optional, but it lets a relying party check it without special cases.
    azp: input.client.clientId,
    at_hash: atHash(input.accessToken),
  };
  if (input.authTime !== null) claims.auth_time = input.authTime;
  if (input.nonce !== undefined) claims.nonce = input.nonce;
  // OIDC Core §2: the authentication context class achieved and the methods used.
  if (input.acr !== undefined) claims.acr = input.acr;
  if (input.amr !== undefined && input.amr.length > 0) claims.amr = [...input.amr];
  if (input.sid !== undefined) claims.sid = input.sid;
  return claims;
}

/** The event of a logout token (Back-Channel Logout §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface LogoutTokenClaims extends JWTPayload {
  iss: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
  sub: string;
  sid: string;
  events: { [BACKCHANNEL_LOGOUT_EVENT]: Record<string, never> };
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.4: the claims of a logout token
 * telling `clientId` that the session `sid` of user `sub` ended. Always
 * `sub` and `sid`; never a `nonce` (§2.4: it would let the token pass for an
 * ID token); `exp` `ctx.ttlSeconds` after `iat`.
 */
export function logoutTokenClaims(input: { clientId: string; sub: string; sid: string; jti: string }, ctx: ClaimContext): LogoutTokenClaims {
  return {
    iss: ctx.issuer,
    aud: input.clientId,
    iat: ctx.iat,
    exp: ctx.iat + ctx.ttlSeconds,
    jti: input.jti,
    sub: input.sub,
    sid: input.sid,
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
  };
}

/**
 * Signs `payload` as a compact JWS (RFC 7515 §7.1) with jose, on a key
 * imported once (`keys.ts`) and a header built once per key.
 */
export function signJwt(payload: object, key: CryptoKey, header: { alg: string; typ: string; kid: string }): Promise<string> {
  return new CompactSign(encoder.encode(JSON.stringify(payload))).setProtectedHeader(header).sign(key);
}

/** Translates a jose error (by `err.code`, never the message) into a safe `invalid_token`. */
export function joseToInvalidToken(err: unknown): OAuthError {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalidToken('The access token expired.', err);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: unknown }).claim;
      if (claim === 'typ') return invalidToken('The token is not an access token (typ must be at+jwt, RFC 9068 §2.1).', err);
      if (claim === 'iss') return invalidToken('The access token was issued by another issuer.', err);
      if (claim === 'aud') return invalidToken('The access token is not meant for this resource (aud).', err);
      if (claim === 'nbf') return invalidToken('The access token is not valid yet.', err);
      return invalidToken(`The access token has a missing or invalid "${typeof claim === 'string' ? claim : 'unknown'}" claim.`, err);
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalidToken('The access token signature is invalid.', err);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalidToken('The access token is signed with an algorithm this server does not use.', err);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return invalidToken('The access token is malformed.', err);
    default:
      return invalidToken('The access token is invalid.', err);
  }
}

/** Three base64url segments: the shape of a compact JWS. */
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The longest JWT this server reads (its own are far shorter). */
export const MAX_JWT_LENGTH = 8192;

export function looksLikeJwt(token: string): boolean {
  return token.length <= MAX_JWT_LENGTH && JWS_SHAPE.test(token);
}

export interface VerifyOptions {
  issuer: string;
  /** `aud` must contain this value, or one of these (jose `audience`). */
  audience?: string | string[];
  /** Expected `typ` header (RFC 9068 §4: `at+jwt`); undefined accepts any (revocation of ID tokens). */
  typ?: string;
  algorithms: readonly string[];
  currentDate: Date;
  requiredClaims?: string[];
  /** The public key for a `kid`, or null when there is none. */
  resolveKey(kid: string): Promise<{ alg: string; key: CryptoKey } | null>;
}

/**
 * Verifies a JWT signed by this server: structure, `alg` against the key's
 * own algorithm (never the header's say-so: no `alg: none`, no algorithm
 * confusion), signature, `typ`, `iss`, `aud`, `exp`. Throws `invalid_token`.
 */
export async function verifyJwt(token: string, options: VerifyOptions): Promise<{ payload: JWTPayload; header: JWTHeaderParameters }> {
  if (!looksLikeJwt(token)) throw invalidToken('The access token is malformed.');
  try {
    const { payload, protectedHeader } = await jwtVerify(
      token,
      keyOf(options),
      {
        issuer: options.issuer,
        ...(options.audience === undefined ? {} : { audience: options.audience }),
        ...(options.typ === undefined ? {} : { typ: options.typ }),
        algorithms: [...options.algorithms],
        currentDate: options.currentDate,
        requiredClaims: options.requiredClaims ?? [],
      },
    );
    return { payload, header: protectedHeader };
  } catch (err) {
    if (isOAuthError(err)) throw err;
    throw joseToInvalidToken(err);
  }
}

/** The key a token's header names, by `kid`, only for the algorithm that key is for (no `alg` confusion). */
function keyOf(options: Pick<VerifyOptions, 'resolveKey'>) {
  return async (header: JWTHeaderParameters): Promise<CryptoKey> => {
    if (typeof header.kid !== 'string') throw invalidToken('The access token has no key id (kid).');
    const found = await options.resolveKey(header.kid);
    if (!found) throw invalidToken('The access token is signed with an unknown key.');
    if (found.alg !== header.alg) throw invalidToken('The access token algorithm does not match its key.');
    return found.key;
  };
}

/**
 * Verifies that a JWT was signed by this server (one of its published keys,
 * the key's own algorithm), with this `typ` header and `iss`, but not when
 * it expires: for a token that names someone after its lifetime, such as an
 * `id_token_hint` (OIDC Core §3.1.2.1: an ID token "previously issued").
 * Throws `invalid_token`.
 */
export async function verifyJwtSignature(
  token: string,
  options: Pick<VerifyOptions, 'issuer' | 'algorithms' | 'resolveKey'> & { typ: string },
): Promise<{ payload: JWTPayload; header: JWTHeaderParameters }> {
  if (!looksLikeJwt(token)) throw invalidToken('The token is malformed.');
  let verified: Awaited<ReturnType<typeof compactVerify>>;
  try {
    verified = await compactVerify(token, keyOf(options), { algorithms: [...options.algorithms] });
  } catch (err) {
    if (isOAuthError(err)) throw err;
    throw joseToInvalidToken(err);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder().decode(verified.payload));
  } catch (err) {
    throw invalidToken('The token is malformed.', err);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalidToken('The token is malformed.');
  if (verified.protectedHeader.typ !== options.typ) throw invalidToken(`The token is not of type ${options.typ}.`);
  if ((payload as JWTPayload).iss !== options.issuer) throw invalidToken('The token was issued by another issuer.');
  return { payload: payload as JWTPayload, header: verified.protectedHeader };
}

/** RFC 8693 §4.1 `act`, as this server writes it: `sub`, and the earlier actor nested in `act`. */
export function isActorClaim(value: unknown): value is ActorClaim {
  if (typeof value !== 'object' || value === null) return false;
  const { sub, act } = value as { sub?: unknown; act?: unknown };
  return typeof sub === 'string' && (act === undefined || isActorClaim(act));
}

/** The claims every access token must carry, with their JSON types (RFC 9068 §2.2). */
export function asAccessTokenClaims(payload: JWTPayload): AccessTokenClaims {
  for (const claim of ['sub', 'client_id', 'scope', 'jti'] as const) {
    if (typeof payload[claim] !== 'string') throw invalidToken(`The access token has a missing or invalid "${claim}" claim.`);
  }
  if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number') throw invalidToken('The access token has no valid iat/exp.');
  if (payload.roles !== undefined && !(Array.isArray(payload.roles) && payload.roles.every((r) => typeof r === 'string'))) {
    throw invalidToken('The access token has an invalid "roles" claim.');
  }
  return payload as AccessTokenClaims;
}
