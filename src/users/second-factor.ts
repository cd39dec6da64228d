/**
 * The second factor: an authenticator app (TOTP, RFC 6238: HMAC-SHA-1,
 * 6 digits, 30-second steps, one step of clock drift either way) and ten
 * single-use recovery codes.
 *
 * - The shared secret (160 random bits, RFC 4226 §4) is stored as an oct JWK
 *   sealed like the signing keys (`tokens/key-encryption.ts`: a compact JWE
 *   under `SIGNING_KEY_ENCRYPTION_KEY` when it is set, bound to the user).
 * - A code is accepted once (RFC 6238 §5.2): the store takes its time step
 *   with a conditional UPDATE (`last_used_step < step`), so of two requests
 *   with the same code, on any number of instances, one wins; a code of an
 *   earlier step than one already used is refused too.
 * - Recovery codes are 80 random bits each, shown once, stored as SHA-256
 *   hashes and marked used atomically.
 * - Every check of a code is throttled like a password (`security/throttle.ts`):
 *   a hard limit per account and address, reserved before the check, and a
 *   capped slow-down per account.
 * - The audit trail records, here for every front end: the app set up
 *   (`second_factor.added`), removed by its user (`second_factor.removed`),
 *   new recovery codes (`second_factor.recovery_codes_regenerated`), a
 *   recovery code used (`second_factor.recovery_code_used`, with how many
 *   are left), a wrong code (`second_factor.failed`) or one refused by the
 *   throttle (`second_factor.throttled`), and an admin's reset
 *   (`second_factor.reset`). Never a code or the secret.
 * - An admin's reset (a user who lost the app and the recovery codes) is a
 *   change of credentials made for the user: like an admin's new password, it
 *   ends every session and refresh token the user holds (`endSignIns`), so
 *   whoever signed in with the lost device is out too. A user removing their
 *   own app on the account page proved a code or the password in this
 *   session, and keeps their sessions, as with removing a passkey.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Secret, TOTP } from 'otpauth';
import { recordChange, userActor, type AuditOutcome, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import type { Config } from '../config.js';
import { conflict, notFound, OAuthError } from '../errors.js';
import { constantTimeEqual } from '../security/constant-time.js';
import { slowDownMs, throttleKeys, type Throttle } from '../security/throttle.js';
import type { Executor, TotpRepo, User } from '../storage/types.js';
import { createKeyProtector, type Resealed } from '../tokens/key-encryption.js';

export const TOTP_PERIOD_SECONDS = 30;
const TOTP_DIGITS = 6;
const TOTP_ALGORITHM = 'SHA1';
/** Steps of clock drift accepted either way (RFC 6238 §5.2). */
const TOTP_WINDOW = 1;
const SECRET_BYTES = 20;
export const RECOVERY_CODE_COUNT = 10;
const RECOVERY_CODE_BYTES = 10;

/** How a code was accepted: an authenticator app's (`otp`) or a recovery code. */
export type SecondFactorMethod = 'otp' | 'recovery';

export interface Enrolment {
  /** Base32 (RFC 4648), as authenticator apps take it typed in. */
  secret: string;
  /** The `otpauth://totp/…` URI of the QR code. */
  uri: string;
}

export interface SecondFactorService {
  /** Whether the user has a confirmed authenticator app (then the password alone signs nobody in). */
  isEnrolled(userId: string): Promise<boolean>;
  status(userId: string): Promise<{ enrolled: boolean; recoveryCodesLeft: number }>;
  /** A secret to set up (the one being set up, if any); 409 when the user already has an app. */
  beginEnrolment(user: User): Promise<Enrolment>;
  /** Confirms the secret being set up with a current code; the new recovery codes, or null for a wrong code. */
  confirmEnrolment(user: User, code: string, ip: string): Promise<string[] | null>;
  /**
   * Checks a current code or a recovery code of an enrolled user, using it
   * up. Null when wrong (or replayed); throws 429 `too_many_requests` when
   * this account and address have used up their attempts.
   */
  verify(user: User, code: string, ip: string): Promise<SecondFactorMethod | null>;
  /** New recovery codes (the old ones stop working), after a current app code; null for a wrong code. */
  regenerateRecoveryCodes(user: User, code: string, ip: string): Promise<string[] | null>;
  /** The user removes their app and recovery codes (the caller checked a code or the password); false when there was none. */
  remove(user: User, ip: string | null): Promise<boolean>;
  /**
   * An admin removes a user's app and recovery codes (API, console, CLI:
   * `context` says who), and every session and refresh token of the user
   * ends. 404 `not_found` when the user has no app set up.
   */
  reset(user: User, context: ChangeContext): Promise<void>;
  /**
   * `keys reencrypt`'s part for the app secrets, in `tx`: every stored
   * secret re-sealed under `newKey` (plainly when undefined); throws before
   * writing when one cannot be opened. `adopt()` once `tx` committed.
   */
  reseal(newKey: Uint8Array | undefined, tx: Executor): Promise<Resealed>;
}

export interface SecondFactorDeps {
  repo: TotpRepo;
  throttle: Throttle;
  config: Pick<Config, 'issuer'> & Partial<Pick<Config, 'signingKeyEncryptionKey'>>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Where the changes and the use of recovery codes are recorded. */
  audit?: AuditRecorder;
  /** Ends the user's sessions and refresh tokens after an admin's reset (`users.endSignIns`). */
  endSignIns?: (userId: string) => Promise<void>;
}

/** Random bytes in an ArrayBuffer of their own (a Buffer's may be a shared pool). */
const ownBytes = (size: number): ArrayBuffer => new Uint8Array(randomBytes(size)).buffer;

const hashRecoveryCode = (code: string) => createHash('sha256').update(code).digest('base64url');

/** What people type: case, spaces and dashes do not matter. */
const normaliseRecoveryCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');

/** A recovery code as shown: four groups of four base32 characters. */
function newRecoveryCode(): string {
  return new Secret({ buffer: ownBytes(RECOVERY_CODE_BYTES) }).base32.match(/.{4}/g)!.join('-');
}

export function createSecondFactorService(deps: SecondFactorDeps): SecondFactorService {
  const { repo, throttle, config, audit } = deps;
  const now = deps.now ?? Date.now;
  const endSignIns = deps.endSignIns ?? (async () => {});
  const sleep = deps.sleep ?? ((ms: number) => delay(ms).then(() => {}));
  let protector = createKeyProtector(config.signingKeyEncryptionKey);
  // The issuer's host name: the Key URI format splits issuer and account at a colon, so no port.
  const issuerLabel = new URL(config.issuer).hostname;
  // The kid of the JWE binds a sealed secret to its user: a row's secret cannot be moved to another row.
  const kidOf = (userId: string) => `totp:${userId}`;

  const totpOf = (secret: Secret, label: string) =>
    new TOTP({ issuer: issuerLabel, label, secret, algorithm: TOTP_ALGORITHM, digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS });

  async function openSecret(userId: string, stored: Record<string, unknown>): Promise<Secret> {
    const jwk = await protector.open(kidOf(userId), stored);
    return new Secret({ buffer: new Uint8Array(Buffer.from(String(jwk.k), 'base64url')).buffer });
  }

  /** The time step whose code `code` is, within the window; null when none. Every candidate is compared. */
  function matchingStep(secret: Secret, code: string): number | null {
    const current = Math.floor(now() / 1000 / TOTP_PERIOD_SECONDS);
    const totp = totpOf(secret, 'check');
    let found: number | null = null;
    for (let delta = -TOTP_WINDOW; delta <= TOTP_WINDOW; delta++) {
      const step = current + delta;
      if (constantTimeEqual(code, totp.generate({ timestamp: step * TOTP_PERIOD_SECONDS * 1000 })) && found === null) found = step;
    }
    return found;
  }

  /** An app code accepted once: the step is taken atomically by the store. */
  async function acceptAppCode(userId: string, code: string, confirmed: boolean): Promise<boolean> {
    if (!/^\d{6}$/.test(code)) return false;
    const record = await repo.find(userId);
    if (!record || (record.confirmedAt !== null) !== confirmed) return false;
    const step = matchingStep(await openSecret(userId, record.secret), code);
    return step !== null && repo.acceptStep(userId, step, confirmed);
  }

  /**
   * Runs one throttled check (as `sign-in.ts` does for passwords): the
   * attempt is reserved before the check and kept when it fails.
   */
  async function throttled<T>(userId: string, ip: string, check: () => Promise<T | null>): Promise<T | null> {
    const attempts = throttleKeys.secondFactorAttempts(userId, ip);
    const account = throttleKeys.secondFactorUser(userId);
    await throttle.reserve(attempts);
    let result: T | null;
    try {
      const wait = slowDownMs(await throttle.failures(account), throttle.maxAttempts);
      if (wait > 0) await sleep(wait);
      result = await check();
    } catch (err) {
      // Nothing was decided (a store is down): not a failure.
      await throttle.release(attempts).catch(() => {});
      throw err;
    }
    if (result === null) await throttle.fail(account);
    else await throttle.release(attempts);
    return result;
  }

  async function newRecoveryCodes(userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await repo.replaceRecoveryCodes(userId, codes.map((c) => hashRecoveryCode(normaliseRecoveryCode(c))));
    return codes;
  }

  const isEnrolled = async (userId: string) => (await repo.find(userId))?.confirmedAt != null;

  /** Records what the user did to their own second factor, from `ip`. */
  const recordOwn = (
    type: 'second_factor.added' | 'second_factor.removed' | 'second_factor.recovery_codes_regenerated' | 'second_factor.recovery_code_used' | 'second_factor.failed' | 'second_factor.throttled',
    user: User,
    ip: string | null,
    details: { recovery_codes_left?: number } = {},
    outcome: AuditOutcome = 'success',
  ) => recordChange(audit, { actor: userActor(user), ip }, { type, outcome, subject: { type: 'user', id: user.id }, details: { username: user.username, ...details } });

  return {
    isEnrolled,

    async status(userId) {
      const enrolled = await isEnrolled(userId);
      return { enrolled, recoveryCodesLeft: enrolled ? await repo.countRecoveryCodes(userId) : 0 };
    },

    async beginEnrolment(user) {
      const existing = await repo.find(user.id);
      if (existing?.confirmedAt) throw conflict('An authenticator app is already set up for this account.');
      let secret: Secret;
      if (existing) {
        // The one being set up stays: a reload (or a second tab) shows the same QR code.
        secret = await openSecret(user.id, existing.secret);
      } else {
        secret = new Secret({ buffer: ownBytes(SECRET_BYTES) });
        const sealed = await protector.seal(kidOf(user.id), { kty: 'oct', k: Buffer.from(secret.buffer).toString('base64url') });
        if (!(await repo.saveUnconfirmed(user.id, sealed))) throw conflict('An authenticator app is already set up for this account.');
      }
      return { secret: secret.base32, uri: totpOf(secret, user.username).toString() };
    },

    async confirmEnrolment(user, code, ip) {
      const accepted = await throttled(user.id, ip, async () => ((await acceptAppCode(user.id, code.trim(), false)) ? true : null));
      if (!accepted) return null;
      const codes = await newRecoveryCodes(user.id);
      await recordOwn('second_factor.added', user, ip);
      return codes;
    },

    async verify(user, code, ip) {
      const typed = code.trim();
      let method: SecondFactorMethod | null;
      try {
        method = await throttled<SecondFactorMethod>(user.id, ip, async () => {
          if (await acceptAppCode(user.id, typed.replace(/\s/g, ''), true)) return 'otp';
          const recovery = normaliseRecoveryCode(typed);
          if (/^[A-Z2-7]{16}$/.test(recovery) && (await isEnrolled(user.id)) && (await repo.useRecoveryCode(user.id, hashRecoveryCode(recovery)))) {
            return 'recovery';
          }
          return null;
        });
      } catch (err) {
        // Someone who has the password is guessing codes: the trail shows where from.
        if (err instanceof OAuthError && err.error === 'too_many_requests') await recordOwn('second_factor.throttled', user, ip, {}, 'failure');
        throw err;
      }
      if (method === null) await recordOwn('second_factor.failed', user, ip, {}, 'failure');
      // A recovery code stands in for the device: its owner and the admins should see each one go.
      if (method === 'recovery') await recordOwn('second_factor.recovery_code_used', user, ip, { recovery_codes_left: await repo.countRecoveryCodes(user.id) });
      return method;
    },

    async regenerateRecoveryCodes(user, code, ip) {
      const accepted = await throttled(user.id, ip, async () => ((await acceptAppCode(user.id, code.replace(/\s/g, ''), true)) ? true : null));
      if (!accepted) return null;
      const codes = await newRecoveryCodes(user.id);
      await recordOwn('second_factor.recovery_codes_regenerated', user, ip);
      return codes;
    },

    async remove(user, ip) {
      if (!(await repo.delete(user.id))) return false;
      await recordOwn('second_factor.removed', user, ip);
      return true;
    },

    async reset(user, context) {
      // Only a confirmed app: a setup left half done is no second factor (and the next setup replaces it).
      if (!(await isEnrolled(user.id)) || !(await repo.delete(user.id))) throw notFound(`user "${user.username}" has no authenticator app`);
      await endSignIns(user.id);
      await recordChange(audit, context, { type: 'second_factor.reset', subject: { type: 'user', id: user.id }, details: { username: user.username } });
    },

    async reseal(newKey, tx) {
      const next = createKeyProtector(newKey);
      const count = await repo.resealAll(async (userId, stored) => next.seal(kidOf(userId), await protector.open(kidOf(userId), stored)), tx);
      return {
        count,
        adopt: () => {
          protector = next;
        },
      };
    },
  };
}
