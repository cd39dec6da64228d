/**
 * Resource identifiers (RFC 8707 §2, RFC 9728 §1.2): when a string is one,
 * when two name the same resource, and where a resource's metadata lives
 * (RFC 9728 §3.1). Pure and without imports, like `protocol.ts`: the
 * configuration validates `RESOURCES` with it at start, and the resource
 * registry (`resources.ts`) judges the `resource` parameters of requests
 * with the same rule.
 */

/** Longer values are refused without being parsed. */
const MAX_RESOURCE_URI_LENGTH = 2048;

/**
 * RFC 3986 §3: a scheme, a colon, then only characters a URI may hold
 * (unreserved, reserved and `%`). No spaces, controls, backslashes, quotes
 * or non-ASCII: the WHATWG parser would quietly repair those, and a value
 * that needs repairing is malformed, not a spelling of one of ours.
 */
const URI_SHAPE = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;

/**
 * The comparison key of a resource URI, or null when `raw` is not an
 * absolute URI without a fragment (RFC 8707 §2). Two URIs with the same key
 * name the same resource: scheme and host are compared case-insensitively,
 * a default port is the same as none, dot segments are resolved (RFC 3986
 * §6.2.2), and one trailing slash of the path is ignored (so
 * `HTTPS://API.example.com:443/v1/` is `https://api.example.com/v1`). The
 * path and query otherwise compare exactly (RFC 3986 §6.2.1: they are
 * case-sensitive).
 */
export function resourceKey(raw: string): string | null {
  if (raw.length > MAX_RESOURCE_URI_LENGTH || !URI_SHAPE.test(raw) || raw.includes('#')) return null;
  // An http(s) URI without an authority (`https:api`) is not one: the WHATWG parser would read a host into it.
  if (/^https?:/i.test(raw) && !/^https?:\/\//i.test(raw)) return null;
  let href: string;
  try {
    href = new URL(raw).href;
  } catch {
    return null;
  }
  // No fragment, so the first `?` starts the query (RFC 3986 §3.4).
  const q = href.indexOf('?');
  const beforeQuery = q === -1 ? href : href.slice(0, q);
  const query = q === -1 ? '' : href.slice(q);
  return (beforeQuery.endsWith('/') ? beforeQuery.slice(0, -1) : beforeQuery) + query;
}

/**
 * Where a well-known document of the URL `identifier` is published, by the
 * path-insertion rule of RFC 8414 §3.1 (an issuer's metadata) and RFC 9728
 * §3.1 (a resource's): `/.well-known/<name>` inserted between the host and
 * the path, a terminating slash of the path dropped, the query kept.
 * `https://as.example/mcp` with `oauth-protected-resource` →
 * `https://as.example/.well-known/oauth-protected-resource/mcp`.
 */
export function wellKnownUrl(identifier: string, name: string): string {
  const url = new URL(identifier);
  const path = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return `${url.origin}/.well-known/${name}${path}${url.search}`;
}

/** Where the metadata of the resource `resource` (an http(s) URL) is published (RFC 9728 §3.1). */
export function resourceMetadataUrl(resource: string): string {
  return wellKnownUrl(resource, 'oauth-protected-resource');
}
