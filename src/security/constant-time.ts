/**
 * The one constant-time comparison of secrets (CSRF tokens, consent tickets,
 * flow bindings, PKCE and client-secret digests, the control-socket token),
 * so a response's timing never tells a guesser how much of a guess was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: Uint8Array) => createHash('sha256').update(value).digest();

/**
 * True when `submitted` equals `expected`, compared in time independent of
 * where they differ. Anything that is not a string or bytes (a missing or
 * repeated form field) never matches. Values of different lengths are
 * compared as SHA-256 digests, so only the fact that the lengths differ can
 * show, never the contents.
 */
export function constantTimeEqual(submitted: unknown, expected: string | Uint8Array): boolean {
  if (typeof submitted !== 'string' && !(submitted instanceof Uint8Array)) return false;
  const a = typeof submitted === 'string' ? Buffer.from(submitted, 'utf8') : submitted;
  const b = typeof expected === 'string' ? Buffer.from(expected, 'utf8') : expected;
  if (a.length === b.length) return timingSafeEqual(a, b);
  timingSafeEqual(digest(a), digest(b));
  return false;
}
