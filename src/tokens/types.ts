/**
 * The token service's contract, shared by every grant (token endpoint) and by
 * the browser flows (implicit response, authorization-code redemption).
 */
import type { ChangeContext } from '../audit/events.js';
import type { AccessTokenAlg } from '../config.js';
import type { Client, Executor, User } from '../storage/types.js';
import type { Resealed } from './key-encryption.js';

/** RFC 6749 §5.1 (plus OIDC `id_token`). Sent with `Cache-Control: no-store`. */
export interface TokenResponse {
  access_token: string;
  /** `DPoP` when the access token is bound to a DPoP key (RFC 9449 §5). */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
  /** RFC 8693 §2.2.1: what a token exchange issued (always an access token here). */
  issued_token_type?: string;
}

/** What an `id_token_hint` says, once verified as an ID token of this server (`TokenService.idTokenHint`). */
export interface IdTokenHint {
  /** The user it was issued for. */
  sub: string;
  /** The clients it was issued to (`aud`; this server names one, the client that signed in). */
  aud: string[];
}

export interface IssueRequest {
  client: Client;
  /** The resource owner; null for client_credentials (then `sub` is the client_id). */
  user: User | null;
  /** Granted scopes (already checked against the client and the request). */
  scopes: string[];
  /** The access token's audience (`aud`): one of `RESOURCES`, as configured, already checked against the grant (`ResourceRegistry.audienceFor`). */
  resource: string;
  /**
   * What the grant covers (RFC 8707 §2.2), kept with the refresh token so a
   * later refresh may name any of them: the resources of the authorization
   * request. Default: `[resource]`.
   */
  grantResources?: readonly string[];
  /** Issue a refresh token (never for client_credentials or implicit). */
  refreshToken: boolean;
  /** Continue this refresh-token family (rotation) instead of starting a new one. */
  familyId?: string;
  /** OIDC: when set, an ID token is issued (requires `openid` in `scopes`). */
  idToken?: {
    nonce?: string | undefined;
    authTime: number | null;
    /** OIDC Core §2: how the user signed in (RFC 8176 values) and the class achieved; left out when unknown. */
    amr?: readonly string[] | undefined;
    acr?: string | undefined;
    /** The browser session the user signed in with (OIDC `sid`, Back-Channel Logout §2.4); left out when none. */
    sid?: string | undefined;
  };
  /** Epoch seconds of the user's authentication, kept with the refresh token. */
  authTime?: number | null;
  /**
   * How the user authenticated (RFC 8176 `amr`) and the class achieved
   * (`acr`), kept with the refresh token so a refreshed ID token repeats them
   * (OIDC Core §12.2). Default: `idToken`'s; none: not recorded.
   */
  amr?: readonly string[] | null;
  acr?: string | null;
  /** The browser session of the grant (OIDC `sid`), kept with the refresh token likewise. Default: `idToken`'s. */
  sid?: string | null;
  /**
   * The thumbprint of the DPoP key the token request proved (RFC 9449):
   * the access token is bound to it (`cnf.jkt`, `token_type: DPoP`), and a
   * public client's refresh token too. Null: a bearer token. Required, so
   * a grant cannot forget the proof the token endpoint verified: pass
   * `GrantRequest.dpopJkt`.
   */
  dpopJkt: string | null;
  /** RFC 8693 §4.1: who acts for the user (token exchange); goes into the access token as `act`. */
  act?: ActorClaim;
  /**
   * Epoch seconds the access token must not outlive (token exchange: the
   * subject token's `exp`, so a chain of exchanges ends when the token it
   * started from would have). Default: the full `ACCESS_TOKEN_TTL`.
   */
  notAfter?: number;
}

/**
 * RFC 8693 §4.1 `act`: the party acting for the subject (here a client, by
 * its client_id), with the earlier actors of a chain of delegations nested
 * inside, the most recent outermost.
 */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
}

export interface IssuedTokens {
  response: TokenResponse;
  accessTokenJti: string;
  accessTokenExpiresAt: Date;
  /** The refresh-token family, when a refresh token was issued. */
  familyId: string | null;
}

/**
 * Which access tokens a verifier accepts, by audience (RFC 9068 §4, RFC 8707):
 *
 * - `{ resource }`: tokens whose `aud` names this resource, one of
 *   `RESOURCES` in any spelling that names the same resource (resolved
 *   once, then remembered). Every resource route says which resource it is.
 * - `{ anyResource: true }`: a token for any of `RESOURCES`. Only for the
 *   authorization server's own endpoints (UserInfo, the admin API), which
 *   are no listed resource and gate by scope (`openid`, `admin`) instead.
 */
export type AudienceRequirement = { readonly resource: string } | { readonly anyResource: true };

/** Claims of a verified access token (RFC 9068 §2.2). */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  client_id: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
  roles?: string[];
  /** Users' tokens: the username when the token was issued. */
  preferred_username?: string;
  auth_time?: number;
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to. */
  cnf?: { jkt: string };
  [claim: string]: unknown;
}

/** What `refresh()` needs: the authenticated client and the form parameters of RFC 6749 §6. */
export interface RefreshRequest {
  client: Client;
  /** The `refresh_token` parameter, as sent. */
  refreshToken: string;
  /** The `scope` parameter: must not widen the original grant (RFC 6749 §6). */
  scope?: string | undefined;
  /** The `resource` parameter: one of the resources of the original grant (RFC 8707 §2.2), never another. */
  resource?: string | undefined;
  /** The client's address (recorded when a reused token revokes its family). */
  ip?: string | undefined;
  /** The key of the request's DPoP proof (RFC 9449), if any: binds the new access token; must be the key of a bound refresh token. */
  dpopJkt: string | null;
}

/**
 * RFC 7662 §2.2 response. Inactive tokens answer exactly `{ active: false }`.
 * `token_type` is `Bearer` (or `DPoP`) for access tokens and `refresh_token`
 * for refresh tokens.
 */
export interface IntrospectionResponse {
  active: boolean;
  /** `DPoP` for a DPoP-bound access token (RFC 9449 §6.2). */
  token_type?: 'Bearer' | 'DPoP' | 'refresh_token';
  scope?: string;
  client_id?: string;
  username?: string;
  sub?: string;
  aud?: string | string[];
  iss?: string;
  exp?: number;
  iat?: number;
  jti?: string;
  auth_time?: number;
  roles?: string[];
  /** RFC 9449 §6.2: the key a DPoP-bound token is bound to. */
  cnf?: { jkt: string };
  /** RFC 8693 §4.1: who acts for the user (a token from token exchange). */
  act?: ActorClaim;
}

/**
 * What a grant issued, as returned by `issue()` (`IssuedTokens` fits): enough
 * to revoke it all later (a replayed authorization code, RFC 6749 §4.1.2).
 */
export interface IssuedGrant {
  familyId?: string | null | undefined;
  accessTokenJti?: string | null | undefined;
  /** When the access token expires; unknown → the longest possible (`ACCESS_TOKEN_TTL` from now). */
  accessTokenExpiresAt?: Date | null | undefined;
}

/** A signing key as listed by `keys list` (never the private part). */
export interface SigningKeyInfo {
  kid: string;
  alg: string;
  /**
   * At the time of the listing: `pending`: published, signs from `activatesAt`;
   * `active`: signs new tokens of its algorithm; `retired`: signs nothing more,
   * only published for verification until `expiresAt`.
   */
  status: 'pending' | 'active' | 'retired';
  createdAt: Date;
  /** Signs from this instant (every instance switches then). */
  activatesAt: Date;
  /** Signs nothing from this instant (ahead while its successor is pending). */
  retiredAt: Date | null;
  /** Unpublished from this instant. */
  expiresAt: Date | null;
}

export interface KeyManager {
  /**
   * Adds a new key for `alg` (default: the access-token algorithm) and
   * publishes it at once; it signs from its `activatesAt`, once every JWKS
   * cached before the rotation has expired. The previous key(s) of that
   * algorithm sign until that same instant, then stay published until every
   * token they signed has expired. Every instance learns of it at once
   * (pub/sub) or at its next periodic reload, before the switch.
   * Refused (nothing stored) when this instance's SIGNING_KEY_ENCRYPTION_KEY
   * does not match how the current keys are stored.
   * `context`: who rotates (the audit trail's `key.rotated`; none: the system).
   */
  rotate(alg?: AccessTokenAlg, context?: ChangeContext): Promise<SigningKeyInfo>;
  /** The keys currently published, latest activation first. */
  list(): Promise<SigningKeyInfo[]>;
  /**
   * `keys reencrypt`'s part for the signing keys, in `tx`: every stored
   * private key (unpublished ones too), opened with this instance's
   * SIGNING_KEY_ENCRYPTION_KEY (or read plainly), rewritten under `newKey`
   * (32 bytes), or plainly when `newKey` is undefined; once `tx` committed,
   * `adopt()` makes this instance seal new keys under `newKey` too. Throws
   * before writing when any stored key cannot be opened. The key material,
   * its `kid` and the signing schedule do not change.
   */
  reseal(newKey: Uint8Array | undefined, tx: Executor): Promise<Resealed>;
  /** The JWKS document (RFC 7517 §5), serialised once per key-set change. */
  jwksJson(): string;
}

/**
 * The token service (`services.tokens`). Verification of access tokens is
 * local (cached keys, in-memory deny list): no database or TTL-store round
 * trip per request.
 */
export interface TokenService {
  /**
   * Mints an access token (RFC 9068 JWT), a refresh token when
   * `request.refreshToken` (needs a user) and an ID token when
   * `request.idToken` is given and `openid` is among the scopes.
   */
  issue(request: IssueRequest): Promise<IssuedTokens>;
  /**
   * `grant_type=refresh_token` (RFC 6749 §6) with rotation: the presented
   * token is used up atomically and a new one returned. A used token
   * presented again revokes its whole family (RFC 9700 §4.14.2), except
   * within `REFRESH_REUSE_GRACE` seconds, when the same successor is
   * returned. Throws `invalid_grant` / `invalid_scope`.
   */
  refresh(request: RefreshRequest): Promise<TokenResponse>;
  /**
   * Verifies a bearer access token locally (signature, `typ: at+jwt`, `iss`,
   * `aud` against `audience`, expiry, deny list). Throws `invalid_token`
   * with a safe description. A `resource` that is not one of `RESOURCES` is
   * a programming error: a plain `Error`, never a verified token.
   */
  verifyAccessToken(token: string, audience: AudienceRequirement): Promise<AccessTokenClaims>;
  /**
   * Whom and for which client an ID token this server issued (signed with
   * one of its published keys, `typ: JWT`, its `iss`) was, expired or not:
   * an `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2) names
   * the user of an earlier sign-in and the client it signed in to. Null
   * when the token is not one (forged, another issuer's, an access token,
   * signed by a key no longer published, or without `sub` and `aud`). No
   * I/O, except a reload of the keys for an unknown `kid`, which may reject
   * when the database is down.
   */
  idTokenHint(token: string): Promise<IdTokenHint | null>;
  /**
   * A logout token (OpenID Connect Back-Channel Logout 1.0 §2.4) telling
   * `clientId` that the browser session `sid` of user `sub` ended: signed
   * like ID tokens (same key and algorithm), `typ: logout+jwt`, valid for
   * `LOGOUT_TOKEN_TTL_SECONDS`, a fresh `jti`.
   */
  signLogoutToken(input: { clientId: string; sub: string; sid: string }): Promise<string>;
  /**
   * RFC 7662 for an authenticated client. Access tokens: any confidential
   * client may ask (resource servers are clients); refresh tokens: only the
   * client they were issued to. Anything else is `{ active: false }`.
   */
  introspect(token: string, hint: string | undefined, caller: Client): Promise<IntrospectionResponse>;
  /**
   * An access token of this server that introspection would call active
   * (signature, expiry, any of `RESOURCES`, not revoked by jti, subject or
   * client cut-off, its user enabled), read from the database; null when it
   * is not. For token exchange (RFC 8693), whose subject token may have been
   * issued to another client.
   */
  activeAccessToken(token: string): Promise<{ claims: AccessTokenClaims; userId: string | null } | null>;
  /**
   * Whether this instance's copy of the revocations is current (subscribed
   * without a break since a completed database sync, `deny-list.ts`): then
   * introspection of an access token needs no database. False for a while
   * after a start or a dropped subscription, until a sync completes.
   */
  revocationsCurrent(): boolean;
  /**
   * RFC 7009: revokes a refresh token (its whole family and the access tokens
   * issued with it) or an access token (deny list until it expires), when
   * issued to `caller`; unknown, already revoked or other clients' tokens are
   * left alone without error. Throws `unsupported_token_type` for a token of
   * ours that cannot be revoked (an ID token).
   */
  revoke(token: string, hint: string | undefined, caller: Client): Promise<void>;
  /**
   * Revokes what one grant issued: the refresh-token family `familyId` (with
   * the access tokens recorded on it) and/or the access token
   * `accessTokenJti`. For a replayed authorization code (RFC 6749 §4.1.2):
   * pass what `issue()` returned for the first redemption. Idempotent.
   */
  revokeIssued(grant: IssuedGrant): Promise<void>;
  /**
   * Revokes everything a user holds: all refresh-token families, the access
   * tokens recorded on them, and every access token of the user issued
   * before now (password change, disable, delete).
   */
  revokeUser(userId: string): Promise<void>;
  /**
   * Revokes what a user holds at one client: every refresh-token family of
   * the pair and the access tokens recorded on them (a withdrawn consent;
   * RFC 7009 §2.1 asks the same of revoking a grant). Other clients' tokens
   * are left alone. Idempotent.
   */
  revokeUserAtClient(userId: string, clientId: string): Promise<void>;
  /**
   * Ends every access token issued to a client (it is being deleted), for
   * whomever it was issued, on every instance; its refresh tokens go with
   * the client's row.
   */
  revokeClient(clientId: string): Promise<void>;
  readonly keys: KeyManager;
  /** What the signing worker did (`signing-worker.ts`); null when it is switched off. */
  signingWorker(): SigningWorkerStats | null;
  /** Loads keys (creating the first ones), the deny list; subscribes; starts timers. Returns the stop. */
  start(): Promise<() => Promise<void>>;
}

/** What the signing worker (`signing-worker.ts`) did since it was created. */
export interface SigningWorkerStats {
  /** A worker is started (it may still be loading). */
  running: boolean;
  /** The worker answers: tokens go to it. */
  ready: boolean;
  /** Tokens the worker signed, and batches it signed them in. */
  signedInWorker: number;
  batches: number;
  /** Tokens signed on the main thread with jose (no worker ready, or it failed them). */
  signedHere: number;
  /** Workers started since creation. */
  starts: number;
}
