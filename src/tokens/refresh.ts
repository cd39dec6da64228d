/**
 * `grant_type=refresh_token` (RFC 6749 §6) with rotation: each refresh uses
 * the presented token up and returns a successor in the same family. A used
 * token presented again is treated as theft and revokes the family
 * (RFC 9700 §4.14.2), except within the reuse grace window
 * (`REFRESH_REUSE_GRACE`, see `refresh-tokens.ts`), when the same successor
 * is handed back.
 */
import { SYSTEM_ACTOR, type AuditRecorder } from '../audit/events.js';
import { isEnabled } from '../users/account.js';
import type { Config } from '../config.js';
import { constantTimeEqual } from '../security/constant-time.js';
import { invalidGrant, invalidScope } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { ResourceRegistry } from '../oauth/resources.js';
import { narrowScopes, parseScopeParameter, scopesForUser } from '../oauth/scope.js';
import type { KvStore, RefreshTokenRecord, RefreshTokenRepo } from '../storage/types.js';
import type { Issuer } from './issue.js';
import { hashRefreshToken, isRefreshTokenShape, openSuccessor, sealSuccessor } from './refresh-tokens.js';
import type { RefreshRequest, TokenResponse } from './types.js';

/** How long a request that lost a refresh race waits for the winner's sealed successor. */
const SUCCESSOR_WAIT_MS = [10, 20, 40, 80, 160, 320, 500];

const graceKey = (hash: string) => `rt-grace:${hash}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RefresherDeps {
  config: Pick<Config, 'refreshReuseGraceSeconds'>;
  now: () => number;
  /** Where the sealed successor waits out the grace window. */
  kv: Pick<KvStore, 'get' | 'set'>;
  refreshTokens: Pick<RefreshTokenRepo, 'findByHash' | 'findByHashWithUser' | 'rotate'>;
  issuer: Pick<Issuer, 'prepare' | 'sign'>;
  /** The `resource` parameter: which of the grant's resources the new access token is for. */
  resources: Pick<ResourceRegistry, 'audienceFor'>;
  /** Reuse detected: revoke the family and the access tokens issued with it (`revoke.ts`). */
  revokeFamily: (familyId: string) => Promise<void>;
  metrics?: Pick<Metrics, 'refreshReuseDetected'> | undefined;
  /** Where a detected reuse is recorded (`refresh_token.reuse_detected`). */
  audit?: AuditRecorder | undefined;
  /** A failed write of the sealed successor (best effort). */
  onError: (err: unknown) => void;
}

/** Creates `TokenService.refresh`. */
export function createRefresher(deps: RefresherDeps): (request: RefreshRequest) => Promise<TokenResponse> {
  const { config, now, kv, refreshTokens, issuer, resources, revokeFamily, onError } = deps;
  const graceMs = config.refreshReuseGraceSeconds * 1000;

  /** Waits briefly for the sealed successor written by the request that won the rotation. */
  async function waitForSuccessor(token: string, hash: string): Promise<TokenResponse | null> {
    for (const delay of [0, ...SUCCESSOR_WAIT_MS]) {
      if (delay > 0) await sleep(delay);
      const sealed = await kv.get(graceKey(hash));
      if (sealed === null) continue;
      const plaintext = openSuccessor(token, hash, sealed);
      if (plaintext === null) return null;
      const { response, exp } = JSON.parse(plaintext) as { response: TokenResponse; exp: number };
      return { ...response, expires_in: Math.max(0, exp - Math.floor(now() / 1000)) };
    }
    return null;
  }

  /** A used token was presented again (RFC 9700 §4.14.2), or lost a concurrent rotation. */
  async function replayed(record: RefreshTokenRecord, token: string, hash: string, ip: string | undefined): Promise<TokenResponse> {
    if (record.usedAt === null) {
      // Not used, yet not usable: expired or revoked in the meantime.
      throw invalidGrant('The refresh token is invalid, expired or revoked.');
    }
    if (graceMs > 0 && record.revokedAt === null && now() - record.usedAt.getTime() <= graceMs) {
      const successor = await waitForSuccessor(token, hash);
      // Only while the successor itself is unused: an old token must not
      // walk the chain to the live one, so a second rotation ends the grace.
      if (successor?.refresh_token !== undefined) {
        const next = await refreshTokens.findByHash(hashRefreshToken(successor.refresh_token));
        if (next && next.usedAt === null && next.revokedAt === null) return successor;
      }
    }
    deps.metrics?.refreshReuseDetected();
    await revokeFamily(record.familyId);
    // The server revokes the family on its own; whoever presented the token is only known as the client and the address.
    await deps.audit?.record({
      type: 'refresh_token.reuse_detected',
      outcome: 'failure',
      actor: SYSTEM_ACTOR,
      subject: { type: 'family', id: record.familyId },
      clientId: record.clientId,
      ip,
      details: { user_id: record.userId },
    });
    throw invalidGrant('The refresh token was already used; every token of its grant has been revoked.');
  }

  return async function refresh({ client, refreshToken: token, scope, resource, ip, dpopJkt }: RefreshRequest): Promise<TokenResponse> {
    const requested = parseScopeParameter(scope);
    if (!isRefreshTokenShape(token)) throw invalidGrant('The refresh token is invalid, expired or revoked.');
    const hash = hashRefreshToken(token);
    const found = await refreshTokens.findByHashWithUser(hash);
    const record = found?.record;
    // RFC 6749 §6: bound to the client it was issued to. Another client's
    // token is refused without touching it.
    if (!record || record.clientId !== client.clientId) throw invalidGrant('The refresh token is invalid, expired or revoked.');
    if (record.revokedAt !== null || record.expiresAt.getTime() <= now()) throw invalidGrant('The refresh token is invalid, expired or revoked.');
    // RFC 9449 §5: a bound refresh token is good only with a proof by its key; refused without using it up
    // (whoever holds the token without the key can neither refresh nor burn the grant).
    if (record.dpopJkt !== null && (dpopJkt === null || !constantTimeEqual(dpopJkt, record.dpopJkt))) {
      throw invalidGrant('The refresh token is bound to a DPoP key: send a DPoP proof signed with that key.');
    }
    if (record.usedAt !== null) return replayed(record, token, hash, ip);

    const granted = narrowScopes(requested, record.scope.split(' ').filter(Boolean), client.scope.split(' ').filter(Boolean));
    // RFC 8707 §2.2: like the scope, the resource may narrow to one the grant covers, never widen
    // (a token from before resources were bound covers the default resource).
    const audience = resources.audienceFor(resource, record.resources ?? []);
    const user = found.user;
    if (!isEnabled(user)) throw invalidGrant('The user of this grant no longer exists or is disabled.');
    // The admin scope only while the user still has the role (SPEC "Admin API"); the grant keeps it for when it comes back.
    const scopes = scopesForUser(granted, user);
    if (scopes.length === 0) throw invalidScope('None of the scopes of this grant can still be granted to this account.');

    const authTime = record.authTime === null ? null : Math.floor(record.authTime.getTime() / 1000);
    const prepared = issuer.prepare(
      {
        client,
        user,
        scopes,
        resource: audience,
        // The successor covers what the grant covers, however narrow this access token is.
        grantResources: record.resources ?? [audience],
        refreshToken: true,
        familyId: record.familyId,
        authTime,
        // Kept by the successor even when this refresh asks for no ID token: a later one may.
        amr: record.amr,
        acr: record.acr,
        sid: record.sid,
        dpopJkt,
        // OIDC Core §12.2: a refresh may return a new ID token (no nonce), about the same authentication as the first.
        ...(scopes.includes('openid') ? { idToken: { authTime, amr: record.amr ?? undefined, acr: record.acr ?? undefined, sid: record.sid ?? undefined } } : {}),
      },
      record.scope,
    );
    // Used-marking and the successor's insert commit together (one
    // statement): a concurrent request that loses the race blocks on the row
    // until then, and a reuse that revokes the family afterwards always sees
    // the successor.
    const won = await refreshTokens.rotate(hash, new Date(now()), prepared.refresh!.record);
    if (!won) return replayed((await refreshTokens.findByHash(hash)) ?? record, token, hash, ip);

    const { response, accessTokenExpiresAt } = await issuer.sign(prepared);
    if (graceMs > 0) {
      const sealed = sealSuccessor(token, hash, JSON.stringify({ response, exp: Math.floor(accessTokenExpiresAt.getTime() / 1000) }));
      // Best effort: without it a retry within the window is treated as reuse.
      await kv.set(graceKey(hash), sealed, config.refreshReuseGraceSeconds).catch(onError);
    }
    return response;
  };
}
