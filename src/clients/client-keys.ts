/**
 * The public keys a `private_key_jwt` client signs with: its registered
 * `jwks`, or the set at its `jwks_uri`, fetched through the SSRF guard
 * (`security/outbound-fetch.ts`: https only, public addresses only unless
 * `CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS`, no redirects, size and time
 * limits).
 *
 * - A fetched set is kept in the shared TTL store, so every instance uses one
 *   copy, for as long as its HTTP caching headers say within `JWKS_CACHE`'s
 *   bounds; a refusal (unreachable, not a JWK Set, a private key in it) for a
 *   short while, so a broken URL is not fetched for every request.
 * - Key rotation at the client: an assertion whose key is not in the cached
 *   set (`refresh`) fetches the set again at once, but at most once per
 *   `JWKS_CACHE.refetchSeconds` per URL across all instances (a set-if-absent
 *   in the store), so assertions with made-up `kid`s cannot make the server
 *   fetch on every request.
 * - Concurrent lookups on one instance share one fetch.
 */
import { createHash } from 'node:crypto';
import { OAuthError } from '../errors.js';
import { OutboundFetchError, type OutboundFetch } from '../security/outbound-fetch.js';
import type { Client, ClientJwks, KvStore } from '../storage/types.js';
import { parseFetchedJwks } from './jwks.js';
import { documentCacheSeconds } from './metadata-document.js';

/** How long a fetched JWK Set is kept in the shared cache, seconds. */
export const JWKS_CACHE = {
  /** Floor, also for `no-store`/`no-cache`. */
  minSeconds: 60,
  /** Ceiling: a key the client withdrew stops working within an hour whatever the headers say. */
  maxSeconds: 3_600,
  /** Without caching headers. */
  defaultSeconds: 300,
  /** A refusal (unreachable, invalid, over the limits). */
  refusalSeconds: 30,
  /** At most one fetch per URL in this long for a key not in the cached set (rotation at the client). */
  refetchSeconds: 30,
} as const;

const KEY_PREFIX = 'client-jwks:';
const REFETCH_PREFIX = 'client-jwks-refetch:';

type Cached = { jwks: ClientJwks } | { refused: string };

export interface ClientKeyResolverDeps {
  /** The SSRF guard, with a size limit for JWK Sets (`MAX_JWKS_BYTES`). */
  fetch: OutboundFetch;
  kv: KvStore;
  now: () => number;
}

export interface ClientKeyResolver {
  /**
   * The client's keys: its `jwks`, or the set at its `jwks_uri` (shared
   * cache, else fetched). With `refresh`, the set is fetched again unless that
   * was done in the last `JWKS_CACHE.refetchSeconds` (then the cached one is
   * returned). Throws `invalid_client` saying why the keys cannot be had.
   */
  keysOf(client: Client, options?: { refresh?: boolean }): Promise<ClientJwks>;
}

export function createClientKeyResolver(deps: ClientKeyResolverDeps): ClientKeyResolver {
  const { kv, now } = deps;
  const inFlight = new Map<string, Promise<Cached>>();
  const hashOf = (uri: string) => createHash('sha256').update(uri).digest('base64url');
  /** The last copy read from the store per URL: the same text gives the same object (whose imported keys the verifier keeps). */
  const parsed = new Map<string, { raw: string; cached: Cached }>();

  /** Fetches and validates, then stores the outcome for every instance. */
  const load = async (uri: string): Promise<Cached> => {
    let cached: Cached;
    let ttlSeconds: number;
    try {
      const fetched = await deps.fetch(uri, 'application/jwk-set+json, application/json');
      cached = { jwks: parseFetchedJwks(fetched.body) };
      ttlSeconds = documentCacheSeconds(fetched.headers, now(), JWKS_CACHE);
    } catch (err) {
      if (err instanceof OutboundFetchError) cached = { refused: `the client's jwks_uri could not be fetched: ${err.message}.` };
      else if (err instanceof Error && !(err instanceof OAuthError)) cached = { refused: `the client's jwks_uri cannot be used: ${err.message}.` };
      else throw err;
      ttlSeconds = JWKS_CACHE.refusalSeconds;
    }
    await kv.set(KEY_PREFIX + hashOf(uri), JSON.stringify(cached), ttlSeconds);
    // Any fetch counts against the refetch interval: a refresh right after it would get the same set.
    await kv.set(REFETCH_PREFIX + hashOf(uri), '1', JWKS_CACHE.refetchSeconds);
    return cached;
  };

  const loadShared = (uri: string): Promise<Cached> => {
    let pending = inFlight.get(uri);
    if (!pending) {
      pending = load(uri).finally(() => inFlight.delete(uri));
      inFlight.set(uri, pending);
    }
    return pending;
  };

  const readCache = async (uri: string): Promise<Cached | null> => {
    const raw = await kv.get(KEY_PREFIX + hashOf(uri));
    if (raw === null) return null;
    const seen = parsed.get(uri);
    if (seen?.raw === raw) return seen.cached;
    let cached: Cached;
    try {
      cached = JSON.parse(raw) as Cached;
    } catch {
      return null;
    }
    if (parsed.size >= 1_000) parsed.clear();
    parsed.set(uri, { raw, cached });
    return cached;
  };

  return {
    async keysOf(client, options = {}) {
      if (client.jwks !== null) return client.jwks;
      const uri = client.jwksUri;
      if (uri === null) throw new OAuthError('invalid_client', 'This client has no registered keys.');
      let cached = await readCache(uri);
      if (cached === null || (options.refresh === true && (await kv.setIfAbsent(REFETCH_PREFIX + hashOf(uri), '1', JWKS_CACHE.refetchSeconds)))) {
        cached = await loadShared(uri);
      }
      if ('refused' in cached) throw new OAuthError('invalid_client', cached.refused);
      return cached.jwks;
    },
  };
}
