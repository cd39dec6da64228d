/**
 * Errors a caller may be told about.
 *
 * Domain code throws `OAuthError`; each HTTP scope renders it in its own
 * dialect (RFC 6749 §5.2 JSON, an `/authorize` redirect, RFC 6750
 * `WWW-Authenticate`, the admin API's JSON). `description` is safe to show:
 * never a secret, a token value or a stack. `cause` is logged, never sent.
 * Anything that is not an `OAuthError` is answered as a generic `server_error`.
 */

export type ErrorCode =
  // RFC 6749 §4.1.2.1, §5.2
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  // RFC 6750 §3.1
  | 'invalid_token'
  | 'insufficient_scope'
  // RFC 7009 §2.2.1
  | 'unsupported_token_type'
  // RFC 8707 §2: a resource that is malformed, unknown, or not among those granted
  | 'invalid_target'
  // RFC 9449 §12.2: a DPoP proof that fails a check; the proof lacks the server nonce (§8, §9)
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  // RFC 8628 §3.5: the device flow's answers to a poll of the token endpoint
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  // OpenID Connect Core §3.1.2.6
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  // OpenID Connect Unmet Authentication Requirements 1.0 (acr_values the account cannot meet)
  | 'unmet_authentication_requirements'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'registration_not_supported'
  // RFC 7591 §3.2.2 (client registration through the admin API)
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  // admin API and pages
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_many_requests';

const STATUS: Partial<Record<ErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  unauthorized: 401,
  insufficient_scope: 403,
  forbidden: 403,
  access_denied: 403,
  not_found: 404,
  conflict: 409,
  too_many_requests: 429,
  server_error: 500,
  temporarily_unavailable: 503,
};

export function statusFor(code: ErrorCode): number {
  return STATUS[code] ?? 400;
}

export interface OAuthErrorOptions {
  status?: number;
  cause?: unknown;
  /** Seconds; sent as `Retry-After` (429 and 503). */
  retryAfter?: number;
}

export class OAuthError extends Error {
  readonly error: ErrorCode;
  readonly description: string;
  readonly status: number;
  readonly retryAfter: number | undefined;

  constructor(error: ErrorCode, description: string, options: OAuthErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.error = error;
    this.description = description;
    this.status = options.status ?? statusFor(error);
    this.retryAfter = options.retryAfter;
  }

  toJSON(): { error: ErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description };
  }

  /** The body as the OAuth endpoints send it: the description in the characters RFC 6749 allows (`protocolText`). */
  toProtocolJSON(): { error: ErrorCode; error_description: string } {
    return { error: this.error, error_description: protocolText(this.description) };
  }
}

const PROTOCOL_SPELLING: Readonly<Record<string, string>> = { '§': 'section ', '"': "'", '\\': '/', '‘': "'", '’': "'", '“': "'", '”': "'", '–': '-', '—': '-', '…': '...', '→': '->', '∩': 'and' };

/**
 * An error description as RFC 6749 §4.1.2.1 / §5.2 (and RFC 6750 §3, RFC
 * 7591 §3.2.2) allow it: %x20-21 / %x23-5B / %x5D-7E, so no `"`, `\` or
 * anything outside printable ASCII. The few other characters our messages
 * use are spelled out (`§3.2` → `section 3.2`); anything else becomes `?`.
 */
export function protocolText(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/gu, (c) => PROTOCOL_SPELLING[c] ?? (c === '\n' || c === '\t' ? ' ' : '?'));
}

/** A store (PostgreSQL, PGlite, Redis) is unreachable: 503, `temporarily_unavailable`. */
export class UnavailableError extends OAuthError {
  constructor(what: 'database' | 'code store', cause?: unknown) {
    super('temporarily_unavailable', `The ${what} is unavailable; try again shortly.`, { cause, retryAfter: 1 });
    this.name = 'UnavailableError';
  }
}

/** The RFC 7591 field a client-metadata error is about. */
export type ClientMetadataField =
  | 'client_name'
  | 'redirect_uris'
  | 'post_logout_redirect_uris'
  | 'backchannel_logout_uri'
  | 'grant_types'
  | 'response_types'
  | 'token_endpoint_auth_method'
  | 'scope'
  | 'jwks'
  | 'jwks_uri';

/** RFC 7591 §3.2.2 errors, naming the field at fault so a form can show the message next to it. */
export class ClientMetadataError extends OAuthError {
  constructor(
    error: 'invalid_client_metadata' | 'invalid_redirect_uri',
    readonly field: ClientMetadataField,
    description: string,
  ) {
    super(error, description);
    this.name = 'ClientMetadataError';
  }
}

export function isOAuthError(err: unknown): err is OAuthError {
  return err instanceof OAuthError;
}

export const invalidRequest = (description: string, cause?: unknown) => new OAuthError('invalid_request', description, { cause });
export const invalidClient = (description = 'Client authentication failed.') => new OAuthError('invalid_client', description);
export const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);
export const unauthorizedClient = (description: string) => new OAuthError('unauthorized_client', description);
export const unsupportedGrantType = (description: string) => new OAuthError('unsupported_grant_type', description);
export const unsupportedResponseType = (description: string) => new OAuthError('unsupported_response_type', description);
export const invalidScope = (description: string) => new OAuthError('invalid_scope', description);
export const invalidTarget = (description: string) => new OAuthError('invalid_target', description);
export const accessDenied = (description: string) => new OAuthError('access_denied', description);
export const invalidToken = (description: string, cause?: unknown) => new OAuthError('invalid_token', description, { cause });
export const invalidClientMetadata = (field: ClientMetadataField, description: string) => new ClientMetadataError('invalid_client_metadata', field, description);
export const invalidRedirectUri = (description: string) => new ClientMetadataError('invalid_redirect_uri', 'redirect_uris', description);
export const notFound = (description: string) => new OAuthError('not_found', description);
export const conflict = (description: string) => new OAuthError('conflict', description);
export const tooManyRequests = (retryAfter: number, description = 'Too many failed attempts; try again later.') =>
  new OAuthError('too_many_requests', description, { retryAfter });
