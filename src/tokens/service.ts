/**
 * The token service (`services.tokens`), composed of one module per concern:
 * issuing (`issue.ts`), refresh rotation (`refresh.ts`), local verification
 * (`verify.ts`), introspection (`introspect.ts`, RFC 7662) and revocation
 * (`revoke.ts`, RFC 7009 and the server's own). This file owns what they
 * share and what runs in the background: the signing keys (`keys.ts`), the
 * in-memory deny list (`deny-list.ts`) and the cleanup of expired rows.
 */
import type { AuditRecorder } from '../audit/events.js';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { ResourceRegistry } from '../oauth/resources.js';
import type { Storage } from '../storage/types.js';
import { createDenyList } from './deny-list.js';
import { createIntrospector } from './introspect.js';
import { createIssuer } from './issue.js';
import { logoutTokenClaims } from './jwt.js';
import { createKeyStore, ID_TOKEN_ALG } from './keys.js';
import { randomId } from './refresh-tokens.js';
import { createRefresher } from './refresh.js';
import { createRevoker } from './revoke.js';
import { createSigningWorker, type SigningWorkerOptions } from './signing-worker.js';
import type { TokenService } from './types.js';
import { createVerifier } from './verify.js';
import { backgroundRuns } from './background.js';

/** How long a logout token is valid (Back-Channel Logout §2.4 asks for a short time): two minutes. */
export const LOGOUT_TOKEN_TTL_SECONDS = 120;

export interface TokenServiceTimings {
  /** Periodic reload of the signing keys, ms (default 60 s). */
  keyReloadMs?: number;
  /** Least time between two reloads caused by an unknown `kid`, ms (default 5 s). */
  unknownKidReloadMs?: number;
  /** Deny-list re-synchronisation from the database, ms (default 5 s). */
  denyListPollMs?: number;
  /** Deletion of expired refresh tokens and revocations, ms (default 10 min). */
  cleanupMs?: number;
  /** When the signing worker starts and stops (`signing-worker.ts`); false signs every token on the event loop. */
  signingWorker?: Omit<SigningWorkerOptions, 'now' | 'onError'> | false;
}

export interface TokenServiceDeps {
  storage: Pick<Storage, 'db' | 'kv' | 'users' | 'refreshTokens' | 'signingKeys' | 'revocations'>;
  config: Config;
  now: () => number;
  /** The resources tokens are for (`oauth/resources.ts`), built once by the composition root. */
  resources: Pick<ResourceRegistry, 'identifiers' | 'find' | 'audienceFor'>;
  metrics?: Pick<Metrics, 'refreshReuseDetected'>;
  timings?: TokenServiceTimings;
  /** Background failures (reloads, polls, publishes); they never reach a request. */
  onError?: (err: unknown) => void;
  /** Where refresh-token reuse and key rotation are recorded. */
  audit?: AuditRecorder;
}

/** Builds the token service; nothing runs until `start()`. */
export function createTokenService(deps: TokenServiceDeps): TokenService {
  const { storage, config, now } = deps;
  const { refreshTokens, revocations, users, db, kv } = storage;
  const timings = deps.timings ?? {};
  const onError = deps.onError ?? (() => {});

  const signingWorker = timings.signingWorker === false ? undefined : createSigningWorker({ ...timings.signingWorker, onError });
  const keys = createKeyStore({
    repo: storage.signingKeys,
    kv,
    config,
    now,
    ...(timings.keyReloadMs === undefined ? {} : { reloadIntervalMs: timings.keyReloadMs }),
    ...(timings.unknownKidReloadMs === undefined ? {} : { unknownKidReloadMs: timings.unknownKidReloadMs }),
    onError,
    ...(deps.audit ? { audit: deps.audit } : {}),
    ...(signingWorker ? { signingWorker } : {}),
  });
  const denyList = createDenyList({
    repo: revocations,
    kv,
    now,
    ...(timings.denyListPollMs === undefined ? {} : { pollIntervalMs: timings.denyListPollMs }),
    onError,
  });

  const issuer = createIssuer({ config, now, keys, denyList, refreshTokens });
  const verifier = createVerifier({ config, now, keys, denyList, resources: deps.resources });
  const revoker = createRevoker({ db, refreshTokens, revocations, denyList, verifier, config, now });
  const refresh = createRefresher({ config, now, kv, refreshTokens, issuer, resources: deps.resources, revokeFamily: revoker.revokeFamily, metrics: deps.metrics, audit: deps.audit, onError });
  const introspector = createIntrospector({ config, now, verifier, denyList, revocations, refreshTokens, users });

  async function cleanup(): Promise<void> {
    const at = new Date(now());
    await Promise.all([refreshTokens.deleteExpired(at), revocations.deleteExpired(at)]);
  }

  return {
    issue: issuer.issue,
    refresh,
    verifyAccessToken: verifier.verifyAccessToken,
    idTokenHint: verifier.idTokenHint,
    async signLogoutToken(input) {
      const claims = logoutTokenClaims({ ...input, jti: randomId() }, { issuer: config.issuer, iat: Math.floor(now() / 1000), ttlSeconds: LOGOUT_TOKEN_TTL_SECONDS });
      return keys.snapshot().signing.get(ID_TOKEN_ALG)!.sign(claims, 'logout');
    },
    introspect: introspector.introspect,
    activeAccessToken: introspector.activeAccessToken,
    revocationsCurrent: () => denyList.isCurrent(),
    revoke: revoker.revoke,
    revokeIssued: revoker.revokeIssued,
    revokeUser: revoker.revokeUser,
    revokeUserAtClient: revoker.revokeUserAtClient,
    revokeClient: revoker.revokeClient,
    keys,
    signingWorker: () => signingWorker?.stats() ?? null,
    async start() {
      const stops: Array<() => Promise<void>> = [];
      stops.push(await keys.start());
      stops.push(await denyList.start());
      // The cleanup of expired rows: awaited when stopping, none begun after.
      const background = backgroundRuns(onError);
      const timer = setInterval(() => background.run(cleanup), timings.cleanupMs ?? 600_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await Promise.allSettled([background.stop(), ...stops.map((stop) => stop()), signingWorker?.close()]);
      };
    },
  };
}
