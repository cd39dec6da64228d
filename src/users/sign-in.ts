/**
 * The one password check of the server. The login page, the admin console,
 * the admin API's HTTP Basic and the password grant all call `signIn`, so
 * every guess at an account's password, wherever it is made, is throttled,
 * counted and answered the same way (SPEC "Accounts and brute force").
 *
 * 1. Hard limit per account AND address: the attempt is reserved atomically
 *    (`user-ip:` counter) before anything is checked. Past
 *    `MAX_FAILED_ATTEMPTS` in the `FAILED_ATTEMPT_WINDOW`: 429
 *    `too_many_requests` with `Retry-After`, and no argon2 work. So a burst of
 *    concurrent guesses from one address buys at most that many checks, while
 *    the real user at another address is never refused.
 * 2. Slow-down: failures at the account from every address (`user:`) and from
 *    the address at every account (`ip:`) are counted too. Past
 *    `MAX_FAILED_ATTEMPTS` either one delays the check (`slowDownMs`: growing,
 *    capped at a few seconds) instead of refusing it, so an account under
 *    attack from many addresses, or an address shared by many people (a NAT,
 *    a proxy), is slowed down but never locked out.
 * 3. The check: a wrong password (or an unknown user, at the same argon2 cost)
 *    keeps its reservation and counts a failure at the account and the
 *    address. The right password gives its reservation back (an admin script
 *    using Basic on every call is not throttled) and clears nothing else: an
 *    attacker's failures stay counted. A disabled account with the right
 *    password is refused as `disabled`, so a caller may say so to someone who
 *    proved they own it.
 *
 * Every attempt is reported to `onAttempt` with the throttle's decision
 * (`throttled`: refused unchecked; `slowedMs` > 0: delayed), for the audit trail.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { isOAuthError } from '../errors.js';
import type { LoginFailureSource } from '../observability/metrics.js';
import { slowDownMs, throttleKeys, type Throttle } from '../security/throttle.js';
import type { User } from '../storage/types.js';

/** Where a sign-in happens (a metrics label; also in logs). */
export type SignInSource = Exclude<LoginFailureSource, 'client_auth'>;

export interface SignInContext {
  /** The caller's address (throttling). */
  ip: string;
  source: SignInSource;
  /** The OAuth client the password was sent to (the password grant), for the audit trail. */
  clientId?: string;
}

export type SignInResult = { ok: true; user: User } | { ok: false; reason: 'invalid_credentials' | 'disabled' };

/** One attempt and what the throttle made of it (for the audit trail). */
export interface SignInAttempt {
  username: string;
  ip: string;
  source: SignInSource;
  /** The client of a password grant; null elsewhere. */
  clientId: string | null;
  /** `throttled`: refused with 429 before any check (the account and address used up their attempts). */
  outcome: 'signed_in' | 'invalid_credentials' | 'disabled' | 'throttled';
  /** Milliseconds the check was delayed (the slow-down); 0 when it was not. */
  slowedMs: number;
  /** Set when the password was right (signed in, or disabled). */
  userId: string | null;
}

export interface SignInDeps {
  /** The user when the password is right (disabled or not), else null; one argon2 verification either way. */
  verifyCredentials(username: string, password: string): Promise<User | null>;
  throttle: Throttle;
  metrics?: { loginFailed(source: LoginFailureSource): void };
  /** Waits out the slow-down (default: a timer); tests inject one that records. */
  sleep?: (ms: number) => Promise<void>;
  /** Told about every attempt, after it is decided; must not throw. */
  onAttempt?: (attempt: SignInAttempt) => void;
}

export type SignIn = (username: string, password: string, context: SignInContext) => Promise<SignInResult>;

export function createSignIn(deps: SignInDeps): SignIn {
  const { throttle } = deps;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms).then(() => {}));
  const report = (attempt: SignInAttempt) => {
    try {
      deps.onAttempt?.(attempt);
    } catch {
      // An observer's failure is not the caller's.
    }
  };

  return async function signIn(username, password, { ip, source, clientId }) {
    const attempts = throttleKeys.attempts(username, ip);
    const account = throttleKeys.user(username);
    const address = throttleKeys.ip(ip);
    const attempt = { username, ip, source, clientId: clientId ?? null, slowedMs: 0, userId: null };

    try {
      await throttle.reserve(attempts);
    } catch (err) {
      // A refusal, not an outage of the store (that is no attempt at all).
      if (isOAuthError(err) && err.error === 'too_many_requests') report({ ...attempt, outcome: 'throttled' });
      throw err;
    }

    let user: User | null;
    let slowedMs = 0;
    try {
      const [accountFailures, addressFailures] = await Promise.all([throttle.failures(account), throttle.failures(address)]);
      slowedMs = Math.max(slowDownMs(accountFailures, throttle.maxAttempts), slowDownMs(addressFailures, throttle.maxAttempts));
      if (slowedMs > 0) await sleep(slowedMs);
      user = await deps.verifyCredentials(username, password);
    } catch (err) {
      // Nothing was checked (a store or the database is down): not a failure.
      await throttle.release(attempts).catch(() => {});
      throw err;
    }

    if (!user) {
      deps.metrics?.loginFailed(source);
      await throttle.fail(account, address);
      report({ ...attempt, slowedMs, outcome: 'invalid_credentials' });
      return { ok: false, reason: 'invalid_credentials' };
    }
    await throttle.release(attempts);
    if (user.disabled) {
      deps.metrics?.loginFailed(source);
      report({ ...attempt, slowedMs, userId: user.id, outcome: 'disabled' });
      return { ok: false, reason: 'disabled' };
    }
    report({ ...attempt, slowedMs, userId: user.id, outcome: 'signed_in' });
    return { ok: true, user };
  };
}
