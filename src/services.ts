/**
 * The domain services, built once over the storage and shared by the HTTP
 * scopes, the admin API and the CLI. This is the only place they are wired
 * together; route scopes receive the finished object as plugin options.
 */
import type { Config } from './config.js';
import { createClientService, type ClientService } from './clients/service.js';
import { createConsentService, type ConsentService } from './consents/service.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createClientAuthenticator, type ClientAuthenticator } from './oauth/client-auth.js';
import { createCodeStore, type CodeStore } from './oauth/codes.js';
import { createThrottle, type Throttle } from './security/throttle.js';
import { createSessionService, type SessionService } from './sessions/service.js';
import type { Storage } from './storage/types.js';
import { createTokenService, type TokenServiceTimings } from './tokens/service.js';
import type { TokenService } from './tokens/types.js';
import { createUserService, type UserService } from './users/service.js';

export interface Services {
  readonly config: Config;
  readonly storage: Storage;
  readonly clients: ClientService;
  readonly users: UserService;
  /** Remembered consent (consent page; admin revocation). */
  readonly consents: ConsentService;
  readonly sessions: SessionService;
  /** Authorization codes in the TTL store: single use across instances, replay detection. */
  readonly codes: CodeStore;
  /** Failed-attempt counters shared by every instance (passwords, client secrets). */
  readonly throttle: Throttle;
  /** Access, refresh and ID tokens; signing keys; revocation and introspection. */
  readonly tokens: TokenService;
  /** Client authentication at the token, revocation and introspection endpoints. */
  readonly clientAuth: ClientAuthenticator;
  /** Prometheus counters of this instance (own registry); the flows report tokens issued, login failures, refresh reuse. */
  readonly metrics: Metrics;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now: () => number;
  /** Starts background work (pub/sub subscriptions, caches). */
  start(): Promise<void>;
  /** Stops background work and closes the storage. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  now?: () => number;
  /** Background intervals of the token service (tests shorten or lengthen them). */
  tokenTimings?: TokenServiceTimings;
  /** Failures of background work (key reloads, deny-list polls); ignored by default. */
  onBackgroundError?: (err: unknown) => void;
}

export function createServices(config: Config, storage: Storage, options: ServiceOptions = {}): Services {
  const now = options.now ?? Date.now;
  const clients = createClientService({ repo: storage.clients, kv: storage.kv, config, now });
  const metrics = createMetrics();
  const tokens = createTokenService({
    storage,
    config,
    now,
    metrics,
    ...(options.tokenTimings ? { timings: options.tokenTimings } : {}),
    ...(options.onBackgroundError ? { onError: options.onBackgroundError } : {}),
  });
  // A password change, disabling or deleting a user ends every token they hold.
  const users = createUserService({ repo: storage.users, onCredentialsChanged: (userId) => tokens.revokeUser(userId) });
  const consents = createConsentService({ repo: storage.consents, tokens });
  const sessions = createSessionService({ kv: storage.kv, config, now });
  const codes = createCodeStore({ kv: storage.kv, config });
  const throttle = createThrottle(storage.kv, config);
  const clientAuth = createClientAuthenticator({ clients, throttle, kv: storage.kv, now, metrics });
  const stops: Array<() => Promise<void>> = [];
  let closed = false;

  return {
    config,
    storage,
    clients,
    users,
    consents,
    sessions,
    codes,
    throttle,
    tokens,
    clientAuth,
    metrics,
    now,
    async start() {
      stops.push(await clients.start());
      stops.push(await tokens.start());
      stops.push(await clientAuth.start());
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled(stops.map((stop) => stop()));
      await storage.close();
    },
  };
}
