/**
 * DPoP (RFC 9449): verifying a proof (§4.3) and binding tokens to its key
 * (§6: `cnf.jkt`, the RFC 7638 thumbprint). Used by the token endpoint
 * (every grant) and by the resource routes (`http/bearer.ts`), with the same
 * checks: compact JWS signed by the public key in its own `jwk` header, `typ`
 * `dpop+jwt`, an asymmetric algorithm of ours, `htm`/`htu` of this request,
 * a recent `iat`, the server nonce when required, `ath` and the key of the
 * token at a resource, and a `jti` never seen before on any instance (the
 * shared TTL store).
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, errors as joseErrors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { OAuthError } from '../errors.js';
import { constantTimeEqual } from '../security/constant-time.js';
import type { KvStore } from '../storage/types.js';
import type { DpopNonces } from './dpop-nonce.js';

/**
 * The proof algorithms accepted (`dpop_signing_alg_values_supported`):
 * asymmetric only (§4.3 check 5: never `none` or a MAC), as jose verifies
 * them (RSA keys of at least 2048 bits).
 */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'] as const;

/**
 * How far a proof's `iat` may lie from the server's clock, either way,
 * seconds (§4.3 check 11, §11.1): proofs are made for one request and sent
 * at once, so a minute covers clock skew and slow links. A `jti` is
 * remembered for twice this (the whole span in which its proof could pass).
 */
export const DPOP_IAT_SKEW_SECONDS = 60;

/** A `jti` longer than this is refused rather than stored (any random id is far shorter). */
const MAX_JTI_LENGTH = 256;

/** `invalid_dpop_proof` (RFC 9449 §12.2): 400 at the token endpoint; 401 in a resource's DPoP challenge. */
export const invalidDpopProof = (description: string, cause?: unknown) => new OAuthError('invalid_dpop_proof', description, { cause });

/** `use_dpop_nonce` (§8, §9): the proof must carry the nonce sent in `DPoP-Nonce`. */
export const useDpopNonce = (description: string) => new OAuthError('use_dpop_nonce', description);

/** What a proof must match besides its own rules. */
export interface ProofExpectation {
  /** `htm`: the request's method. */
  method: string;
  /** `htu`: this endpoint's URL (ISSUER + path), without query or fragment. */
  url: string;
  /** At a resource: the access token sent with it (`ath`, §4.3 check 12). */
  accessToken?: string;
  /** At a resource: the token's `cnf.jkt`; the proof must be signed by that key (§7.1). */
  jkt?: string;
}

/** A proof that passed: the thumbprint of its key. */
export interface VerifiedProof {
  jkt: string;
}

export interface DpopVerifierDeps {
  now: () => number;
  /** Where each proof's `jti` is kept until its proof could no longer pass (`setIfAbsent`: atomic across instances). */
  kv: Pick<KvStore, 'setIfAbsent'>;
  /** The server nonces; null when `DPOP_NONCE=false`. */
  nonces: Pick<DpopNonces, 'isValid'> | null;
}

export interface DpopVerifier {
  /**
   * Verifies the `DPoP` header of a request (RFC 9449 §4.3) against
   * `expected`, then records its `jti` (a replay, here or on another
   * instance, is refused). Throws `invalid_dpop_proof`, or
   * `use_dpop_nonce` when nonces are required and it lacks a valid one.
   */
  verify(header: string | string[] | undefined, expected: ProofExpectation): Promise<VerifiedProof>;
}

/** RFC 9449 §4.3 check 9: `htu` compared without query and fragment, after RFC 3986 §6.2.2/§6.2.3 normalisation (scheme and host case, default port, dot segments). */
export function normalizeHtu(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  url.search = '';
  url.hash = '';
  return url.href;
}

/** §4.2 `ath`: base64url of the SHA-256 of the access token's ASCII octets. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK: `cnf.jkt` (§6.1) and `dpop_jkt` (§10). */
export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}

/** jose's errors by code, in words a client can act on (never the proof itself). */
function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JOSEError) {
    switch (err.code) {
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return `The DPoP proof's alg is not supported; use one of ${DPOP_ALGORITHMS.join(', ')}.`;
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return 'The DPoP proof signature does not verify with its jwk.';
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
        return `The DPoP proof's ${(err as joseErrors.JWTClaimValidationFailed).claim} claim is missing or invalid.`;
      case 'ERR_JWT_EXPIRED':
        return 'The DPoP proof has expired.';
      default:
        break;
    }
  }
  return 'The DPoP proof is not a valid dpop+jwt signed with the public key in its jwk header.';
}

const isString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

export function createDpopVerifier(deps: DpopVerifierDeps): DpopVerifier {
  const { now, kv, nonces } = deps;
  const algorithms = [...DPOP_ALGORITHMS];

  async function signedProof(proof: string): Promise<{ payload: JWTPayload; jwk: JWK }> {
    try {
      // §4.3 checks 2–7: one compact JWS; typ dpop+jwt; an allowed asymmetric alg;
      // the signature verifies with the header's jwk, which must be a public key (EmbeddedJWK refuses a private one).
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms,
        requiredClaims: ['jti', 'htm', 'htu', 'iat'],
        currentDate: new Date(now()),
      });
      return { payload, jwk: protectedHeader.jwk! };
    } catch (err) {
      throw invalidDpopProof(describeJoseError(err), err);
    }
  }

  return {
    async verify(header, expected) {
      // §4.3 check 1: exactly one DPoP header (Node joins repeats with ", ", which no compact JWS contains).
      if (header === undefined || header === '') throw invalidDpopProof('A DPoP proof is required (the DPoP header).');
      if (typeof header !== 'string' || header.includes(',')) throw invalidDpopProof('Send exactly one DPoP header.');
      const { payload, jwk } = await signedProof(header);
      const { jti, htm, htu, iat } = payload as { jti: unknown; htm: unknown; htu: unknown; iat: number };
      if (!isString(jti) || jti.length > MAX_JTI_LENGTH) throw invalidDpopProof('The DPoP proof needs a jti of at most 256 characters.');
      if (htm !== expected.method) throw invalidDpopProof(`The DPoP proof's htm must be ${expected.method}.`);
      if (!isString(htu) || normalizeHtu(htu) !== expected.url) throw invalidDpopProof(`The DPoP proof's htu must be ${expected.url}.`);
      const skew = Math.abs(Math.floor(now() / 1000) - iat);
      if (skew > DPOP_IAT_SKEW_SECONDS) throw invalidDpopProof(`The DPoP proof's iat is more than ${DPOP_IAT_SKEW_SECONDS} seconds from the server's clock.`);

      const jkt = await jwkThumbprint(jwk);
      if (expected.accessToken !== undefined) {
        // §4.3 check 12 and §7.1: the proof is for this token, and signed by the key the token is bound to.
        if (!constantTimeEqual(payload.ath, accessTokenHash(expected.accessToken))) throw invalidDpopProof("The DPoP proof's ath does not match the access token.");
      }
      if (expected.jkt !== undefined && !constantTimeEqual(jkt, expected.jkt)) {
        throw invalidDpopProof('The DPoP proof is signed by another key than the one the access token is bound to.');
      }
      // §8, §9: the server nonce, once everything the client could not fix by retrying has passed.
      if (nonces !== null && !(await nonces.isValid(payload.nonce))) {
        throw useDpopNonce(payload.nonce === undefined ? 'Send the DPoP-Nonce value as the proof nonce.' : 'The DPoP nonce has expired; use the new DPoP-Nonce value.');
      }
      // §11.1: a proof is good once. The key is scoped by the signing key, so one client's ids never collide with another's.
      const replayKey = `dpop-jti:${createHash('sha256').update(`${jkt}\n${jti}`).digest('base64url')}`;
      if (!(await kv.setIfAbsent(replayKey, '1', 2 * DPOP_IAT_SKEW_SECONDS + 1))) throw invalidDpopProof('This DPoP proof was already used; make a new one for each request.');
      return { jkt };
    },
  };
}
