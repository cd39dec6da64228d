/**
 * A client's public keys for `private_key_jwt` (RFC 7523 §2.2): the JWK Set
 * it registers inline (RFC 7591 `jwks`) or publishes at its `jwks_uri`.
 *
 * - Public keys only: a key carrying a private member (`d`, the RSA primes
 *   and CRT values) is refused, never stored: whoever sent it has leaked it.
 * - Asymmetric only (`RSA` of at least 2048 bits, `EC`, `OKP`): a symmetric
 *   (`oct`) key would be a shared secret stored in the clear.
 * - A key's `alg`, when given, must be one the server accepts on assertions
 *   (`CLIENT_ASSERTION_ALGS`); its `use`, when given, must be `sig`.
 * - Each key must import (`node:crypto`), so a malformed key is refused at
 *   registration rather than at the first token request.
 *
 * A registered set (`parseClientJwks`) is held to all of it. A fetched set
 * (`parseFetchedJwks`) is what the client publishes for every party it talks
 * to: keys for encryption or of kinds this server does not use are skipped,
 * but a private key anywhere refuses the whole set.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { invalidClientMetadata } from '../errors.js';
import { CLIENT_ASSERTION_ALGS } from '../oauth/protocol.js';
import type { ClientJwks } from '../storage/types.js';

/** Most keys in one set. */
export const MAX_JWKS_KEYS = 10;
/** Largest `jwks` accepted inline (its JSON), bytes; also the limit on a fetched `jwks_uri` document. */
export const MAX_JWKS_BYTES = 16_384;
export const MAX_JWKS_URI_LENGTH = 2000;

/** Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const ASYMMETRIC_KTY = ['RSA', 'EC', 'OKP'];
const MIN_RSA_BITS = 2048;

/** Why one key cannot be used, or null when it can. */
function keyProblem(key: Record<string, unknown>): string | null {
  if (typeof key.kty !== 'string') return 'has no "kty"';
  const privateMember = PRIVATE_MEMBERS.find((m) => m in key);
  if (privateMember !== undefined) return `contains the private member "${privateMember}": register only public keys (and replace this one, it has been disclosed)`;
  if (!ASYMMETRIC_KTY.includes(key.kty)) return `has kty "${key.kty.slice(0, 20)}": only asymmetric keys (${ASYMMETRIC_KTY.join(', ')}) are accepted`;
  if (key.alg !== undefined && !(CLIENT_ASSERTION_ALGS as readonly unknown[]).includes(key.alg)) {
    return `has alg ${JSON.stringify(key.alg).slice(0, 30)}; accepted: ${CLIENT_ASSERTION_ALGS.join(', ')}`;
  }
  if (key.use !== undefined && key.use !== 'sig') return 'has a "use" other than "sig"';
  if (key.kid !== undefined && (typeof key.kid !== 'string' || key.kid.length > 200)) return 'has a "kid" that is not a string of at most 200 characters';
  try {
    const imported = createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
    const bits = imported.asymmetricKeyDetails?.modulusLength;
    if (key.kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) return `is an RSA key of ${bits ?? '?'} bits; at least ${MIN_RSA_BITS}`;
  } catch {
    return 'is not a valid public key';
  }
  return null;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A registered `jwks`: every key must be usable. Throws `invalid_client_metadata` naming `jwks`. */
export function parseClientJwks(value: unknown): ClientJwks {
  if (!isObject(value) || !Array.isArray(value.keys)) throw invalidClientMetadata('jwks', 'jwks must be a JWK Set: an object with a "keys" array (RFC 7517 §5)');
  if (value.keys.length === 0 || value.keys.length > MAX_JWKS_KEYS) throw invalidClientMetadata('jwks', `jwks must hold 1 to ${MAX_JWKS_KEYS} keys`);
  if (JSON.stringify(value).length > MAX_JWKS_BYTES) throw invalidClientMetadata('jwks', `jwks must be at most ${MAX_JWKS_BYTES} bytes of JSON`);
  const keys: Array<Record<string, unknown>> = [];
  for (const [i, key] of value.keys.entries()) {
    if (!isObject(key)) throw invalidClientMetadata('jwks', `jwks key ${i + 1} is not a JSON object`);
    const problem = keyProblem(key);
    if (problem !== null) throw invalidClientMetadata('jwks', `jwks key ${i + 1}${typeof key.kid === 'string' ? ` ("${key.kid.slice(0, 40)}")` : ''} ${problem}`);
    keys.push(key);
  }
  return { keys };
}

/** A registered `jwks_uri`: https, absolute, no credentials or fragment. Where it points is judged when it is fetched (the SSRF guard). */
export function checkJwksUri(value: string): string {
  if (value.length === 0 || value.length > MAX_JWKS_URI_LENGTH) throw invalidClientMetadata('jwks_uri', `jwks_uri must be 1 to ${MAX_JWKS_URI_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidClientMetadata('jwks_uri', 'jwks_uri must be an absolute URL');
  }
  if (url.protocol !== 'https:') throw invalidClientMetadata('jwks_uri', 'jwks_uri must be an https URL');
  if (url.username || url.password) throw invalidClientMetadata('jwks_uri', 'jwks_uri must not contain credentials');
  if (value.includes('#')) throw invalidClientMetadata('jwks_uri', 'jwks_uri must not contain a fragment');
  return value;
}

/**
 * A set fetched from a `jwks_uri`: the usable keys. Throws (a message for
 * the client) when it is not a JWK Set, holds a private key, or has no
 * usable key.
 */
export function parseFetchedJwks(body: string): ClientJwks {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new Error('it is not JSON');
  }
  if (!isObject(value) || !Array.isArray(value.keys)) throw new Error('it is not a JWK Set');
  const keys: Array<Record<string, unknown>> = [];
  for (const key of value.keys) {
    if (!isObject(key)) continue;
    if (PRIVATE_MEMBERS.some((m) => m in key)) throw new Error('it contains a private or symmetric key');
    if (keyProblem(key) === null) keys.push(key);
    if (keys.length === MAX_JWKS_KEYS * 2) break;
  }
  if (keys.length === 0) throw new Error('it has no usable signing key');
  return { keys };
}
