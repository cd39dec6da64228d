/**
 * Revocation: RFC 7009 at the revocation endpoint, and the revocations the
 * server makes itself (refresh-token reuse, a replayed authorization code, a
 * user's password change or removal, a withdrawn consent).
 *
 * Every one of them goes through `revokeGrants`, the one path: in a single
 * transaction it revokes the refresh-token families, deny-lists the access
 * tokens recorded on them (plus any named besides) and, for a whole user,
 * records the subject cut-off. The database is the truth (introspection reads
 * it, so it sees a revocation at once); only after the commit are the entries
 * announced to every instance's in-memory deny list (`deny-list.ts`), which
 * the resource routes consult without I/O.
 */
import type { Config } from '../config.js';
import { OAuthError } from '../errors.js';
import type { Client, Db, RefreshTokenRepo, RevocationRepo, RevokedSubject } from '../storage/types.js';
import { clientSubject, type DenyList, type RevokedJtiEntry } from './deny-list.js';
import { grouped } from './grouped.js';
import { asAccessTokenClaims, looksLikeJwt } from './jwt.js';
import { hashRefreshToken, isRefreshTokenShape } from './refresh-tokens.js';
import type { AccessTokenClaims, IssuedGrant } from './types.js';
import type { Verifier } from './verify.js';

/** Extra seconds a user revocation is kept beyond the access-token lifetime (clock skew). */
const SKEW_SECONDS = 60;

export interface RevokerDeps {
  db: Pick<Db, 'transaction'>;
  refreshTokens: Pick<RefreshTokenRepo, 'revokeFamily' | 'revokeFamilyAndAccessTokens' | 'revokePresented' | 'revokeForUser'>;
  revocations: Pick<RevocationRepo, 'revoke' | 'revokeSubject'>;
  denyList: Pick<DenyList, 'announce'>;
  verifier: Pick<Verifier, 'verify'>;
  config: Pick<Config, 'accessTokenTtlSeconds'>;
  now: () => number;
}

/**
 * What to revoke, all of it or nothing. `families`: one refresh-token family,
 * or every family of a user (at one client, or at all when `clientId` is
 * null), each with the access tokens recorded on its rows. `accessTokens`:
 * further access tokens to deny-list. `subject`: refuse every access token of
 * this subject issued before now, including those issued without a refresh
 * token (a user id, or `clientSubject(clientId)` for all of a client's).
 */
export interface GrantRevocation {
  families?: { familyId: string } | { userId: string; clientId: string | null };
  accessTokens?: readonly RevokedJtiEntry[];
  subject?: string;
}

export interface Revoker {
  /**
   * The one revocation path: one atomic write of the families, the jti
   * deny entries and the subject cut-off (a single statement where that is
   * all it takes, else a transaction), then the announcement to the deny
   * lists. Idempotent. When the write fails nothing is revoked and nothing
   * announced (the error propagates).
   */
  revokeGrants(revocation: GrantRevocation): Promise<void>;
  /** `TokenService.revoke` (RFC 7009). */
  revoke(token: string, hint: string | undefined, caller: Client): Promise<void>;
  /** A refresh-token family and the access tokens issued with it. */
  revokeFamily(familyId: string): Promise<void>;
  /** `TokenService.revokeIssued`. */
  revokeIssued(grant: IssuedGrant): Promise<void>;
  /** `TokenService.revokeUser`. */
  revokeUser(userId: string): Promise<void>;
  /** `TokenService.revokeUserAtClient`. */
  revokeUserAtClient(userId: string, clientId: string): Promise<void>;
  /** `TokenService.revokeClient`. */
  revokeClient(clientId: string): Promise<void>;
}

/** `recorded` plus those of `extra` it does not already name. */
function mergeEntries(recorded: RevokedJtiEntry[], extra: readonly RevokedJtiEntry[]): RevokedJtiEntry[] {
  if (extra.length === 0) return recorded;
  const seen = new Set(recorded.map((e) => e.jti));
  return [...recorded, ...extra.filter((e) => !seen.has(e.jti))];
}

/** Creates the revocation half of the token service. */
export function createRevoker(deps: RevokerDeps): Revoker {
  const { db, refreshTokens, revocations, denyList, verifier, config, now } = deps;

  async function revokeGrants({ families, accessTokens = [], subject }: GrantRevocation): Promise<void> {
    if (families === undefined && accessTokens.length === 0 && subject === undefined) return;
    const at = now();
    const revokedSubject: RevokedSubject | null =
      subject === undefined
        ? null
        : {
            sub: subject,
            // iat has one-second granularity, so every token of the current second
            // is refused too (rounding up); tokens minted afterwards in this second
            // are dated to the next one (see prepare in issue.ts), so they stay valid.
            notBefore: new Date(Math.ceil((at + 1) / 1000) * 1000),
            expiresAt: new Date(at + (config.accessTokenTtlSeconds + SKEW_SECONDS) * 1000),
          };
    const jtis = await write(families, accessTokens, revokedSubject);
    await denyList.announce(jtis, revokedSubject ? [revokedSubject] : []);
  }

  /**
   * Writes a revocation atomically. The two kinds RFC 7009 requests make
   * (an access token alone, a refresh token's family) are one statement
   * each, atomic without a transaction's BEGIN and COMMIT round trips
   * (bench/README.md, "Hot-path changes"); the rest in a transaction.
   */
  async function write(families: GrantRevocation['families'], accessTokens: readonly RevokedJtiEntry[], revokedSubject: RevokedSubject | null): Promise<RevokedJtiEntry[]> {
    const at = now();
    if (revokedSubject === null && families === undefined) {
      await revocations.revoke(accessTokens);
      return [...accessTokens];
    }
    if (revokedSubject === null && families !== undefined && 'familyId' in families && accessTokens.length === 0) {
      return refreshTokens.revokeFamilyAndAccessTokens(families.familyId, new Date(at));
    }
    return db.transaction(async (tx) => {
      const recorded =
        families === undefined
          ? []
          : 'familyId' in families
            ? await refreshTokens.revokeFamily(families.familyId, new Date(at), tx)
            : await refreshTokens.revokeForUser(families.userId, families.clientId, new Date(at), tx);
      const all = mergeEntries(recorded, accessTokens);
      await revocations.revoke(all, tx);
      if (revokedSubject) await revocations.revokeSubject(revokedSubject, tx);
      return all;
    });
  }

  const revokeFamily = (familyId: string) => revokeGrants({ families: { familyId } });

  /**
   * RFC 7009 requests, written in groups: concurrent revocations share one
   * statement and one announcement (`grouped.ts`: group commit). An access token
   * alone is deny-listed until it expires; a refresh token revokes its family
   * with the access tokens issued with it.
   */
  const revokeAccessToken = grouped<RevokedJtiEntry>(async (entries) => {
    const unique = [...new Map(entries.map((e) => [e.jti, e])).values()];
    await revocations.revoke(unique);
    await denyList.announce(unique);
  });
  const revokePresentedRefreshToken = grouped<{ tokenHash: string; clientId: string }>(async (presented) => {
    await denyList.announce(await refreshTokens.revokePresented(presented, new Date(now())));
  });

  async function revoke(token: string, _hint: string | undefined, caller: Client): Promise<void> {
    // Refresh tokens (43 base64url characters) and JWTs (dotted) cannot be
    // mistaken for each other, so the shape decides and the hint (RFC 7009
    // §2.1: only an optimisation) is not needed.
    if (isRefreshTokenShape(token)) {
      // §2.1: revoking a refresh token revokes the grant: its family and the
      // access tokens issued with it. Other clients' tokens are left alone.
      await revokePresentedRefreshToken({ tokenHash: hashRefreshToken(token), clientId: caller.clientId });
      return;
    }
    if (!looksLikeJwt(token)) return;
    let verified: Awaited<ReturnType<Verifier['verify']>>;
    try {
      verified = await verifier.verify(token, undefined);
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
    await revokeAccessToken({ jti: claims.jti, expiresAt: new Date(claims.exp * 1000) });
  }

  return {
    revokeGrants,
    revoke,
    revokeFamily,
    revokeIssued(grant) {
      const jti = grant.accessTokenJti ?? null;
      const familyId = grant.familyId ?? null;
      return revokeGrants({
        ...(familyId === null ? {} : { families: { familyId } }),
        // Unknown expiry: the longest an access token can live from now.
        ...(jti === null ? {} : { accessTokens: [{ jti, expiresAt: grant.accessTokenExpiresAt ?? new Date(now() + config.accessTokenTtlSeconds * 1000) }] }),
      });
    },
    // Every family at every client, and the subject cut-off for access tokens
    // issued without a refresh token (password change, disable, delete).
    revokeUser: (userId) => revokeGrants({ families: { userId, clientId: null }, subject: userId }),
    revokeUserAtClient: (userId, clientId) => revokeGrants({ families: { userId, clientId } }),
    // Every access token of the client, whoever it speaks for; its refresh
    // tokens go with its row (ON DELETE CASCADE).
    revokeClient: (clientId) => revokeGrants({ subject: clientSubject(clientId) }),
  };
}
