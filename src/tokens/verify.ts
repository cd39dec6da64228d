/**
 * Local verification of the JWTs this server signed: cached keys (`keys.ts`)
 * and the in-memory deny list (`deny-list.ts`), so a resource request costs
 * no database or TTL-store round trip.
 */
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import type { Config } from '../config.js';
import { OAuthError } from '../errors.js';
import type { DenyList } from './deny-list.js';
import { asAccessTokenClaims, verifyJwt } from './jwt.js';
import type { KeyStore } from './keys.js';
import type { AccessTokenClaims } from './types.js';

export interface VerifierDeps {
  config: Pick<Config, 'issuer' | 'accessTokenAudience'>;
  now: () => number;
  keys: Pick<KeyStore, 'snapshot' | 'verificationKey'>;
  denyList: Pick<DenyList, 'isDenied'>;
}

export interface Verifier {
  /**
   * Verifies signature, `iss` and expiry of a JWT of ours; with `typ`
   * `at+jwt` also the header type (RFC 9068 §4) and `aud`. `typ` undefined
   * accepts any of our JWTs (revocation must recognise an ID token to refuse
   * it). Rejects with `invalid_token`; never consults the deny list.
   */
  verify(token: string, typ: string | undefined): Promise<{ payload: JWTPayload; header: JWTHeaderParameters }>;
  /** `TokenService.verifyAccessToken`: `verify` as an access token, then the deny list. No I/O. */
  verifyAccessToken(token: string): Promise<AccessTokenClaims>;
}

/** Creates the verifier shared by the resource routes, introspection and revocation. */
export function createVerifier(deps: VerifierDeps): Verifier {
  const { config, now, keys, denyList } = deps;
  // Built once, not per request.
  const resolveKey = (kid: string) => keys.verificationKey(kid);

  function verify(token: string, typ: string | undefined) {
    return verifyJwt(token, {
      issuer: config.issuer,
      audience: typ === 'at+jwt' ? config.accessTokenAudience : undefined,
      typ,
      algorithms: keys.snapshot().algorithms,
      currentDate: new Date(now()),
      resolveKey,
    });
  }

  async function verifyAccessToken(token: string): Promise<AccessTokenClaims> {
    const claims = asAccessTokenClaims((await verify(token, 'at+jwt')).payload);
    if (denyList.isDenied(claims.jti, claims.sub, claims.iat, claims.client_id)) throw new OAuthError('invalid_token', 'The access token has been revoked.');
    return claims;
  }

  return { verify, verifyAccessToken };
}
