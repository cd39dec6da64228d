/**
 * The one password check of the server. The login page, the admin console,
 * the admin API's HTTP Basic and the password grant all call `signIn`, so
 * every guess at an account's password, wherever it is made, is throttled,
 * counted and answered the same way.
 *
 * - Before any password is checked, the account (`user:`) and the caller's
 *   address (`ip:`) must have failures left in the window
 *   (`MAX_FAILED_ATTEMPTS` per `FAILED_ATTEMPT_WINDOW`); otherwise 429
 *   `too_many_requests` with `Retry-After`, and no argon2 work is done.
 * - A wrong password (or an unknown user, at the same argon2 cost) counts one
 *   failure against both counters.
 * - The right password clears the account's counter (not the address's:
 *   one success must not wipe out an attacker's failures elsewhere). A
 *   disabled account with the right password is refused as `disabled`, so a
 *   caller may say so to someone who proved they own it.
 */
import type { LoginFailureSource } from '../observability/metrics.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { User } from '../storage/types.js';

/** Where a sign-in happens (a metrics label; also in logs). */
export type SignInSource = Exclude<LoginFailureSource, 'client_auth'>;

export interface SignInContext {
  /** The caller's address (throttling). */
  ip: string;
  source: SignInSource;
}

export type SignInResult = { ok: true; user: User } | { ok: false; reason: 'invalid_credentials' | 'disabled' };

export interface SignInDeps {
  /** The user when the password is right (disabled or not), else null; one argon2 verification either way. */
  verifyCredentials(username: string, password: string): Promise<User | null>;
  throttle: Throttle;
  metrics?: { loginFailed(source: LoginFailureSource): void };
}

export type SignIn = (username: string, password: string, context: SignInContext) => Promise<SignInResult>;

export function createSignIn(deps: SignInDeps): SignIn {
  const { throttle } = deps;
  return async function signIn(username, password, { ip, source }) {
    const account = throttleKeys.user(username);
    const address = throttleKeys.ip(ip);
    await throttle.check(account);
    await throttle.check(address);
    const user = await deps.verifyCredentials(username, password);
    if (!user) {
      deps.metrics?.loginFailed(source);
      await throttle.fail(account, address);
      return { ok: false, reason: 'invalid_credentials' };
    }
    await throttle.reset(account);
    if (user.disabled) {
      deps.metrics?.loginFailed(source);
      return { ok: false, reason: 'disabled' };
    }
    return { ok: true, user };
  };
}
