/**
 * The protected resources this server issues tokens for (`RESOURCES`) and
 * the rules of the `resource` parameter (RFC 8707), in one place for the
 * authorization endpoint, every grant, the token service and the resource
 * routes.
 *
 * - A grant covers a list of resources: those named at `/authorize`
 *   (repeats allowed, RFC 8707 §2), or the default resource when none was
 *   named. The list travels with the code and the refresh token.
 * - An access token has one audience: the resource its token request names,
 *   which must be one the grant covers (narrowing, never widening, §2.2), or
 *   the grant's first one. Password and client-credentials requests have no
 *   earlier grant: any of `RESOURCES`, the default when none is named.
 * - Resources compare as `resource-uri.ts` says (case of scheme and host,
 *   default port, trailing slash); the identifier that goes into `aud` is
 *   always the configured spelling, so a resource server compares exactly.
 *
 * Everything is normalised once, when the registry is built; a lookup is
 * one parse of the asked-for URI and a map read.
 */
import { invalidTarget } from '../errors.js';
import { DPOP_ALGORITHMS } from '../tokens/dpop.js';
import { resourceKey } from './resource-uri.js';

/** At most this many `resource` values in one authorization request (more are refused unread). */
const MAX_RESOURCES_PER_REQUEST = 10;

/** The `resource` parameter as received: absent, one value, or repeated. */
export type ResourceParameter = string | readonly string[] | undefined;

export interface ResourceRegistry {
  /** Every resource of `RESOURCES`, as configured: the `aud` values this server issues. */
  readonly identifiers: readonly string[];
  /** The audience of a token for which no resource was asked (`ACCESS_TOKEN_AUDIENCE`, or the first of `RESOURCES`). */
  readonly defaultResource: string;
  /** The configured identifier that `uri` names (any spelling `resourceKey` equates), or null when it names none. */
  find(uri: string): string | null;
  /**
   * The resources an authorization request asks for (RFC 8707 §2: the
   * parameter may repeat), each as configured, in the order asked,
   * without duplicates; the default resource when none is named. An empty
   * value counts as not sent (RFC 6749 §3.1). Throws `invalid_target` for a
   * malformed or unknown one.
   */
  requested(parameter: ResourceParameter): string[];
  /**
   * The audience of an access token whose request names `requested` (the
   * token request's `resource`, undefined when not sent) under a grant that
   * covers `granted`: the named resource if the grant covers it (RFC 8707
   * §2.2: narrowing), else `invalid_target`; the grant's first resource when
   * none is named. `granted` empty: a grant made before resources were
   * bound (a code or refresh token of an earlier version), which covers the
   * default resource. `granted` undefined: no earlier grant (password,
   * client credentials), so any resource of this server, the default when
   * none is named. Throws `invalid_target`.
   */
  audienceFor(requested: string | undefined, granted?: readonly string[]): string;
}

/**
 * Builds the registry from the configuration's `resources` and
 * `defaultResource`, which `loadConfig` has validated (a malformed
 * identifier never gets here).
 */
export function createResourceRegistry(config: { readonly resources: readonly string[]; readonly defaultResource: string }): ResourceRegistry {
  const byKey = new Map<string, string>();
  for (const identifier of config.resources) byKey.set(resourceKey(identifier)!, identifier);
  const identifiers = Object.freeze([...config.resources]);

  function find(uri: string): string | null {
    const key = resourceKey(uri);
    return key === null ? null : (byKey.get(key) ?? null);
  }

  /** The configured identifier for a `resource` value, or `invalid_target` saying why not. */
  function resolve(uri: string): string {
    const key = resourceKey(uri);
    if (key === null) throw invalidTarget('resource must be an absolute URI without a fragment (RFC 8707 §2).');
    const identifier = byKey.get(key);
    // A well-formed URI holds no quote or backslash, so it is safe to repeat (shortened) in the description.
    if (identifier === undefined) throw invalidTarget(`resource ${uri.slice(0, 100)} is not a resource this server issues tokens for.`);
    return identifier;
  }

  return {
    identifiers,
    defaultResource: config.defaultResource,
    find,
    requested(parameter) {
      const values = (typeof parameter === 'string' ? [parameter] : (parameter ?? [])).filter((value) => value !== '');
      if (values.length > MAX_RESOURCES_PER_REQUEST) throw invalidTarget(`At most ${MAX_RESOURCES_PER_REQUEST} resource parameters are accepted.`);
      const resolved = [...new Set(values.map(resolve))];
      return resolved.length === 0 ? [config.defaultResource] : resolved;
    },
    audienceFor(requested, granted) {
      const covered = granted === undefined || granted.length > 0 ? granted : [config.defaultResource];
      if (requested === undefined) return covered?.[0] ?? config.defaultResource;
      const identifier = resolve(requested);
      if (covered !== undefined && !covered.includes(identifier)) {
        throw invalidTarget(`resource ${identifier} was not granted: a token request may name one of the resources authorized, never another (RFC 8707 §2.2).`);
      }
      return identifier;
    },
  };
}

/** What a protected resource's metadata says about it (RFC 9728 §2), besides what the registry knows. */
export interface ResourceDescription {
  /** The resource identifier, as configured. */
  resource: string;
  /** Human-readable name (`resource_name`). */
  name: string;
  /** The scopes the resource understands (`scopes_supported`). */
  scopes: readonly string[];
}

/**
 * RFC 9728 §2 metadata of a resource this server issues tokens for: its
 * identifier exactly as configured (§3.3: equal to the one the metadata
 * URL was built from), this server as its only authorization server, the
 * scopes it understands, and bearer tokens in the Authorization header only
 * (RFC 6750 §2.1; RFC 9700 §2.3 rules out the query).
 */
export function protectedResourceMetadata(issuer: string, description: ResourceDescription): Record<string, unknown> {
  return {
    resource: description.resource,
    authorization_servers: [issuer],
    scopes_supported: [...description.scopes],
    bearer_methods_supported: ['header'],
    // RFC 9728 §2, RFC 9449: DPoP-bound tokens are accepted too, with proofs of these algorithms.
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
    resource_name: description.name,
  };
}
