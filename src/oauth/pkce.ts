/**
 * PKCE (RFC 7636), S256 only. `plain` is refused everywhere (RFC 9700 §2.1.1:
 * it protects nothing once the authorization request leaks), so the only
 * challenge this server stores is BASE64URL(SHA-256(ASCII(code_verifier))).
 */
import { createHash } from 'node:crypto';
import { constantTimeEqual } from '../security/constant-time.js';

/** RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~". */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** RFC 7636 §4.2: an S256 challenge is an unpadded base64url SHA-256 digest: exactly 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** True when `value` is a syntactically valid code verifier (RFC 7636 §4.1). */
export function isCodeVerifier(value: unknown): value is string {
  return typeof value === 'string' && VERIFIER.test(value);
}

/** True when `value` has the shape of an S256 code challenge (RFC 7636 §4.2). */
export function isS256Challenge(value: unknown): value is string {
  return typeof value === 'string' && S256_CHALLENGE.test(value);
}

/** BASE64URL(SHA-256(ASCII(verifier))), RFC 7636 §4.2. */
export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * RFC 7636 §4.6: does `verifier` match the stored S256 `challenge`? Compares
 * the two 32-byte digests in constant time, so response timing does not
 * reveal how much of a guessed verifier's digest was right. A malformed
 * verifier or challenge never matches.
 */
export function verifyS256(verifier: unknown, challenge: string): boolean {
  if (!isCodeVerifier(verifier) || !isS256Challenge(challenge)) return false;
  const expected = Buffer.from(challenge, 'base64url');
  const actual = createHash('sha256').update(verifier, 'ascii').digest();
  return constantTimeEqual(actual, expected);
}
