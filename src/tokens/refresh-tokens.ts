/**
 * Refresh-token primitives: opaque values of 256 random bits, stored only as
 * their SHA-256 (a database leak yields no usable token), and the sealed
 * "successor" kept for the reuse grace window.
 *
 * Grace window (`REFRESH_REUSE_GRACE`): when a client re-presents the token
 * it has just rotated (parallel tabs, a retry after a lost response), the
 * server answers with the same successor instead of treating it as theft.
 * To do so it must keep the successor's plaintext for the window; it keeps
 * it only in the TTL store, encrypted (AES-256-GCM) under a key derived
 * (HKDF-SHA-256) from the OLD token's plaintext, which the server does not
 * store. So the store alone (or the store plus the database, which holds only
 * hashes) never yields a usable token, and the entry expires with the window.
 *
 * Trade-off: within the window, whoever holds the old token (the client, or
 * a thief who stole it) gets the successor instead of triggering family
 * revocation. The grace holds only while the successor is itself unused, so
 * an old token never leads to a newer live one, and a window of a few
 * seconds absorbs races and retries while leaving a stolen token almost no
 * time; 0 (the default) is strict RFC 9700 §4.14.2 behaviour, where a retry
 * after a lost response ends the session.
 */
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes } from 'node:crypto';

/** 32 random bytes, base64url: 43 characters. */
export function generateRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Anything else is not one of ours and is refused without a database query. */
export function isRefreshTokenShape(token: string): boolean {
  return token.length === 43 && /^[A-Za-z0-9_-]+$/.test(token);
}

export function hashRefreshToken(token: string): string {
  return hash('sha256', token, 'base64url');
}

/** 16 random bytes, base64url: ids that must not be guessable (refresh-token family ids). */
export function randomId(): string {
  return randomBytes(16).toString('base64url');
}

const SALT = Buffer.from('oauth-server refresh-token grace successor', 'utf8');
const INFO = Buffer.from('aes-256-gcm v1', 'utf8');

function deriveKey(oldToken: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(oldToken, 'utf8'), SALT, INFO, 32));
}

/** Encrypts `plaintext` under a key derived from `oldToken`, bound to its hash (AAD). */
export function sealSuccessor(oldToken: string, oldHash: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(oldToken), iv);
  cipher.setAAD(Buffer.from(oldHash, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The plaintext, or null when `sealed` was not sealed for this token (or was altered). */
export function openSuccessor(oldToken: string, oldHash: string, sealed: string): string | null {
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length < 29) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(oldToken), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(oldHash, 'utf8'));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
