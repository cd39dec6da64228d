/**
 * Failed-attempt throttling (bad passwords, bad client secrets), counted in
 * the TTL store so every instance shares the count. After `max` failures for
 * a key within the window, `check` refuses with 429 and `Retry-After` until
 * the window ends. A success does not erase failures of other callers: only
 * `reset` does, and callers use it for the per-account key after a success.
 */
import type { Config } from '../config.js';
import { tooManyRequests } from '../errors.js';
import type { KvStore } from '../storage/types.js';

/**
 * The counters, named in one place. Every password check of an account (login
 * page, password grant, admin Basic auth, admin console) shares the same
 * `user:` and `ip:` counters, so switching between them gains a guesser
 * nothing. Client secrets are counted per client and IP: a 256-bit secret
 * cannot be guessed anyway, and a per-client-only lockout would let anyone who
 * knows a client_id lock that client out.
 */
export const throttleKeys = {
  user: (username: string) => `user:${username.toLowerCase()}`,
  ip: (ip: string) => `ip:${ip}`,
  client: (clientId: string, ip: string) => `client:${clientId}:${ip}`,
  registration: (ip: string) => `register-ip:${ip}`,
} as const;

export interface Throttle {
  /** Throws 429 `too_many_requests` when `key` has used up its failures. */
  check(key: string): Promise<void>;
  /** Counts one failure for each key. */
  fail(...keys: string[]): Promise<void>;
  reset(key: string): Promise<void>;
}

export function createThrottle(kv: KvStore, config: Pick<Config, 'maxFailedAttempts' | 'failedAttemptWindowSeconds'>): Throttle {
  const name = (key: string) => `fail:${key}`;
  return {
    async check(key) {
      const raw = await kv.get(name(key));
      if (raw !== null && Number(raw) >= config.maxFailedAttempts) {
        // The exact remaining time is not worth a second round trip: the
        // window length is an upper bound, and honest.
        throw tooManyRequests(config.failedAttemptWindowSeconds);
      }
    },
    async fail(...keys) {
      await Promise.all(keys.map((key) => kv.increment(name(key), config.failedAttemptWindowSeconds)));
    },
    async reset(key) {
      await kv.delete(name(key));
    },
  };
}
