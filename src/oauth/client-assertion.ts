/**
 * JWT client assertions: `private_key_jwt` (RFC 7523 §2.2 and §3, RFC 7521
 * §4.2, OIDC Core §9). The client signs a short-lived JWT with a key whose
 * public half it registered; the server checks:
 *
 * - the signature, with jose against the client's keys (`clients/client-keys.ts`),
 *   under an allow-list of asymmetric algorithms (`CLIENT_ASSERTION_ALGS`):
 *   never `none`, never HMAC;
 * - `iss` and `sub` are the client_id (§3 items 1 and 2);
 * - `aud` names this server: its issuer, its token endpoint, or the endpoint
 *   the assertion was sent to (§3 item 3; RFC 9126 §2 lists the same three for PAR);
 * - `exp` is present and in the future (item 4), and at most
 *   `ASSERTION_LIMITS.maxLifetimeSeconds` ahead: a long-lived assertion would
 *   be a bearer credential, and its `jti` would have to be kept that long;
 * - `nbf` (item 5) and `iat` (item 6) are not in the future; a small clock
 *   skew is tolerated either way;
 * - `jti` is present (item 7) and used once: remembered in the shared TTL
 *   store until the assertion expires, set only if absent, so a replay fails
 *   on every instance, and of concurrent presentations exactly one passes.
 *
 * Every refusal is `invalid_client` (RFC 7521 §4.2.1) with a description
 * that names the rule broken, never the keys or the expected values beyond
 * what metadata already publishes.
 */
import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { ClientKeyResolver } from '../clients/client-keys.js';
import { invalidClient, OAuthError } from '../errors.js';
import type { Client, ClientJwks, KvStore } from '../storage/types.js';
import { CLIENT_ASSERTION_ALGS } from './protocol.js';

export const ASSERTION_LIMITS = {
  /** Latest `exp` accepted, seconds after now (plus the skew). */
  maxLifetimeSeconds: 300,
  /** Tolerated clock difference on `exp`, `nbf` and `iat`, seconds. */
  clockSkewSeconds: 30,
  /** Longest `jti`. */
  maxJtiLength: 256,
  /** Longest assertion (a JWS with a few claims is well under 2 KiB). */
  maxLength: 8_192,
} as const;

const JTI_PREFIX = 'client-assertion-jti:';

/**
 * The client an assertion says it is (its `sub`, RFC 7521 §4.2: the
 * client_id), read without verifying it: it says which keys verify it.
 * Throws `invalid_client` when it is not a JWT or names no client.
 */
export function assertionClientId(assertion: string): string {
  if (assertion.length > ASSERTION_LIMITS.maxLength) throw invalidClient(`The client assertion is longer than ${ASSERTION_LIMITS.maxLength} characters.`);
  let payload: JWTPayload;
  try {
    payload = decodeJwt(assertion);
  } catch {
    throw invalidClient('The client assertion is not a JWT (RFC 7523 §3).');
  }
  if (typeof payload.sub !== 'string' || payload.sub === '') throw invalidClient('The client assertion has no "sub": it must be the client_id (RFC 7523 §3).');
  return payload.sub;
}

/** Why an assertion was refused, and whether it counts as a failed authentication of the client (the lockout). */
export type AssertionOutcome = { ok: true } | { ok: false; error: OAuthError; counted: boolean };

export interface ClientAssertionVerifierDeps {
  keys: ClientKeyResolver;
  kv: KvStore;
  now: () => number;
  issuer: string;
}

export interface ClientAssertionVerifier {
  /**
   * Checks `assertion` for `client` as received at `endpointPath` (under the
   * issuer, e.g. `/token`) and, when it passes, spends its `jti`. Never
   * throws for a bad assertion: the outcome says why.
   */
  verify(client: Client, assertion: string, endpointPath: string): Promise<AssertionOutcome>;
}

const refuse = (description: string, counted = true): AssertionOutcome => ({ ok: false, error: invalidClient(description), counted });

/** A jose refusal in words (by error code, never by message). */
function describeJoseError(err: joseErrors.JOSEError, issuer: string): string {
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return 'The client assertion has expired ("exp").';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as joseErrors.JWTClaimValidationFailed).claim;
      if (claim === 'iss' || claim === 'sub') return 'The client assertion\'s "iss" and "sub" must both be the client_id (RFC 7523 §3).';
      if (claim === 'aud') return `The client assertion's "aud" must name this server: its issuer (${issuer}), its token endpoint, or the endpoint it is sent to (RFC 7523 §3).`;
      if (claim === 'exp' || claim === 'jti') return `The client assertion must have a "${claim}" claim (RFC 7523 §3).`;
      if (claim === 'nbf') return 'The client assertion is not valid yet ("nbf").';
      return `The client assertion's "${claim.slice(0, 20)}" claim is invalid.`;
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return `The client assertion's "alg" is not accepted; use one of ${CLIENT_ASSERTION_ALGS.join(', ')} (no "none", no HMAC).`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return "The client assertion's signature does not verify with the client's registered keys.";
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'None of the client\'s registered keys matches the client assertion ("kid", "alg").';
    default:
      return 'The client assertion is not a valid signed JWT (RFC 7523 §3).';
  }
}

export function createClientAssertionVerifier(deps: ClientAssertionVerifierDeps): ClientAssertionVerifier {
  const { keys, kv, now, issuer } = deps;
  const tokenEndpoint = `${issuer}/token`;
  /**
   * jose's key set per JWK Set object: it imports each key once and keeps it,
   * so a client's keys are not imported again for every request while the
   * same set (the cached client's, or the resolver's copy) is in use.
   */
  const keySets = new WeakMap<ClientJwks, ReturnType<typeof createLocalJWKSet>>();
  const keySetOf = (jwks: ClientJwks) => {
    let keySet = keySets.get(jwks);
    if (!keySet) {
      keySet = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
      keySets.set(jwks, keySet);
    }
    return keySet;
  };

  /** jose's verification against the client's keys; a key not in a fetched set fetches it again (rotation), once. */
  const verifySignedClaims = async (client: Client, assertion: string, audience: string[]): Promise<JWTPayload> => {
    const options = {
      algorithms: [...CLIENT_ASSERTION_ALGS],
      issuer: client.clientId,
      subject: client.clientId,
      audience,
      requiredClaims: ['exp', 'jti'],
      clockTolerance: ASSERTION_LIMITS.clockSkewSeconds,
      currentDate: new Date(now()),
    };
    try {
      return (await jwtVerify(assertion, keySetOf(await keys.keysOf(client)), options)).payload;
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey) || client.jwksUri === null) throw err;
      return (await jwtVerify(assertion, keySetOf(await keys.keysOf(client, { refresh: true })), options)).payload;
    }
  };

  return {
    async verify(client, assertion, endpointPath) {
      const audience = [...new Set([issuer, tokenEndpoint, `${issuer}${endpointPath}`])];
      let payload: JWTPayload;
      try {
        payload = await verifySignedClaims(client, assertion, audience);
      } catch (err) {
        if (err instanceof joseErrors.JOSEError) return refuse(describeJoseError(err, issuer));
        // The keys could not be had (jwks_uri unreachable or invalid): not the caller's failure.
        if (err instanceof OAuthError && err.error === 'invalid_client') return { ok: false, error: err, counted: false };
        throw err;
      }
      const nowSeconds = Math.floor(now() / 1000);
      const skew = ASSERTION_LIMITS.clockSkewSeconds;
      const exp = payload.exp!;
      if (exp > nowSeconds + ASSERTION_LIMITS.maxLifetimeSeconds + skew) {
        return refuse(`The client assertion's "exp" is too far ahead: at most ${ASSERTION_LIMITS.maxLifetimeSeconds} seconds from now.`);
      }
      if (payload.iat !== undefined && payload.iat > nowSeconds + skew) return refuse('The client assertion\'s "iat" is in the future.');
      const jti = payload.jti;
      if (typeof jti !== 'string' || jti.length === 0 || jti.length > ASSERTION_LIMITS.maxJtiLength) {
        return refuse(`The client assertion's "jti" must be a string of 1 to ${ASSERTION_LIMITS.maxJtiLength} characters.`);
      }
      // Kept until the assertion expires (and the skew after it), when it would be refused anyway.
      const key = JTI_PREFIX + createHash('sha256').update(`${client.clientId}\n${jti}`).digest('base64url');
      const ttlSeconds = Math.max(1, exp - nowSeconds + skew);
      if (!(await kv.setIfAbsent(key, '1', ttlSeconds))) return refuse('This client assertion was already used: each needs a new "jti" (RFC 7523 §3).');
      return { ok: true };
    },
  };
}
