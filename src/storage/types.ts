/**
 * The storage contract. Domain code depends only on these interfaces; only
 * `storage/` imports pg, PGlite or ioredis.
 *
 * SQL-backed (PostgreSQL or PGlite, one implementation): users, clients,
 * consents, refresh tokens, signing keys, revoked access tokens, the audit trail, passkeys.
 * TTL-backed (Redis or an in-process map): authorization codes, login
 * sessions, pending authorization requests, failed-attempt counters, and the
 * event bus that tells other instances about revocations and new keys.
 *
 * Every method may throw `UnavailableError` when its store is unreachable.
 */

import type { GrantType, ResponseType, TokenEndpointAuthMethod } from '../oauth/protocol.js';

// ---------------------------------------------------------------- SQL access

export interface Executor {
  /** Runs one parameterised statement (`$1`, `$2`, …) and returns its rows. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface Db extends Executor {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- records

export type Role = string;

export interface User {
  id: string;
  username: string;
  email: string | null;
  /** The user proved they receive mail at `email` (a mailed link); false for any new address. */
  emailVerified: boolean;
  /** An argon2 hash, or `NO_PASSWORD` (`users/password.ts`) for an account that signs in only upstream. */
  passwordHash: string;
  roles: Role[];
  disabled: boolean;
  /** When the password last changed or the account was disabled; sessions signed in before it are over. */
  credentialsChangedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}


/**
 * Who registered a client: an admin (admin API, console, CLI, or a
 * first-party client the server ensures itself), anyone at the RFC 7591
 * registration endpoint (`dynamic`), or nobody: a Client ID Metadata
 * Document's client, kept as a row once it was authorized
 * (`metadata_document`).
 */
export type ClientOrigin = 'admin' | 'dynamic' | 'metadata_document';

/** An RFC 7517 JWK Set of public keys, as a client registered it (validated by `clients/jwks.ts`). */
export interface ClientJwks {
  keys: Array<Record<string, unknown>>;
}

export interface Client {
  clientId: string;
  /** Hash of the secret (see `clients/secret.ts`); null for public clients. */
  clientSecretHash: string | null;
  clientName: string;
  redirectUris: string[];
  /**
   * OpenID Connect RP-Initiated Logout 1.0 §3.1: where the end-session
   * endpoint may send the browser after signing out, matched exactly; empty:
   * nowhere (the signed-out page is shown).
   */
  postLogoutRedirectUris: string[];
  /**
   * OpenID Connect Back-Channel Logout 1.0 §2.2: where a logout token is
   * posted when a browser session that signed the user in to this client
   * ends; null: none is sent.
   */
  backchannelLogoutUri: string | null;
  /** Back-Channel Logout §2.2: the client needs `sid` in its logout tokens (and ID tokens); they always carry it here. */
  backchannelLogoutSessionRequired: boolean;
  grantTypes: GrantType[];
  responseTypes: ResponseType[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** Registered scopes, space-separated as in RFC 7591. */
  scope: string;
  /** May introspect access tokens issued to other clients (RFC 7662 §2.1: a resource server). */
  resourceServer: boolean;
  /** `private_key_jwt` only: the client's public keys inline (RFC 7591 `jwks`); null otherwise. */
  jwks: ClientJwks | null;
  /** `private_key_jwt` only: where the client publishes its keys (RFC 7591 `jwks_uri`); null otherwise. Never both. */
  jwksUri: string | null;
  /** RFC 9449 §5.2: every token request must carry a DPoP proof (its access tokens are always DPoP-bound). */
  dpopBoundAccessTokens: boolean;
  /** RFC 9126 §6: its authorization requests must be pushed (`/par`); `/authorize` refuses others. */
  requirePushedAuthorizationRequests: boolean;
  origin: ClientOrigin;
  /** RFC 7592: hash of the registration access token (`clients/secret.ts`); null unless registered dynamically. */
  registrationAccessTokenHash: string | null;
  /** When a token was last issued to it or it was last authorized (written at most once a day); null: never. */
  lastUsedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Consent {
  userId: string;
  clientId: string;
  scopes: string[];
  /**
   * The resources (RFC 8707, as `RESOURCES` spells them) the client's tokens
   * may be for; null: remembered before resources were recorded, which
   * covers the default resource only (migration 0016).
   */
  resources: string[] | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RefreshTokenRecord {
  tokenHash: string;
  familyId: string;
  clientId: string;
  userId: string;
  scope: string;
  /** The resources the grant covers (RFC 8707), as configured; null for a token issued before resources were bound (the default resource). */
  resources: string[] | null;
  authTime: Date | null;
  accessTokenJti: string | null;
  accessTokenExpiresAt: Date | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
  /** RFC 9449 §5: the thumbprint of the DPoP key a public client's refresh token is bound to; null: not bound. */
  dpopJkt: string | null;
  /** OIDC Core §12.2: the `amr` and `acr` of the grant's authentication, repeated by a refreshed ID token; null: none recorded. */
  amr: string[] | null;
  acr: string | null;
  /** The browser session of the grant's sign-in (OIDC `sid`), repeated by a refreshed ID token; null: none. */
  sid: string | null;
}

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  createdAt: Date;
  /** Signs from this instant on (published before it, so verifiers' cached JWKS already hold it). */
  activatesAt: Date;
  /** Signs nothing from this instant on (may lie ahead: a rotation waiting for its successor's activation). */
  retiredAt: Date | null;
  /** Unpublished from this instant on. */
  expiresAt: Date | null;
}

/** An upstream OpenID Connect provider ("Sign in with …"). */
export interface IdentityProviderRecord {
  /** Slug: the `<id>` of `/login/providers/<id>/callback`. */
  id: string;
  issuer: string;
  clientId: string;
  /** The client secret as stored (`identity-providers/secret.ts`): sealed or plain, never shown. */
  clientSecret: Record<string, unknown>;
  /** Space-separated, `openid` included. */
  scopes: string;
  displayName: string;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface IdentityProviderPatch {
  issuer?: string;
  clientId?: string;
  clientSecret?: Record<string, unknown>;
  scopes?: string;
  displayName?: string;
  enabled?: boolean;
}

/** A provider's account (`sub`) linked to a local user. */
export interface LinkedIdentity {
  providerId: string;
  subject: string;
  userId: string;
  email: string | null;
  linkedAt: Date;
}

export interface RevokedJti {
  jti: string;
  expiresAt: Date;
  revokedAt: Date;
}

// ---------------------------------------------------------------- repositories

export interface NewUser {
  id: string;
  username: string;
  email: string | null;
  /** Default false. */
  emailVerified?: boolean;
  passwordHash: string;
  roles: Role[];
}

export interface UserPatch {
  email?: string | null;
  emailVerified?: boolean;
  passwordHash?: string;
  roles?: Role[];
  disabled?: boolean;
  credentialsChangedAt?: Date;
}

export interface Page {
  limit: number;
  offset: number;
}

export interface UserRepo {
  /** Returns null when the username is taken (case-insensitively). */
  create(user: NewUser, tx?: Executor): Promise<User | null>;
  findById(id: string): Promise<User | null>;
  /** Case-insensitive. */
  findByUsername(username: string): Promise<User | null>;
  /** The users with this email address (case-insensitive), at most `limit` of them, oldest first. */
  findByEmail(email: string, limit: number): Promise<User[]>;
  /** Users whose email is this address (case-insensitively) and verified; at most a few. */
  findByVerifiedEmail(email: string): Promise<User[]>;
  list(page: Page): Promise<User[]>;
  count(): Promise<number>;
  /** Null when no such user. */
  update(id: string, patch: UserPatch): Promise<User | null>;
  /** Marks `email` verified, only if it is still the user's address; false otherwise. */
  markEmailVerified(id: string, email: string): Promise<boolean>;
  /** False when no such user. */
  delete(id: string): Promise<boolean>;
  /** Whether at least one enabled user (other than `exceptId`) has the role. */
  existsWithRole(role: Role, exceptId?: string): Promise<boolean>;
}

/** A client's registration after defaults and validation (`clients/metadata.ts`): the fields RFC 7591 metadata sets. */
export type ClientMetadata = Pick<
  Client,
  | 'clientName'
  | 'redirectUris'
  | 'postLogoutRedirectUris'
  | 'backchannelLogoutUri'
  | 'backchannelLogoutSessionRequired'
  | 'grantTypes'
  | 'responseTypes'
  | 'tokenEndpointAuthMethod'
  | 'scope'
  | 'resourceServer'
  | 'jwks'
  | 'jwksUri'
  | 'dpopBoundAccessTokens'
  | 'requirePushedAuthorizationRequests'
>;

/**
 * What a new client may leave out: `postLogoutRedirectUris` is then empty, `backchannelLogoutUri`, `jwks`,
 * `jwksUri` and `registrationAccessTokenHash` null, the flags false, `origin` `admin`.
 */
type DefaultedOnCreate =
  | 'postLogoutRedirectUris'
  | 'backchannelLogoutUri'
  | 'backchannelLogoutSessionRequired'
  | 'jwks'
  | 'jwksUri'
  | 'dpopBoundAccessTokens'
  | 'requirePushedAuthorizationRequests'
  | 'origin'
  | 'registrationAccessTokenHash';

/** What creating a client takes: its id, secret hash and metadata, and where it came from. */
export type NewClient = Pick<Client, 'clientId' | 'clientSecretHash'> &
  Omit<ClientMetadata, DefaultedOnCreate> &
  Partial<Pick<Client, DefaultedOnCreate>>;

export type ClientPatch = Partial<Omit<NewClient, 'clientId'>>;

export interface ClientRepo {
  create(client: NewClient): Promise<Client>;
  findById(clientId: string): Promise<Client | null>;
  list(page: Page): Promise<Client[]>;
  count(): Promise<number>;
  update(clientId: string, patch: ClientPatch): Promise<Client | null>;
  delete(clientId: string): Promise<boolean>;
  /**
   * Sets `last_used_at` to `at` unless it is already at or after `notBefore`
   * (so a burst of callers writes once). True when this call wrote it.
   */
  touch(clientId: string, at: Date, notBefore: Date): Promise<boolean>;
  /**
   * Creates or refreshes the row of a metadata-document client (origin
   * `metadata_document`, public, no secret) with `lastUsedAt` = `usedAt`, in
   * one statement (concurrent callers converge on one row); `created` when
   * this call inserted it. Null when the id belongs to a client of another
   * origin, which is left untouched.
   */
  upsertMetadataDocumentClient(
    client: Omit<NewClient, 'origin' | 'registrationAccessTokenHash' | 'clientSecretHash'>,
    usedAt: Date,
  ): Promise<{ client: Client; created: boolean } | null>;
  /**
   * Ids of clients no admin registered (origin `dynamic` or
   * `metadata_document`) unused since before `cutoff` (`last_used_at`, or
   * `created_at` when never used), least recently used first, at most `limit`.
   */
  listIdle(cutoff: Date, limit: number): Promise<string[]>;
}

export interface InitialAccessToken {
  id: string;
  /** What the admin wrote about it (who it was given to); may be empty. */
  description: string;
  createdAt: Date;
  /** Null: never expires. */
  expiresAt: Date | null;
  /** Registrations it allows; null: any number. */
  maxUses: number | null;
  /** Registrations made with it so far. */
  uses: number;
  lastUsedAt: Date | null;
}

export interface NewInitialAccessToken {
  id: string;
  /** Hash of the token (`clients/secret.ts`); the token itself is never stored. */
  tokenHash: string;
  description: string;
  expiresAt: Date | null;
  maxUses: number | null;
}

export interface InitialAccessTokenRepo {
  create(token: NewInitialAccessToken): Promise<InitialAccessToken>;
  /** Newest first. */
  list(page: Page): Promise<InitialAccessToken[]>;
  count(): Promise<number>;
  findById(id: string): Promise<InitialAccessToken | null>;
  /** False when no such token. */
  delete(id: string): Promise<boolean>;
  /**
   * Counts one registration against the token with this hash, if it is
   * unexpired at `now` and has uses left, atomically (`UPDATE … WHERE uses <
   * max_uses RETURNING`): of concurrent callers at most `maxUses` succeed.
   * Null when there is no such usable token.
   */
  use(tokenHash: string, now: Date): Promise<InitialAccessToken | null>;
}

export interface ConsentRepo {
  find(userId: string, clientId: string): Promise<Consent | null>;
  /** Upserts: the stored scopes and resources become the union of the old and new ones. */
  grant(userId: string, clientId: string, scopes: string[], resources: string[]): Promise<Consent>;
  listForUser(userId: string): Promise<Consent[]>;
  /** False when there was nothing to revoke. */
  revoke(userId: string, clientId: string): Promise<boolean>;
}

/** `singleDevice`: the key never leaves its authenticator; `multiDevice`: it may be synced (WebAuthn backup eligibility). */
export type PasskeyDeviceType = 'singleDevice' | 'multiDevice';

/** A WebAuthn credential of a user (never a secret: the private key stays in the authenticator). */
export interface Passkey {
  id: string;
  userId: string;
  /** The authenticator's credential id, base64url. */
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  /** The last signature counter seen (0: the authenticator keeps none). */
  counter: number;
  transports: string[];
  deviceType: PasskeyDeviceType;
  /** Whether the authenticator said the key is backed up (synced), at registration or last use. */
  backedUp: boolean;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export type NewPasskey = Omit<Passkey, 'createdAt' | 'lastUsedAt'>;

export interface PasskeyRepo {
  /** Null when the credential id is already stored (for this user or another). */
  create(passkey: NewPasskey): Promise<Passkey | null>;
  /** Oldest first. */
  listForUser(userId: string): Promise<Passkey[]>;
  findByCredentialId(credentialId: string): Promise<Passkey | null>;
  /**
   * Records a verified use, atomically: stores `counter` only if it is
   * greater than the stored one, or both are 0 (an authenticator without a
   * counter). False when the counter did not move forward (a cloned
   * authenticator, or a concurrent use with the same counter): nothing changed.
   */
  recordUse(id: string, use: { counter: number; deviceType: PasskeyDeviceType; backedUp: boolean; usedAt: Date }): Promise<boolean>;
  /** Deletes the user's passkey; null when the user has no passkey with this id. */
  delete(userId: string, id: string): Promise<Passkey | null>;
}

export interface NewRefreshToken {
  tokenHash: string;
  familyId: string;
  clientId: string;
  userId: string;
  scope: string;
  /** The resources the grant covers (RFC 8707 §2), as configured; never empty. */
  resources: string[];
  authTime: Date | null;
  accessTokenJti: string | null;
  accessTokenExpiresAt: Date | null;
  expiresAt: Date;
  /** RFC 9449 §5: the DPoP key the token is bound to (kept by every successor); null or absent: not bound. */
  dpopJkt?: string | null;
  /** OIDC Core §12.2: how the user authenticated for the grant (kept by every successor); null or absent: not recorded. */
  amr?: readonly string[] | null;
  acr?: string | null;
  /** The browser session of the grant's sign-in (kept by every successor); null or absent: none. */
  sid?: string | null;
}

/** A refresh token and its user (null when the user no longer exists). */
export interface RefreshTokenWithUser {
  record: RefreshTokenRecord;
  user: User | null;
}

export interface RefreshTokenRepo {
  insert(token: NewRefreshToken, tx?: Executor): Promise<void>;
  findByHash(tokenHash: string, tx?: Executor): Promise<RefreshTokenRecord | null>;
  /** `findByHash` and the token's user in one query (a refresh needs both): `user` is null when it no longer exists. */
  findByHashWithUser(tokenHash: string): Promise<RefreshTokenWithUser | null>;
  /** The same for many tokens in one query, by token hash; unknown hashes are absent. */
  findManyByHashWithUser(tokenHashes: readonly string[]): Promise<Map<string, RefreshTokenWithUser>>;
  /**
   * Marks the token used, if it is unused, unrevoked and unexpired at `now`,
   * and inserts `successor`, as one atomic statement: the successor exists if
   * and only if this call marked the token used. True when this call won; of
   * concurrent callers exactly one does (`UPDATE … WHERE used_at IS NULL`).
   */
  rotate(tokenHash: string, now: Date, successor: NewRefreshToken): Promise<boolean>;
  /**
   * Revokes every token of the family not yet revoked; returns the access
   * token jtis (with expiry) recorded on the family's rows, so they can be
   * deny-listed.
   */
  revokeFamily(familyId: string, now: Date, tx?: Executor): Promise<Array<{ jti: string; expiresAt: Date }>>;
  /**
   * `revokeFamily` and the deny-listing of those access tokens
   * (`RevocationRepo.revoke`) as one statement, so atomic without a
   * transaction's extra round trips. Same result.
   */
  revokeFamilyAndAccessTokens(familyId: string, now: Date): Promise<Array<{ jti: string; expiresAt: Date }>>;
  /**
   * The same for the families of refresh tokens presented for revocation
   * (RFC 7009), many at once: each token's family is revoked if the token
   * was issued to the client that presents it; unknown tokens and other
   * clients' tokens are left alone. One statement.
   */
  revokePresented(presented: ReadonlyArray<{ tokenHash: string; clientId: string }>, now: Date): Promise<Array<{ jti: string; expiresAt: Date }>>;
  /** Revokes all of a user's (optionally one client's) families; same result as `revokeFamily`. */
  revokeForUser(userId: string, clientId: string | null, now: Date, tx?: Executor): Promise<Array<{ jti: string; expiresAt: Date }>>;
  /** The newest token of a family (the one a grace-window replay hands back). */
  findLatestInFamily(familyId: string, tx?: Executor): Promise<RefreshTokenRecord | null>;
  /** Deletes rows expired before `now`; returns how many. */
  deleteExpired(now: Date): Promise<number>;
}

export interface NewSigningKey {
  kid: string;
  alg: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  activatesAt: Date;
}

export interface SigningKeyRepo {
  insert(key: NewSigningKey, tx?: Executor): Promise<void>;
  /** Keys still published (not past `expires_at`), latest activation first. */
  listPublished(now: Date, tx?: Executor): Promise<SigningKeyRecord[]>;
  /** Every stored key, unpublished ones too (for re-encryption), latest activation first. */
  listAll(tx?: Executor): Promise<SigningKeyRecord[]>;
  /**
   * Sets `retired_at` (which may lie ahead) and `expires_at` on every key of
   * `alg` except `keepKid` that has no `retired_at` yet; returns how many.
   * Keys already retiring keep their instant.
   */
  retireOthers(alg: string, keepKid: string, retiredAt: Date, expiresAt: Date, tx?: Executor): Promise<number>;
  /**
   * Runs `fn` while holding a cluster-wide lock, so two instances never
   * create first keys at once: in a transaction of its own, or in `tx`
   * (the lock is then held until that transaction ends).
   */
  withLock<T>(fn: (tx: Executor) => Promise<T>, tx?: Executor): Promise<T>;
  /** Replaces the stored private JWK of `kid` (its encrypted form); false when no such key. */
  replacePrivateJwk(kid: string, privateJwk: Record<string, unknown>, tx?: Executor): Promise<boolean>;
}

export interface RevokedSubject {
  sub: string;
  /** Access tokens of `sub` issued (iat) before this instant are refused. */
  notBefore: Date;
  expiresAt: Date;
}

export interface RevocationRepo {
  /** Idempotent. */
  revoke(entries: ReadonlyArray<{ jti: string; expiresAt: Date }>, tx?: Executor): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
  /** Unexpired entries revoked at or after `since` (all unexpired when since is null). */
  listSince(since: Date | null, now: Date): Promise<RevokedJti[]>;
  /** Deletes expired jtis and subject revocations; returns how many. */
  deleteExpired(now: Date): Promise<number>;
  /** Refuses every access token of `sub` issued before `notBefore` (upsert; the later instants win). */
  revokeSubject(entry: RevokedSubject, tx?: Executor): Promise<void>;
  /** The subject's cut-off, or null when none is in force at `now`. */
  findSubject(sub: string, now: Date): Promise<RevokedSubject | null>;
  /**
   * In one query: whether `jti` is revoked, and the latest cut-off in force
   * at `now` among `subs` (null when none).
   */
  standing(jti: string, subs: readonly string[], now: Date): Promise<{ revoked: boolean; notBefore: Date | null }>;
  /** Unexpired subject revocations with `notBefore` at or after `since` (all when null). */
  listSubjectsSince(since: Date | null, now: Date): Promise<RevokedSubject[]>;
}

export interface NewAuditEvent {
  occurredAt: Date;
  /** Dotted name, e.g. `sign_in.failed`, `client.secret_rotated`. */
  type: string;
  outcome: string;
  actorType: string;
  actorId: string | null;
  actorName: string | null;
  subjectType: string | null;
  subjectId: string | null;
  clientId: string | null;
  ip: string | null;
  /** A small JSON object; never a secret. */
  details: Record<string, unknown>;
}

export interface AuditEventRecord extends NewAuditEvent {
  /** Increasing with insertion (a bigint, as a string). */
  id: string;
}

/** What `AuditEventRepo.list` and `count` select; every given field must match (AND). */
export interface AuditEventFilter {
  /** Exact type. */
  type?: string;
  /** Types starting with this (e.g. `user.`). */
  typePrefix?: string;
  /** The actor's user id, or username (case-insensitively). */
  actor?: string;
  subjectId?: string;
  clientId?: string;
  outcome?: string;
  /** occurred_at >= since. */
  since?: Date;
  /** occurred_at < until. */
  until?: Date;
}

export interface AuditEventRepo {
  insert(event: NewAuditEvent): Promise<void>;
  /** Matching events, newest first (ties: last inserted first). */
  list(filter: AuditEventFilter, page: Page): Promise<AuditEventRecord[]>;
  count(filter: AuditEventFilter): Promise<number>;
  /** Deletes events that occurred before `cutoff`; returns how many. */
  deleteBefore(cutoff: Date): Promise<number>;
}

// ---------------------------------------------------------------- TTL store

/**
 * A key-value store whose entries expire: Redis (or Redis Cluster) in
 * production, an in-process map otherwise. Keys are namespaced by the
 * implementation's prefix; every operation touches a single key, so the
 * store works on Redis Cluster.
 */
export interface IdentityProviderRepo {
  /** Null when the id is taken. */
  create(provider: Omit<IdentityProviderRecord, 'createdAt' | 'updatedAt'>): Promise<IdentityProviderRecord | null>;
  /** Inserts or replaces every field but `created_at` (the bootstrap from the environment). */
  upsert(provider: Omit<IdentityProviderRecord, 'createdAt' | 'updatedAt'>): Promise<IdentityProviderRecord>;
  find(id: string): Promise<IdentityProviderRecord | null>;
  /** Every provider, by id (few: an operator adds them by hand). */
  list(): Promise<IdentityProviderRecord[]>;
  /** Null when there is no such provider. */
  update(id: string, patch: IdentityProviderPatch): Promise<IdentityProviderRecord | null>;
  /** False when there was none; its links go with it. */
  delete(id: string): Promise<boolean>;
  /**
   * Rewrites every stored client secret as `reseal` returns it, in `tx`
   * with the rows locked (a throw from `reseal` writes none). `updated_at`
   * stays: the secret itself is the same. Returns how many were rewritten.
   */
  resealAll(reseal: (providerId: string, secret: Record<string, unknown>) => Promise<Record<string, unknown>>, tx: Executor): Promise<number>;
}

export interface LinkedIdentityRepo {
  find(providerId: string, subject: string): Promise<LinkedIdentity | null>;
  /** False when this upstream account is already linked (to anyone): the unique (provider, sub). */
  create(link: Omit<LinkedIdentity, 'linkedAt'>, tx?: Executor): Promise<boolean>;
  /** The user's links, oldest first. */
  listForUser(userId: string): Promise<LinkedIdentity[]>;
  /** False when the user had no such link. */
  delete(userId: string, providerId: string, subject: string): Promise<boolean>;
}

export interface KvStore {
  readonly kind: 'redis' | 'redis-cluster' | 'memory';
  /** Stores `value` for `ttlSeconds` (overwrites). */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Stores only if absent (`SET NX EX`); true when stored. */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  get(key: string): Promise<string | null>;
  /**
   * Atomic get-and-delete (`GETDEL`): of concurrent callers, exactly one
   * receives the value; the others receive null.
   */
  take(key: string): Promise<string | null>;
  delete(key: string): Promise<void>;
  /**
   * Increments a counter, creating it with `ttlSeconds` if absent (the expiry
   * is not extended by later increments). Returns the new value and the
   * seconds left before it expires.
   */
  increment(key: string, ttlSeconds: number): Promise<{ count: number; ttlSeconds: number }>;
  /**
   * Gives back one `increment`, atomically: decrements an existing counter,
   * never below zero, keeping its expiry. An absent (or expired) counter stays
   * absent. Returns the new value (0 when absent).
   */
  decrement(key: string): Promise<number>;
  /**
   * A small map under one key (a Redis hash): sets `field` to `value` and
   * makes the whole map live at least `ttlSeconds` from now (its expiry is
   * extended, never shortened). One key per call, so it runs on a cluster.
   * Resolves with the number of fields the map has then.
   */
  mapSet(key: string, field: string, value: string, ttlSeconds: number): Promise<number>;
  /** Makes `key` (a value or a map), if it exists, live at least `ttlSeconds` from now (never shortened). */
  extend(key: string, ttlSeconds: number): Promise<void>;
  /** Every field of the map (empty when absent or expired). */
  mapEntries(key: string): Promise<Record<string, string>>;
  /** Removes one field (the map goes when its last field does). */
  mapDelete(key: string, field: string): Promise<void>;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  /** Fire-and-forget broadcast to every instance (including this one). */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Returns an unsubscribe function. Handlers must not throw. `onLive(true)`
   * is called once the subscription is in effect (every message published
   * from then on is delivered), `onLive(false)` as soon as it may not be
   * (the connection dropped: messages can be lost until the next `true`).
   */
  subscribe(channel: string, handler: (message: string) => void, onLive?: (live: boolean) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** A user's TOTP credential (RFC 6238); `secret` as stored (sealed or a plain oct JWK). */
export interface TotpRecord {
  userId: string;
  secret: Record<string, unknown>;
  /** Null while the user is setting it up: not a factor yet. */
  confirmedAt: Date | null;
  /** The time step of the last accepted code; null before any. */
  lastUsedStep: number | null;
}

export interface TotpRepo {
  find(userId: string): Promise<TotpRecord | null>;
  /**
   * Stores a new unconfirmed secret, replacing an unconfirmed one; returns
   * false (and changes nothing) when the user already has a confirmed one.
   */
  saveUnconfirmed(userId: string, secret: Record<string, unknown>): Promise<boolean>;
  /**
   * Atomically accepts a code of time step `step`: sets `lastUsedStep` when
   * the credential is in the state asked for (`confirmed`: a sign-in;
   * unconfirmed: the enrolment, which also confirms it) and no code of this
   * or a later step was accepted. Of concurrent calls with the same step, on
   * any number of instances, exactly one gets true.
   */
  acceptStep(userId: string, step: number, confirmed: boolean): Promise<boolean>;
  /** Removes the credential and the recovery codes; false when there was none. */
  delete(userId: string): Promise<boolean>;
  /** Replaces every recovery code of the user with these (hashes), in one transaction. */
  replaceRecoveryCodes(userId: string, codeHashes: readonly string[]): Promise<void>;
  /** Atomically marks an unused recovery code used; false when unknown or already used. */
  useRecoveryCode(userId: string, codeHash: string): Promise<boolean>;
  /** How many unused recovery codes the user has. */
  countRecoveryCodes(userId: string): Promise<number>;
  /**
   * Rewrites every stored secret as `reseal` returns it, in `tx` with the
   * rows locked (a throw from `reseal` writes none). Returns how many were
   * rewritten.
   */
  resealAll(reseal: (userId: string, secret: Record<string, unknown>) => Promise<Record<string, unknown>>, tx: Executor): Promise<number>;
}

export interface Storage {
  readonly db: Db;
  readonly kv: KvStore;
  readonly users: UserRepo;
  readonly clients: ClientRepo;
  readonly consents: ConsentRepo;
  readonly identityProviders: IdentityProviderRepo;
  readonly linkedIdentities: LinkedIdentityRepo;
  readonly refreshTokens: RefreshTokenRepo;
  readonly signingKeys: SigningKeyRepo;
  readonly revocations: RevocationRepo;
  readonly auditEvents: AuditEventRepo;
  readonly initialAccessTokens: InitialAccessTokenRepo;
  readonly passkeys: PasskeyRepo;
  readonly totp: TotpRepo;
  /** One line for the start-up log: which stores are in use. */
  describe(): string;
  close(): Promise<void>;
}
