/**
 * Local verification of the JWTs this server signed: cached keys (`keys.ts`)
 * and the in-memory deny list (`deny-list.ts`), so a resource request costs
 * no database or TTL-store round trip.
 */
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import type { Config } from '../config.js';
import { OAuthError } from '../errors.js';
import type { ResourceRegistry } from '../oauth/resources.js';
import type { DenyList } from './deny-list.js';
import { asAccessTokenClaims, verifyJwt } from './jwt.js';
import type { KeyStore } from './keys.js';
import type { AccessTokenClaims, AudienceRequirement } from './types.js';

export interface VerifierDeps {
  config: Pick<Config, 'issuer'>;
  now: () => number;
  keys: Pick<KeyStore, 'snapshot' | 'verificationKey'>;
  denyList: Pick<DenyList, 'isDenied'>;
  resources: Pick<ResourceRegistry, 'identifiers' | 'find'>;
}

export interface Verifier {
  /**
   * Verifies signature, `iss` and expiry of a JWT of ours; with `typ`
   * `at+jwt` also the header type (RFC 9068 §4) and that `aud` names `audience`
   * (default: any of `RESOURCES`). `typ` undefined accepts any of our JWTs
   * (revocation must recognise an ID token to refuse it). Rejects with
   * `invalid_token`; never consults the deny list.
   */
  verify(token: string, typ: string | undefined, audience?: AudienceRequirement): Promise<{ payload: JWTPayload; header: JWTHeaderParameters }>;
  /** `TokenService.verifyAccessToken`: `verify` as an access token, then the deny list. No I/O. */
  verifyAccessToken(token: string, audience: AudienceRequirement): Promise<AccessTokenClaims>;
}

/** Creates the verifier shared by the resource routes, introspection and revocation. */
export function createVerifier(deps: VerifierDeps): Verifier {
  const { config, now, keys, denyList, resources } = deps;
  // Built once, not per request.
  const resolveKey = (kid: string) => keys.verificationKey(kid);
  const anyResource = [...resources.identifiers];
  /**
   * The configured identifier of each resource a caller named, resolved on
   * first use (RFC 8707 spellings) and remembered: a route names its
   * resource with a constant, so a request costs one map read. Callers are
   * code, never request input, so the map stays as small as the routes.
   */
  const named = new Map<string, string>(resources.identifiers.map((identifier) => [identifier, identifier]));

  function audienceOf(audience: AudienceRequirement): string | string[] {
    if ('anyResource' in audience) return anyResource;
    let identifier = named.get(audience.resource);
    if (identifier === undefined) {
      const found = resources.find(audience.resource);
      if (found === null) throw new Error(`${audience.resource} is not one of RESOURCES: no access token of this server is for it`);
      identifier = found;
      named.set(audience.resource, identifier);
    }
    return identifier;
  }

  function verify(token: string, typ: string | undefined, audience: AudienceRequirement = { anyResource: true }) {
    return verifyJwt(token, {
      issuer: config.issuer,
      audience: typ === 'at+jwt' ? audienceOf(audience) : undefined,
      typ,
      algorithms: keys.snapshot().algorithms,
      currentDate: new Date(now()),
      resolveKey,
    });
  }

  async function verifyAccessToken(token: string, audience: AudienceRequirement): Promise<AccessTokenClaims> {
    const claims = asAccessTokenClaims((await verify(token, 'at+jwt', audience)).payload);
    if (denyList.isDenied(claims.jti, claims.sub, claims.iat, claims.client_id)) throw new OAuthError('invalid_token', 'The access token has been revoked.');
    return claims;
  }

  return { verify, verifyAccessToken };
}
