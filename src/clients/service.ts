/**
 * Client registry: registration, changes and secret rotation (admin API and
 * CLI), and the lookup the token endpoint makes on every request.
 *
 * That lookup is served from a short-lived in-memory cache so the hot path
 * does not wait on PostgreSQL for every token. Every change drops the entry
 * here at once and, through the TTL store's pub/sub, on every other instance;
 * the short TTL bounds staleness if a message is ever lost.
 */
import { recordChange, type AuditEventInput, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import type { Config } from '../config.js';
import { conflict, notFound } from '../errors.js';
import type { Client, ClientRepo, KvStore, Page } from '../storage/types.js';
import { validateClientMetadata, type ClientMetadataInput } from './metadata.js';
import { generateClientId, generateClientSecret, hashClientSecret } from './secret.js';

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
}

export interface RegisteredClient {
  client: Client;
  /** Plain secret: returned once, at registration or rotation; null for public clients. */
  clientSecret: string | null;
}

/**
 * `context` (registration, changes, deletion, rotation): who asks and from
 * where, for the audit trail; without one the change is the system's.
 */
export interface ClientService {
  register(input: ClientMetadataInput, context?: ChangeContext): Promise<RegisteredClient>;
  /** Uncached read (admin). */
  get(clientId: string): Promise<Client>;
  /** Cached read for the OAuth endpoints; null when unknown. */
  find(clientId: string): Promise<Client | null>;
  list(page: Page): Promise<{ clients: Client[]; total: number }>;
  /** Merges `patch` into the current metadata and validates the result as a whole. */
  update(clientId: string, patch: ClientMetadataInput, context?: ChangeContext): Promise<RegisteredClient>;
  delete(clientId: string, context?: ChangeContext): Promise<void>;
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
    ['grant_types', before.grantTypes, after.grantTypes],
    ['response_types', before.responseTypes, after.responseTypes],
    ['token_endpoint_auth_method', before.tokenEndpointAuthMethod, after.tokenEndpointAuthMethod],
    ['scope', before.scope, after.scope],
    ['resource_server', before.resourceServer, after.resourceServer],
  ];
  return pairs.filter(([, a, b]) => !same(a, b)).map(([name]) => name);
}

export function createClientService(deps: ClientServiceDeps): ClientService {
  const { repo, kv, config } = deps;
  const now = deps.now ?? Date.now;
  const ttl = deps.cacheTtlMs ?? 5_000;
  const cache = new Map<string, { client: Client | null; until: number }>();

  const invalidate = async (clientId: string) => {
    cache.delete(clientId);
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

  return {
    async register(input, context) {
      const meta = validateClientMetadata(input, config.scopes);
      const clientSecret = meta.tokenEndpointAuthMethod === 'none' ? null : generateClientSecret();
      const client = await repo.create({
        clientId: generateClientId(),
        clientSecretHash: clientSecret === null ? null : hashClientSecret(clientSecret),
        ...meta,
      });
      await record(context, 'client.created', client, {
        token_endpoint_auth_method: client.tokenEndpointAuthMethod,
        grant_types: client.grantTypes,
        scope: client.scope,
      });
      return { client, clientSecret };
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
      const client = await repo.findById(clientId);
      if (cache.size > 10_000) cache.clear();
      cache.set(clientId, { client, until: t + ttl });
      return client;
    },
    async list(page) {
      const [clients, total] = await Promise.all([repo.list(page), repo.count()]);
      return { clients, total };
    },
    async update(clientId, patch, context) {
      const current = await get(clientId);
      const meta = validateClientMetadata(
        {
          client_name: patch.client_name ?? current.clientName,
          redirect_uris: patch.redirect_uris ?? current.redirectUris,
          grant_types: patch.grant_types ?? current.grantTypes,
          // Response types follow the grant types unless the patch names them.
          response_types: patch.response_types ?? (patch.grant_types ? undefined : current.responseTypes),
          token_endpoint_auth_method: patch.token_endpoint_auth_method ?? current.tokenEndpointAuthMethod,
          scope: patch.scope ?? current.scope,
          resource_server: patch.resource_server ?? current.resourceServer,
        },
        config.scopes,
      );
      // Switching between public and confidential changes whether a secret exists.
      let clientSecret: string | null = null;
      let clientSecretHash = current.clientSecretHash;
      const becomesPublic = meta.tokenEndpointAuthMethod === 'none';
      if (becomesPublic) clientSecretHash = null;
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
    async delete(clientId, context) {
      const current = await get(clientId);
      // First its tokens, then the client: a failure in between leaves a client
      // without valid tokens, never valid tokens without a client.
      await deps.onDelete?.(clientId);
      if (!(await repo.delete(clientId))) throw notFound(`no client "${clientId}"`);
      await invalidate(clientId);
      await record(context, 'client.deleted', current);
    },
    async rotateSecret(clientId, context) {
      const current = await get(clientId);
      if (current.tokenEndpointAuthMethod === 'none') {
        throw conflict(`client "${clientId}" is public (token_endpoint_auth_method "none") and has no secret to rotate`);
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
      return kv.subscribe(CLIENTS_CHANNEL, (clientId) => cache.delete(clientId));
    },
  };
}
