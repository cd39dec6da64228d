/**
 * A software WebAuthn authenticator for tests over `app.inject()`: it answers
 * the server's options the way a browser and a platform authenticator would
 * (attestation `none`, ES256 keys from node:crypto, CBOR through
 * @simplewebauthn's own encoder), and lets a test do what a real one never
 * would: sign with a counter that goes back, name another user, sign for
 * another origin or challenge. The server checks it with the library's
 * verify functions, as it checks a browser.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers';

/** A credential the authenticator holds (with its private key). */
export interface SoftCredential {
  id: string;
  privateKey: KeyObject;
  /** The user handle given at registration (base64url). */
  userHandle: string;
  signCount: number;
  /** Backup eligible and backed up (a synced passkey); default false (device-bound). */
  synced: boolean;
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string };
  user: { id: string };
}

interface RequestOptions {
  challenge: string;
}

const FLAG = { up: 0x01, uv: 0x04, be: 0x08, bs: 0x10, at: 0x40 } as const;

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(Buffer.concat(parts));
}

function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string): string {
  return isoBase64URL.fromUTF8String(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
}

export class SoftAuthenticator {
  constructor(
    readonly origin: string,
    readonly rpId = new URL(origin).hostname,
  ) {}

  private authData(credential: SoftCredential, signCount: number, attested?: Uint8Array): Uint8Array<ArrayBuffer> {
    const flags = FLAG.up | FLAG.uv | (credential.synced ? FLAG.be | FLAG.bs : 0) | (attested ? FLAG.at : 0);
    const rpIdHash = createHash('sha256').update(this.rpId).digest();
    return concat(rpIdHash, Uint8Array.of(flags), u32(signCount), attested ?? new Uint8Array());
  }

  /** `navigator.credentials.create()`: a new credential and the registration response for the server. */
  create(options: CreationOptions, opts: { synced?: boolean; signCount?: number; reuse?: SoftCredential; origin?: string } = {}) {
    const privateKey = opts.reuse?.privateKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    // A private JWK carries the public point too.
    const jwk = privateKey.export({ format: 'jwk' }) as { x: string; y: string };
    const credential: SoftCredential = {
      id: opts.reuse?.id ?? isoBase64URL.fromBuffer(randomBytes(32)),
      privateKey,
      userHandle: options.user.id,
      signCount: opts.signCount ?? 0,
      synced: opts.synced ?? false,
    };
    const cose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, isoBase64URL.toBuffer(jwk.x)],
        [-3, isoBase64URL.toBuffer(jwk.y)],
      ]),
    );
    const rawId = isoBase64URL.toBuffer(credential.id);
    const idLength = new Uint8Array(2);
    new DataView(idLength.buffer).setUint16(0, rawId.length);
    const attested = concat(new Uint8Array(16), idLength, rawId, cose);
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Map<string, string> | Uint8Array>([
        ['fmt', 'none'],
        ['attStmt', new Map<string, string>()],
        ['authData', this.authData(credential, credential.signCount, attested)],
      ]),
    );
    const response = {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: clientData('webauthn.create', options.challenge, opts.origin ?? this.origin),
        attestationObject: isoBase64URL.fromBuffer(attestationObject),
        transports: ['internal'],
      },
    };
    return { credential, response };
  }

  /**
   * `navigator.credentials.get()`: an assertion over `options.challenge`.
   * The counter goes up by one unless `signCount` says otherwise (a clone
   * replays an older one; a synced passkey always says 0).
   */
  get(options: RequestOptions, credential: SoftCredential, opts: { signCount?: number; userHandle?: string; origin?: string } = {}) {
    const signCount = opts.signCount ?? (credential.signCount === 0 && credential.synced ? 0 : credential.signCount + 1);
    credential.signCount = signCount;
    const authenticatorData = this.authData(credential, signCount);
    const clientDataJSON = clientData('webauthn.get', options.challenge, opts.origin ?? this.origin);
    const clientDataHash = createHash('sha256').update(isoBase64URL.toBuffer(clientDataJSON)).digest();
    const signature = Uint8Array.from(sign('sha256', concat(authenticatorData, clientDataHash), credential.privateKey));
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON,
        authenticatorData: isoBase64URL.fromBuffer(authenticatorData),
        signature: isoBase64URL.fromBuffer(signature),
        userHandle: opts.userHandle ?? credential.userHandle,
      },
    };
  }
}
