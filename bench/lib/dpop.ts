/**
 * DPoP proofs for the benchmark's DPoP cases (RFC 9449). Every request needs
 * a proof of its own (single-use `jti`), so proofs are signed ahead of each
 * case, in this process, before the load starts: the measured servers only
 * verify, and the load generator only hands out strings. A proof's `iat`
 * must stay within a minute of the server's clock, so a pool is made just
 * before its case and covers the warm-up and the measured run; a pool that
 * runs dry starts over, and the reused proofs are refused (they show up as
 * non-2xx, never as silently faster numbers).
 */
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { mapLimit } from './seed.js';

export interface DpopKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

export async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

export interface ProofClaims {
  htm: string;
  htu: string;
  nonce?: string | undefined;
  /** The access token the proof goes with (its `ath`), at a resource. */
  accessToken?: string;
}

export function signProof(key: DpopKey, claims: ProofClaims): Promise<string> {
  const payload: Record<string, unknown> = { jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: claims.htm, htu: claims.htu };
  if (claims.nonce !== undefined) payload.nonce = claims.nonce;
  if (claims.accessToken !== undefined) payload.ath = createHash('sha256').update(claims.accessToken).digest('base64url');
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk }).sign(key.privateKey);
}

/**
 * The server nonce a DPoP endpoint wants (`DPoP-Nonce`), learned the way a
 * client learns it: from the answer to a proof without one. Undefined when
 * the server asks for none.
 */
export async function learnNonce(url: string, init: RequestInit & { headers: Record<string, string> }, key: DpopKey, htu: string): Promise<string | undefined> {
  const res = await fetch(url, { ...init, headers: { ...init.headers, dpop: await signProof(key, { htm: init.method ?? 'GET', htu }) } });
  await res.arrayBuffer();
  return res.headers.get('dpop-nonce') ?? undefined;
}

/** `count` proofs, signed in parallel batches (jose), each for `claims` (or the claims of its index). */
export async function proofPool(key: DpopKey, count: number, claims: (index: number) => ProofClaims): Promise<string[]> {
  return mapLimit(Array.from({ length: count }), 64, (_, i) => signProof(key, claims(i)));
}
