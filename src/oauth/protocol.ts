/**
 * What this server speaks, in one place: the grant types, response types,
 * PKCE methods and client authentication methods it supports, each with the
 * facts the rest of the code derives from it (server metadata, client
 * registration rules, the token endpoint's dispatch, metrics labels, the
 * admin console's choices, the OpenAPI document).
 *
 * Data only, no imports: every layer may read it (storage's record types
 * included). Adding a grant starts with a row here; see docs/architecture.md.
 */

/** One grant type (RFC 6749 §4, RFC 7591 §2 `grant_types`). */
interface GrantTypeInfo {
  /** Shown in the admin console. */
  readonly label: string;
  /**
   * Who serves it: the token endpoint (`grant_type=…`, a handler in
   * `oauth/grants/`) or the authorization endpoint (a `response_type`, see
   * `RESPONSE_TYPES`).
   */
  readonly servedBy: 'token' | 'authorization';
  /** Whether a client may register it (RFC 7591 `grant_types`). */
  readonly registrable: boolean;
  /** Only confidential clients may register it (RFC 6749 §4.4: client credentials). */
  readonly confidentialOnly: boolean;
  /** Issues refresh tokens, so `refresh_token` may be registered beside it. */
  readonly issuesRefreshTokens: boolean;
}

/** In the order metadata and error messages list them. */
export const GRANT_TYPES = {
  authorization_code: {
    label: 'Authorization code (with PKCE)',
    servedBy: 'token',
    registrable: true,
    confidentialOnly: false,
    issuesRefreshTokens: true,
  },
  implicit: { label: 'Implicit (legacy)', servedBy: 'authorization', registrable: true, confidentialOnly: false, issuesRefreshTokens: false },
  password: { label: 'Password (legacy)', servedBy: 'token', registrable: true, confidentialOnly: false, issuesRefreshTokens: true },
  client_credentials: {
    label: 'Client credentials (machine to machine)',
    servedBy: 'token',
    registrable: true,
    confidentialOnly: true,
    issuesRefreshTokens: false,
  },
  refresh_token: { label: 'Refresh token', servedBy: 'token', registrable: true, confidentialOnly: false, issuesRefreshTokens: false },
  // RFC 8628: devices without a browser (TVs, command-line tools); public or confidential (§3.1).
  'urn:ietf:params:oauth:grant-type:device_code': {
    label: 'Device authorization (RFC 8628: TVs, command-line tools)',
    servedBy: 'token',
    registrable: true,
    confidentialOnly: false,
    issuesRefreshTokens: true,
  },
  // RFC 8693: delegation (an agent acting for a user); never a refresh token (§2.2.1: optional, not offered).
  'urn:ietf:params:oauth:grant-type:token-exchange': {
    label: 'Token exchange (act for a user, RFC 8693)',
    servedBy: 'token',
    registrable: true,
    confidentialOnly: true,
    issuesRefreshTokens: false,
  },
} as const satisfies Record<string, GrantTypeInfo>;

export type GrantType = keyof typeof GRANT_TYPES;

/** The device authorization grant's `grant_type` (RFC 8628 §3.4). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code' satisfies GrantType;

/** The grant types served by the token endpoint (each has a handler in `oauth/grants/`). */
export type TokenGrantType = { [G in GrantType]: (typeof GRANT_TYPES)[G]['servedBy'] extends 'token' ? G : never }[GrantType];

export const GRANT_TYPE_NAMES: readonly GrantType[] = Object.keys(GRANT_TYPES) as GrantType[];

export const TOKEN_GRANT_TYPES: readonly TokenGrantType[] = GRANT_TYPE_NAMES.filter((g): g is TokenGrantType => GRANT_TYPES[g].servedBy === 'token');

/** The grant types a client may register (RFC 7591 `grant_types`). */
export const REGISTRABLE_GRANT_TYPES: readonly GrantType[] = GRANT_TYPE_NAMES.filter((g) => GRANT_TYPES[g].registrable);

/** True when `value` names a grant type this server supports. */
export function isGrantType(value: string): value is GrantType {
  return Object.hasOwn(GRANT_TYPES, value);
}

/** One response type of the authorization endpoint (RFC 6749 §3.1.1). */
interface ResponseTypeInfo {
  /** The grant type it belongs to: registered together or not at all (RFC 7591 §2.1). */
  readonly grantType: GrantType;
  /** Where the response goes unless `response_mode` says otherwise (OAuth 2.0 Multiple Response Type Encoding Practices §2.1). */
  readonly defaultResponseMode: 'query' | 'fragment';
  /** Response modes allowed (never the query for tokens, ibid. §3.0). */
  readonly responseModes: readonly ('query' | 'fragment')[];
}

export const RESPONSE_TYPES = {
  code: { grantType: 'authorization_code', defaultResponseMode: 'query', responseModes: ['query', 'fragment'] },
  token: { grantType: 'implicit', defaultResponseMode: 'fragment', responseModes: ['fragment'] },
} as const satisfies Record<string, ResponseTypeInfo>;

export type ResponseType = keyof typeof RESPONSE_TYPES;

export const RESPONSE_TYPE_NAMES: readonly ResponseType[] = Object.keys(RESPONSE_TYPES) as ResponseType[];

export function isResponseType(value: string): value is ResponseType {
  return Object.hasOwn(RESPONSE_TYPES, value);
}

/** The response types that go with these grant types (RFC 7591 §2.1 defaults). */
export function responseTypesFor(grantTypes: readonly GrantType[]): ResponseType[] {
  return RESPONSE_TYPE_NAMES.filter((r) => grantTypes.includes(RESPONSE_TYPES[r].grantType));
}

/**
 * PKCE code challenge methods (RFC 7636 §4.3): S256 only. `plain` protects
 * nothing once the authorization request leaks (RFC 9700 §2.1.1).
 */
export const PKCE_METHODS = ['S256'] as const;

/** Client authentication at the token endpoint (RFC 7591 `token_endpoint_auth_method`). */
interface AuthMethodInfo {
  readonly label: string;
  /** Whether the method authenticates the client (a confidential client), or only names it (`none`). */
  readonly confidential: boolean;
  /** Whether it proves a shared secret the server issues (and stores hashed); false for `none` and key-based methods. */
  readonly secret: boolean;
  /** Whether it proves possession of a key the client registered (`jwks` / `jwks_uri`, RFC 7523 §2.2). */
  readonly keys: boolean;
}

export const TOKEN_ENDPOINT_AUTH_METHODS = {
  client_secret_basic: { label: 'Confidential: secret in HTTP Basic (client_secret_basic)', confidential: true, secret: true, keys: false },
  client_secret_post: { label: 'Confidential: secret in the form body (client_secret_post)', confidential: true, secret: true, keys: false },
  private_key_jwt: { label: 'Confidential: JWT signed with the client’s own key (private_key_jwt)', confidential: true, secret: false, keys: true },
  none: { label: 'Public: no secret, PKCE required (none)', confidential: false, secret: false, keys: false },
} as const satisfies Record<string, AuthMethodInfo>;

export type TokenEndpointAuthMethod = keyof typeof TOKEN_ENDPOINT_AUTH_METHODS;

export const AUTH_METHOD_NAMES: readonly TokenEndpointAuthMethod[] = Object.keys(TOKEN_ENDPOINT_AUTH_METHODS) as TokenEndpointAuthMethod[];

/** The methods that authenticate the client (introspection requires one, RFC 7662 §2.1). */
export const CONFIDENTIAL_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = AUTH_METHOD_NAMES.filter((m) => TOKEN_ENDPOINT_AUTH_METHODS[m].confidential);

/** The methods that sign a JWT with a key the client registered (their `*_auth_signing_alg_values_supported` apply). */
export const KEY_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = AUTH_METHOD_NAMES.filter((m) => TOKEN_ENDPOINT_AUTH_METHODS[m].keys);

export function isAuthMethod(value: string): value is TokenEndpointAuthMethod {
  return Object.hasOwn(TOKEN_ENDPOINT_AUTH_METHODS, value);
}

/** Whether a client registered for `method` has a secret this server issued. */
export function usesSecret(method: TokenEndpointAuthMethod): boolean {
  return TOKEN_ENDPOINT_AUTH_METHODS[method].secret;
}

/**
 * JWS algorithms accepted on client assertions (`private_key_jwt`, RFC 7523
 * §3; advertised as `token_endpoint_auth_signing_alg_values_supported`):
 * asymmetric only. Never `none`, never HMAC (`HS*` would be
 * `client_secret_jwt`, which needs the secret in the clear on the server).
 */
export const CLIENT_ASSERTION_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/** RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
