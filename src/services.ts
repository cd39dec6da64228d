/**
 * The composition root of the domain: every service, flow and endpoint
 * object is built here, once, over the storage, and nowhere else. The HTTP
 * app (`app.ts`), the CLI and the control socket receive the finished object;
 * each route scope declares the part it uses (`Pick<Services, …>`), and no
 * layer above this file sees the storage.
 */
import { createAuditTrail, type AuditTrail } from './audit/service.js';
import { signInEvent } from './audit/sign-in.js';
import { createClientKeyResolver } from './clients/client-keys.js';
import { MAX_JWKS_BYTES } from './clients/jwks.js';
import { createIdleClientReaper, type IdleClientReaper } from './clients/idle-reaper.js';
import { createInitialAccessTokenService, type InitialAccessTokenService } from './clients/initial-access-tokens.js';
import { createMetadataDocumentResolver, MAX_DOCUMENT_BYTES } from './clients/metadata-document.js';
import { createClientRegistration, type ClientRegistration } from './clients/registration.js';
import { createClientService, type ClientService } from './clients/service.js';
import { ensureSwaggerUiClient } from './clients/swagger-ui-client.js';
import type { Config } from './config.js';
import { createConsentService, type ConsentService } from './consents/service.js';
import { createLinkedAccounts, type LinkedAccounts } from './identity-providers/accounts.js';
import { createIdentityProviderService, type IdentityProviderService } from './identity-providers/providers.js';
import { createRelyingParty } from './identity-providers/relying-party.js';
import { createSecretSealer } from './identity-providers/secret.js';
import { createUpstreamSignIn, type UpstreamSignIn } from './identity-providers/sign-in.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createAuthorizationFlow, type AuthorizationFlow } from './oauth/authorization.js';
import type { AuthorizationRequestDeps } from './oauth/authorize-request.js';
import type { EndSessionDeps } from './oauth/end-session.js';
import { createClientAssertionVerifier } from './oauth/client-assertion.js';
import { createClientAuthenticator } from './oauth/client-auth.js';
import { createCodeStore } from './oauth/codes.js';
import { createDeviceFlow, type DeviceFlow } from './oauth/device-authorization.js';
import { createGrantHandlers } from './oauth/grants/index.js';
import { createPushedRequests, type PushedRequests } from './oauth/pushed-requests.js';
import { createResourceRegistry, type ResourceRegistry } from './oauth/resources.js';
import { createTokenEndpoints, type TokenEndpoints } from './oauth/token-endpoint.js';
import { createOutboundFetch, createOutboundPost, type ResolveHost } from './security/outbound-fetch.js';
import {
  BACKCHANNEL_LOGOUT_MAX_ANSWER_BYTES,
  BACKCHANNEL_LOGOUT_TIMEOUT_MS,
  createBackchannelLogout,
  type BackchannelLogout,
  type BackchannelLogoutOutcome,
} from './oauth/backchannel-logout.js';
import { createThrottle } from './security/throttle.js';
import { createPendingAuthorizationStore, type PendingAuthorizationStore } from './sessions/pending-authorization.js';
import { createSessionService, type SessionService } from './sessions/service.js';
import type { Storage } from './storage/types.js';
import { createDpopVerifier, normalizeHtu, type DpopVerifier } from './tokens/dpop.js';
import { createDpopNonces, type DpopNonces } from './tokens/dpop-nonce.js';
import { createTokenService, type TokenServiceTimings } from './tokens/service.js';
import type { TokenService } from './tokens/types.js';
import { createEmailVerification, EMAIL_VERIFICATION_TTL_SECONDS, type EmailVerification } from './users/email-verification.js';
import { createMailQueue, createSmtpMailer, type MailQueue } from './users/mail.js';
import { createMailedLinks } from './users/mailed-links.js';
import { createPasskeyService, type PasskeyService } from './users/passkeys.js';
import { createPasswordPolicy } from './users/password-policy.js';
import { createPasswordReset, MAILS_PER_EMAIL, PASSWORD_RESET_TTL_SECONDS, type PasswordReset } from './users/password-reset.js';
import { createSecondFactorService, type SecondFactorService } from './users/second-factor.js';
import { createUserService, type AdminBootstrap, type UserService } from './users/service.js';
import { bootstrapAdminWithUnseenPassword } from './users/unseen-password.js';

/** Readiness of the stores (`/readyz`). */
export interface Health {
  /** Resolves when the database answers. */
  database(): Promise<void>;
  /** Resolves when the TTL store (codes, sessions) answers. */
  codeStore(): Promise<void>;
}

/** What `keys reencrypt` rewrote: how many of each. */
export interface ReencryptedSecrets {
  signingKeys: number;
  totpSecrets: number;
  identityProviderSecrets: number;
  /** Whether they are now encrypted (false: stored plainly). */
  encrypted: boolean;
}

export interface Services {
  readonly config: Config;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now: () => number;
  /** Prometheus counters of this instance (own registry). */
  readonly metrics: Metrics;
  readonly clients: ClientService;
  /** RFC 7591 registration and RFC 7592 client configuration (`/oauth/register`). */
  readonly clientRegistration: ClientRegistration;
  /** RFC 7591 initial access tokens (`DYNAMIC_REGISTRATION=token`), managed by admins. */
  readonly initialAccessTokens: InitialAccessTokenService;
  /** Removes clients no admin registered after `DYNAMIC_CLIENT_IDLE_DAYS` without use (runs on a timer from `start`). */
  readonly idleClients: IdleClientReaper;
  /** Accounts, and the one sign-in path (`users.signIn`). */
  readonly users: UserService;
  /** Passkeys (WebAuthn): registered on the account page, used to sign in on the login page. */
  readonly passkeys: PasskeyService;
  /** Upstream OpenID Connect providers ("Sign in with …"), managed by admins. */
  readonly identityProviders: IdentityProviderService;
  /** Signing in through an upstream provider: this server as its relying party, then the local account. */
  readonly upstreamSignIn: UpstreamSignIn;
  /** Users' links to upstream accounts (the account page lists and removes them). */
  readonly linkedAccounts: LinkedAccounts;
  /** The second factor: authenticator apps (TOTP) and recovery codes. */
  readonly secondFactor: SecondFactorService;
  /** Remembered consent (consent page; admin revocation). */
  readonly consents: ConsentService;
  /** "Forgot password": mailed single-use links; null without `SMTP_URL` (the routes are then absent). */
  readonly passwordReset: PasswordReset | null;
  /** Mailed links that verify a new account's address; null unless `REQUIRE_EMAIL_VERIFICATION=true`. */
  readonly emailVerification: EmailVerification | null;
  /** Browser sessions of the login pages (single sign-on for the apps). */
  readonly sessions: SessionService;
  /** The admin console's own sessions: a sign-in to an app never opens the console. */
  readonly consoleSessions: SessionService;
  /** Logout tokens to the clients of a browser session that ended (OpenID Connect Back-Channel Logout). */
  readonly backchannelLogout: BackchannelLogout;
  /** Authorization requests waiting for sign-in and consent. */
  readonly pendingAuthorizations: PendingAuthorizationStore;
  /** The flow behind `/authorize`, `/login` and `/consent`. */
  readonly authorization: AuthorizationFlow;
  /** What the checks of an authorization request look up (`/authorize`, and `/par` through `pushedRequests`). */
  readonly authorizationRequests: AuthorizationRequestDeps;
  /** What the checks of a logout request look up (`/end-session`, OpenID Connect RP-Initiated Logout). */
  readonly endSessionRequests: EndSessionDeps;
  /** The device authorization grant (RFC 8628): codes, the `/device` page's lookups and decisions, polls. */
  readonly devices: DeviceFlow;
  /** `/token`, `/revoke` and `/introspect`: client authentication, then the grant or token operation. */
  readonly tokenEndpoints: TokenEndpoints;
  /** Pushed authorization requests (RFC 9126): `/par`, and their `request_uri` at `/authorize`. */
  readonly pushedRequests: PushedRequests;
  /** Access, refresh and ID tokens; signing keys; revocation, introspection, verification. */
  readonly tokens: TokenService;
  /** The protected resources tokens are issued for (`RESOURCES`, RFC 8707), normalised once. */
  readonly resources: ResourceRegistry;
  /** The audit trail: security events, recorded by the services above, listed by the admin front ends. */
  readonly audit: AuditTrail;
  /** DPoP (RFC 9449): proof verification (token endpoint, resource routes) and the server nonces (null when `DPOP_NONCE=false`). */
  readonly dpop: { readonly verifier: DpopVerifier; readonly nonces: DpopNonces | null };
  readonly health: Health;
  /**
   * `keys reencrypt`: every sealed secret (signing keys, authenticator-app
   * secrets, identity providers' client secrets) opened with this instance's
   * SIGNING_KEY_ENCRYPTION_KEY (or read plainly) and written under `newKey`,
   * or plainly when undefined, in one transaction: one that cannot be opened
   * changes nothing anywhere. From then on this instance uses `newKey`.
   */
  reencryptSecrets(newKey: Uint8Array | undefined): Promise<ReencryptedSecrets>;
  /** Starts background work (pub/sub subscriptions, caches, timers). */
  start(): Promise<void>;
  /**
   * First-start work, idempotent and safe on several instances at once: the
   * admin of `ADMIN_USERNAME` / `ADMIN_PASSWORD` (or a generated one when no
   * admin exists), the Swagger UI client when `SWAGGER_UI_CLIENT=true`, and
   * the identity provider of `UPSTREAM_OIDC_*` (never contacted here:
   * discovery waits for the first sign-in).
   * Without `ADMIN_USERNAME`, an admin an earlier start generated whose
   * password may never have been seen comes back with `passwordMayBeUnseen`.
   */
  bootstrap(): Promise<AdminBootstrap | null>;
  /** Stops background work and closes the storage. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  now?: () => number;
  /** Background intervals of the token service (tests shorten or lengthen them). */
  tokenTimings?: TokenServiceTimings;
  /** Failures of background work (key reloads, deny-list polls); ignored by default. */
  onBackgroundError?: (err: unknown) => void;
  /** Waits out the sign-in slow-down (default: a timer); tests inject one that records instead. */
  sleep?: (ms: number) => Promise<void>;
  /** An audit event that could not be written (the request went on); ignored by default. */
  onAuditError?: (err: unknown, what: string) => void;
  /** How often audit events past `AUDIT_RETENTION_DAYS` are deleted, ms (default hourly). */
  auditPruneIntervalMs?: number;
  /** How often idle dynamic and metadata-document clients are looked for, ms (default hourly). */
  idleClientIntervalMs?: number;
  /** Each logout token's outcome (back-channel logout); ignored by default. */
  onBackchannelLogout?: (outcome: BackchannelLogoutOutcome) => void;
  /** The wait before a logout token's one retry, ms (default 1 s). */
  backchannelLogoutRetryDelayMs?: number;
  /** Fetching client metadata documents and clients' jwks_uri, posting logout tokens: extra trusted CA certificates (PEM) and name resolution (tests). */
  outbound?: { extraCaCerts?: readonly string[]; resolve?: ResolveHost };
}

export function createServices(config: Config, storage: Storage, options: ServiceOptions = {}): Services {
  const now = options.now ?? Date.now;
  const { kv } = storage;
  const metrics = createMetrics();
  const resources = createResourceRegistry(config);
  const throttle = createThrottle(kv, config);
  const audit = createAuditTrail({
    repo: storage.auditEvents,
    now,
    retentionDays: config.auditRetentionDays,
    ...(options.auditPruneIntervalMs === undefined ? {} : { pruneIntervalMs: options.auditPruneIntervalMs }),
    ...(options.onAuditError ? { onError: options.onAuditError } : {}),
  });
  // Client ID Metadata Documents are fetched through the SSRF guard and shared through the TTL store.
  const outboundFetch = createOutboundFetch({
    allowPrivateNetworks: config.clientMetadataAllowPrivateNetworks,
    timeoutMs: config.clientMetadataTimeoutMs,
    maxBytes: MAX_DOCUMENT_BYTES,
    userAgent: `oauth-server (client metadata; ${config.issuer})`,
    ...(options.outbound?.extraCaCerts ? { extraCaCerts: options.outbound.extraCaCerts } : {}),
    ...(options.outbound?.resolve ? { resolve: options.outbound.resolve } : {}),
  });
  const metadataDocuments = createMetadataDocumentResolver({ fetch: outboundFetch, kv, config, now });
  // private_key_jwt clients' jwks_uri: the same guard and settings (jwks_uri is client metadata too), a JWK Set's size limit.
  const jwksFetch = createOutboundFetch({
    allowPrivateNetworks: config.clientMetadataAllowPrivateNetworks,
    timeoutMs: config.clientMetadataTimeoutMs,
    maxBytes: MAX_JWKS_BYTES,
    userAgent: `oauth-server (client keys; ${config.issuer})`,
    ...(options.outbound?.extraCaCerts ? { extraCaCerts: options.outbound.extraCaCerts } : {}),
    ...(options.outbound?.resolve ? { resolve: options.outbound.resolve } : {}),
  });
  const clientKeys = createClientKeyResolver({ fetch: jwksFetch, kv, now });
  // Deleting a client ends the tokens issued to it (`tokens` is built below; the callback runs later).
  const clients = createClientService({ repo: storage.clients, kv, config, now, audit, metadataDocuments, onDelete: (clientId) => tokens.revokeClient(clientId) });
  const initialAccessTokens = createInitialAccessTokenService({ repo: storage.initialAccessTokens, now, audit });
  const clientRegistration = createClientRegistration({
    clients,
    initialAccessTokens,
    // Every registration counted per address, with its own limit and window.
    throttle: createThrottle(kv, { maxFailedAttempts: config.dynamicRegistrationLimit, failedAttemptWindowSeconds: config.dynamicRegistrationWindowSeconds }),
    config,
  });
  const idleClients = createIdleClientReaper({
    repo: storage.clients,
    clients,
    now,
    idleDays: config.dynamicClientIdleDays,
    ...(options.idleClientIntervalMs === undefined ? {} : { intervalMs: options.idleClientIntervalMs }),
    ...(options.onBackgroundError ? { onError: options.onBackgroundError } : {}),
  });
  const tokens = createTokenService({
    storage,
    config,
    now,
    resources,
    metrics,
    audit,
    ...(options.tokenTimings ? { timings: options.tokenTimings } : {}),
    ...(options.onBackgroundError ? { onError: options.onBackgroundError } : {}),
  });
  metrics.observeSigning(() => tokens.signingWorker());
  // Back-channel logout: an admin's client may be any service of theirs (http, any address); any other's is held to the SSRF guard.
  const backchannelPost = (trusted: boolean) =>
    createOutboundPost({
      allowPrivateNetworks: trusted || config.clientMetadataAllowPrivateNetworks,
      allowHttp: trusted,
      timeoutMs: BACKCHANNEL_LOGOUT_TIMEOUT_MS,
      maxBytes: BACKCHANNEL_LOGOUT_MAX_ANSWER_BYTES,
      userAgent: `oauth-server (back-channel logout; ${config.issuer})`,
      ...(options.outbound?.extraCaCerts ? { extraCaCerts: options.outbound.extraCaCerts } : {}),
      ...(options.outbound?.resolve ? { resolve: options.outbound.resolve } : {}),
    });
  const backchannelLogout = createBackchannelLogout({
    clients,
    tokens,
    postTrusted: backchannelPost(true),
    postGuarded: backchannelPost(false),
    audit,
    ...(options.onBackchannelLogout ? { report: options.onBackchannelLogout } : {}),
    ...(options.backchannelLogoutRetryDelayMs === undefined ? {} : { retryDelayMs: options.backchannelLogoutRetryDelayMs }),
  });
  // A password change, disabling or deleting a user ends every token they hold.
  const users = createUserService({
    repo: storage.users,
    // The password policy is built here, once: it prepares the common-password dictionary (tens of ms).
    passwordPolicy: createPasswordPolicy(),
    throttle,
    metrics,
    now,
    ...(options.sleep ? { sleep: options.sleep } : {}),
    // A new password, the account disabled or deleted, an admin's reset: what the user holds ends, and the
    // browser sessions (already refused by `findSignedIn`) are ended too, so the clients they signed in to are
    // told. That last step only tells: a TTL-store outage must not fail a change that has taken effect.
    onCredentialsChanged: async (userId) => {
      await tokens.revokeUser(userId);
      await sessions.endAllForUser(userId).catch(() => 0);
    },
    audit,
    // Every password check of the server, wherever it was made (not awaited: the sign-in must not wait for it).
    onSignInAttempt: (attempt) => void audit.record(signInEvent(attempt)),
  });
  const passkeys = createPasskeyService({ repo: storage.passkeys, users: storage.users, kv, throttle, config, audit, now });
  const identityProviders = createIdentityProviderService({ repo: storage.identityProviders, sealer: createSecretSealer(config.signingKeyEncryptionKey), config, audit });
  const linkedAccounts = createLinkedAccounts({ links: storage.linkedIdentities, users, providers: identityProviders, passkeys: storage.passkeys, audit });
  const upstreamSignIn = createUpstreamSignIn({ relyingParty: createRelyingParty({ providers: identityProviders, kv, now }), accounts: linkedAccounts, audit });
  // An admin's reset of a user's second factor ends what the user holds, like an admin's new password.
  const secondFactor = createSecondFactorService({
    repo: storage.totp,
    throttle,
    config,
    now,
    audit,
    endSignIns: (userId) => users.endSignIns(userId),
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  const consents = createConsentService({ repo: storage.consents, tokens, audit });
  // A browser session that ends tells the clients it signed its user in to.
  const sessions = createSessionService({ kv, ttlSeconds: config.sessionTtlSeconds, now, onEnd: (ended) => backchannelLogout.sessionEnded(ended) });
  const consoleSessions = createSessionService({ kv, kind: 'console', ttlSeconds: config.adminSessionTtlSeconds, now });
  // A mail the SMTP server refuses is reported (and not retried: the person can ask again).
  const onMailError = (err: unknown) => options.onBackgroundError?.(new Error('sending a mail failed (not retried)', { cause: err }));
  const mail: MailQueue | null = config.smtp ? createMailQueue(createSmtpMailer(config.smtp), onMailError) : null;
  const passwordReset = mail
    ? createPasswordReset({
        users,
        sessions,
        mail,
        links: createMailedLinks({ kv, purpose: 'password-reset', ttlSeconds: PASSWORD_RESET_TTL_SECONDS, now }),
        throttle,
        emailThrottle: createThrottle(kv, { maxFailedAttempts: MAILS_PER_EMAIL.limit, failedAttemptWindowSeconds: MAILS_PER_EMAIL.windowSeconds }),
        issuer: config.issuer,
      })
    : null;
  const emailVerification =
    mail && config.requireEmailVerification
      ? createEmailVerification({
          repo: storage.users,
          mail,
          links: createMailedLinks({ kv, purpose: 'email-verification', ttlSeconds: EMAIL_VERIFICATION_TTL_SECONDS, now }),
          issuer: config.issuer,
        })
      : null;
  const codes = createCodeStore({ kv, config });
  const assertions = createClientAssertionVerifier({ keys: clientKeys, kv, now, issuer: config.issuer });
  const clientAuth = createClientAuthenticator({ clients, throttle, kv, now, metrics, assertions });
  const pendingAuthorizations = createPendingAuthorizationStore({ kv, now });
  const authorization = createAuthorizationFlow({ config, consents, users, secondFactor, clients, codes, pending: pendingAuthorizations, sessions, tokens, resources, metrics, now });
  const devices = createDeviceFlow({ kv, config, now, throttle, clients, consents, resources, audit });
  const grants = createGrantHandlers({ config, now, codes, tokens, users, secondFactor, resources, devices, audit });
  const nonces = config.dpopNonce ? createDpopNonces({ kv, now }) : null;
  const dpop = { verifier: createDpopVerifier({ kv, now, nonces }), nonces };
  const authorizationRequests: AuthorizationRequestDeps = {
    findClient: (clientId) => clients.find(clientId),
    knownScopes: config.scopes,
    resources,
    idTokenHintSubject: async (token) => (await tokens.idTokenHint(token))?.sub ?? null,
  };
  const endSessionRequests: EndSessionDeps = {
    findClient: (clientId) => clients.find(clientId),
    idTokenHint: (token) => tokens.idTokenHint(token),
  };
  const pushedRequests = createPushedRequests({
    clientAuth,
    kv,
    now,
    checks: authorizationRequests,
    dpop: { verifier: dpop.verifier, endpoint: normalizeHtu(`${config.issuer}/par`)! },
  });
  const tokenEndpoints = createTokenEndpoints({
    clientAuth,
    grants,
    tokens,
    clients,
    devices,
    dpop: { verifier: dpop.verifier, tokenEndpoint: normalizeHtu(`${config.issuer}/token`)! },
    ...(options.onBackgroundError ? { onError: options.onBackgroundError } : {}),
  });

  const stops: Array<() => Promise<void>> = [];
  let closed = false;

  return {
    config,
    now,
    metrics,
    clients,
    clientRegistration,
    initialAccessTokens,
    idleClients,
    users,
    passkeys,
    identityProviders,
    upstreamSignIn,
    linkedAccounts,
    secondFactor,
    consents,
    passwordReset,
    emailVerification,
    sessions,
    consoleSessions,
    backchannelLogout,
    pendingAuthorizations,
    authorization,
    authorizationRequests,
    endSessionRequests,
    devices,
    tokenEndpoints,
    pushedRequests,
    tokens,
    resources,
    audit,
    dpop,
    health: { database: () => storage.db.ping(), codeStore: () => kv.ping() },
    async reencryptSecrets(newKey) {
      const parts = await storage.db
        .transaction(async (tx) => ({
          signingKeys: await tokens.keys.reseal(newKey, tx),
          totpSecrets: await secondFactor.reseal(newKey, tx),
          identityProviderSecrets: await identityProviders.reseal(newKey, tx),
        }))
        .catch((err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          throw new Error(`${message}; nothing was re-encrypted`, { cause: err });
        });
      for (const part of Object.values(parts)) part.adopt();
      return {
        signingKeys: parts.signingKeys.count,
        totpSecrets: parts.totpSecrets.count,
        identityProviderSecrets: parts.identityProviderSecrets.count,
        encrypted: newKey !== undefined,
      };
    },
    async start() {
      stops.push(await clients.start());
      stops.push(await tokens.start());
      stops.push(await clientAuth.start());
      stops.push(audit.start());
      stops.push(idleClients.start());
    },
    async bootstrap() {
      // The admin last: a password generated there must reach the caller, who prints it, with nothing left to fail.
      if (config.swaggerUiClient) await ensureSwaggerUiClient(clients, config);
      if (config.upstreamOidc) await identityProviders.ensureFromConfig(config.upstreamOidc);
      const admin = await users.ensureAdmin(config);
      if (admin !== null || config.adminUsername !== undefined) return admin;
      const unseen = await bootstrapAdminWithUnseenPassword({ findByUsername: users.findByUsername, audit });
      return unseen ? { user: unseen, generatedPassword: null, passwordMayBeUnseen: true } : null;
    },
    async close() {
      if (closed) return;
      closed = true;
      // Logout tokens still on their way get their few seconds (each POST has its own timeout).
      await backchannelLogout.idle();
      await Promise.allSettled(stops.map((stop) => stop()));
      // Events still being written (sign-ins are recorded in the background) go in before the database closes.
      await audit.flush();
      await mail?.close();
      await storage.close();
    },
  };
}
