/**
 * JSON schemas of the admin API: validation, serialisation and (through
 * @fastify/swagger) the OpenAPI document, in one place. Response schemas are
 * also the leak guard: only listed properties are serialised, and no hash is
 * ever listed. Request bodies refuse unknown properties, so a typo such as
 * `redirect_uri` is a clear 400 rather than a silently ignored field.
 *
 * Semantic rules (known grant types, redirect URI form, known scopes) are
 * checked by `clients/metadata.ts` so they answer the RFC 7591 §3.2.2 error
 * codes; the schemas check shape and size.
 */
import { AUDIT_DETAIL_FIELDS, AUDIT_EVENT_TYPES, AUDIT_OUTCOMES } from '../audit/events.js';
import { AUDIT_TYPE_PATTERN, MAX_FILTER_LENGTH } from '../audit/filter.js';
import { MAX_DESCRIPTION_LENGTH, MAX_EXPIRES_IN_SECONDS } from '../clients/initial-access-tokens.js';
import { MAX_JWKS_KEYS, MAX_JWKS_URI_LENGTH } from '../clients/jwks.js';
import { MAX_REDIRECT_URI_LENGTH, MAX_REDIRECT_URIS } from '../clients/metadata.js';
import { AUTH_METHOD_NAMES, REGISTRABLE_GRANT_TYPES, RESPONSE_TYPE_NAMES, RESPONSE_TYPES } from '../oauth/protocol.js';
import { errorResponses } from '../http/schemas.js';
import { MAX_PASSWORD_LENGTH, PASSWORD_RULE } from '../users/password-policy.js';
import { MAX_ROLES } from '../users/service.js';

export const ADMIN_TAG = 'admin';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

const idString = { type: 'string', minLength: 1, maxLength: 200 } as const;
const timestamp = { type: 'string', format: 'date-time' } as const;

export const pageQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: `Page size (1–${MAX_PAGE_SIZE})` },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0, description: 'Items to skip' },
  },
} as const;

export const clientIdParams = {
  type: 'object',
  required: ['client_id'],
  properties: { client_id: idString },
} as const;

export const userIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: idString },
} as const;

export const userConsentParams = {
  type: 'object',
  required: ['id', 'client_id'],
  properties: { id: idString, client_id: idString },
} as const;

// ---------------------------------------------------------------- clients

const metadataProperties = {
  client_name: { type: 'string', minLength: 1, maxLength: 200, description: 'Shown to people on the consent page' },
  redirect_uris: {
    type: 'array',
    maxItems: MAX_REDIRECT_URIS,
    items: { type: 'string', minLength: 1, maxLength: MAX_REDIRECT_URI_LENGTH },
    description: 'Absolute URIs, no fragment; https, or http on localhost/loopback. Matched exactly.',
  },
  post_logout_redirect_uris: {
    type: 'array',
    maxItems: MAX_REDIRECT_URIS,
    items: { type: 'string', minLength: 1, maxLength: MAX_REDIRECT_URI_LENGTH },
    description: 'OpenID Connect RP-Initiated Logout §3.1: where /end-session may send the browser after signing out. The rules of redirect_uris; matched exactly. Default: none.',
  },
  backchannel_logout_uri: {
    type: ['string', 'null'],
    minLength: 1,
    maxLength: MAX_REDIRECT_URI_LENGTH,
    description:
      'OpenID Connect Back-Channel Logout §2.2: where a logout token is posted when a browser session that signed a user in to this client ends. ' +
      'An absolute https or http URI, no fragment. Default null (none); null clears it.',
  },
  backchannel_logout_session_required: {
    type: 'boolean',
    description: 'Back-Channel Logout §2.2: the client needs the sid claim in its logout tokens (they always carry it here). Default false.',
  },
  grant_types: {
    type: 'array',
    maxItems: REGISTRABLE_GRANT_TYPES.length,
    items: { type: 'string', maxLength: 100 },
    description: `Any of: ${REGISTRABLE_GRANT_TYPES.join(', ')}. Default: authorization_code.`,
  },
  response_types: {
    type: 'array',
    maxItems: RESPONSE_TYPE_NAMES.length,
    items: { type: 'string', maxLength: 100 },
    description: `${RESPONSE_TYPE_NAMES.map((r) => `${r} (with ${RESPONSE_TYPES[r].grantType})`).join(', ')}. Default: derived from grant_types.`,
  },
  token_endpoint_auth_method: {
    type: 'string',
    maxLength: 100,
    description: `One of: ${AUTH_METHOD_NAMES.join(', ')} (none = public client, no secret; private_key_jwt = no secret, the client signs a JWT with a key of its jwks or jwks_uri). Default: client_secret_basic.`,
  },
  scope: {
    type: 'string',
    maxLength: 2000,
    description: 'Space-separated scopes this client may get. Default: every scope the server knows, except "admin" (the admin API\'s scope), which must be named.',
  },
  resource_server: {
    type: 'boolean',
    description: "Not RFC 7591. A resource server may introspect (RFC 7662) other clients' access tokens; any other client only its own. Default false.",
  },
  jwks: {
    type: ['object', 'null'],
    required: ['keys'],
    properties: { keys: { type: 'array', minItems: 1, maxItems: MAX_JWKS_KEYS, items: { type: 'object' } } },
    description:
      'private_key_jwt only: the client\'s public keys, an RFC 7517 JWK Set (RSA ≥ 2048 bits, EC or OKP; no private members such as "d"). Not with jwks_uri. In a change, null removes it; naming jwks or jwks_uri replaces the registered keys.',
  },
  jwks_uri: {
    type: ['string', 'null'],
    maxLength: MAX_JWKS_URI_LENGTH,
    description: 'private_key_jwt only: https URL where the client publishes its JWK Set (fetched through the SSRF guard, cached per its caching headers). Not with jwks.',
  },
  dpop_bound_access_tokens: {
    type: 'boolean',
    description: 'RFC 9449 §5.2: every token request of this client must carry a DPoP proof, so its access tokens are always DPoP-bound. Default false.',
  },
  require_pushed_authorization_requests: {
    type: 'boolean',
    description: 'RFC 9126 §6: the client must push its authorization requests (POST /par); /authorize refuses requests sent directly. Default false (REQUIRE_PAR=true requires it of every client).',
  },
} as const;

export const clientCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['client_name'],
  properties: metadataProperties,
} as const;

export const clientPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: metadataProperties,
  description: 'Fields to change; the result is validated as a whole. Lists replace the old lists.',
} as const;

export const clientResponse = {
  type: 'object',
  required: ['client_id', 'client_name', 'redirect_uris', 'grant_types', 'response_types', 'token_endpoint_auth_method', 'scope'],
  properties: {
    client_id: { type: 'string' },
    client_secret: { type: 'string', description: 'Only in the answer that creates it (registration, rotation, becoming confidential); stored hashed.' },
    client_secret_expires_at: { type: 'integer', description: 'RFC 7591: 0 = does not expire. Present with client_secret.' },
    client_id_issued_at: { type: 'integer', description: 'Epoch seconds' },
    client_name: { type: 'string' },
    redirect_uris: { type: 'array', items: { type: 'string' } },
    post_logout_redirect_uris: { type: 'array', items: { type: 'string' } },
    backchannel_logout_uri: { type: ['string', 'null'] },
    backchannel_logout_session_required: { type: 'boolean' },
    grant_types: { type: 'array', items: { type: 'string' } },
    response_types: { type: 'array', items: { type: 'string' } },
    token_endpoint_auth_method: { type: 'string' },
    scope: { type: 'string' },
    resource_server: { type: 'boolean' },
    jwks: { type: 'object', additionalProperties: true, description: 'private_key_jwt clients registered with inline keys' },
    jwks_uri: { type: 'string', description: 'private_key_jwt clients registered with a key URL' },
    dpop_bound_access_tokens: { type: 'boolean' },
    require_pushed_authorization_requests: { type: 'boolean' },
    origin: {
      type: 'string',
      enum: ['admin', 'dynamic', 'metadata_document'],
      description:
        'Who registered it: an admin; anyone through dynamic registration (RFC 7591); or nobody: a client whose client_id is the URL of its metadata document, kept once authorized. The last two are deleted after DYNAMIC_CLIENT_IDLE_DAYS without use.',
    },
    last_used_at: { type: ['string', 'null'], format: 'date-time', description: 'Last token issued or authorization (to the day); null: never' },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const clientListResponse = {
  type: 'object',
  required: ['items', 'total', 'limit', 'offset'],
  properties: { items: { type: 'array', items: clientResponse }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
} as const;

// ---------------------------------------------------------------- initial access tokens

export const initialAccessTokenIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: idString },
} as const;

export const initialAccessTokenCreateBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    description: { type: 'string', maxLength: MAX_DESCRIPTION_LENGTH, description: 'Who or what it is for' },
    expires_in: { type: 'integer', minimum: 60, maximum: MAX_EXPIRES_IN_SECONDS, description: 'Seconds from now; absent: never expires' },
    max_uses: { type: 'integer', minimum: 1, maximum: 1_000_000, description: 'Registrations it allows; absent: any number' },
  },
} as const;

export const initialAccessTokenResponse = {
  type: 'object',
  required: ['id', 'description', 'created_at', 'expires_at', 'max_uses', 'uses', 'last_used_at'],
  properties: {
    id: { type: 'string' },
    token: { type: 'string', description: 'Only in the answer that creates it: send it as Authorization: Bearer to the registration endpoint. Stored hashed.' },
    description: { type: 'string' },
    created_at: timestamp,
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    max_uses: { type: ['integer', 'null'] },
    uses: { type: 'integer' },
    last_used_at: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

export const initialAccessTokenListResponse = {
  type: 'object',
  required: ['items', 'total', 'limit', 'offset'],
  properties: { items: { type: 'array', items: initialAccessTokenResponse }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
} as const;

// ---------------------------------------------------------------- users

const roles = {
  type: 'array',
  maxItems: MAX_ROLES,
  items: { type: 'string', minLength: 1, maxLength: 64 },
  description: 'e.g. ["admin"]; lowercase letters, digits and _ : . -',
} as const;
// Only bounded here: the rule itself (users/password-policy.ts) answers with what is wrong.
const password = { type: 'string', maxLength: MAX_PASSWORD_LENGTH, description: PASSWORD_RULE } as const;
const email = { type: ['string', 'null'], maxLength: 254, description: 'Empty or null clears it' } as const;

export const userCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'password'],
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 64, description: 'Unique, case-insensitively; letters, digits and . _ @ -' },
    password,
    email,
    roles,
  },
} as const;

export const userPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { password, email, roles: { ...roles, description: 'Replaces the roles' }, disabled: { type: 'boolean' } },
} as const;

export const userResponse = {
  type: 'object',
  required: ['id', 'username', 'email', 'roles', 'disabled'],
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    email: { type: ['string', 'null'] },
    email_verified: { type: 'boolean', description: 'Whether the user proved the address (the mailed link) or an upstream provider verified it; only a verified address links an upstream sign-in' },
    roles: { type: 'array', items: { type: 'string' } },
    disabled: { type: 'boolean' },
    second_factor: {
      type: 'boolean',
      description:
        'Whether the user has an authenticator app (TOTP): then the password alone signs them in nowhere. In the answers about one user, not in lists. DELETE /admin/users/{id}/second-factor removes it.',
    },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const userListResponse = {
  type: 'object',
  required: ['items', 'total', 'limit', 'offset'],
  properties: { items: { type: 'array', items: userResponse }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
} as const;

export const consentResponse = {
  type: 'object',
  required: ['client_id', 'scopes'],
  properties: {
    client_id: { type: 'string' },
    client_name: { type: ['string', 'null'] },
    scopes: { type: 'array', items: { type: 'string' } },
    resources: {
      type: ['array', 'null'],
      items: { type: 'string' },
      description: 'RFC 8707: the resources the consent covers; null for one remembered before resources were recorded, which covers the default resource only.',
    },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const consentListResponse = {
  type: 'object',
  required: ['items', 'total'],
  properties: { items: { type: 'array', items: consentResponse }, total: { type: 'integer' } },
} as const;

// ---------------------------------------------------------------- audit events

const filterString = (description: string) => ({ type: 'string', maxLength: MAX_FILTER_LENGTH, description }) as const;

export const eventQuery = {
  type: 'object',
  properties: {
    ...pageQuery.properties,
    type: {
      type: 'string',
      maxLength: 64,
      pattern: AUDIT_TYPE_PATTERN,
      description: `An event type, or a prefix ending in "." (e.g. user.). Types: ${AUDIT_EVENT_TYPES.join(', ')}.`,
    },
    actor: filterString('Who acted: a user id, or a username (case-insensitive; also the name typed at a failed sign-in)'),
    subject: filterString('What was acted on: a user id, client_id, key id (kid) or refresh-token family id'),
    client_id: filterString('The OAuth client involved'),
    outcome: { type: 'string', enum: [...AUDIT_OUTCOMES] },
    since: { type: 'string', maxLength: 40, description: 'ISO 8601 date or date-time (UTC unless a zone is given); events at or after it' },
    until: { type: 'string', maxLength: 40, description: 'ISO 8601 date or date-time (UTC unless a zone is given); events before it' },
  },
} as const;

const nullableString = { type: ['string', 'null'] } as const;

/** Exactly the detail keys an event may carry (`audit/events.ts`): nothing else is serialised. */
const eventDetails = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    Object.entries(AUDIT_DETAIL_FIELDS).map(([key, kind]) => [key, kind === 'strings' ? { type: 'array', items: { type: 'string' } } : { type: kind }]),
  ),
} as const;

export const eventResponse = {
  type: 'object',
  required: ['id', 'occurred_at', 'type', 'outcome', 'actor', 'subject', 'client_id', 'ip', 'details'],
  properties: {
    id: { type: 'string', description: 'Increasing with insertion' },
    occurred_at: timestamp,
    type: { type: 'string' },
    outcome: { type: 'string', enum: [...AUDIT_OUTCOMES] },
    actor: {
      type: 'object',
      required: ['type', 'id', 'username'],
      description:
        'type user (id null when the account was not proven: a failed sign-in names the username typed), cli, system, or anonymous (a client registering itself, RFC 7591/7592)',
      properties: { type: { type: 'string' }, id: nullableString, username: nullableString },
    },
    subject: {
      type: ['object', 'null'],
      description: 'What was acted on: type user, client, key, family or initial_access_token, and its id',
      properties: { type: { type: 'string' }, id: { type: 'string' } },
    },
    client_id: nullableString,
    ip: nullableString,
    details: eventDetails,
  },
} as const;

export const eventListResponse = {
  type: 'object',
  required: ['items', 'total', 'limit', 'offset'],
  properties: { items: { type: 'array', items: eventResponse }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
} as const;

/** The error answers of an admin route: 401, 403 and 429 on every one, and its own. */
export function adminErrorResponses(...codes: number[]) {
  return errorResponses(401, 403, 429, ...codes);
}
