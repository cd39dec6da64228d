/**
 * Failed-attempt throttling (bad passwords, bad client secrets, self-
 * registration), counted in the TTL store so every instance shares the count.
 * Counters live for a fixed window (`FAILED_ATTEMPT_WINDOW`) from their first
 * use and are never extended.
 *
 * Two kinds of counter, used by `users/sign-in.ts` and `oauth/client-auth.ts`:
 *
 * - A hard limit (`reserve`): an attempt is counted atomically BEFORE the
 *   credential is checked (INCR with expiry), so of any number of concurrent
 *   attempts at most `MAX_FAILED_ATTEMPTS` per window get through; the rest
 *   are refused with 429 and `Retry-After` without any check. An attempt that
 *   turns out not to be a failure is given back (`release`).
 * - A slow-down (`failures` + `slowDownMs`): failures counted after the check,
 *   read before the next one; past the limit they buy a growing, capped delay
 *   instead of a refusal, so a counter that anyone can drive up (an account
 *   from many addresses, an address shared by many people) never locks
 *   anybody out.
 */
import type { Config } from '../config.js';
import { tooManyRequests } from '../errors.js';
import type { KvStore } from '../storage/types.js';

/**
 * The counters, named in one place. Every password check of an account (login
 * page, password grant, admin Basic auth, admin console) shares the same
 * counters, so switching between them gains a guesser nothing.
 *
 * - `attempts`: account AND address, the hard limit on password checks. Keyed
 *   by both, so an attacker's failures at one address never refuse the real
 *   user at another.
 * - `user`: failures at one account from every address (slow-down).
 * - `ip`: failures from one address at every account, credential stuffing
 *   (slow-down: many people may share an address behind a NAT or a proxy).
 * - `client`: client secrets, per client and address (a 256-bit secret cannot
 *   be guessed anyway, and a per-client-only lockout would let anyone who knows
 *   a client_id lock that client out).
 * - `registration`: self-registrations per address (each costs a password hash).
 * - `secondFactorAttempts`, `secondFactorUser`: authenticator-app and
 *   recovery codes, as `attempts` and `user` are for passwords.
 * - `clientRegistration`: RFC 7591 client registrations per address, every
 *   attempt counted (a throttle of its own: `DYNAMIC_REGISTRATION_LIMIT` per
 *   `DYNAMIC_REGISTRATION_WINDOW`).
 * - `passwordResetIp`, `passwordResetEmail`: "forgot password" requests per
 *   address (429 past the limit) and per email address typed (past its own
 *   limit no more mail goes out, with the same answer, so nobody learns
 *   anything and the owner's inbox is not flooded).
 * - `passkey`: passkey assertions per address (the hard limit; a verified
 *   one gives its attempt back). Per address only: a passkey sign-in names no
 *   account until the assertion is verified.
 * - `deviceUserCode`: user codes typed at `/device` per address (RFC 8628
 *   §5.1: a user code has about 34 bits, so guesses must be bounded).
 */
export const throttleKeys = {
  // The username is percent-encoded so that no username can end in what looks like another's address.
  attempts: (username: string, ip: string) => `user-ip:${encodeURIComponent(username.toLowerCase())}@${ip}`,
  user: (username: string) => `user:${username.toLowerCase()}`,
  ip: (ip: string) => `ip:${ip}`,
  client: (clientId: string, ip: string) => `client:${clientId}:${ip}`,
  registration: (ip: string) => `register-ip:${ip}`,
  clientRegistration: (ip: string) => `client-registration-ip:${ip}`,
  passwordResetIp: (ip: string) => `password-reset-ip:${ip}`,
  passwordResetEmail: (email: string) => `password-reset-email:${encodeURIComponent(email.toLowerCase())}`,
  passkey: (ip: string) => `passkey-ip:${ip}`,
  deviceUserCode: (ip: string) => `device-user-code-ip:${ip}`,
  // Second-factor codes (TOTP, recovery codes): a hard limit per account AND
  // address, a slow-down per account; apart from the password's counters, so
  // a user's typos in one never use up the other.
  secondFactorAttempts: (userId: string, ip: string) => `second-factor:${userId}@${ip}`,
  secondFactorUser: (userId: string) => `second-factor-user:${userId}`,
} as const;

/**
 * The slow-down: no delay below `threshold` failures, then `FIRST_DELAY_MS`,
 * doubling with every further failure up to `MAX_DELAY_MS`, so a request is
 * never held longer than that.
 */
export const SLOW_DOWN = { firstDelayMs: 250, maxDelayMs: 4_000 } as const;

/** The delay before a check, given the failures counted in the window (pure). */
export function slowDownMs(failures: number, threshold: number): number {
  if (!(failures >= threshold)) return 0;
  const doublings = Math.min(failures - threshold, 30);
  return Math.min(SLOW_DOWN.maxDelayMs, SLOW_DOWN.firstDelayMs * 2 ** doublings);
}

export interface Throttle {
  /** The hard limit per key and window (`MAX_FAILED_ATTEMPTS`); also the slow-down threshold. */
  readonly maxAttempts: number;
  /** The window in which attempts are counted, seconds (`FAILED_ATTEMPT_WINDOW`). */
  readonly windowSeconds: number;
  /**
   * Reserves one attempt under `key`, atomically, before the credential is
   * checked. Throws 429 `too_many_requests` (with the seconds left in the
   * window as `Retry-After`) when `maxAttempts` are already taken in the
   * window; of concurrent callers, at most `maxAttempts` get through.
   */
  reserve(key: string): Promise<void>;
  /** Gives back an attempt `reserve` took, when it was not a failure. */
  release(key: string): Promise<void>;
  /** Counts one failure under each key; returns each new count and the seconds left in its window. */
  fail(...keys: string[]): Promise<Array<{ count: number; ttlSeconds: number }>>;
  /** The failures counted under `key` in the current window (0 when none). */
  failures(key: string): Promise<number>;
}

export function createThrottle(kv: KvStore, config: Pick<Config, 'maxFailedAttempts' | 'failedAttemptWindowSeconds'>): Throttle {
  const name = (key: string) => `fail:${key}`;
  const window = config.failedAttemptWindowSeconds;
  return {
    maxAttempts: config.maxFailedAttempts,
    windowSeconds: window,
    async reserve(key) {
      // Counted before the check, so the check-then-count race of concurrent
      // guesses is gone. Refused attempts push the count past the limit,
      // which is harmless: the window is not extended.
      let counted: { count: number; ttlSeconds: number };
      try {
        counted = await kv.increment(name(key), window);
      } catch (err) {
        // The store did not answer in time (a frozen Redis): it may still count
        // this attempt when it wakes, though nothing was checked, and a client
        // retrying its 503s would lock its user out. The give-back goes out
        // after it on the same connection, so it is applied after it.
        kv.decrement(name(key)).catch(() => {});
        throw err;
      }
      if (counted.count > config.maxFailedAttempts) throw tooManyRequests(Math.max(1, counted.ttlSeconds));
    },
    async release(key) {
      await kv.decrement(name(key));
    },
    async fail(...keys) {
      return Promise.all(keys.map((key) => kv.increment(name(key), window)));
    },
    async failures(key) {
      const raw = await kv.get(name(key));
      const count = raw === null ? 0 : Number(raw);
      return Number.isFinite(count) ? count : 0;
    },
  };
}
