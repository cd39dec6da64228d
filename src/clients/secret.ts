/**
 * Client secrets. The server generates them (256 bits from the CSPRNG), shows
 * them once and stores only a hash. Because a secret is high-entropy, a fast
 * hash is sound (no dictionary to try) and keeps the token endpoint fast;
 * users' low-entropy passwords get argon2id instead (`users/password.ts`).
 */
import { createHash, hash, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../security/constant-time.js';

const PREFIX = 'sha256$';

/** 32 random bytes, base64url: 43 characters, 256 bits. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * 16 random bytes, base64url. Not a secret, but unguessable. Never starting
 * with `-`, so the id can be typed as a command-line argument
 * (`npm run cli -- clients show <id>`) without being taken for an option.
 */
export function generateClientId(): string {
  return randomIdentifier(16);
}

/** `bytes` random bytes, base64url, drawn again while the first character is `-` (one in 64). */
export function randomIdentifier(bytes: number): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export function hashClientSecret(secret: string): string {
  return PREFIX + createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** Constant-time: compares fixed-length digests, never the secrets themselves. */
export function verifyClientSecret(secret: string, storedHash: string): boolean {
  if (!storedHash.startsWith(PREFIX)) return false;
  const expected = Buffer.from(storedHash.slice(PREFIX.length), 'base64url');
  // One-shot: no Hash object per request (this runs on every client-authenticated call).
  const actual = hash('sha256', secret, 'buffer');
  return constantTimeEqual(actual, expected);
}

/**
 * RFC 7592 registration access tokens and RFC 7591 initial access tokens:
 * 256 bits like a client secret, and hashed and compared the same way
 * (`hashClientSecret`, `verifyClientSecret`).
 */
export function generateRegistrationAccessToken(): string {
  return randomBytes(32).toString('base64url');
}
