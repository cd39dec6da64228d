/**
 * Private signing keys at rest. With `SIGNING_KEY_ENCRYPTION_KEY` set (32
 * random bytes, base64url), each private JWK is stored in the database as a
 * compact JWE (RFC 7516) made by jose: `alg: dir`, `enc: A256GCM`, the JWE
 * protected header binding the `kid`. Someone who reads the database (a
 * backup, a replica, an SQL injection elsewhere) then holds no key that can
 * sign tokens. Without the variable, keys are stored as plain JWKs, as
 * before; keys stored plainly are encrypted as soon as the variable is set.
 */
import { CompactEncrypt, compactDecrypt, type JWK } from 'jose';

/** How an encrypted private key is stored in the `private_jwk` column. */
interface SealedJwk {
  jwe: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function isSealed(stored: Record<string, unknown>): boolean {
  return typeof stored.jwe === 'string' && Object.keys(stored).length === 1;
}

/**
 * One table's part of `keys reencrypt`, written inside the transaction that
 * re-encrypts every sealed secret (`services.reencryptSecrets`): how many
 * values were sealed anew, and `adopt`, which makes this instance seal and
 * open them with the new key; called only once that transaction committed.
 */
export interface Resealed {
  count: number;
  adopt(): void;
}

export interface KeyProtector {
  /** Whether keys are encrypted at rest. */
  readonly enabled: boolean;
  /** What to store for a private JWK. */
  seal(kid: string, jwk: JWK): Promise<Record<string, unknown>>;
  /** The private JWK of a stored value; throws a message naming the variable when it cannot. */
  open(kid: string, stored: Record<string, unknown>): Promise<JWK>;
}

export function createKeyProtector(encryptionKey: Uint8Array | undefined): KeyProtector {
  return {
    enabled: encryptionKey !== undefined,
    async seal(kid, jwk) {
      if (!encryptionKey) return jwk as Record<string, unknown>;
      const jwe = await new CompactEncrypt(encoder.encode(JSON.stringify(jwk)))
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid })
        .encrypt(encryptionKey);
      const sealed: SealedJwk = { jwe };
      return sealed as unknown as Record<string, unknown>;
    },
    async open(kid, stored) {
      if (!isSealed(stored)) return stored as JWK;
      if (!encryptionKey) {
        throw new Error(`signing key ${kid} is stored encrypted: set SIGNING_KEY_ENCRYPTION_KEY to the key it was encrypted with`);
      }
      try {
        const { plaintext, protectedHeader } = await compactDecrypt((stored as unknown as SealedJwk).jwe, encryptionKey, {
          keyManagementAlgorithms: ['dir'],
          contentEncryptionAlgorithms: ['A256GCM'],
        });
        // The kid is authenticated with the ciphertext: a row's key cannot be swapped for another row's.
        if (protectedHeader.kid !== kid) throw new Error('kid mismatch');
        return JSON.parse(decoder.decode(plaintext)) as JWK;
      } catch {
        throw new Error(`signing key ${kid} cannot be decrypted: SIGNING_KEY_ENCRYPTION_KEY is not the key it was encrypted with`);
      }
    },
  };
}
