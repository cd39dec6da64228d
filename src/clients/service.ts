/**
 * Client registry: registration, changes and secret rotation (admin API,
 * CLI, and RFC 7591/7592 dynamic registration), the lookup the OAuth
 * endpoints make on every request, and when each client was last used.
 *
 * That lookup is served from a short-lived in-memory cache so the hot path
 * does not wait on PostgreSQL for every token. Every change drops the entry
 * here at once and, through the TTL store's pub/sub, on every other instance;
 * the short TTL bounds staleness if a message is ever lost. A `client_id`
 * that is an https URL is a Client ID Metadata Document's client: the
 * lookup resolves it through the document (`metadata-document.ts`), never
 * from the database.
 *
 * "Used" (a token issued to the client, or the client authorized) is written
 * at most once a day per client and instance, so the hot path does not write
 * per request; the idle reaper (`idle-reaper.ts`) reads it.
 */
import { recordChange, type AuditEventInput, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import type { Config } from '../config.js';
import { conflict, notFound } from '../errors.js';
import { isAuthMethod, TOKEN_ENDPOINT_AUTH_METHODS, usesSecret } from '../oauth/protocol.js';
import type { Client, ClientMetadata, ClientRepo, KvStore, Page } from '../storage/types.js';
import { validateClientMetadata, validateDynamicClientMetadata, type ClientMetadataInput, type DynamicClientPolicy } from './metadata.js';
import { isMetadataDocumentClientId } from './metadata-document.js';
import { generateClientId, generateClientSecret, generateRegistrationAccessToken, hashClientSecret, verifyClientSecret } from './secret.js';

export const CLIENTS_CHANNEL = 'clients';
/** Longest client id looked up (the admin API's limit for path ids). */
export const MAX_CLIENT_ID_LENGTH = 200;

export interface ClientServiceDeps {
  repo: ClientRepo;
  kv: KvStore;
  config: Pick<Config, 'scopes'>;
  now?: () => number;
  /** How long a cached client may be served, ms. */
  cacheTtlMs?: number;
  /** Called before a client is deleted, so every token issued to it ends with it (the token service). */
  onDelete?: (clientId: string) => Promise<void>;
  /** Where registrations, changes, deletions and secret rotations are recorded. */
  audit?: AuditRecorder;
  /** Resolves `client_id`s that are https URLs (Client ID Metadata Documents); without it they are unknown. */
  metadataDocuments?: { resolve(clientId: string): Promise<Client> };
}

export interface RegisteredClient {
  client: Client;
  /** Plain secret: returned once, at registration or rotation; null for public clients. */
  clientSecret: string | null;
}

export interface DynamicallyRegisteredClient extends RegisteredClient {
  /** RFC 7592: the plain registration access token, returned once; stored only as a hash. */
  registrationAccessToken: string;
}

/** How long a recorded use counts: `last_used_at` is written at most this often per client. */
export const USE_RECORD_PERIOD_MS = 86_400_000;

/**
 * `context` (registration, changes, deletion, rotation): who asks and from
 * where, for the audit trail; without one the change is the system's.
 */
export interface ClientService {
  /** An admin's registration (admin API, console, CLI). */
  register(input: ClientMetadataInput, context?: ChangeContext): Promise<RegisteredClient>;
  /**
   * RFC 7591 registration (origin `dynamic`), held to
   * `validateDynamicClientMetadata` and `policy`; issues the RFC 7592
   * registration access token.
   */
  registerDynamic(input: ClientMetadataInput, policy: DynamicClientPolicy, context?: ChangeContext): Promise<DynamicallyRegisteredClient>;
  /** Uncached read of the stored client (admin; a metadata-document client's row, never its document). */
  get(clientId: string): Promise<Client>;
  /**
   * Cached read for the OAuth endpoints; null when unknown. A https URL is
   * resolved through its metadata document, and throws `invalid_client`
   * saying why when the document cannot be used.
   */
  find(clientId: string): Promise<Client | null>;
  list(page: Page): Promise<{ clients: Client[]; total: number }>;
  /**
   * Merges `patch` into the current metadata and validates the result as a
   * whole. With `dynamic`, the client's own RFC 7592 update: `patch`
   * replaces the metadata (omitted fields take their defaults, RFC 7592
   * §2.2) and is held to the rules of `registerDynamic`. A metadata-document
   * client's row cannot be changed (409): its document says what it is.
   */
  update(clientId: string, patch: ClientMetadataInput, context?: ChangeContext, dynamic?: DynamicClientPolicy): Promise<RegisteredClient>;
  /** `reason` goes into the audit event (`idle` from the reaper). */
  delete(clientId: string, context?: ChangeContext, reason?: string): Promise<void>;
  /**
   * RFC 7592 §3: the dynamically registered client whose registration access
   * token this is, compared in constant time; null for any other token,
   * client or origin.
   */
  verifyRegistrationAccessToken(clientId: string, token: string): Promise<Client | null>;
  /**
   * Records that the client was used (a token issued, or it was authorized):
   * `last_used_at` written at most once a day per client. A metadata-document
   * client gets (or refreshes) its row, which consents and refresh tokens
   * refer to; so this must precede them.
   */
  recordUse(client: Client, context?: ChangeContext): Promise<void>;
  rotateSecret(clientId: string, context?: ChangeContext): Promise<RegisteredClient>;
  /**
   * A first-party public client under a fixed, well-known id (e.g. Swagger
   * UI's): created when missing, brought in line with `input` when its
   * redirect URIs, grants, scope or authentication method differ. Idempotent;
   * safe when several instances start at once. Public only: a secret could
   * not be shown to anyone.
   */
  ensurePublic(clientId: string, input: ClientMetadataInput): Promise<Client>;
  /** Subscribes to invalidations from other instances; returns the unsubscribe. */
  start(): Promise<() => Promise<void>>;
}

/** The RFC 7591 names of the metadata that differs between `before` and `after` (what a `client.updated` event lists). */
function changedFields(before: Client, after: Client): string[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const pairs: Array<[string, unknown, unknown]> = [
    ['client_name', before.clientName, after.clientName],
    ['redirect_uris', before.redirectUris, after.redirectUris],
    ['post_logout_redirect_uris', before.postLogoutRedirectUris, after.postLogoutRedirectUris],
    ['backchannel_logout_uri', before.backchannelLogoutUri, after.backchannelLogoutUri],
    ['backchannel_logout_session_required', before.backchannelLogoutSessionRequired, after.backchannelLogoutSessionRequired],
    ['grant_types', before.grantTypes, after.grantTypes],
    ['response_types', before.responseTypes, after.responseTypes],
    ['token_endpoint_auth_method', before.tokenEndpointAuthMethod, after.tokenEndpointAuthMethod],
    ['scope', before.scope, after.scope],
    ['resource_server', before.resourceServer, after.resourceServer],
    ['jwks', before.jwks, after.jwks],
    ['jwks_uri', before.jwksUri, after.jwksUri],
    ['dpop_bound_access_tokens', before.dpopBoundAccessTokens, after.dpopBoundAccessTokens],
    ['require_pushed_authorization_requests', before.requirePushedAuthorizationRequests, after.requirePushedAuthorizationRequests],
  ];
  return pairs.filter(([, a, b]) => !same(a, b)).map(([name]) => name);
}

/**
 * The keys a change leaves a client with: naming `jwks` or `jwks_uri`
 * replaces the registered keys (so switching from one form to the other
 * needs only the new one); moving to a method without keys drops them;
 * otherwise they stay.
 */
function keysAfter(current: Client, patch: ClientMetadataInput): Pick<ClientMetadataInput, 'jwks' | 'jwks_uri'> {
  if (patch.jwks !== undefined || patch.jwks_uri !== undefined) {
    return { jwks: patch.jwks ?? null, jwks_uri: patch.jwks_uri ?? null };
  }
  const method = patch.token_endpoint_auth_method ?? current.tokenEndpointAuthMethod;
  const keep = isAuthMethod(method) && TOKEN_ENDPOINT_AUTH_METHODS[method].keys;
  return keep ? { jwks: current.jwks, jwks_uri: current.jwksUri } : { jwks: null, jwks_uri: null };
}

export function createClientService(deps: ClientServiceDeps): ClientService {
  const { repo, kv, config } = deps;
  const now = deps.now ?? Date.now;
  const ttl = deps.cacheTtlMs ?? 5_000;
  const cache = new Map<string, { client: Client | null; until: number }>();
  /** client id → when this instance last recorded a use (and, for a metadata-document client, of which metadata). */
  const usedHere = new Map<string, { atMs: number; metadata: string }>();

  const forget = (clientId: string) => {
    cache.delete(clientId);
    usedHere.delete(clientId);
  };

  const invalidate = async (clientId: string) => {
    forget(clientId);
    // Best effort: the cache TTL bounds staleness if Redis is down.
    await kv.publish(CLIENTS_CHANNEL, clientId).catch(() => {});
  };

  const get = async (clientId: string) => {
    const client = await repo.findById(clientId);
    if (!client) throw notFound(`no client "${clientId}"`);
    return client;
  };

  /** Records a change to `client` (never its secret or hash). */
  const record = (context: ChangeContext | undefined, type: 'client.created' | 'client.updated' | 'client.deleted' | 'client.secret_rotated', client: Client, details: AuditEventInput['details'] = {}) =>
    recordChange(deps.audit, context, {
      type,
      subject: { type: 'client', id: client.clientId },
      clientId: client.clientId,
      details: { client_name: client.clientName, ...details },
    });

  const create = async (meta: ClientMetadata, context: ChangeContext | undefined, registrationAccessToken: string | null) => {
    const clientSecret = usesSecret(meta.tokenEndpointAuthMethod) ? generateClientSecret() : null;
    const client = await repo.create({
      clientId: generateClientId(),
      clientSecretHash: clientSecret === null ? null : hashClientSecret(clientSecret),
      ...meta,
      origin: registrationAccessToken === null ? 'admin' : 'dynamic',
      registrationAccessTokenHash: registrationAccessToken === null ? null : hashClientSecret(registrationAccessToken),
    });
    await record(context, 'client.created', client, {
      origin: client.origin,
      token_endpoint_auth_method: client.tokenEndpointAuthMethod,
      grant_types: client.grantTypes,
      scope: client.scope,
    });
    return { client, clientSecret };
  };

  return {
    async register(input, context) {
      return create(validateClientMetadata(input, config.scopes), context, null);
    },
    async registerDynamic(input, policy, context) {
      const registrationAccessToken = generateRegistrationAccessToken();
      const registered = await create(validateDynamicClientMetadata(input, config.scopes, policy), context, registrationAccessToken);
      return { ...registered, registrationAccessToken };
    },
    get,
    async find(clientId) {
      // Ids are generated (22 characters; the admin API accepts at most 200):
      // a longer one is unknown without a lookup, and is never cached, else
      // anyone could fill the cache with 10,000 ids of a request body's size.
      if (clientId.length > MAX_CLIENT_ID_LENGTH) return null;
      const hit = cache.get(clientId);
      const t = now();
      if (hit && hit.until > t) return hit.client;
      let client: Client | null;
      if (isMetadataDocumentClientId(clientId)) {
        // Its document (from the shared cache, or fetched): a refusal throws and is not cached here.
        client = deps.metadataDocuments ? await deps.metadataDocuments.resolve(clientId) : null;
      } else {
        client = await repo.findById(clientId);
      }
      if (cache.size > 10_000) cache.clear();
      cache.set(clientId, { client, until: t + ttl });
      return client;
    },
    async list(page) {
      const [clients, total] = await Promise.all([repo.list(page), repo.count()]);
      return { clients, total };
    },
    async update(clientId, patch, context, dynamic) {
      const current = await get(clientId);
      if (current.origin === 'metadata_document') {
        throw conflict(`client "${clientId}" is described by its metadata document, which is read again when it changes; it cannot be edited here`);
      }
      const meta = dynamic
        ? validateDynamicClientMetadata(patch, config.scopes, dynamic)
        : validateClientMetadata(
            {
              client_name: patch.client_name ?? current.clientName,
              redirect_uris: patch.redirect_uris ?? current.redirectUris,
              post_logout_redirect_uris: patch.post_logout_redirect_uris ?? current.postLogoutRedirectUris,
              // null clears it: `??` would keep the current one.
              backchannel_logout_uri: patch.backchannel_logout_uri === undefined ? current.backchannelLogoutUri : patch.backchannel_logout_uri,
              backchannel_logout_session_required: patch.backchannel_logout_session_required ?? current.backchannelLogoutSessionRequired,
              grant_types: patch.grant_types ?? current.grantTypes,
              // Response types follow the grant types unless the patch names them.
              response_types: patch.response_types ?? (patch.grant_types ? undefined : current.responseTypes),
              token_endpoint_auth_method: patch.token_endpoint_auth_method ?? current.tokenEndpointAuthMethod,
              scope: patch.scope ?? current.scope,
              resource_server: patch.resource_server ?? current.resourceServer,
              ...keysAfter(current, patch),
              dpop_bound_access_tokens: patch.dpop_bound_access_tokens ?? current.dpopBoundAccessTokens,
              require_pushed_authorization_requests: patch.require_pushed_authorization_requests ?? current.requirePushedAuthorizationRequests,
            },
            config.scopes,
          );
      // Switching to or from a secret method changes whether a secret exists.
      let clientSecret: string | null = null;
      let clientSecretHash = current.clientSecretHash;
      if (!usesSecret(meta.tokenEndpointAuthMethod)) clientSecretHash = null;
      else if (current.clientSecretHash === null) {
        clientSecret = generateClientSecret();
        clientSecretHash = hashClientSecret(clientSecret);
      }
      const client = await repo.update(clientId, { ...meta, clientSecretHash });
      if (!client) throw notFound(`no client "${clientId}"`);
      await invalidate(clientId);
      const fields = changedFields(current, client);
      if (fields.length > 0) await record(context, 'client.updated', client, { fields });
      return { client, clientSecret };
    },
    async delete(clientId, context, reason) {
      const current = await get(clientId);
      // First its tokens, then the client: a failure in between leaves a client
      // without valid tokens, never valid tokens without a client.
      await deps.onDelete?.(clientId);
      if (!(await repo.delete(clientId))) throw notFound(`no client "${clientId}"`);
      await invalidate(clientId);
      await record(context, 'client.deleted', current, { origin: current.origin, ...(reason === undefined ? {} : { reason }) });
    },
    async verifyRegistrationAccessToken(clientId, token) {
      if (clientId.length > MAX_CLIENT_ID_LENGTH || isMetadataDocumentClientId(clientId)) return null;
      const client = await repo.findById(clientId);
      if (!client || client.origin !== 'dynamic' || client.registrationAccessTokenHash === null) return null;
      return verifyClientSecret(token, client.registrationAccessTokenHash) ? client : null;
    },
    async recordUse(client, context) {
      const t = now();
      const notBefore = t - USE_RECORD_PERIOD_MS;
      if (usedHere.size > 10_000) usedHere.clear();
      if (client.origin === 'metadata_document') {
        // The row mirrors the document; written again when the document changed or a day has passed.
        const metadata = JSON.stringify([
          client.clientName,
          client.redirectUris,
          client.postLogoutRedirectUris,
          client.backchannelLogoutUri,
          client.backchannelLogoutSessionRequired,
          client.grantTypes,
          client.responseTypes,
          client.scope,
        ]);
        const seen = usedHere.get(client.clientId);
        if (seen && seen.metadata === metadata && seen.atMs > notBefore) return;
        const saved = await repo.upsertMetadataDocumentClient(
          {
            clientId: client.clientId,
            clientName: client.clientName,
            redirectUris: client.redirectUris,
            postLogoutRedirectUris: client.postLogoutRedirectUris,
            backchannelLogoutUri: client.backchannelLogoutUri,
            backchannelLogoutSessionRequired: client.backchannelLogoutSessionRequired,
            grantTypes: client.grantTypes,
            responseTypes: client.responseTypes,
            tokenEndpointAuthMethod: client.tokenEndpointAuthMethod,
            scope: client.scope,
            resourceServer: false,
          },
          new Date(t),
        );
        if (!saved) throw conflict(`client id "${client.clientId}" is taken by a client registered otherwise`);
        usedHere.set(client.clientId, { atMs: t, metadata });
        if (saved.created) {
          await record(context, 'client.created', saved.client, { origin: 'metadata_document', grant_types: saved.client.grantTypes, scope: saved.client.scope });
        }
        return;
      }
      if (client.lastUsedAt !== null && client.lastUsedAt.getTime() > notBefore) return;
      const seen = usedHere.get(client.clientId);
      if (seen && seen.atMs > notBefore) return;
      // Noted before the write, so a burst on this instance writes once; forgotten if it fails, so the next use tries again.
      usedHere.set(client.clientId, { atMs: t, metadata: '' });
      try {
        await repo.touch(client.clientId, new Date(t), new Date(notBefore));
      } catch (err) {
        usedHere.delete(client.clientId);
        throw err;
      }
    },
    async rotateSecret(clientId, context) {
      const current = await get(clientId);
      if (!usesSecret(current.tokenEndpointAuthMethod)) {
        const why = current.tokenEndpointAuthMethod === 'none' ? 'is public' : 'authenticates with its own keys';
        throw conflict(`client "${clientId}" ${why} (token_endpoint_auth_method "${current.tokenEndpointAuthMethod}") and has no secret to rotate`);
      }
      const clientSecret = generateClientSecret();
      const client = await repo.update(clientId, { clientSecretHash: hashClientSecret(clientSecret) });
      if (!client) throw notFound(`no client "${clientId}"`);
      await invalidate(clientId);
      await record(context, 'client.secret_rotated', client);
      return { client, clientSecret };
    },
    async ensurePublic(clientId, input) {
      const wanted = validateClientMetadata({ ...input, token_endpoint_auth_method: 'none' }, config.scopes);
      const existing = await repo.findById(clientId);
      if (existing) {
        const same =
          existing.redirectUris.join(' ') === wanted.redirectUris.join(' ') &&
          existing.scope === wanted.scope &&
          existing.tokenEndpointAuthMethod === wanted.tokenEndpointAuthMethod &&
          existing.grantTypes.join(' ') === wanted.grantTypes.join(' ');
        if (same) return existing;
        const client = await repo.update(clientId, { ...wanted, clientSecretHash: null });
        if (!client) throw notFound(`no client "${clientId}"`);
        await invalidate(clientId);
        return client;
      }
      try {
        return await repo.create({ clientId, clientSecretHash: null, ...wanted });
      } catch (err) {
        // Another instance starting at the same moment created it first.
        const raced = await repo.findById(clientId);
        if (raced) return raced;
        throw err;
      }
    },
    async start() {
      return kv.subscribe(CLIENTS_CHANNEL, forget);
    },
  };
}
