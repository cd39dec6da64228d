/**
 * The token service (`services.tokens`): issues access, refresh and ID
 * tokens, rotates refresh tokens, verifies access tokens locally, and
 * answers introspection (RFC 7662) and revocation (RFC 7009).
 *
 * Revocation is written to the database first (introspection reads it, so
 * it sees it at once) and then announced to every instance's in-memory deny
 * list (`deny-list.ts`), which the resource routes consult without I/O.
 */
import type { Config } from '../config.js';
import { invalidGrant, OAuthError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { narrowScopes, parseScopeParameter } from '../oauth/scope.js';
import type { Client, NewRefreshToken, RefreshTokenRecord, RevokedSubject, Storage, User } from '../storage/types.js';
import { createDenyList, type RevokedJtiEntry } from './deny-list.js';
import { accessTokenClaims, asAccessTokenClaims, idTokenClaims, looksLikeJwt, signJwt, verifyJwt } from './jwt.js';
import { createKeyStore, ID_TOKEN_ALG } from './keys.js';
import { generateRefreshToken, hashRefreshToken, isRefreshTokenShape, openSuccessor, randomId, sealSuccessor } from './refresh-tokens.js';
import type { AccessTokenClaims, IntrospectionResponse, IssueRequest, IssuedTokens, TokenResponse, TokenService } from './types.js';

export interface TokenServiceTimings {
  /** Periodic reload of the signing keys, ms (default 60 s). */
  keyReloadMs?: number;
  /** Least time between two reloads caused by an unknown `kid`, ms (default 5 s). */
  unknownKidReloadMs?: number;
  /** Deny-list re-synchronisation from the database, ms (default 5 s). */
  denyListPollMs?: number;
  /** Deletion of expired refresh tokens and revocations, ms (default 10 min). */
  cleanupMs?: number;
}

export interface TokenServiceDeps {
  storage: Pick<Storage, 'db' | 'kv' | 'users' | 'refreshTokens' | 'signingKeys' | 'revocations'>;
  config: Config;
  now: () => number;
  metrics?: Pick<Metrics, 'refreshReuseDetected'>;
  timings?: TokenServiceTimings;
  /** Background failures (reloads, polls, publishes); they never reach a request. */
  onError?: (err: unknown) => void;
}

/** Extra seconds a user revocation is kept beyond the access-token lifetime (clock skew). */
const SKEW_SECONDS = 60;
/** How long a request that lost a refresh race waits for the winner's sealed successor. */
const SUCCESSOR_WAIT_MS = [10, 20, 40, 80, 160, 320, 500];

const graceKey = (hash: string) => `rt-grace:${hash}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Prepared {
  claims: AccessTokenClaims;
  refresh: { token: string; record: NewRefreshToken } | null;
  idToken: IssueRequest['idToken'];
  request: IssueRequest;
}

export function createTokenService(deps: TokenServiceDeps): TokenService {
  const { storage, config, now } = deps;
  const { refreshTokens, revocations, users, db, kv } = storage;
  const timings = deps.timings ?? {};
  const onError = deps.onError ?? (() => {});
  const graceMs = config.refreshReuseGraceSeconds * 1000;

  const keys = createKeyStore({
    repo: storage.signingKeys,
    kv,
    config,
    now,
    ...(timings.keyReloadMs === undefined ? {} : { reloadIntervalMs: timings.keyReloadMs }),
    ...(timings.unknownKidReloadMs === undefined ? {} : { unknownKidReloadMs: timings.unknownKidReloadMs }),
    onError,
  });
  const denyList = createDenyList({
    repo: revocations,
    kv,
    now,
    ...(timings.denyListPollMs === undefined ? {} : { pollIntervalMs: timings.denyListPollMs }),
    onError,
  });

  const seconds = () => Math.floor(now() / 1000);

  // ------------------------------------------------------------ issuing

  function prepare(request: IssueRequest, refreshScope?: string): Prepared {
    // A token minted in the same second as a revocation of its user must
    // not fall under it (iat has one-second granularity): it is dated to the
    // next second instead (see revokeUser).
    const iat = request.user ? Math.max(seconds(), denyList.earliestIat(request.user.id)) : seconds();
    const authTime = request.authTime ?? request.idToken?.authTime ?? null;
    const claims = accessTokenClaims(
      { client: request.client, user: request.user, scopes: request.scopes, authTime, audience: config.accessTokenAudience, jti: randomId() },
      { issuer: config.issuer, iat, ttlSeconds: config.accessTokenTtlSeconds },
    );
    let refresh: Prepared['refresh'] = null;
    if (request.refreshToken) {
      if (!request.user) throw new Error('a refresh token needs a user (never for client_credentials)');
      const token = generateRefreshToken();
      refresh = {
        token,
        record: {
          tokenHash: hashRefreshToken(token),
          familyId: request.familyId ?? randomId(),
          clientId: request.client.clientId,
          userId: request.user.id,
          // RFC 6749 §6: a rotated refresh token keeps the scope of the one it replaces.
          scope: refreshScope ?? request.scopes.join(' '),
          authTime: authTime === null ? null : new Date(authTime * 1000),
          accessTokenJti: claims.jti,
          accessTokenExpiresAt: new Date(claims.exp * 1000),
          expiresAt: new Date(now() + config.refreshTokenTtlSeconds * 1000),
        },
      };
    }
    const wantsIdToken = request.idToken !== undefined && request.user !== null && request.scopes.includes('openid');
    return { claims, refresh, idToken: wantsIdToken ? request.idToken : undefined, request };
  }

  /** Signs what `prepare` built (the refresh token is persisted by the caller). */
  async function sign(prepared: Prepared): Promise<IssuedTokens> {
    const snapshot = keys.snapshot();
    const signer = snapshot.signing.get(config.accessTokenAlg)!;
    const { claims, refresh, request } = prepared;
    const accessToken = await signJwt(claims, signer.key, signer.header);
    const response: TokenResponse = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: claims.exp - claims.iat,
      scope: claims.scope,
    };
    if (refresh) response.refresh_token = refresh.token;
    if (prepared.idToken && request.user) {
      const idSigner = snapshot.signing.get(ID_TOKEN_ALG)!;
      const idClaims = idTokenClaims(
        { client: request.client, user: request.user, accessToken, nonce: prepared.idToken.nonce, authTime: claims.auth_time ?? prepared.idToken.authTime },
        { issuer: config.issuer, iat: claims.iat, ttlSeconds: config.accessTokenTtlSeconds },
      );
      response.id_token = await signJwt(idClaims, idSigner.key, idSigner.idHeader);
    }
    return { response, accessTokenJti: claims.jti, accessTokenExpiresAt: new Date(claims.exp * 1000), familyId: refresh?.record.familyId ?? null };
  }

  async function issue(request: IssueRequest): Promise<IssuedTokens> {
    const prepared = prepare(request);
    if (!prepared.refresh) return sign(prepared);
    const [issued] = await Promise.all([sign(prepared), refreshTokens.insert(prepared.refresh.record)]);
    return issued;
  }

  // ------------------------------------------------------------ revoking

  async function revokeFamily(familyId: string): Promise<void> {
    const at = new Date(now());
    const jtis = await db.transaction(async (tx) => {
      const list = await refreshTokens.revokeFamily(familyId, at, tx);
      await revocations.revoke(list, tx);
      return list;
    });
    await denyList.announce(jtis);
  }

  async function denyJtis(entries: readonly RevokedJtiEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await revocations.revoke(entries);
    await denyList.announce(entries);
  }

  // ------------------------------------------------------------ refresh

  /** Waits briefly for the sealed successor written by the request that won the rotation. */
  async function waitForSuccessor(token: string, hash: string): Promise<TokenResponse | null> {
    for (const delay of [0, ...SUCCESSOR_WAIT_MS]) {
      if (delay > 0) await sleep(delay);
      const sealed = await kv.get(graceKey(hash));
      if (sealed === null) continue;
      const plaintext = openSuccessor(token, hash, sealed);
      if (plaintext === null) return null;
      const { response, exp } = JSON.parse(plaintext) as { response: TokenResponse; exp: number };
      return { ...response, expires_in: Math.max(0, exp - seconds()) };
    }
    return null;
  }

  /** A used token was presented again (RFC 9700 §4.14.2), or lost a concurrent rotation. */
  async function replayed(record: RefreshTokenRecord, token: string, hash: string): Promise<TokenResponse> {
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
    throw invalidGrant('The refresh token was already used; every token of its grant has been revoked.');
  }

  async function refresh({ client, refreshToken: token, scope }: { client: Client; refreshToken: string; scope?: string | undefined }) {
    const requested = parseScopeParameter(scope);
    if (!isRefreshTokenShape(token)) throw invalidGrant('The refresh token is invalid, expired or revoked.');
    const hash = hashRefreshToken(token);
    const found = await refreshTokens.findByHashWithUser(hash);
    const record = found?.record;
    // RFC 6749 §6: bound to the client it was issued to. Another client's
    // token is refused without touching it.
    if (!record || record.clientId !== client.clientId) throw invalidGrant('The refresh token is invalid, expired or revoked.');
    if (record.revokedAt !== null || record.expiresAt.getTime() <= now()) throw invalidGrant('The refresh token is invalid, expired or revoked.');
    if (record.usedAt !== null) return replayed(record, token, hash);

    const scopes = narrowScopes(requested, record.scope.split(' ').filter(Boolean), client.scope.split(' ').filter(Boolean));
    const user = found.user;
    if (!user || user.disabled) throw invalidGrant('The user of this grant no longer exists or is disabled.');

    const authTime = record.authTime === null ? null : Math.floor(record.authTime.getTime() / 1000);
    const prepared = prepare(
      {
        client,
        user,
        scopes,
        refreshToken: true,
        familyId: record.familyId,
        authTime,
        // OIDC Core §12.2: a refresh may return a new ID token (no nonce).
        ...(scopes.includes('openid') ? { idToken: { authTime } } : {}),
      },
      record.scope,
    );
    // Used-marking and the successor's insert commit together (one
    // statement): a concurrent request that loses the race blocks on the row
    // until then, and a reuse that revokes the family afterwards always sees
    // the successor.
    const won = await refreshTokens.rotate(hash, new Date(now()), prepared.refresh!.record);
    if (!won) return replayed((await refreshTokens.findByHash(hash)) ?? record, token, hash);

    const { response, accessTokenExpiresAt } = await sign(prepared);
    if (graceMs > 0) {
      const sealed = sealSuccessor(token, hash, JSON.stringify({ response, exp: Math.floor(accessTokenExpiresAt.getTime() / 1000) }));
      // Best effort: without it a retry within the window is treated as reuse.
      await kv.set(graceKey(hash), sealed, config.refreshReuseGraceSeconds).catch(onError);
    }
    return response;
  }

  // ------------------------------------------------------------ verification

  async function verify(token: string, typ: string | undefined) {
    const snapshot = keys.snapshot();
    return verifyJwt(token, {
      issuer: config.issuer,
      audience: typ === 'at+jwt' ? config.accessTokenAudience : undefined,
      typ,
      algorithms: snapshot.algorithms,
      currentDate: new Date(now()),
      resolveKey: (kid) => keys.verificationKey(kid),
    });
  }

  async function verifyAccessToken(token: string): Promise<AccessTokenClaims> {
    const claims = asAccessTokenClaims((await verify(token, 'at+jwt')).payload);
    if (denyList.isDenied(claims.jti, claims.sub, claims.iat)) throw new OAuthError('invalid_token', 'The access token has been revoked.');
    return claims;
  }

  const INACTIVE: IntrospectionResponse = Object.freeze({ active: false }) as IntrospectionResponse;

  async function activeUser(userId: string): Promise<User | null> {
    const user = await users.findById(userId);
    return user && !user.disabled ? user : null;
  }

  async function introspectAccessToken(token: string): Promise<IntrospectionResponse | null> {
    if (!looksLikeJwt(token)) return null;
    let claims: AccessTokenClaims;
    try {
      claims = asAccessTokenClaims((await verify(token, 'at+jwt')).payload);
    } catch {
      return null;
    }
    // The database, not the in-memory copy: a revocation on another instance counts at once.
    const at = new Date(now());
    const [revoked, subject] = await Promise.all([revocations.isRevoked(claims.jti), revocations.findSubject(claims.sub, at)]);
    if (revoked || denyList.isDenied(claims.jti, claims.sub, claims.iat)) return INACTIVE;
    if (subject && claims.iat * 1000 < subject.notBefore.getTime()) return INACTIVE;
    // Users' tokens carry roles; a client's own token (client credentials) does not.
    const isUserToken = claims.roles !== undefined;
    const user = isUserToken ? await activeUser(claims.sub) : null;
    if (isUserToken && !user) return INACTIVE;
    const out: IntrospectionResponse = {
      active: true,
      token_type: 'Bearer',
      scope: claims.scope,
      client_id: claims.client_id,
      sub: claims.sub,
      aud: claims.aud,
      iss: claims.iss,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
    };
    if (user) {
      out.username = user.username;
      out.roles = [...user.roles];
    }
    if (claims.auth_time !== undefined) out.auth_time = claims.auth_time;
    return out;
  }

  async function introspectRefreshToken(token: string, caller: Client): Promise<IntrospectionResponse | null> {
    if (!isRefreshTokenShape(token)) return null;
    const record = await refreshTokens.findByHash(hashRefreshToken(token));
    if (!record) return null;
    // Only the client it belongs to learns anything about a refresh token.
    if (record.clientId !== caller.clientId) return INACTIVE;
    if (record.usedAt !== null || record.revokedAt !== null || record.expiresAt.getTime() <= now()) return INACTIVE;
    const user = await activeUser(record.userId);
    if (!user) return INACTIVE;
    const out: IntrospectionResponse = {
      active: true,
      token_type: 'refresh_token',
      scope: record.scope,
      client_id: record.clientId,
      sub: record.userId,
      username: user.username,
      iss: config.issuer,
      exp: Math.floor(record.expiresAt.getTime() / 1000),
      iat: Math.floor(record.createdAt.getTime() / 1000),
    };
    if (record.authTime !== null) out.auth_time = Math.floor(record.authTime.getTime() / 1000);
    return out;
  }

  // ------------------------------------------------------------ lifecycle

  async function cleanup(): Promise<void> {
    const at = new Date(now());
    await Promise.all([refreshTokens.deleteExpired(at), revocations.deleteExpired(at)]);
  }

  return {
    issue,
    refresh,
    verifyAccessToken,
    async introspect(token, _hint, caller) {
      // Refresh tokens (43 base64url characters) and JWTs (dotted) cannot be
      // mistaken for each other, so the shape decides where to look and
      // `token_type_hint` (RFC 7662 §2.1: only an optimisation) is not needed.
      if (isRefreshTokenShape(token)) return (await introspectRefreshToken(token, caller)) ?? INACTIVE;
      return (await introspectAccessToken(token)) ?? INACTIVE;
    },
    async revoke(token, _hint, caller) {
      // As for introspection, the shape decides and the hint (RFC 7009 §2.1) is not needed.
      if (isRefreshTokenShape(token)) {
        const record = await refreshTokens.findByHash(hashRefreshToken(token));
        // §2.1: revoking a refresh token revokes the grant: its family and the
        // access tokens issued with it. Other clients' tokens are left alone.
        if (record && record.clientId === caller.clientId) await revokeFamily(record.familyId);
        return;
      }
      if (!looksLikeJwt(token)) return;
      let verified: Awaited<ReturnType<typeof verify>>;
      try {
        verified = await verify(token, undefined);
      } catch {
        // Not ours, malformed or already expired: nothing to revoke (§2.2: still 200).
        return;
      }
      if (verified.header.typ !== 'at+jwt') {
        throw new OAuthError('unsupported_token_type', 'Only access and refresh tokens can be revoked (RFC 7009 §2.2.1); ID tokens cannot.');
      }
      let claims: AccessTokenClaims;
      try {
        claims = asAccessTokenClaims(verified.payload);
      } catch {
        return;
      }
      if (claims.client_id !== caller.clientId) return;
      await denyJtis([{ jti: claims.jti, expiresAt: new Date(claims.exp * 1000) }]);
    },
    async revokeIssued(grant) {
      const at = now();
      const jti = grant.accessTokenJti ?? null;
      const entries: RevokedJtiEntry[] = [];
      if (jti !== null) {
        entries.push({ jti, expiresAt: grant.accessTokenExpiresAt ?? new Date(at + config.accessTokenTtlSeconds * 1000) });
      }
      const familyId = grant.familyId ?? null;
      const jtis = await db.transaction(async (tx) => {
        const list = familyId === null ? [] : await refreshTokens.revokeFamily(familyId, new Date(at), tx);
        const all = [...list, ...entries.filter((e) => !list.some((l) => l.jti === e.jti))];
        await revocations.revoke(all, tx);
        return all;
      });
      await denyList.announce(jtis);
    },
    async revokeUser(userId) {
      const at = now();
      const subject: RevokedSubject = {
        sub: userId,
        // iat has one-second granularity, so every token of the current second
        // is refused too (rounding up); tokens minted afterwards in this second
        // are dated to the next one (see prepare), so they stay valid.
        notBefore: new Date(Math.ceil((at + 1) / 1000) * 1000),
        expiresAt: new Date(at + (config.accessTokenTtlSeconds + SKEW_SECONDS) * 1000),
      };
      const jtis = await refreshTokens.revokeForUser(userId, null, new Date(at));
      await db.transaction(async (tx) => {
        await revocations.revoke(jtis, tx);
        await revocations.revokeSubject(subject, tx);
      });
      await denyList.announce(jtis, [subject]);
    },
    denyAccessTokens: (entries) => denyJtis(entries),
    keys,
    async start() {
      const stops: Array<() => Promise<void>> = [];
      stops.push(await keys.start());
      stops.push(await denyList.start());
      const timer = setInterval(() => {
        cleanup().catch(onError);
      }, timings.cleanupMs ?? 600_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await Promise.allSettled(stops.map((stop) => stop()));
      };
    },
  };
}
