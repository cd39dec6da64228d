/**
 * The pieces of route schemas that every scope shares, defined once: the
 * JSON error body, the security requirements (by the names of the schemes
 * `docs.ts` defines), and how the HTML pages' answers are documented.
 */

/** Id of the one error-body schema, registered on the root instance (`app.addSchema`) and referenced as `OAuthError#`. */
export const ERROR_SCHEMA_ID = 'OAuthError';

/** Every JSON error body: RFC 6749 §5.2 shape, also used by the admin API and RFC 6750 resource errors. */
export const ERROR_SCHEMA = {
  $id: ERROR_SCHEMA_ID,
  type: 'object',
  description: 'Error (RFC 6749 §5.2 shape; also used by the admin API and RFC 6750 resource errors).',
  required: ['error'],
  properties: {
    error: { type: 'string', description: 'Error code, e.g. invalid_request, invalid_client, invalid_grant, invalid_token.' },
    error_description: { type: 'string', description: 'Human-readable explanation, safe to show.' },
  },
} as const;

const ERROR_REF = { $ref: `${ERROR_SCHEMA_ID}#` } as const;

/** Response schema entries: each of these status codes answers the shared error body. */
export function errorResponses(...codes: number[]): Record<number, typeof ERROR_REF> {
  return Object.fromEntries(codes.map((code) => [code, ERROR_REF]));
}

type Security = ReadonlyArray<Readonly<Record<string, readonly string[]>>>;

/** OpenAPI security requirements of the route groups. */
export const SECURITY = {
  /** A bearer access token from this server (resource routes, UserInfo). */
  bearer: [{ oauth2: [] }, { bearerAuth: [] }],
  /** Client authentication at the token endpoint; public clients send no header at all (client_id in the body). */
  client: [{ clientBasic: [] }, {}],
  /** An admin's username and password, or an admin's bearer token. */
  admin: [{ adminBasic: [] }, { bearerAuth: [] }],
  /** Client registration: nothing (DYNAMIC_REGISTRATION=open) or an initial access token (token). */
  registration: [{ bearerAuth: [] }, {}],
  /** RFC 7592 client configuration: the registration access token. */
  registrationAccessToken: [{ bearerAuth: [] }],
} as const satisfies Record<string, Security>;

/** A documented HTML answer (pages render templates; nothing is serialised through this). */
export const htmlPage = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } }) as const;

/** The shared error body, documented under its media type (for answers documented with `content`). */
export const jsonError = (description: string) => ({ description, content: { 'application/json': { schema: ERROR_REF } } }) as const;

/** An error a JSON caller gets as the shared error body and a form post as an HTML page (`POST /register`). */
export const jsonOrHtmlError = (description: string) =>
  ({ description, content: { 'application/json': { schema: ERROR_REF }, 'text/html': { schema: { type: 'string' } } } }) as const;

/** A documented redirect with no body. */
export const redirect = (description: string) => ({ description, type: 'null' }) as const;
