/**
 * Our client secret at an upstream provider, at rest. It must be usable (we
 * send it to the provider), so it cannot be hashed; it is protected like the
 * private signing keys (`tokens/key-encryption.ts`): with
 * `SIGNING_KEY_ENCRYPTION_KEY` set, stored as a compact JWE made by jose
 * (`alg: dir`, `enc: A256GCM`) whose protected header binds the provider id,
 * so one provider's sealed secret cannot be swapped into another's row;
 * without it, stored plainly, as signing keys are. Plain secrets are sealed
 * the next time the provider is saved with the variable set, or all at once
 * by `keys reencrypt` (`providers.ts`), which also moves sealed ones to a new
 * key or back to plain.
 */
import { CompactEncrypt, compactDecrypt } from 'jose';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The `kid` of the JWE: names what it protects, never a signing key's kid. */
const kidOf = (providerId: string) => `identity-provider:${providerId}`;

export interface SecretSealer {
  /** Whether secrets are sealed (`SIGNING_KEY_ENCRYPTION_KEY` is set). */
  readonly enabled: boolean;
  seal(providerId: string, secret: string): Promise<Record<string, unknown>>;
  /** The secret of a stored value; throws a message naming the variable when it cannot. */
  open(providerId: string, stored: Record<string, unknown>): Promise<string>;
}

export function createSecretSealer(encryptionKey: Uint8Array | undefined): SecretSealer {
  return {
    enabled: encryptionKey !== undefined,
    async seal(providerId, secret) {
      if (!encryptionKey) return { plain: secret };
      const jwe = await new CompactEncrypt(encoder.encode(secret)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: kidOf(providerId) }).encrypt(encryptionKey);
      return { jwe };
    },
    async open(providerId, stored) {
      if (typeof stored.plain === 'string') return stored.plain;
      if (typeof stored.jwe !== 'string') throw new Error(`the client secret of identity provider ${providerId} is stored in an unknown form`);
      if (!encryptionKey) {
        throw new Error(`the client secret of identity provider ${providerId} is stored encrypted: set SIGNING_KEY_ENCRYPTION_KEY to the key it was encrypted with`);
      }
      try {
        const { plaintext, protectedHeader } = await compactDecrypt(stored.jwe, encryptionKey, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
        if (protectedHeader.kid !== kidOf(providerId)) throw new Error('kid mismatch');
        return decoder.decode(plaintext);
      } catch {
        throw new Error(`the client secret of identity provider ${providerId} cannot be decrypted: SIGNING_KEY_ENCRYPTION_KEY is not the key it was encrypted with`);
      }
    },
  };
}
