/**
 * The upstream OpenID Connect providers an operator set up for "Sign in
 * with …": validation, the client secret sealed at rest (`secret.ts`, never
 * returned; re-sealed under a new key by `keys reencrypt`), the audit trail
 * of every change, and the one provider of the environment
 * (`UPSTREAM_OIDC_*`) ensured at start.
 */
import { recordChange, SYSTEM_ACTOR, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import { IDENTITY_PROVIDER_ID, SCOPE_TOKEN, upstreamIssuerProblem, type Config, type UpstreamOidcConfig } from '../config.js';
import { conflict, invalidRequest, notFound, OAuthError } from '../errors.js';
import type { Executor, IdentityProviderPatch, IdentityProviderRecord, IdentityProviderRepo } from '../storage/types.js';
import type { Resealed } from '../tokens/key-encryption.js';
import { createSecretSealer, type SecretSealer } from './secret.js';

export const DEFAULT_UPSTREAM_SCOPES = 'openid email profile';
const MAX_SCOPES = 20;

/** A provider as shown to admins: everything but the secret, plus the redirect URI to register there. */
export interface IdentityProvider {
  id: string;
  issuer: string;
  clientId: string;
  scopes: string;
  displayName: string;
  enabled: boolean;
  /** `$ISSUER/login/providers/<id>/callback`: register it at the provider. */
  redirectUri: string;
  createdAt: Date;
  updatedAt: Date;
}

/** What an admin sends (camelCase; the admin API converts from the wire names). */
export interface IdentityProviderInput {
  id?: string | undefined;
  issuer?: string | undefined;
  clientId?: string | undefined;
  /** Write-only. */
  clientSecret?: string | undefined;
  scopes?: string | undefined;
  displayName?: string | undefined;
  enabled?: boolean | undefined;
}

/** A provider with its secret opened, for the relying party alone. */
export interface ProviderCredentials {
  provider: IdentityProvider;
  clientSecret: string;
}

export interface IdentityProviderService {
  list(): Promise<IdentityProvider[]>;
  /** The enabled ones, for the login page's buttons. */
  listEnabled(): Promise<IdentityProvider[]>;
  /** 404 `not_found` when there is none. */
  get(id: string): Promise<IdentityProvider>;
  /** The enabled provider with its secret; null when unknown or disabled. */
  credentials(id: string): Promise<ProviderCredentials | null>;
  /** 400 for bad input (`id`, `issuer`, `client_id`, `client_secret` and `display_name` required), 409 when the id is taken. */
  create(input: IdentityProviderInput, context?: ChangeContext): Promise<IdentityProvider>;
  /** Changes the given fields (`id` cannot change); 404 when unknown. */
  update(id: string, input: IdentityProviderInput, context?: ChangeContext): Promise<IdentityProvider>;
  /** Deletes it and its links (users keep their accounts); 404 when unknown. */
  delete(id: string, context?: ChangeContext): Promise<void>;
  /** Creates or updates the provider of `UPSTREAM_OIDC_*`, recording only a real change. */
  ensureFromConfig(upstream: UpstreamOidcConfig): Promise<IdentityProvider>;
  /** The redirect URI of a provider id. */
  redirectUriOf(id: string): string;
  /**
   * `keys reencrypt`'s part for the client secrets, in `tx`: every stored
   * secret re-sealed under `newKey` (plainly when undefined); throws before
   * writing when one cannot be opened. `adopt()` once `tx` committed: from
   * then on this instance seals and opens with the new key.
   */
  reseal(newKey: Uint8Array | undefined, tx: Executor): Promise<Resealed>;
}

export interface IdentityProviderServiceDeps {
  repo: IdentityProviderRepo;
  sealer: SecretSealer;
  config: Pick<Config, 'issuer'>;
  audit?: AuditRecorder;
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !IDENTITY_PROVIDER_ID.test(id)) {
    throw invalidRequest('id must be 1 to 63 lowercase letters, digits and -, starting with a letter or digit (it appears in the redirect URI)');
  }
  return id;
}

function checkIssuer(issuer: string): string {
  const problem = upstreamIssuerProblem(issuer);
  if (problem) throw invalidRequest(`issuer ${problem}`);
  return issuer;
}

function checkText(name: string, value: string, max: number): string {
  const trimmed = value.trim();
  // Control characters never belong in a name or an identifier shown on a page.
  if (trimmed === '' || trimmed.length > max || /[\u0000-\u001f\u007f]/.test(trimmed)) throw invalidRequest(`${name} must be 1 to ${max} printable characters`);
  return trimmed;
}

/** Space-separated scope tokens (RFC 6749 §3.3) including `openid`: this is OpenID Connect sign-in. */
function checkScopes(scopes: string): string {
  const list = [...new Set(scopes.split(' ').filter(Boolean))];
  if (list.length > MAX_SCOPES || list.some((s) => !SCOPE_TOKEN.test(s) || s.length > 100)) throw invalidRequest(`scopes must be at most ${MAX_SCOPES} space-separated scope tokens`);
  if (!list.includes('openid')) throw invalidRequest('scopes must include openid');
  return list.join(' ');
}

export function createIdentityProviderService(deps: IdentityProviderServiceDeps): IdentityProviderService {
  const { repo, audit } = deps;
  /** Replaced when a `reseal` is adopted (after `keys reencrypt` committed). */
  let sealer = deps.sealer;
  const redirectUriOf = (id: string) => `${deps.config.issuer}/login/providers/${id}/callback`;
  const view = (record: IdentityProviderRecord): IdentityProvider => ({
    id: record.id,
    issuer: record.issuer,
    clientId: record.clientId,
    scopes: record.scopes,
    displayName: record.displayName,
    enabled: record.enabled,
    redirectUri: redirectUriOf(record.id),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  });
  const subject = (id: string) => ({ type: 'identity_provider' as const, id });

  /** The validated patch of `input` (each given field checked; the secret sealed). */
  async function patchOf(id: string, input: IdentityProviderInput): Promise<IdentityProviderPatch> {
    const patch: IdentityProviderPatch = {};
    if (input.issuer !== undefined) patch.issuer = checkIssuer(input.issuer);
    if (input.clientId !== undefined) patch.clientId = checkText('client_id', input.clientId, 255);
    if (input.clientSecret !== undefined) {
      if (input.clientSecret === '' || input.clientSecret.length > 1000) throw invalidRequest('client_secret must be 1 to 1000 characters');
      patch.clientSecret = await sealer.seal(id, input.clientSecret);
    }
    if (input.scopes !== undefined) patch.scopes = checkScopes(input.scopes);
    if (input.displayName !== undefined) patch.displayName = checkText('display_name', input.displayName, 100);
    if (input.enabled !== undefined) patch.enabled = input.enabled;
    return patch;
  }

  /** The wire names of the fields a patch sets (never a value of the secret). */
  const fieldsOf = (patch: IdentityProviderPatch) =>
    Object.keys(patch).map((key) => ({ clientId: 'client_id', clientSecret: 'client_secret', displayName: 'display_name' })[key] ?? key);

  async function create(input: IdentityProviderInput, context?: ChangeContext): Promise<IdentityProvider> {
    const id = checkId(input.id);
    for (const [name, value] of [['issuer', input.issuer], ['client_id', input.clientId], ['client_secret', input.clientSecret], ['display_name', input.displayName]] as const) {
      if (value === undefined) throw invalidRequest(`${name} is required`);
    }
    const patch = await patchOf(id, { ...input, scopes: input.scopes ?? DEFAULT_UPSTREAM_SCOPES, enabled: input.enabled ?? true });
    const record = await repo.create({
      id,
      issuer: patch.issuer!,
      clientId: patch.clientId!,
      clientSecret: patch.clientSecret!,
      scopes: patch.scopes!,
      displayName: patch.displayName!,
      enabled: patch.enabled!,
    });
    if (!record) throw conflict(`identity provider "${id}" exists`);
    await recordChange(audit, context, { type: 'identity_provider.created', subject: subject(id), details: { provider: id, issuer: record.issuer, display_name: record.displayName } });
    return view(record);
  }

  async function update(id: string, input: IdentityProviderInput, context?: ChangeContext): Promise<IdentityProvider> {
    if (input.id !== undefined && input.id !== id) throw invalidRequest('id cannot change (it is part of the redirect URI registered at the provider)');
    if (!(await repo.find(id))) throw notFound(`no identity provider "${id}"`);
    const patch = await patchOf(id, input);
    const record = await repo.update(id, patch);
    if (!record) throw notFound(`no identity provider "${id}"`);
    await recordChange(audit, context, { type: 'identity_provider.updated', subject: subject(id), details: { provider: id, fields: fieldsOf(patch) } });
    return view(record);
  }

  return {
    async list() {
      return (await repo.list()).map(view);
    },
    async listEnabled() {
      return (await repo.list()).filter((p) => p.enabled).map(view);
    },
    async get(id) {
      const record = IDENTITY_PROVIDER_ID.test(id) ? await repo.find(id) : null;
      if (!record) throw notFound(`no identity provider "${id}"`);
      return view(record);
    },
    async credentials(id) {
      const record = IDENTITY_PROVIDER_ID.test(id) ? await repo.find(id) : null;
      if (!record || !record.enabled) return null;
      return { provider: view(record), clientSecret: await sealer.open(id, record.clientSecret) };
    },
    create,
    update,
    async delete(id, context) {
      if (!IDENTITY_PROVIDER_ID.test(id) || !(await repo.delete(id))) throw notFound(`no identity provider "${id}"`);
      await recordChange(audit, context, { type: 'identity_provider.deleted', subject: subject(id), details: { provider: id } });
    },
    async ensureFromConfig(upstream) {
      const existing = await repo.find(upstream.id);
      const wanted: IdentityProviderInput = { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, displayName: upstream.displayName };
      if (!existing) {
        try {
          return await create({ id: upstream.id, ...wanted }, { actor: SYSTEM_ACTOR });
        } catch (err) {
          // Another instance starting at the same moment created it first: compare with that one.
          if (!(err instanceof OAuthError && err.error === 'conflict')) throw err;
          return ensureAgain();
        }
      }
      return ensureAgain();

      async function ensureAgain(): Promise<IdentityProvider> {
        const current = (await repo.find(upstream.id))!;
        const changed: IdentityProviderInput = {};
        if (current.issuer !== upstream.issuer) changed.issuer = upstream.issuer;
        if (current.clientId !== upstream.clientId) changed.clientId = upstream.clientId;
        if (current.displayName !== upstream.displayName) changed.displayName = upstream.displayName;
        // Re-sealed when it changed, or when it is stored plainly and encryption is now on (or the reverse).
        const stored = await sealer.open(upstream.id, current.clientSecret).catch(() => null);
        if (stored !== upstream.clientSecret || (typeof current.clientSecret.jwe === 'string') !== sealer.enabled) changed.clientSecret = upstream.clientSecret;
        // The environment's provider is on: disabling it is done by unsetting the variables.
        if (!current.enabled) changed.enabled = true;
        if (Object.keys(changed).length === 0) return view(current);
        return update(upstream.id, changed, { actor: SYSTEM_ACTOR });
      }
    },
    redirectUriOf,
    async reseal(newKey, tx) {
      const next = createSecretSealer(newKey);
      const count = await repo.resealAll(async (id, stored) => next.seal(id, await sealer.open(id, stored)), tx);
      return {
        count,
        adopt: () => {
          sealer = next;
        },
      };
    },
  };
}
