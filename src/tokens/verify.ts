/**
 * Local verification of the JWTs this server signed: cached keys (`keys.ts`)
 * and the in-memory deny list (`deny-list.ts`), so a resource request costs
 * no database or TTL-store round trip.
 *
 * Access tokens verified once are remembered by their exact text (an LRU of
 * `VERIFIED_CACHE_SIZE`): a client presents the same token for every call of
 * its lifetime, and the signature, `typ`, `iss` and `alg` of a given string
 * cannot change. What can change is checked again on every hit: the token
 * expired, its key is no longer published (retired past publication, or
 * removed), or this route wants another audience; any of these and the token
 * is verified in full again (which gives the error). Revocation is not a
 * property of the text: the deny list is consulted on every request, after
 * this, so a revocation still counts at once. Only tokens that verified are
 * kept, so a stream of forged tokens cannot fill the cache (bench/README.md,
 * "Hot-path changes").
 */
import type { JWTHeaderParameters, JWTPayload } from 'jose';
import { LruMap } from 'toad-cache';
import type { Config } from '../config.js';
import { isOAuthError, OAuthError } from '../errors.js';
import type { ResourceRegistry } from '../oauth/resources.js';
import type { DenyList } from './deny-list.js';
import { asAccessTokenClaims, verifyJwt, verifyJwtSignature } from './jwt.js';
import { ID_TOKEN_TYP, type KeyStore } from './keys.js';
import type { AccessTokenClaims, AudienceRequirement, IdTokenHint } from './types.js';

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
  /** `TokenService.idTokenHint`. */
  idTokenHint(token: string): Promise<IdTokenHint | null>;
}

/** Access tokens kept verified (about 1.5 KB each with their claims). */
export const VERIFIED_CACHE_SIZE = 10_000;

interface Verified {
  payload: JWTPayload;
  header: JWTHeaderParameters;
  kid: string;
  /** `exp`, in ms. */
  expiresMs: number;
}

/** Whether `aud` (a string or an array) names `wanted` or one of them. */
function audienceMatches(aud: unknown, wanted: string | readonly string[]): boolean {
  const named = (value: string) => (typeof wanted === 'string' ? value === wanted : wanted.includes(value));
  return typeof aud === 'string' ? named(aud) : Array.isArray(aud) && aud.some((value) => typeof value === 'string' && named(value));
}

/** Creates the verifier shared by the resource routes, introspection and revocation. */
export function createVerifier(deps: VerifierDeps): Verifier {
  const { config, now, keys, denyList, resources } = deps;
  const verified = new LruMap<Verified>(VERIFIED_CACHE_SIZE);
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

  function verifyInFull(token: string, typ: string | undefined, audience: string | string[] | undefined) {
    return verifyJwt(token, {
      issuer: config.issuer,
      audience,
      typ,
      algorithms: keys.snapshot().algorithms,
      currentDate: new Date(now()),
      resolveKey,
    });
  }

  async function verify(token: string, typ: string | undefined, audience: AudienceRequirement = { anyResource: true }) {
    if (typ !== 'at+jwt') return verifyInFull(token, typ, undefined);
    const wanted = audienceOf(audience);
    const hit = verified.get(token);
    if (hit !== undefined && hit.expiresMs > now() && keys.snapshot().verifying.has(hit.kid) && audienceMatches(hit.payload.aud, wanted)) return hit;
    const result = await verifyInFull(token, typ, wanted);
    // verifyJwt resolved the key by this kid and jose checked exp is a number.
    verified.set(token, { ...result, kid: result.header.kid!, expiresMs: result.payload.exp! * 1000 });
    return result;
  }

  async function verifyAccessToken(token: string, audience: AudienceRequirement): Promise<AccessTokenClaims> {
    const claims = asAccessTokenClaims((await verify(token, 'at+jwt', audience)).payload);
    if (denyList.isDenied(claims.jti, claims.sub, claims.iat, claims.client_id)) throw new OAuthError('invalid_token', 'The access token has been revoked.');
    return claims;
  }

  async function idTokenHint(token: string): Promise<IdTokenHint | null> {
    try {
      const { payload } = await verifyJwtSignature(token, { issuer: config.issuer, typ: ID_TOKEN_TYP, algorithms: keys.snapshot().algorithms, resolveKey });
      // OIDC Core §2: `aud` is one string or a list of them.
      const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud.filter((a) => typeof a === 'string') : [];
      return typeof payload.sub === 'string' && aud.length > 0 ? { sub: payload.sub, aud } : null;
    } catch (err) {
      // Not an ID token of ours (forged, another issuer's, signed by a key no longer published); a store outage still rejects.
      if (isOAuthError(err) && err.error === 'invalid_token') return null;
      throw err;
    }
  }

  return { verify, verifyAccessToken, idTokenHint };
}
