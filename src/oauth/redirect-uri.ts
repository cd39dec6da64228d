/**
 * Redirect URIs at the authorization endpoint: exact matching against the
 * client's registered list, and building the response redirect.
 */
import type { Client } from '../storage/types.js';
import { TOKEN_ENDPOINT_AUTH_METHODS } from './protocol.js';

/** Where the response parameters go: the query for `code`, the fragment for `token` (RFC 6749 §4.1.2, §4.2.2). */
export type ResponseMode = 'query' | 'fragment';

export interface RedirectMatchOptions {
  /**
   * RFC 8252 §7.3: a native app listening on a loopback IP address gets a
   * port from the operating system at run time, so for a public client a
   * loopback IP redirect URI matches with any port. Only for public clients
   * (SPEC "Clients and grants").
   */
  anyLoopbackPort?: boolean;
}

/**
 * `http://127.0.0.1…` or `http://[::1]…` (RFC 8252 §7.3; not `localhost`,
 * which §8.3 advises against; the scheme in any case, RFC 3986 §3.1) with
 * the port taken out, as written; null for any other URI. Everything but the
 * port must still match character for character.
 */
function loopbackWithoutPort(uri: string): string | null {
  const match = /^(http):\/\/(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?([/?].*)?$/is.exec(uri);
  if (!match || (match[3] !== undefined && Number(match[3]) > 65_535)) return null;
  return `${match[1]!}://${match[2]!}${match[4] ?? ''}`;
}

/**
 * The redirect URI to use for a request, or null when it is not acceptable.
 *
 * RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: a sent `redirect_uri` must equal one
 * registered URI character for character: no prefix, suffix, case, trailing
 * slash, percent-encoding or port normalisation. The one exception is the
 * port of a loopback IP redirect URI of a public client (RFC 8252 §7.3, see
 * `RedirectMatchOptions`); the sent URI, with its port, is then the one used.
 * An omitted one is allowed only when exactly one URI is registered
 * (RFC 6749 §3.1.2.3), which is then used.
 */
export function matchRedirectUri(registered: readonly string[], requested: string | undefined, options: RedirectMatchOptions = {}): string | null {
  if (requested === undefined) return registered.length === 1 ? registered[0]! : null;
  if (registered.includes(requested)) return requested;
  if (!options.anyLoopbackPort) return null;
  const portless = loopbackWithoutPort(requested);
  if (portless === null) return null;
  return registered.some((uri) => loopbackWithoutPort(uri) === portless) ? requested : null;
}

/** `matchRedirectUri` against a client's registered URIs, with the loopback port rule for public clients. */
export function matchClientRedirectUri(client: Pick<Client, 'redirectUris' | 'tokenEndpointAuthMethod'>, requested: string | undefined): string | null {
  return matchRedirectUri(client.redirectUris, requested, { anyLoopbackPort: !TOKEN_ENDPOINT_AUTH_METHODS[client.tokenEndpointAuthMethod].confidential });
}

/**
 * `redirectUri` with `params` added (undefined values skipped). Query mode
 * keeps a query the registered URI already has (RFC 6749 §3.1.2: "MUST
 * retain the query component"); fragment mode puts them after `#`
 * (registered URIs never have a fragment). The registered string itself is
 * kept as is, not re-serialised, so the client gets back exactly the URI it
 * registered.
 */
export function buildRedirect(redirectUri: string, params: Readonly<Record<string, string | undefined>>, mode: ResponseMode): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.append(name, value);
  const encoded = search.toString();
  if (mode === 'fragment') return `${redirectUri}#${encoded}`;
  if (encoded === '') return redirectUri;
  const separator = !redirectUri.includes('?') ? '?' : redirectUri.endsWith('?') || redirectUri.endsWith('&') ? '' : '&';
  return `${redirectUri}${separator}${encoded}`;
}

/**
 * The CSP source expression a form must be allowed to reach so that the
 * redirect to `redirectUri` after the form's POST is not blocked (Chromium
 * applies `form-action` to every redirect that follows a form submission):
 * the origin for http(s), the scheme for a private-use scheme (RFC 8252
 * §7.1). Null when the URI cannot be expressed safely.
 */
export function formActionSource(redirectUri: string): string | null {
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return null;
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    // URL.origin is normalised and cannot carry `;`, `,`, quotes or spaces.
    return url.origin;
  }
  return /^[a-z][a-z0-9+.-]*:$/.test(url.protocol) ? url.protocol : null;
}
