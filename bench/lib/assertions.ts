/**
 * `private_key_jwt` client assertions for cases (g) and (h): one key pair for
 * the run (registered with our server and given to the peer), and a pool of
 * assertions signed with jose before a case starts, each with its own `jti`
 * (both servers accept a `jti` once), so signing costs nothing while the
 * case is measured. A request takes the next one; the pool is sized for the
 * case at a rate no run here has reached.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { mapLimit } from './seed.js';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Assertions signed per second of a case (warm-up included). */
const POOL_RATE = 12_000;

export interface AssertionKey {
  privateKey: CryptoKey;
  /** The public JWK, with `kid`, `alg` and `use`. */
  publicJwk: JWK;
}

export async function assertionKey(): Promise<AssertionKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid: `bench-${randomUUID()}`, alg: 'ES256', use: 'sig' } };
}

/** How many assertions a case of `seconds` (warm-up included) needs. */
export function assertionsFor(seconds: number): number {
  // Its assertions expire 290 s after signing: both servers refuse an `exp` more than 5 minutes ahead.
  if (seconds > 280) throw new Error(`a private_key_jwt case lasts at most 280 s (its assertions expire), not ${seconds}`);
  return Math.ceil(seconds * POOL_RATE);
}

/** `count` assertions of `clientId` for `audience` (the issuer), each with its own `jti`, valid for 290 s. */
export async function signAssertions(key: AssertionKey, clientId: string, audience: string, count: number): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  return mapLimit(Array.from({ length: count }), 64, () =>
    new SignJWT({ iss: clientId, sub: clientId, aud: audience, jti: randomUUID(), iat: now, exp: now + 290 })
      .setProtectedHeader({ alg: 'ES256', kid: key.publicJwk.kid! })
      .sign(key.privateKey),
  );
}
