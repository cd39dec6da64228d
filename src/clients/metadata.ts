/**
 * RFC 7591 client metadata: validation and defaults. Shape (types, lengths)
 * is checked by the route's JSON schema; this checks meaning, and throws
 * `invalid_redirect_uri` / `invalid_client_metadata` (RFC 7591 §3.2.2).
 */
import { isIP } from 'node:net';
import { isLoopbackHost } from '../config.js';
import { nonPublicReason } from '../security/ip-address.js';
import { ADMIN_SCOPE, registrableScopes } from '../oauth/scope.js';
import { invalidClientMetadata, invalidRedirectUri } from '../errors.js';
import type { ClientMetadata } from '../storage/types.js';
import { ID_TOKEN_ALG } from '../tokens/keys.js';
import { checkJwksUri, parseClientJwks } from './jwks.js';
import {
  AUTH_METHOD_NAMES,
  GRANT_TYPES,
  isAuthMethod,
  isGrantType,
  isResponseType,
  REGISTRABLE_GRANT_TYPES,
  RESPONSE_TYPE_NAMES,
  RESPONSE_TYPES,
  responseTypesFor,
  TOKEN_ENDPOINT_AUTH_METHODS,
  type GrantType,
  type ResponseType,
  type TokenEndpointAuthMethod,
} from '../oauth/protocol.js';

export const MAX_REDIRECT_URIS = 20;
export const MAX_REDIRECT_URI_LENGTH = 2000;

/** Metadata as an admin sends it (RFC 7591 names); every field optional. */
export interface ClientMetadataInput {
  client_name?: string;
  redirect_uris?: string[];
  /** OpenID Connect RP-Initiated Logout 1.0 §3.1; the rules of `redirect_uris`. Default: none. */
  post_logout_redirect_uris?: string[];
  /**
   * OpenID Connect Back-Channel Logout 1.0 §2.2: where logout tokens are
   * posted; null or absent: none. An admin's client: https or http; any other: https.
   */
  backchannel_logout_uri?: string | null;
  /** Back-Channel Logout §2.2: the client needs `sid` in logout tokens. Default false. */
  backchannel_logout_session_required?: boolean;
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: string;
  scope?: string;
  /** Not RFC 7591: this client is a resource server and may introspect other clients' access tokens. */
  resource_server?: boolean;
  /** `private_key_jwt`: the client's public keys (RFC 7517 JWK Set); null clears them. */
  jwks?: unknown;
  /** `private_key_jwt`: where the client publishes them; null clears it. Never with `jwks`. */
  jwks_uri?: string | null;
  /** RFC 9449 §5.2: the client always uses DPoP, so a token request without a proof is refused. Default false. */
  dpop_bound_access_tokens?: boolean;
  /** RFC 9126 §6: the client's authorization requests must be pushed. Default false. */
  require_pushed_authorization_requests?: boolean;
}

const GRANT_TYPE_NAMES_ISSUING_REFRESH = REGISTRABLE_GRANT_TYPES.filter((g) => GRANT_TYPES[g].issuesRefreshTokens);

const BLOCKED_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'filesystem:']);

/** A list of URIs the browser is sent to, held to one rule: `redirect_uris`, or `post_logout_redirect_uris` (RP-Initiated Logout §3.1). */
export type RedirectUriList = 'redirect_uris' | 'post_logout_redirect_uris';

/** A registered URI field: a redirect URI list, or the URI this server posts logout tokens to (Back-Channel Logout §2.2). */
type UriField = RedirectUriList | 'backchannel_logout_uri';

const URI_LABEL: Record<UriField, string> = {
  redirect_uris: 'redirect URI',
  post_logout_redirect_uris: 'post-logout redirect URI',
  backchannel_logout_uri: 'back-channel logout URI',
};

/** RFC 7591 §3.2.2: `invalid_redirect_uri` for `redirect_uris`; any other field's URI is `invalid_client_metadata` naming the field. */
function invalidUri(list: UriField, description: string) {
  return list === 'redirect_uris' ? invalidRedirectUri(description) : invalidClientMetadata(list, description);
}

/** RFC 3986 §2: every character a URI may hold, a `%` only as the start of a percent-encoded octet. */
const URI_CHARACTERS = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;
/** RFC 3986 Appendix B: scheme, authority (after `//`, when present), path and query of a URI reference. */
const URI_COMPONENTS = /^([^:/?#]+):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?$/;
/** RFC 3986 §3.3, §3.4: path and query characters (`[` and `]` belong to an IP literal host only). */
const PATH_AND_QUERY_CHARACTERS = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;
/** RFC 3986 §3.2.2, §3.2.3: an IP literal or a name, then an optional port. */
const HOST_AND_PORT = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/;

/**
 * Refuses a redirect URI that is not RFC 3986 syntax as written, although the
 * WHATWG URL parser (`url`, which browsers and this server use) accepts it.
 * That parser repairs what it gets: `https:///cb` becomes host `cb`,
 * `https://a.example\@evil.com/cb` turns the backslash into a `/`, `%61` in
 * a host becomes `a`, `127.1` becomes `127.0.0.1`. The redirect is sent as
 * registered (`buildRedirect`), so the consent page (which shows the parsed
 * host), the loopback check and the browser following the redirect could
 * each read a different URI; only one already in plain form is registered.
 */
function checkUriSyntax(raw: string, url: URL, list: UriField): void {
  const label = URI_LABEL[list];
  if (!URI_CHARACTERS.test(raw)) {
    throw invalidUri(
      list,
      `${label} "${raw}" holds a character a URI may not (RFC 3986 section 2): percent-encode it in the path or query, write a host name in its ASCII (xn--) form, never a backslash`,
    );
  }
  const parts = URI_COMPONENTS.exec(raw);
  if (!parts) throw invalidUri(list, `${label} "${raw}" is not an absolute URI (RFC 3986 section 4.3)`);
  const [, , authority, path = '', query = ''] = parts;
  if (!PATH_AND_QUERY_CHARACTERS.test(path) || !PATH_AND_QUERY_CHARACTERS.test(query)) {
    throw invalidUri(list, `${label} "${raw}" has "[" or "]" outside an IP literal host: percent-encode them`);
  }
  const web = url.protocol === 'https:' || url.protocol === 'http:';
  if (authority === undefined) {
    if (web) throw invalidUri(list, `${label} "${raw}" must name its host after "//": ${url.protocol}//host/path (RFC 3986 section 3.2)`);
    return;
  }
  if (authority.includes('@')) throw invalidUri(list, `${label} "${raw}" must not contain credentials`);
  const host = HOST_AND_PORT.exec(authority)?.[1];
  if (host === undefined || (web && host === '')) throw invalidUri(list, `${label} "${raw}" must name a host: ${url.protocol}//host/path (RFC 3986 section 3.2.2)`);
  // Case aside, the host as written must be the host the parser (and a browser) reads.
  if (web && host.toLowerCase() !== url.hostname) {
    throw invalidUri(list, `${label} "${raw}" writes its host in a form browsers rewrite (to "${url.hostname}"): register it with the host written as ${url.hostname}`);
  }
}

/**
 * A registered URI of `field` parsed, when it is 1 to
 * `MAX_REDIRECT_URI_LENGTH` characters, absolute, without a fragment or
 * credentials, and RFC 3986 syntax as written (`checkUriSyntax`).
 */
function parseRegisteredUri(raw: string, field: UriField): URL {
  const label = URI_LABEL[field];
  if (raw.length === 0 || raw.length > MAX_REDIRECT_URI_LENGTH) throw invalidUri(field, `${label} must be 1 to ${MAX_REDIRECT_URI_LENGTH} characters`);
  if (/[\s\x00-\x1f\x7f]/.test(raw)) throw invalidUri(field, `${label} must not contain whitespace or control characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUri(field, `${label} "${raw}" is not an absolute URI`);
  }
  if (raw.includes('#')) throw invalidUri(field, `${label} "${raw}" must not contain a fragment (RFC 6749 §3.1.2)`);
  if (url.username || url.password) throw invalidUri(field, `${label} "${raw}" must not contain credentials`);
  checkUriSyntax(raw, url, field);
  return url;
}

/**
 * A back-channel logout URI (OpenID Connect Back-Channel Logout 1.0 §2.2):
 * absolute, no fragment, RFC 3986 syntax as written (`parseRegisteredUri`).
 * Registered by an admin: https, or http (an internal service). Any other
 * client (`dynamic`): https only, and not an IP literal that is not public
 * unless `allowPrivateNetworks`; where a name points is judged when the
 * token is posted (the SSRF guard).
 */
export function checkBackchannelLogoutUri(raw: string, dynamic: false | { allowPrivateNetworks: boolean }): string {
  const label = URI_LABEL.backchannel_logout_uri;
  const url = parseRegisteredUri(raw, 'backchannel_logout_uri');
  if (!dynamic) {
    if (url.protocol === 'https:' || url.protocol === 'http:') return raw;
    throw invalidUri('backchannel_logout_uri', `${label} "${raw}" must use https or http`);
  }
  if (url.protocol !== 'https:') throw invalidUri('backchannel_logout_uri', `${label} "${raw}" must use https`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const why = isIP(host) === 0 || dynamic.allowPrivateNetworks ? null : nonPublicReason(host);
  if (why !== null) throw invalidUri('backchannel_logout_uri', `${label} "${raw}" names an address that is not public (${why})`);
  return raw;
}

/**
 * A redirect URI must be absolute and fragment-free (RFC 6749 §3.1.2, RFC
 * 3986 syntax as written: `checkUriSyntax`); https, or http on a loopback
 * host (RFC 8252 §7.3). Public clients may also use a private-use scheme in
 * reverse-domain form (RFC 8252 §7.1, e.g. `com.example.app:/callback`).
 * A post-logout redirect URI (`list`) is held to the same rule, with errors
 * naming its own field.
 */
export function checkRedirectUri(raw: string, publicClient: boolean, list: RedirectUriList = 'redirect_uris'): void {
  const label = URI_LABEL[list];
  // Matching is exact (RFC 9700 §4.1.3): a "*" would be stored as a literal character and match nothing the author meant.
  if (raw.includes('*')) throw invalidUri(list, `${label} "${raw}" contains "*": there are no wildcards; register each ${label} exactly`);
  const url = parseRegisteredUri(raw, list);
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:') {
    if (isLoopbackHost(url.hostname)) return;
    throw invalidUri(list, `${label} "${raw}" must use https (http is allowed only for localhost and loopback addresses)`);
  }
  if (BLOCKED_SCHEMES.has(url.protocol)) throw invalidUri(list, `${label} scheme ${url.protocol} is not allowed`);
  if (publicClient && /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/.test(url.protocol)) return;
  throw invalidUri(
    list,
    `${label} "${raw}" must use https, http on localhost, or (public clients only) a reverse-domain private-use scheme such as com.example.app:`,
  );
}

/**
 * A list of `list`'s URIs as registered: duplicates dropped, at most
 * `MAX_REDIRECT_URIS`, each passing `checkRedirectUri`.
 */
function checkedUriList(uris: readonly string[] | undefined, publicClient: boolean, list: RedirectUriList): string[] {
  const unique = [...new Set(uris ?? [])];
  if (unique.length > MAX_REDIRECT_URIS) throw invalidUri(list, `at most ${MAX_REDIRECT_URIS} ${URI_LABEL[list]}s`);
  for (const uri of unique) checkRedirectUri(uri, publicClient, list);
  return unique;
}

/**
 * The URIs of a client no admin registered: as for a confidential client, no
 * private-use scheme (RFC 8252 §7.1), which anyone could claim on a device.
 */
function checkDynamicUris(uris: readonly string[], list: RedirectUriList): void {
  for (const uri of uris) {
    if (!/^https?:/i.test(uri)) throw invalidUri(list, `${URI_LABEL[list]} "${uri.slice(0, 200)}" must use https, or http on a loopback address (RFC 8252 §7.3)`);
    checkRedirectUri(uri, false, list);
  }
}

/** The grant types a client no admin registered may have (RFC 7591 registration, metadata documents). */
export const DYNAMIC_GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'refresh_token'];

/** What a registration no admin made may ask for beyond the fixed rules. */
export interface DynamicClientPolicy {
  /**
   * Whether a confidential client (a secret) may be registered: with an
   * initial access token (`DYNAMIC_REGISTRATION=token`), not in open
   * registration, never from a metadata document (no secret can be shared).
   */
  allowConfidential: boolean;
  /** `CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS`: a back-channel logout URI may name a private address literal. Default false. */
  allowPrivateNetworks?: boolean;
}

/** The name shown for a client that registered without one (RFC 7591 §2: `client_name` is optional). */
export const UNNAMED_CLIENT = 'Unnamed application';

/**
 * Metadata of a client no admin registered (RFC 7591 registration and
 * updates, Client ID Metadata Documents), held to stricter rules than an
 * admin's:
 *
 * - grant types `authorization_code` and `refresh_token` only (both by
 *   default): never `password`, `client_credentials` or `implicit`;
 *   response type `code` only;
 * - redirect URIs https, or http on a loopback host (RFC 8252 §7.3, §8.3);
 *   at least one; post-logout redirect URIs the same, none by default;
 *   a back-channel logout URI https only (`checkBackchannelLogoutUri`);
 * - never the `admin` scope; registered for every configured scope (which
 *   never includes it), whatever narrower `scope` it asks for (RFC 7591 §2
 *   lets the server register other values and say so in its answer): each
 *   authorization request still asks the user for its own scopes, and a
 *   client that registered with the scope of its first challenge must be
 *   able to step up to another later (MCP clients do exactly that);
 * - a public client (`none`, the default) unless `policy` allows a secret;
 * - never a resource server.
 *
 * Then the rules every client is held to (`validateClientMetadata`).
 */
export function validateDynamicClientMetadata(input: ClientMetadataInput, knownScopes: readonly string[], policy: DynamicClientPolicy): ClientMetadata {
  const grants = input.grant_types ?? [...DYNAMIC_GRANT_TYPES];
  const refused = grants.filter((g) => !(DYNAMIC_GRANT_TYPES as readonly string[]).includes(g));
  if (refused.length > 0) {
    throw invalidClientMetadata(
      'grant_types',
      `grant type ${refused.map((g) => `"${g}"`).join(', ')} cannot be registered here; allowed: ${DYNAMIC_GRANT_TYPES.join(', ')} (ask an administrator for others)`,
    );
  }
  const responses = input.response_types ?? responseTypesFor(grants.filter(isGrantType));
  if (responses.some((r) => r !== 'code')) throw invalidClientMetadata('response_types', 'only the response type "code" can be registered here');

  const method = input.token_endpoint_auth_method ?? (policy.allowConfidential ? 'client_secret_basic' : 'none');
  if (isAuthMethod(method) && TOKEN_ENDPOINT_AUTH_METHODS[method].keys) {
    throw invalidClientMetadata('token_endpoint_auth_method', `"${method}" clients are registered by an administrator (admin API, console or CLI)`);
  }
  if (input.jwks !== undefined || input.jwks_uri !== undefined) throw invalidClientMetadata('jwks', 'jwks and jwks_uri are registered by an administrator');
  if (isAuthMethod(method) && TOKEN_ENDPOINT_AUTH_METHODS[method].confidential && !policy.allowConfidential) {
    throw invalidClientMetadata('token_endpoint_auth_method', `only public clients (token_endpoint_auth_method "none") can register here, not "${method}"`);
  }

  const redirectUris = input.redirect_uris ?? [];
  if (redirectUris.length === 0) throw invalidRedirectUri('redirect_uris is required: at least one https or loopback (http://127.0.0.1, http://[::1], http://localhost) URI');
  checkDynamicUris(redirectUris, 'redirect_uris');
  const postLogoutRedirectUris = input.post_logout_redirect_uris ?? [];
  checkDynamicUris(postLogoutRedirectUris, 'post_logout_redirect_uris');
  const backchannelLogoutUri = input.backchannel_logout_uri ?? null;
  if (backchannelLogoutUri !== null) checkBackchannelLogoutUri(backchannelLogoutUri, { allowPrivateNetworks: policy.allowPrivateNetworks ?? false });

  const asked = parseScope(input.scope);
  if (asked.includes(ADMIN_SCOPE)) {
    throw invalidClientMetadata('scope', `the "${ADMIN_SCOPE}" scope is granted only to clients an administrator registers for it`);
  }
  const unknown = asked.filter((s) => !knownScopes.includes(s));
  if (unknown.length > 0) throw invalidClientMetadata('scope', `unknown scope ${unknown.map((s) => `"${s}"`).join(', ')}; this server knows: ${knownScopes.join(' ')}`);
  if (input.resource_server === true) throw invalidClientMetadata('token_endpoint_auth_method', 'a resource server is registered by an administrator');

  return validateClientMetadata(
    {
      client_name: input.client_name === undefined || input.client_name.trim() === '' ? UNNAMED_CLIENT : input.client_name,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      backchannel_logout_uri: backchannelLogoutUri,
      ...(input.backchannel_logout_session_required === undefined ? {} : { backchannel_logout_session_required: input.backchannel_logout_session_required }),
      grant_types: grants,
      response_types: responses,
      token_endpoint_auth_method: method,
      scope: knownScopes.join(' '),
      resource_server: false,
      // RFC 9449 §5.2: a client may declare it itself; it only makes its own token requests stricter.
      ...(input.dpop_bound_access_tokens === undefined ? {} : { dpop_bound_access_tokens: input.dpop_bound_access_tokens }),
    },
    knownScopes,
  );
}

/**
 * OpenID Connect Dynamic Client Registration §2 metadata that changes what
 * the client receives, and the one value of each this server can honour
 * (null: none). A client that registers another value would only fail later,
 * on an ID token or a userinfo answer it cannot read, so registration refuses
 * it now; absent or null is the default. Other fields it does not use stay
 * ignored (RFC 7591 §2).
 */
const OPENID_RESPONSE_METADATA: ReadonlyArray<[string, string | boolean | null]> = [
  // OIDC Core §15.1: the default, and the only algorithm ID tokens are signed with here.
  ['id_token_signed_response_alg', ID_TOKEN_ALG],
  ['subject_type', 'public'],
  ['id_token_encrypted_response_alg', null],
  ['id_token_encrypted_response_enc', null],
  ['userinfo_signed_response_alg', null],
  ['userinfo_encrypted_response_alg', null],
  ['userinfo_encrypted_response_enc', null],
  // JARM, RFC 9101 request objects, RFC 8705 certificate-bound tokens: not offered.
  ['authorization_signed_response_alg', null],
  ['authorization_encrypted_response_alg', null],
  ['authorization_encrypted_response_enc', null],
  ['require_signed_request_object', false],
  ['tls_client_certificate_bound_access_tokens', false],
];

/**
 * What registration metadata (RFC 7591 request, or a client metadata
 * document) asks that this server cannot honour, as a message naming the
 * field; null when nothing.
 */
export function unsupportedResponseMetadata(fields: Record<string, unknown>): string | null {
  for (const [name, supported] of OPENID_RESPONSE_METADATA) {
    const value = fields[name];
    if (value === undefined || value === null || value === supported) continue;
    return supported === null || typeof supported === 'boolean'
      ? `${name} is not supported by this server; leave it out`
      : `${name} must be "${supported}" here (the only value this server supports)`;
  }
  return null;
}

/** Splits a space-separated scope string; duplicates removed, order kept. */
export function parseScope(scope: string | undefined): string[] {
  if (scope === undefined) return [];
  return [...new Set(scope.split(' ').filter((s) => s.length > 0))];
}

/**
 * Applies RFC 7591 §2 defaults and checks consistency. `knownScopes` are the
 * scopes this server knows (config `SCOPES`).
 */
export function validateClientMetadata(input: ClientMetadataInput, knownScopes: readonly string[]): ClientMetadata {
  const grants: GrantType[] = [];
  for (const g of new Set(input.grant_types ?? ['authorization_code'])) {
    if (!isGrantType(g) || !GRANT_TYPES[g].registrable) {
      throw invalidClientMetadata('grant_types', `unsupported grant type "${g}"; supported: ${REGISTRABLE_GRANT_TYPES.join(', ')}`);
    }
    grants.push(g);
  }
  if (grants.length === 0) throw invalidClientMetadata('grant_types', 'grant_types must name at least one grant type');

  // RFC 7591 §2.1: response types follow from grant types unless given, and must agree.
  const responses: ResponseType[] = [];
  for (const r of new Set(input.response_types ?? responseTypesFor(grants))) {
    if (!isResponseType(r)) throw invalidClientMetadata('response_types', `unsupported response type "${r}"; supported: ${RESPONSE_TYPE_NAMES.join(', ')}`);
    responses.push(r);
  }
  for (const r of RESPONSE_TYPE_NAMES) {
    const grant = RESPONSE_TYPES[r].grantType;
    if (responses.includes(r) !== grants.includes(grant)) {
      throw invalidClientMetadata('response_types', `response type "${r}" and grant type "${grant}" must be registered together`);
    }
  }

  const method = input.token_endpoint_auth_method ?? 'client_secret_basic';
  if (!isAuthMethod(method)) {
    throw invalidClientMetadata('token_endpoint_auth_method', `unsupported token_endpoint_auth_method "${method}"; supported: ${AUTH_METHOD_NAMES.join(', ')}`);
  }
  const authMethod: TokenEndpointAuthMethod = method;
  const publicClient = !TOKEN_ENDPOINT_AUTH_METHODS[authMethod].confidential;
  for (const g of grants) {
    if (publicClient && GRANT_TYPES[g].confidentialOnly) {
      throw invalidClientMetadata('token_endpoint_auth_method', `${g} needs a confidential client (token_endpoint_auth_method other than "none")`);
    }
  }
  if (grants.includes('refresh_token') && !grants.some((g) => GRANT_TYPES[g].issuesRefreshTokens)) {
    const issuers = GRANT_TYPE_NAMES_ISSUING_REFRESH.join(' or ');
    throw invalidClientMetadata('grant_types', `refresh_token needs a grant that issues refresh tokens (${issuers})`);
  }

  const redirectUris = checkedUriList(input.redirect_uris, publicClient, 'redirect_uris');
  const postLogoutRedirectUris = checkedUriList(input.post_logout_redirect_uris, publicClient, 'post_logout_redirect_uris');
  const backchannelLogoutUri = input.backchannel_logout_uri == null ? null : checkBackchannelLogoutUri(input.backchannel_logout_uri, false);
  if (responses.length > 0 && redirectUris.length === 0) {
    throw invalidRedirectUri('redirect_uris is required for the authorization_code and implicit grants');
  }

  // Without `scope`, every configured scope; the admin scope only when named (an operator's choice).
  const scopes = input.scope === undefined ? [...knownScopes] : parseScope(input.scope);
  const registrable = registrableScopes(knownScopes);
  const unknown = scopes.filter((s) => !registrable.includes(s));
  if (unknown.length > 0) throw invalidClientMetadata('scope', `unknown scope ${unknown.map((s) => `"${s}"`).join(', ')}; this server knows: ${registrable.join(' ')}`);

  const clientName = (input.client_name ?? '').trim();
  if (clientName.length === 0) throw invalidClientMetadata('client_name', 'client_name is required');

  // Introspection (RFC 7662 §2.1) needs an authenticated caller.
  const resourceServer = input.resource_server ?? false;
  if (resourceServer && publicClient) throw invalidClientMetadata('token_endpoint_auth_method', 'a resource server must authenticate (token_endpoint_auth_method other than "none")');

  const keys = clientKeys(input, authMethod);

  const dpopBoundAccessTokens = input.dpop_bound_access_tokens ?? false;
  const requirePushedAuthorizationRequests = input.require_pushed_authorization_requests ?? false;
  return {
    clientName,
    redirectUris,
    postLogoutRedirectUris,
    backchannelLogoutUri,
    backchannelLogoutSessionRequired: input.backchannel_logout_session_required ?? false,
    grantTypes: grants,
    responseTypes: responses,
    tokenEndpointAuthMethod: authMethod,
    scope: scopes.join(' '),
    resourceServer,
    dpopBoundAccessTokens,
    requirePushedAuthorizationRequests,
    ...keys,
  };
}

/**
 * The keys of a `private_key_jwt` client (RFC 7523 §2.2): exactly one of
 * `jwks` and `jwks_uri` (RFC 7591 §2: "MUST NOT both be present"); any other
 * method registers none (its keys would authenticate nothing).
 */
function clientKeys(input: ClientMetadataInput, method: TokenEndpointAuthMethod): Pick<ClientMetadata, 'jwks' | 'jwksUri'> {
  const jwks = input.jwks ?? null;
  const jwksUri = input.jwks_uri ?? null;
  if (!TOKEN_ENDPOINT_AUTH_METHODS[method].keys) {
    if (jwks !== null || jwksUri !== null) {
      throw invalidClientMetadata(jwks !== null ? 'jwks' : 'jwks_uri', `jwks and jwks_uri are used only with token_endpoint_auth_method "private_key_jwt", not "${method}"`);
    }
    return { jwks: null, jwksUri: null };
  }
  if (jwks !== null && jwksUri !== null) throw invalidClientMetadata('jwks', 'give either jwks or jwks_uri, not both (RFC 7591 §2)');
  if (jwks !== null) return { jwks: parseClientJwks(jwks), jwksUri: null };
  if (jwksUri !== null) return { jwks: null, jwksUri: checkJwksUri(jwksUri) };
  throw invalidClientMetadata('jwks', `token_endpoint_auth_method "${method}" needs the client's public keys: jwks (a JWK Set) or jwks_uri`);
}
