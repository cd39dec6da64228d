/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
 * a `client_id` that is an https URL names a JSON document, published by the
 * client, that says what the client is. Nobody registers it: the server
 * fetches the document (through the SSRF guard, `security/outbound-fetch.ts`)
 * and treats the client as a public one (`none`, PKCE) for the flow.
 *
 * - The URL must be https with a path, no fragment, credentials or dot
 *   segments, written canonically (draft §3).
 * - The document's `client_id` must equal the URL exactly (draft §4.1); it
 *   must not carry a secret, and can only be a public client.
 * - `redirect_uris` bind the request like a registered client's; https or
 *   loopback only, and so are `post_logout_redirect_uris` (OpenID Connect
 *   RP-Initiated Logout §3.1), where `/end-session` may send the browser
 *   back. A `backchannel_logout_uri` (Back-Channel Logout §2.2) is https
 *   only; logout tokens are posted to it through the SSRF guard.
 *   `client_name` is shown on the consent page.
 * - Fields this server does not use are ignored (a real client's document
 *   carries logo_uri, client_uri, contacts, software_id, …), and so are
 *   values it cannot grant: grant types other than `authorization_code` and
 *   `refresh_token`, scopes it does not know, and the `admin` scope.
 * - The validated document is cached in the shared TTL store, so every
 *   instance uses the same copy, for as long as its HTTP caching headers say
 *   within `DOCUMENT_CACHE`'s bounds; a refusal for a short while, so a
 *   broken URL is not fetched on every request. Concurrent lookups on one
 *   instance share one fetch.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config.js';
import { OAuthError } from '../errors.js';
import type { OutboundFetch } from '../security/outbound-fetch.js';
import { OutboundFetchError } from '../security/outbound-fetch.js';
import type { Client, ClientMetadata, KvStore } from '../storage/types.js';
import { ADMIN_SCOPE } from '../oauth/scope.js';
import { DYNAMIC_GRANT_TYPES, parseScope, unsupportedResponseMetadata, validateDynamicClientMetadata, type ClientMetadataInput } from './metadata.js';

/** Largest document accepted, bytes. */
export const MAX_DOCUMENT_BYTES = 5_120;

/** How long a document is kept in the shared cache, seconds. */
export const DOCUMENT_CACHE = {
  /** Floor, also for `no-store`/`no-cache`: a document is never fetched for every request. */
  minSeconds: 60,
  /** Ceiling: a changed or withdrawn document is seen within a day whatever its headers say. */
  maxSeconds: 86_400,
  /** Without caching headers. */
  defaultSeconds: 600,
  /** A refusal (unreachable, invalid, over the limits). */
  refusalSeconds: 30,
} as const;

/**
 * Where validated documents are cached, with the version of their shape
 * (`ClientMetadata`): raise it when a field is added, so no instance reads
 * an entry cached without it (older entries expire on their own).
 */
const KEY_PREFIX = 'client-metadata:v2:';

/** Whether a `client_id` is a metadata document's URL (then it is never looked up in the database). */
export function isMetadataDocumentClientId(clientId: string): boolean {
  return clientId.startsWith('https://');
}

/** A document that cannot be used: shown on the error page, or as `invalid_client` at the token endpoint. */
function refused(clientId: string, why: string): OAuthError {
  return new OAuthError('invalid_client', `The client metadata document at ${clientId} cannot be used: ${why}`);
}

/** Draft §3: the forms a client identifier URL may take. Throws `invalid_client`. */
export function checkClientIdUrl(clientId: string): void {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw refused(clientId, 'the client_id is not a URL.');
  }
  if (url.protocol !== 'https:') throw refused(clientId, 'the client_id must be an https URL.');
  if (url.username || url.password) throw refused(clientId, 'the client_id must not contain credentials.');
  if (clientId.includes('#')) throw refused(clientId, 'the client_id must not contain a fragment.');
  if (url.pathname === '/' || url.pathname === '') throw refused(clientId, 'the client_id must have a path.');
  // The parser resolves dot segments and normalises case and default ports: a URL that is not
  // written that way would name the same document under two client ids.
  if (url.href !== clientId || /\/\.\.?(\/|$)/.test(clientId)) throw refused(clientId, `the client_id must be written canonically (${url.href}).`);
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');

/**
 * The document's metadata, validated (draft §4). Throws `invalid_client`
 * saying what is wrong. Unknown fields are ignored; so are grant types and
 * scopes this server would not grant such a client.
 */
export function parseMetadataDocument(clientId: string, body: string, knownScopes: readonly string[], allowPrivateNetworks = false): ClientMetadata {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw refused(clientId, 'it is not JSON.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw refused(clientId, 'it is not a JSON object.');
  const fields = doc as Record<string, unknown>;
  // Draft §4.1: simple string comparison.
  if (fields.client_id !== clientId) throw refused(clientId, 'its client_id is not this URL.');
  if (fields.client_secret !== undefined || fields.client_secret_expires_at !== undefined) {
    throw refused(clientId, 'a metadata document must not contain a client secret.');
  }
  const method = fields.token_endpoint_auth_method;
  if (method !== undefined && method !== 'none') {
    const named = typeof method === 'string' ? ` "${method.slice(0, 40)}"` : '';
    throw refused(clientId, `token_endpoint_auth_method${named} is not supported here; only public clients ("none").`);
  }
  if (!isStringArray(fields.redirect_uris) || fields.redirect_uris.length === 0) throw refused(clientId, 'redirect_uris must be a list of URIs.');
  if (fields.post_logout_redirect_uris !== undefined && !isStringArray(fields.post_logout_redirect_uris)) {
    throw refused(clientId, 'post_logout_redirect_uris must be a list of URIs.');
  }
  if (fields.backchannel_logout_uri !== undefined && fields.backchannel_logout_uri !== null && typeof fields.backchannel_logout_uri !== 'string') {
    throw refused(clientId, 'backchannel_logout_uri must be a string.');
  }
  if (fields.backchannel_logout_session_required !== undefined && typeof fields.backchannel_logout_session_required !== 'boolean') {
    throw refused(clientId, 'backchannel_logout_session_required must be true or false.');
  }
  if (fields.client_name !== undefined && typeof fields.client_name !== 'string') throw refused(clientId, 'client_name must be a string.');
  if (fields.grant_types !== undefined && !isStringArray(fields.grant_types)) throw refused(clientId, 'grant_types must be a list of strings.');
  if (fields.response_types !== undefined && !isStringArray(fields.response_types)) throw refused(clientId, 'response_types must be a list of strings.');
  if (fields.scope !== undefined && typeof fields.scope !== 'string') throw refused(clientId, 'scope must be a string.');

  const unsupported = unsupportedResponseMetadata(fields);
  if (unsupported !== null) throw refused(clientId, `${unsupported}.`);

  const grants = fields.grant_types?.filter((g) => (DYNAMIC_GRANT_TYPES as readonly string[]).includes(g));
  if (grants !== undefined && !grants.includes('authorization_code')) throw refused(clientId, 'it does not use the authorization_code grant.');
  if (fields.response_types !== undefined && !fields.response_types.includes('code')) throw refused(clientId, 'it does not use the response type "code".');
  const scopes = fields.scope === undefined ? undefined : parseScope(fields.scope).filter((s) => knownScopes.includes(s) && s !== ADMIN_SCOPE);
  const input: ClientMetadataInput = {
    redirect_uris: fields.redirect_uris,
    ...(fields.post_logout_redirect_uris === undefined ? {} : { post_logout_redirect_uris: fields.post_logout_redirect_uris }),
    ...(typeof fields.backchannel_logout_uri === 'string' ? { backchannel_logout_uri: fields.backchannel_logout_uri } : {}),
    ...(fields.backchannel_logout_session_required === undefined ? {} : { backchannel_logout_session_required: fields.backchannel_logout_session_required }),
    token_endpoint_auth_method: 'none',
    ...(fields.client_name === undefined ? {} : { client_name: fields.client_name.slice(0, 200) }),
    ...(grants === undefined ? {} : { grant_types: grants }),
    ...(fields.response_types === undefined ? {} : { response_types: ['code'] }),
    ...(scopes === undefined || scopes.length === 0 ? {} : { scope: scopes.join(' ') }),
  };
  try {
    return validateDynamicClientMetadata(input, knownScopes, { allowConfidential: false, allowPrivateNetworks });
  } catch (err) {
    if (err instanceof OAuthError) throw refused(clientId, err.description);
    throw err;
  }
}

/**
 * How long to keep a document, from its caching headers (RFC 9111:
 * `no-store`/`no-cache`, `max-age` less `Age`, else `Expires` against
 * `Date`), within `bounds` (`DOCUMENT_CACHE`'s unless given: a client's
 * `jwks_uri` has its own).
 */
export function documentCacheSeconds(
  headers: IncomingHttpHeaders,
  nowMs: number,
  bounds: { readonly minSeconds: number; readonly maxSeconds: number; readonly defaultSeconds: number } = DOCUMENT_CACHE,
): number {
  const clamp = (seconds: number) => Math.min(bounds.maxSeconds, Math.max(bounds.minSeconds, Math.floor(seconds)));
  const directives = String(headers['cache-control'] ?? '')
    .toLowerCase()
    .split(',')
    .map((d) => d.trim());
  if (directives.includes('no-store') || directives.includes('no-cache')) return bounds.minSeconds;
  const maxAge = directives.map((d) => /^max-age\s*=\s*"?(\d{1,10})"?$/.exec(d)?.[1]).find((v) => v !== undefined);
  if (maxAge !== undefined) {
    const age = Number(headers.age);
    return clamp(Number(maxAge) - (Number.isFinite(age) && age > 0 ? age : 0));
  }
  if (headers.expires !== undefined) {
    const expires = Date.parse(headers.expires);
    const date = headers.date === undefined ? nowMs : Date.parse(headers.date);
    // RFC 9111 §5.3: an invalid Expires means already expired.
    return clamp(Number.isNaN(expires) || Number.isNaN(date) ? 0 : (expires - date) / 1000);
  }
  return bounds.defaultSeconds;
}

/** What the shared cache holds for a URL: the validated metadata, or why it was refused (the whole description). */
type Cached = { metadata: ClientMetadata; fetchedAtMs: number } | { refused: string };

export interface MetadataDocumentResolverDeps {
  fetch: OutboundFetch;
  kv: KvStore;
  config: Pick<Config, 'scopes' | 'clientMetadataAllowPrivateNetworks'>;
  now: () => number;
}

export interface MetadataDocumentResolver {
  /** The client a metadata document describes (shared cache, else fetched). Throws `invalid_client` saying why it cannot be used. */
  resolve(clientId: string): Promise<Client>;
}

export function createMetadataDocumentResolver(deps: MetadataDocumentResolverDeps): MetadataDocumentResolver {
  const { kv, config, now } = deps;
  const inFlight = new Map<string, Promise<Cached>>();
  const keyOf = (clientId: string) => KEY_PREFIX + createHash('sha256').update(clientId).digest('base64url');

  const toClient = (clientId: string, metadata: ClientMetadata, fetchedAtMs: number): Client => ({
    clientId,
    clientSecretHash: null,
    ...metadata,
    resourceServer: false,
    origin: 'metadata_document',
    registrationAccessTokenHash: null,
    lastUsedAt: null,
    createdAt: new Date(fetchedAtMs),
    updatedAt: new Date(fetchedAtMs),
  });

  /** Fetches and validates, then stores the outcome for every instance. */
  const load = async (clientId: string): Promise<Cached> => {
    let cached: Cached;
    let ttlSeconds: number;
    try {
      const fetched = await deps.fetch(clientId, 'application/json');
      const fetchedAtMs = now();
      cached = { metadata: parseMetadataDocument(clientId, fetched.body, config.scopes, config.clientMetadataAllowPrivateNetworks), fetchedAtMs };
      ttlSeconds = documentCacheSeconds(fetched.headers, fetchedAtMs);
    } catch (err) {
      if (err instanceof OutboundFetchError) cached = { refused: refused(clientId, `it could not be fetched: ${err.message}.`).description };
      else if (err instanceof OAuthError && err.error === 'invalid_client') cached = { refused: err.description };
      else throw err;
      ttlSeconds = DOCUMENT_CACHE.refusalSeconds;
    }
    await kv.set(keyOf(clientId), JSON.stringify(cached), ttlSeconds);
    return cached;
  };

  return {
    async resolve(clientId) {
      checkClientIdUrl(clientId);
      const raw = await kv.get(keyOf(clientId));
      let cached: Cached | null = null;
      if (raw !== null) {
        try {
          cached = JSON.parse(raw) as Cached;
        } catch {
          cached = null;
        }
      }
      if (cached === null) {
        let pending = inFlight.get(clientId);
        if (!pending) {
          pending = load(clientId).finally(() => inFlight.delete(clientId));
          inFlight.set(clientId, pending);
        }
        cached = await pending;
      }
      // The message of the refusal as first given, on every instance.
      if ('refused' in cached) throw new OAuthError('invalid_client', cached.refused);
      return toClient(clientId, cached.metadata, cached.fetchedAtMs);
    },
  };
}
