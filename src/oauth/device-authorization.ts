/**
 * The device authorization grant (RFC 8628): a device that cannot show a
 * browser (a TV, a command-line tool) asks for a device code and a user code
 * (§3.1–3.2), the person types the user code at `/device` on another screen
 * and approves (§3.3), and the device polls the token endpoint until then
 * (§3.4–3.5). Everything lives in the TTL store, shared by every instance:
 *
 * - `device:<sha256(device_code)>`: the request and its state (pending,
 *   approved, denied). The device code is 256 bits from the CSPRNG and only
 *   its hash is stored.
 * - `device-user-code:<sha256(user code)>`: the user code → the device
 *   code's hash, taken atomically by the person's decision, so a code is
 *   answered once.
 * - `device-poll:<sha256(device_code)>`: when the device last polled and its
 *   current interval (§3.5 `slow_down` adds 5 seconds to it).
 *
 * An answered request is taken from the store atomically (`GETDEL`) by the
 * poll that redeems it: of any number of concurrent polls, on any number of
 * instances, exactly one gets the tokens (or `access_denied`).
 *
 * Expiry is judged against the injected clock (`expiresAt`), not the store's
 * TTL, which only cleans up: an entry is kept a while past its expiry so a
 * late poll is told `expired_token` rather than `invalid_grant`.
 *
 * User codes are 8 characters of 20 consonants (about 34.6 bits, §6.1) and
 * live 10 minutes; guessing them is bounded by the failed-attempt throttle
 * per address (§5.1), counted before each lookup.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { userActor, type AuditRecorder } from '../audit/events.js';
import type { ClientService } from '../clients/service.js';
import type { Config } from '../config.js';
import type { ConsentService } from '../consents/service.js';
import { invalidGrant, OAuthError } from '../errors.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { Client, KvStore, User } from '../storage/types.js';
import type { ResourceRegistry } from './resources.js';
import { adminScopeLacksSecondFactor, ADMIN_SCOPE, grantScopes, parseScopeParameter, scopesForUser } from './scope.js';

/** Lifetime of a device code and its user code (RFC 8628 §3.2 `expires_in`). */
export const DEVICE_CODE_TTL_SECONDS = 600;
/** The minimum time between polls (RFC 8628 §3.2 `interval`; 5 s is the RFC's default). */
export const POLL_INTERVAL_SECONDS = 5;
/** What `slow_down` adds to the interval (RFC 8628 §3.5). */
const SLOW_DOWN_STEP_SECONDS = 5;
/** How long an expired entry is kept so late polls hear `expired_token`. */
const EXPIRED_GRACE_SECONDS = 600;
/** Where people enter user codes (RFC 8628 §3.2 `verification_uri`). */
export const VERIFICATION_PATH = '/device';

/**
 * RFC 8628 §6.1: case-insensitive characters that are hard to confuse: 20
 * consonants (no vowels, so no words; no I, O, U, Y, 0, 1).
 */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const USER_CODE_LENGTH = 8;

/** A fresh user code, 8 characters of `USER_CODE_ALPHABET` (normalised: no dash). */
export function generateUserCode(): string {
  let code = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

/** `BCDFGHJK` → `BCDF-GHJK`, as shown to people. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/**
 * The code a person typed, normalised (RFC 8628 §6.1: case and dashes do not
 * matter, nor spaces), or null when it cannot be a user code.
 */
export function normalizeUserCode(input: unknown): string | null {
  if (typeof input !== 'string' || input.length > 32) return null;
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  if (code.length !== USER_CODE_LENGTH) return null;
  for (const c of code) if (!USER_CODE_ALPHABET.includes(c)) return null;
  return code;
}

/** The device authorization response (RFC 8628 §3.2). */
export interface DeviceAuthorizationResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

interface DeviceRecord {
  clientId: string;
  /** Requested (then, once approved, granted) scopes. */
  scopes: string[];
  /** The resources the grant covers (RFC 8707), as configured. */
  resources: string[];
  /** Normalised. */
  userCode: string;
  /** Epoch ms. */
  expiresAt: number;
  status: 'pending' | 'approved' | 'denied';
  userId: string | null;
  /** Epoch seconds of the approving user's sign-in (OIDC `auth_time`). */
  authTime: number | null;
  /** How the approving user signed in (RFC 8176 `amr`); absent while pending, and on records stored before it was recorded. */
  amr?: string[];
}

/** A pending request as the `/device` page shows it. */
export interface DeviceRequest {
  client: Client;
  /** What this user would grant: the request's scopes, narrowed to what the user may hold. */
  scopes: string[];
  /** Formatted (`XXXX-XXXX`). */
  userCode: string;
  /** The resources (RFC 8707) the tokens would be for, as configured. */
  resources: string[];
}

/** An approved request, redeemed once by the token endpoint. */
export interface ApprovedDevice {
  userId: string;
  scopes: string[];
  resources: string[];
  authTime: number | null;
  /** RFC 8176 methods of the approving user's sign-in; undefined when not recorded. */
  amr: string[] | undefined;
}

export interface DeviceFlowDeps {
  kv: KvStore;
  config: Pick<Config, 'issuer' | 'scopes'> & Partial<Pick<Config, 'requireMfaForAdmins'>>;
  now: () => number;
  /** The hard limit on user-code guesses per address (`MAX_FAILED_ATTEMPTS` per `FAILED_ATTEMPT_WINDOW`). */
  throttle: Pick<Throttle, 'reserve' | 'release'>;
  clients: Pick<ClientService, 'find' | 'recordUse'>;
  consents: Pick<ConsentService, 'grant'>;
  resources: Pick<ResourceRegistry, 'requested'>;
  audit?: AuditRecorder;
}

export interface DeviceFlow {
  /**
   * RFC 8628 §3.1–3.2, for a client already authenticated and registered for
   * the grant: checks `scope` and `resource`, then issues the codes.
   */
  authorize(client: Client, params: Readonly<Record<string, string | undefined>>): Promise<DeviceAuthorizationResponse>;
  /**
   * The pending request a typed user code names, for `user` signed in with
   * `amr`; null when the code is unknown, expired or answered. A well-formed
   * code counts against the address's guesses unless it is found (throws 429
   * past the limit).
   */
  find(userCode: unknown, user: User, input: { amr: readonly string[]; ip: string }): Promise<DeviceRequest | null>;
  /**
   * The person's decision (RFC 8628 §3.3): takes the user code, so each is
   * answered once; null when it was unknown, expired or already answered
   * (throttled like `find`). Allowing remembers the consent (so it can be
   * revoked with the tokens) and records it in the audit trail.
   */
  decide(userCode: unknown, user: User, input: { allow: boolean; authTime: number | null; amr: readonly string[]; ip: string }): Promise<'approved' | 'denied' | null>;
  /**
   * A poll of the token endpoint (RFC 8628 §3.4–3.5): the approved request,
   * taken from the store so it is redeemed once; else throws
   * `authorization_pending`, `slow_down`, `access_denied`, `expired_token`
   * or `invalid_grant` (unknown, another client's, already redeemed).
   * `check` judges an approved request's resources before it is taken, so
   * what it throws leaves the approval to a later poll.
   */
  redeem(client: Client, deviceCode: string, check?: (resources: readonly string[]) => void): Promise<ApprovedDevice>;
}

const UNKNOWN_DEVICE_CODE = 'The device_code is invalid, was already used, or was issued to another client.';

const digest = (value: string) => createHash('sha256').update(value).digest('base64url');
const deviceKey = (hash: string) => `device:${hash}`;
const userCodeKey = (code: string) => `device-user-code:${digest(code)}`;
const pollKey = (hash: string) => `device-poll:${hash}`;

export function createDeviceFlow(deps: DeviceFlowDeps): DeviceFlow {
  const { kv, config, now, throttle } = deps;
  const verificationUri = `${config.issuer}${VERIFICATION_PATH}`;

  /** Seconds the store should keep an entry expiring at `expiresAt` (cleanup only; expiry is judged by `now`). */
  const ttlFor = (expiresAt: number) => Math.max(1, Math.ceil((expiresAt - now()) / 1000) + EXPIRED_GRACE_SECONDS);
  const parse = (raw: string | null) => (raw === null ? null : (JSON.parse(raw) as DeviceRecord));
  /**
   * What this sign-in may grant of the request: the admin scope only to an
   * admin, and not from a password alone when the rule of /authorize wants a
   * second factor (`adminScopeLacksSecondFactor`): this page has no step-up,
   * so the scope is left out.
   */
  const grantable = (scopes: readonly string[], user: User, amr: readonly string[]) => {
    const allowed = scopesForUser(scopes, user);
    return adminScopeLacksSecondFactor(allowed, user, amr, config.requireMfaForAdmins) ? allowed.filter((s) => s !== ADMIN_SCOPE) : allowed;
  };

  /** The pending, unexpired request of a user code, with its device code's hash; null otherwise. */
  const lookup = async (code: string): Promise<{ hash: string; record: DeviceRecord } | null> => {
    const hash = await kv.get(userCodeKey(code));
    if (hash === null) return null;
    const record = parse(await kv.get(deviceKey(hash)));
    if (!record || record.status !== 'pending' || record.expiresAt <= now() || record.userCode !== code) return null;
    return { hash, record };
  };

  /** RFC 8628 §5.1: every guess of a well-formed code is counted per address before the lookup; a hit gives it back. */
  const throttled = async <T>(code: string, ip: string, find: () => Promise<T | null>): Promise<T | null> => {
    const key = throttleKeys.deviceUserCode(ip);
    await throttle.reserve(key);
    const found = await find();
    if (found !== null) await throttle.release(key);
    return found;
  };

  /**
   * RFC 8628 §3.5: polls closer together than the interval are answered
   * `slow_down`, and the interval grows by 5 seconds for this device code.
   * Read-then-write: two polls racing on two instances may both pass, which
   * costs a poll, never a redemption (that is the atomic take).
   */
  const pace = async (hash: string, record: DeviceRecord): Promise<void> => {
    const raw = await kv.get(pollKey(hash));
    const last = raw === null ? null : (JSON.parse(raw) as { at: number; interval: number });
    const at = now();
    const interval = last?.interval ?? POLL_INTERVAL_SECONDS;
    const tooSoon = last !== null && at - last.at < interval * 1000;
    const next = { at, interval: tooSoon ? interval + SLOW_DOWN_STEP_SECONDS : interval };
    await kv.set(pollKey(hash), JSON.stringify(next), ttlFor(record.expiresAt));
    if (tooSoon) throw new OAuthError('slow_down', `Polling too fast: wait at least ${next.interval} seconds between requests (RFC 8628 §3.5).`);
  };

  return {
    async authorize(client, params) {
      const scopes = grantScopes(parseScopeParameter(params.scope), client.scope.split(' '), config.scopes);
      // RFC 8707: the resources the tokens may be for; the default when none is named.
      const resources = deps.resources.requested(params.resource);
      const deviceCode = randomBytes(32).toString('base64url');
      const hash = digest(deviceCode);
      const expiresAt = now() + DEVICE_CODE_TTL_SECONDS * 1000;
      // A collision with a live user code is rare (20^8 codes); draw again when it happens.
      let userCode = generateUserCode();
      for (let attempt = 0; !(await kv.setIfAbsent(userCodeKey(userCode), hash, ttlFor(expiresAt))); attempt++) {
        if (attempt >= 5) throw new OAuthError('temporarily_unavailable', 'Could not allocate a user code; try again.');
        userCode = generateUserCode();
      }
      const record: DeviceRecord = { clientId: client.clientId, scopes, resources, userCode, expiresAt, status: 'pending', userId: null, authTime: null };
      await kv.set(deviceKey(hash), JSON.stringify(record), ttlFor(expiresAt));
      const shown = formatUserCode(userCode);
      return {
        device_code: deviceCode,
        user_code: shown,
        verification_uri: verificationUri,
        verification_uri_complete: `${verificationUri}?user_code=${shown}`,
        expires_in: DEVICE_CODE_TTL_SECONDS,
        interval: POLL_INTERVAL_SECONDS,
      };
    },

    async find(typed, user, { amr, ip }) {
      const code = normalizeUserCode(typed);
      if (code === null) return null;
      return throttled(code, ip, async () => {
        const found = await lookup(code);
        if (!found) return null;
        const client = await deps.clients.find(found.record.clientId);
        if (!client) return null;
        return { client, scopes: grantable(found.record.scopes, user, amr), userCode: formatUserCode(code), resources: found.record.resources };
      });
    },

    async decide(typed, user, { allow, authTime, amr, ip }) {
      const code = normalizeUserCode(typed);
      if (code === null) return null;
      const found = await throttled(code, ip, () => lookup(code));
      if (!found) return null;
      // One decision per user code, on whichever instance it arrives.
      if ((await kv.take(userCodeKey(code))) === null) return null;
      const { hash, record } = found;
      const client = await deps.clients.find(record.clientId);
      const scopes = grantable(record.scopes, user, amr);
      // Nothing this account may grant is a refusal.
      const approved = allow && client !== null && scopes.length > 0;
      const answered: DeviceRecord = { ...record, status: approved ? 'approved' : 'denied', userId: user.id, scopes, authTime, amr: [...amr] };
      const context = { actor: userActor(user), ip };
      if (approved) {
        // Before the consent, which refers to the client's row; remembered so it can be revoked with its tokens.
        await deps.clients.recordUse(client, context);
        await deps.consents.grant(user.id, client.clientId, scopes, record.resources, context);
      }
      await kv.set(deviceKey(hash), JSON.stringify(answered), ttlFor(record.expiresAt));
      await deps.audit?.record({
        type: approved ? 'device_authorization.approved' : 'device_authorization.denied',
        actor: context.actor,
        ip,
        subject: { type: 'user', id: user.id },
        clientId: record.clientId,
        details: { scopes },
      });
      return approved ? 'approved' : 'denied';
    },

    async redeem(client, deviceCode, check) {
      // 32 bytes, base64url: anything else cannot be one of ours.
      if (!/^[\w-]{43}$/.test(deviceCode)) throw invalidGrant(UNKNOWN_DEVICE_CODE);
      const hash = digest(deviceCode);
      const record = parse(await kv.get(deviceKey(hash)));
      if (!record || record.clientId !== client.clientId) throw invalidGrant(UNKNOWN_DEVICE_CODE);
      if (record.expiresAt <= now()) throw new OAuthError('expired_token', 'The device_code has expired; start the device authorization again.');
      if (record.status === 'pending') {
        await pace(hash, record);
        throw new OAuthError('authorization_pending', 'The user has not yet approved or denied this request.');
      }
      // Checked on what was read, before anything is taken: a refusal leaves the approval usable.
      if (record.status === 'approved') check?.(record.resources);
      // Answered: exactly one poll takes it.
      const taken = parse(await kv.take(deviceKey(hash)));
      if (!taken) throw invalidGrant(UNKNOWN_DEVICE_CODE);
      await kv.delete(pollKey(hash));
      // RFC 8628 §3.5: a token-endpoint error, so 400 (not the 403 of the pages).
      if (taken.status !== 'approved' || taken.userId === null) throw new OAuthError('access_denied', 'The user denied the request.', { status: 400 });
      return { userId: taken.userId, scopes: taken.scopes, resources: taken.resources, authTime: taken.authTime, amr: taken.amr };
    },
  };
}
