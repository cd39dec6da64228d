/**
 * User passwords: argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane).
 * Users' passwords are low-entropy, so the hash must be slow. Unknown users are
 * checked against a dummy hash so a login costs the same either way and does
 * not reveal which usernames exist.
 */
import argon2 from 'argon2';

export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Bounded so a huge body cannot be fed to the hash (the password rule, `password-policy.ts`, uses the same bound). */
export const MAX_PASSWORD_LENGTH = 1024;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/**
 * What an account that has no password stores in place of a hash (created at
 * an upstream sign-in): no password ever matches it, and checking one costs
 * the same as for an unknown user (`verifyPassword`).
 */
export const NO_PASSWORD = '!';

let dummyHash: Promise<string> | undefined;

/**
 * Verifies `password` against `hash`; with `hash` null (no such user) it
 * verifies against a dummy hash of the same cost and returns false.
 */
export async function verifyPassword(hash: string | null, password: string): Promise<boolean> {
  if (hash === null || hash === NO_PASSWORD) {
    dummyHash ??= argon2.hash('not the password of anyone', ARGON2_OPTIONS);
    await argon2.verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** True when the stored hash uses weaker parameters than today's, so it should be re-hashed. */
export function needsRehash(hash: string): boolean {
  return argon2.needsRehash(hash, ARGON2_OPTIONS);
}
