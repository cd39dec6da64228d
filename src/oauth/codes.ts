/**
 * Authorization codes (RFC 6749 §4.1.2), kept in the TTL store.
 *
 * - A code is 256 bits from the CSPRNG (RFC 6749 §10.10 asks for ≥128); the
 *   store is keyed by its SHA-256, so reading Redis yields no usable code.
 * - Redemption takes the entry with an atomic get-and-delete (`GETDEL`): of
 *   any number of concurrent redemptions, on any number of instances, exactly
 *   one gets the grant.
 * - RFC 6749 §4.1.2 / RFC 9700 §4.5: a code presented again must fail and
 *   what it issued should be revoked. The winner leaves a "redeemed" marker
 *   naming what it issued; a replay sets a "replayed" flag and revokes what
 *   the marker names. The winner writes its marker and then checks the flag;
 *   the replay sets the flag and then reads the marker, so whichever order
 *   the two interleave in, at least one side sees the other and the tokens
 *   are revoked, even when the replay arrives while the winner is still
 *   issuing. Both sides name the client: only a replay by the client the
 *   code was issued to revokes.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import type { KvStore } from '../storage/types.js';

/** What a code stands for. */
export interface CodeGrant {
  clientId: string;
  redirectUri: string;
  /** Whether `redirect_uri` was in the authorization request (RFC 6749 §4.1.3). */
  redirectUriSent: boolean;
  /** S256 challenge (RFC 7636). */
  codeChallenge: string;
  userId: string;
  scopes: string[];
  /**
   * The resources the grant covers (RFC 8707 §2), as configured. Empty for
   * a code issued before resources were bound (during an upgrade): it
   * covers the default resource (`ResourceRegistry.audienceFor`).
   */
  resources: string[];
  nonce: string | undefined;
  /** Epoch seconds of the user's sign-in (OIDC `auth_time`). */
  authTime: number | null;
  /** RFC 9449 §10: the code is redeemed only with a DPoP proof by the key of this thumbprint. */
  dpopJkt?: string | undefined;
  /** How the user signed in (RFC 8176 `amr`); absent on codes issued before it was recorded. */
  amr?: string[];
  /** The browser session's OIDC `sid` (`SessionService.sidOf`), for the ID token; absent on codes issued before it was recorded. */
  sid?: string;
}

/** What a redeemed code issued, so a replay can revoke it. */
export interface IssuedByCode {
  /** The client the code was issued to; absent on markers written before it was recorded. */
  clientId?: string;
  familyId: string | null;
  accessTokenJti: string;
  /** Epoch ms. */
  accessTokenExpiresAt: number;
}

export interface CodeStore {
  /** Stores the grant for `CODE_TTL` seconds; returns the code to send. */
  issue(grant: CodeGrant): Promise<string>;
  /** Atomically takes the grant: null when unknown, expired or already taken. */
  take(code: string): Promise<CodeGrant | null>;
  /** Reads the grant without taking it (for checks that must not use the code up); null as for `take`. */
  peek(code: string): Promise<CodeGrant | null>;
  /**
   * Records what the code issued. Returns true when a replay of the code by
   * the same client was already seen, in which case the caller must revoke
   * what it just issued.
   */
  recordRedemption(code: string, issued: IssuedByCode & { clientId: string }): Promise<boolean>;
  /**
   * Records a replay (an attempt by `clientId` to take a code that is gone)
   * and returns what the first redemption issued, if it is known yet and
   * was issued to that client, for revocation.
   */
  recordReplay(code: string, clientId: string): Promise<IssuedByCode | null>;
}

/** 32 random bytes, base64url: 43 characters, 256 bits. */
export function generateCode(): string {
  return randomBytes(32).toString('base64url');
}

const digest = (code: string) => createHash('sha256').update(code).digest('base64url');

function parseGrant(raw: string | null): CodeGrant | null {
  if (raw === null) return null;
  const grant = JSON.parse(raw) as Partial<CodeGrant> & Omit<CodeGrant, 'resources'>;
  return { ...grant, resources: grant.resources ?? [] };
}

export function createCodeStore(deps: { kv: KvStore; config: Pick<Config, 'codeTtlSeconds' | 'accessTokenTtlSeconds'> }): CodeStore {
  const { kv, config } = deps;
  // A code is at most 43 characters; anything else cannot be one of ours
  // (and is not worth hashing or a round trip).
  const plausible = (code: string) => /^[\w-]{43}$/.test(code);
  // The markers outlive the code: a replay is most likely within seconds,
  // but revoking is useful for as long as the access token is valid.
  const markerTtl = Math.max(config.codeTtlSeconds, config.accessTokenTtlSeconds);
  // The "replayed" flag only has to outlive a redemption still in flight
  // (take → issue → marker), which is bounded by the storage timeouts. Kept
  // short because any caller can send made-up codes: they must not pile up.
  const replayFlagTtl = Math.min(markerTtl, 60);

  return {
    async issue(grant) {
      const code = generateCode();
      await kv.set(`code:${digest(code)}`, JSON.stringify(grant), config.codeTtlSeconds);
      return code;
    },
    async take(code) {
      if (!plausible(code)) return null;
      return parseGrant(await kv.take(`code:${digest(code)}`));
    },
    async peek(code) {
      if (!plausible(code)) return null;
      return parseGrant(await kv.get(`code:${digest(code)}`));
    },
    async recordRedemption(code, issued) {
      const d = digest(code);
      await kv.set(`code-redeemed:${d}`, JSON.stringify(issued), markerTtl);
      return (await kv.get(`code-replayed:${d}`)) === issued.clientId;
    },
    async recordReplay(code, clientId) {
      if (!plausible(code)) return null;
      const d = digest(code);
      // Only the client the code was issued to revokes by replaying it: another
      // client holding a leaked, used code must not end the user's tokens.
      // (A marker from before the client was recorded counts as a match.)
      const parse = (raw: string | null) => {
        const issued = raw === null ? null : (JSON.parse(raw) as IssuedByCode);
        return issued !== null && (issued.clientId === undefined || issued.clientId === clientId) ? issued : null;
      };
      // The usual replay comes after the redemption finished: its marker is there.
      const finished = await kv.get(`code-redeemed:${d}`);
      if (finished !== null) return parse(finished);
      // Otherwise flag it first, then look again (see the race note above).
      await kv.set(`code-replayed:${d}`, clientId, replayFlagTtl);
      return parse(await kv.get(`code-redeemed:${d}`));
    },
  };
}
