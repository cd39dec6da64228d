/**
 * Signing keys: created on first start, stored in the database (every
 * instance signs with the same keys and tokens survive restarts), imported
 * once into CryptoKeys and swapped as one immutable snapshot whenever the key
 * set changes; the JWKS document is serialised once per snapshot.
 *
 * Two keys are always active: one for access tokens (`ACCESS_TOKEN_ALG`,
 * ES256 by default) and an RS256 one for ID tokens (OIDC Core §15.1 makes
 * RS256 the algorithm every relying party supports). When the access-token
 * algorithm is RS256 one key serves both.
 *
 * Rotation adds a key and retires the previous one of its algorithm. A
 * retired key signs nothing more but stays published until everything it
 * signed has expired: `expires_at = retired_at + token lifetime + reload
 * interval + skew`, the reload interval covering an instance that missed the
 * news and kept signing with it until its periodic reload.
 *
 * How other instances learn of a new key (bounds):
 * - at once: the `keys` channel of the TTL store (pub/sub);
 * - at most `reloadIntervalMs` (60 s) later: the periodic reload, should a
 *   message be lost;
 * - on demand: a token with an unknown `kid` triggers a reload, at most one
 *   per `unknownKidReloadMs` (5 s), so forged `kid`s cannot flood the database.
 */
import { generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from 'jose';
import { recordChange, type AuditRecorder } from '../audit/events.js';
import type { Config } from '../config.js';
import type { Executor, KvStore, SigningKeyRecord, SigningKeyRepo } from '../storage/types.js';
import { createKeyProtector, isSealed, type KeyProtector } from './key-encryption.js';
import type { KeyManager, SigningKeyInfo } from './types.js';

const generateKeyPair = promisify(generateKeyPairCb);

export const KEYS_CHANNEL = 'keys';
/** OIDC Core §15.1: ID tokens are signed with RS256 unless the client registered otherwise. */
export const ID_TOKEN_ALG = 'RS256';

/** Clock skew allowed between instances and relying parties, seconds. */
const SKEW_SECONDS = 60;

export interface SigningKey {
  kid: string;
  alg: string;
  key: CryptoKey;
  /** The JWS protected header, built once per key. */
  header: { alg: string; typ: string; kid: string };
  idHeader: { alg: string; typ: string; kid: string };
}

export interface KeySnapshot {
  /** Active key per algorithm (the newest, when there are several). */
  readonly signing: ReadonlyMap<string, SigningKey>;
  /** Public key per kid (active and retired-but-published). */
  readonly verifying: ReadonlyMap<string, { alg: string; key: CryptoKey }>;
  /** Algorithms of the published keys, for jose's `algorithms` allow-list. */
  readonly algorithms: readonly string[];
  readonly jwksJson: string;
}

export interface KeyStoreDeps {
  repo: SigningKeyRepo;
  kv: KvStore;
  config: Pick<Config, 'accessTokenAlg' | 'accessTokenTtlSeconds'> & Partial<Pick<Config, 'signingKeyEncryptionKey'>>;
  now: () => number;
  reloadIntervalMs?: number;
  unknownKidReloadMs?: number;
  onError?: (err: unknown) => void;
  /** Where rotations are recorded (`key.rotated`). */
  audit?: AuditRecorder;
}

export interface KeyStore extends KeyManager {
  /** The current snapshot (throws before `start`). */
  snapshot(): KeySnapshot;
  /** The public key for `kid`, reloading (rate-limited) when it is unknown. Null when still unknown. */
  verificationKey(kid: string): Promise<{ alg: string; key: CryptoKey } | null>;
  start(): Promise<() => Promise<void>>;
}

/** Generates a key pair for `alg` and returns its JWKs, with the RFC 7638 thumbprint as `kid`. */
export async function generateSigningKey(alg: string): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  switch (alg) {
    case 'ES256':
      pair = await generateKeyPair('ec', { namedCurve: 'P-256' });
      break;
    case 'RS256':
    case 'PS256':
      pair = await generateKeyPair('rsa', { modulusLength: 2048 });
      break;
    case 'EdDSA':
      pair = await generateKeyPair('ed25519');
      break;
    default:
      throw new Error(`unsupported signing algorithm ${alg}`);
  }
  const publicJwk = pair.publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const meta = { kid, alg, use: 'sig' };
  return { kid, privateJwk: { ...(pair.privateKey.export({ format: 'jwk' }) as JWK), ...meta }, publicJwk: { ...publicJwk, ...meta } };
}

function info(record: SigningKeyRecord): SigningKeyInfo {
  return {
    kid: record.kid,
    alg: record.alg,
    status: record.retiredAt === null ? 'active' : 'retired',
    createdAt: record.createdAt,
    retiredAt: record.retiredAt,
    expiresAt: record.expiresAt,
  };
}

/** Public JWK fields per key type (RFC 7518 §6), so nothing private is ever published. */
const PUBLIC_FIELDS: Record<string, readonly string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  RSA: ['kty', 'n', 'e'],
  OKP: ['kty', 'crv', 'x'],
};

function publicOnly(jwk: Record<string, unknown>, kid: string, alg: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of PUBLIC_FIELDS[String(jwk.kty)] ?? []) out[field] = jwk[field];
  return { ...out, kid, alg, use: 'sig' };
}

async function buildSnapshot(records: readonly SigningKeyRecord[], protector: KeyProtector): Promise<KeySnapshot> {
  const signing = new Map<string, SigningKey>();
  const verifying = new Map<string, { alg: string; key: CryptoKey }>();
  const published: Array<Record<string, unknown>> = [];
  // Newest first: the first active key of an algorithm is the one that signs.
  for (const record of records) {
    const jwk = publicOnly(record.publicJwk, record.kid, record.alg);
    verifying.set(record.kid, { alg: record.alg, key: (await importJWK(jwk as JWK, record.alg)) as CryptoKey });
    published.push(jwk);
    if (record.retiredAt === null && !signing.has(record.alg)) {
      const privateJwk = await protector.open(record.kid, record.privateJwk);
      const key = (await importJWK({ ...privateJwk, alg: record.alg } as JWK, record.alg)) as CryptoKey;
      signing.set(record.alg, {
        kid: record.kid,
        alg: record.alg,
        key,
        header: { alg: record.alg, typ: 'at+jwt', kid: record.kid },
        idHeader: { alg: record.alg, typ: 'JWT', kid: record.kid },
      });
    }
  }
  return {
    signing,
    verifying,
    algorithms: [...new Set(records.map((r) => r.alg))],
    jwksJson: JSON.stringify({ keys: published }),
  };
}

export function createKeyStore(deps: KeyStoreDeps): KeyStore {
  const { repo, kv, config, now } = deps;
  const reloadIntervalMs = deps.reloadIntervalMs ?? 60_000;
  const unknownKidReloadMs = deps.unknownKidReloadMs ?? 5_000;
  const onError = deps.onError ?? (() => {});
  const protector = createKeyProtector(config.signingKeyEncryptionKey);
  const needed = [...new Set([config.accessTokenAlg, ID_TOKEN_ALG])];
  /** How long a retired key stays published. */
  const retiredLifetimeMs = (config.accessTokenTtlSeconds + SKEW_SECONDS) * 1000 + reloadIntervalMs;

  let current: KeySnapshot | null = null;
  let inFlight: Promise<KeySnapshot> | null = null;
  let queued: Promise<KeySnapshot> | null = null;
  let lastLoadMs = 0;

  const insertNew = async (alg: string, tx: Executor) => {
    const key = await generateSigningKey(alg);
    const privateJwk = await protector.seal(key.kid, key.privateJwk);
    await repo.insert({ kid: key.kid, alg, privateJwk, publicJwk: key.publicJwk as Record<string, unknown> }, tx);
    return key.kid;
  };

  /**
   * With encryption on, keys stored plainly (before it was switched on, or
   * rotated by a CLI run without the variable) are encrypted in place.
   */
  const sealPlainKeys = async (records: SigningKeyRecord[]): Promise<SigningKeyRecord[]> => {
    if (!protector.enabled) return records;
    return Promise.all(
      records.map(async (record) => {
        if (isSealed(record.privateJwk)) return record;
        const privateJwk = await protector.seal(record.kid, record.privateJwk as JWK);
        await repo.replacePrivateJwk(record.kid, privateJwk);
        return { ...record, privateJwk };
      }),
    );
  };

  /** What the snapshot was built from: an unchanged key set is not imported again. */
  let fingerprint = '';

  const readSnapshot = async (): Promise<KeySnapshot> => {
    lastLoadMs = now();
    const records = await sealPlainKeys(await repo.listPublished(new Date(now())));
    const print = records.map((r) => `${r.kid}:${r.retiredAt?.getTime() ?? '-'}:${r.expiresAt?.getTime() ?? '-'}`).join(',');
    if (current && print === fingerprint) return current;
    const snapshot = await buildSnapshot(records, protector);
    // A key set without an active key for a needed algorithm (never
    // expected: start() creates them) keeps the old snapshot signing.
    if (current && needed.some((alg) => !snapshot.signing.has(alg))) return current;
    current = snapshot;
    fingerprint = print;
    return snapshot;
  };

  /**
   * Reads the published keys and swaps the snapshot. Callers arriving while
   * a read runs (it may predate their change) share one more read after it,
   * so a burst of triggers costs at most two queries.
   */
  const load = (): Promise<KeySnapshot> => {
    if (!inFlight) {
      inFlight = readSnapshot().finally(() => {
        inFlight = null;
      });
      return inFlight;
    }
    queued ??= inFlight
      .catch(() => undefined)
      .then(() => {
        queued = null;
        return load();
      });
    return queued;
  };

  /** Under the cluster-wide lock: creates the missing active keys, so two instances starting together create one set. */
  const ensureKeys = async () => {
    const published = await repo.listPublished(new Date(now()));
    if (needed.every((alg) => published.some((r) => r.alg === alg && r.retiredAt === null))) return;
    await repo.withLock(async (tx) => {
      const records = await repo.listPublished(new Date(now()), tx);
      for (const alg of needed) {
        if (!records.some((r) => r.alg === alg && r.retiredAt === null)) await insertNew(alg, tx);
      }
    });
  };

  const announce = () => kv.publish(KEYS_CHANNEL, 'reload').catch(onError);

  const store: KeyStore = {
    snapshot() {
      if (!current) throw new Error('signing keys are not loaded: call services.start() first');
      return current;
    },
    jwksJson() {
      return store.snapshot().jwksJson;
    },
    async verificationKey(kid) {
      const hit = store.snapshot().verifying.get(kid);
      if (hit) return hit;
      if (now() - lastLoadMs < unknownKidReloadMs) return null;
      return (await load()).verifying.get(kid) ?? null;
    },
    async rotate(alg = config.accessTokenAlg, context) {
      if (!['ES256', 'RS256', 'PS256', 'EdDSA'].includes(alg)) throw new Error(`unsupported signing algorithm ${alg}`);
      const kid = await repo.withLock(async (tx) => {
        const at = new Date(now());
        const newKid = await insertNew(alg, tx);
        await repo.retireOthers(alg, newKid, at, new Date(at.getTime() + retiredLifetimeMs), tx);
        return newKid;
      });
      if (current) await load();
      await announce();
      const record = (await repo.listPublished(new Date(now()))).find((r) => r.kid === kid);
      await recordChange(deps.audit, context, { type: 'key.rotated', subject: { type: 'key', id: kid }, details: { alg } });
      return info(record!);
    },
    async list() {
      return (await repo.listPublished(new Date(now()))).map(info);
    },
    async start() {
      await ensureKeys();
      await load();
      const unsubscribe = await kv.subscribe(KEYS_CHANNEL, () => {
        load().catch(onError);
      });
      const timer = setInterval(() => {
        load().catch(onError);
      }, reloadIntervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await unsubscribe();
      };
    },
  };
  return store;
}
