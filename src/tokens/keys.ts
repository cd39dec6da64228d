/**
 * Signing keys: created on first start, stored in the database (every
 * instance signs with the same keys and tokens survive restarts), imported
 * once into CryptoKeys and swapped as one immutable snapshot whenever the key
 * set changes; the JWKS document is serialised once per key set.
 *
 * Two keys sign at any time: one for access tokens (`ACCESS_TOKEN_ALG`,
 * ES256 by default) and an RS256 one for ID tokens (OIDC Core §15.1 makes
 * RS256 the algorithm every relying party supports). When the access-token
 * algorithm is RS256 one key serves both.
 *
 * Rollover. A verifier may use a JWKS it fetched for `JWKS_MAX_AGE_SECONDS`
 * (the `max-age` of /jwks.json), so a key that signed as soon as it was
 * created would carry a `kid` unknown to it. Rotation therefore stores the new
 * key with an activation instant ahead, `activates_at = now + JWKS max-age +
 * reload interval + skew`, and the previous key of its algorithm with
 * `retired_at` at that same instant:
 *
 *   pending  (now < activates_at)  published in JWKS and accepted, signs nothing;
 *   active   (the key of its algorithm whose activation passed last and which
 *             is not retired)      signs, published;
 *   retired  (retired_at <= now)   signs nothing, published until `expires_at
 *             = retired_at + token lifetime + reload interval + skew`.
 *
 * The state is a function of the stored instants and the clock alone, so
 * every instance switches at the same instant without talking to the others,
 * and an instance started in the middle of the window reads the same plan.
 * The reload interval in the delay covers an instance that missed the pub/sub
 * message: it learns of the key at its periodic reload, and a JWKS fetched
 * from it just before then expires before the switch. The first key of an
 * algorithm (first start) signs at once: nothing else could.
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
import { infoAt, isRetiredAt, scheduleOf, signersAt, type Schedule } from './key-schedule.js';
import { signJwt } from './jwt.js';
import type { JwsHeader, SigningWorker } from './signing-worker.js';
import type { KeyManager } from './types.js';
import { backgroundRuns } from './background.js';

const generateKeyPair = promisify(generateKeyPairCb);

export const KEYS_CHANNEL = 'keys';
/** OIDC Core §15.1: ID tokens are signed with RS256 unless the client registered otherwise. */
export const ID_TOKEN_ALG = 'RS256';
/** The `typ` header of ID tokens (RFC 7519 §5.1), which tells them from access tokens (`at+jwt`, RFC 9068 §2.1). */
export const ID_TOKEN_TYP = 'JWT';
/** The `typ` header of logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4), signed like ID tokens. */
export const LOGOUT_TOKEN_TYP = 'logout+jwt';

/**
 * `Cache-Control: max-age` of /jwks.json (`http/discovery.ts`): how long a
 * verifier may keep using a JWKS it fetched, hence how long a new key is
 * published before it signs.
 */
export const JWKS_MAX_AGE_SECONDS = 60;

/** Clock skew allowed between instances and relying parties, seconds. */
const SKEW_SECONDS = 60;

const SUPPORTED_ALGS: readonly string[] = ['ES256', 'RS256', 'PS256', 'EdDSA'];

export interface SigningKey {
  kid: string;
  alg: string;
  key: CryptoKey;
  /** The JWS protected header, built once per key. */
  header: JwsHeader;
  idHeader: JwsHeader;
  /**
   * Signs an access token (`header`), an ID token (`idHeader`) or a logout
   * token (`typ: logout+jwt`): in the signing worker when one runs, else
   * with jose on this thread.
   */
  sign(payload: object, use: 'access' | 'id' | 'logout'): Promise<string>;
}

export interface KeySnapshot {
  /** The key that signs now, per algorithm. */
  readonly signing: ReadonlyMap<string, SigningKey>;
  /** Public key per kid (pending, active and retired-but-published). */
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
  /** Signs off the event loop under load (`signing-worker.ts`); without it every token is signed here with jose. */
  signingWorker?: SigningWorker;
}

export interface KeyStore extends KeyManager {
  /** The snapshot for the current instant (throws before `start`). */
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

/** A key that signs now or will: its imported private key and when it signs. */
type Candidate = SigningKey & Schedule;

/** One key set as read from the database, imported. */
interface LoadedKeys {
  /** Keys not retired when the set was read, latest activation first. */
  readonly candidates: readonly Candidate[];
  /** The instants at which the choice of signers may change, ascending. */
  readonly changes: readonly number[];
  readonly verifying: ReadonlyMap<string, { alg: string; key: CryptoKey }>;
  readonly algorithms: readonly string[];
  readonly jwksJson: string;
}

/** The snapshot of one stretch of time in which the signers do not change. */
interface View {
  readonly snapshot: KeySnapshot;
  readonly fromMs: number;
  readonly untilMs: number;
}

function viewAt(loaded: LoadedKeys, atMs: number): View {
  let fromMs = -Infinity;
  let untilMs = Infinity;
  for (const change of loaded.changes) {
    if (change <= atMs) fromMs = change;
    else {
      untilMs = change;
      break;
    }
  }
  const { verifying, algorithms, jwksJson } = loaded;
  return { snapshot: { signing: signersAt(loaded.candidates, atMs), verifying, algorithms, jwksJson }, fromMs, untilMs };
}

export function createKeyStore(deps: KeyStoreDeps): KeyStore {
  const { repo, kv, config, now, signingWorker } = deps;
  const reloadIntervalMs = deps.reloadIntervalMs ?? 60_000;
  const unknownKidReloadMs = deps.unknownKidReloadMs ?? 5_000;
  const onError = deps.onError ?? (() => {});
  /** Replaced when a `reseal` is adopted: from then on this instance seals under the new key. */
  let protector: KeyProtector = createKeyProtector(config.signingKeyEncryptionKey);
  const needed = [...new Set([config.accessTokenAlg, ID_TOKEN_ALG])];
  /** How long a retired key stays published after it stopped signing. */
  const retiredLifetimeMs = (config.accessTokenTtlSeconds + SKEW_SECONDS) * 1000 + reloadIntervalMs;
  /**
   * How long a rotated key is published before it signs: every JWKS served
   * before any instance published it (an instance that missed pub/sub
   * publishes it at its periodic reload at the latest) has expired by then.
   */
  const activationDelayMs = (JWKS_MAX_AGE_SECONDS + SKEW_SECONDS) * 1000 + reloadIntervalMs;

  let loaded: LoadedKeys | null = null;
  let view: View | null = null;
  let inFlight: Promise<LoadedKeys> | null = null;
  let queued: Promise<LoadedKeys> | null = null;
  let lastLoadMs = 0;
  /** What `loaded` was built from: an unchanged key set is not imported again. */
  let fingerprint = '';
  /**
   * Imported keys by kid. A kid is the thumbprint of its public key, so its
   * key material never changes: a key is decrypted and imported once per
   * process (also after `keys reencrypt` changed how it is stored).
   */
  const imported = new Map<string, { verify: CryptoKey; sign?: CryptoKey }>();

  const insertNew = async (alg: string, activatesAt: Date, tx: Executor) => {
    const key = await generateSigningKey(alg);
    const privateJwk = await protector.seal(key.kid, key.privateJwk);
    await repo.insert({ kid: key.kid, alg, privateJwk, publicJwk: key.publicJwk as Record<string, unknown>, activatesAt }, tx);
    return key.kid;
  };

  const buildLoaded = async (records: readonly SigningKeyRecord[], atMs: number): Promise<LoadedKeys> => {
    const candidates: Candidate[] = [];
    const verifying = new Map<string, { alg: string; key: CryptoKey }>();
    const published: Array<Record<string, unknown>> = [];
    const changes = new Set<number>();
    for (const record of records) {
      const jwk = publicOnly(record.publicJwk, record.kid, record.alg);
      const cached = imported.get(record.kid) ?? { verify: (await importJWK(jwk as JWK, record.alg)) as CryptoKey };
      imported.set(record.kid, cached);
      verifying.set(record.kid, { alg: record.alg, key: cached.verify });
      published.push(jwk);
      if (isRetiredAt(record, atMs)) {
        // It signs nothing more: only its public key is kept.
        delete cached.sign;
        signingWorker?.removeKey(record.kid);
        continue;
      }
      if (!cached.sign) {
        const privateJwk = { ...(await protector.open(record.kid, record.privateJwk)), alg: record.alg } as JWK;
        cached.sign = (await importJWK(privateJwk, record.alg)) as CryptoKey;
        signingWorker?.addKey(record.kid, record.alg, privateJwk);
      }
      const schedule = scheduleOf(record);
      changes.add(schedule.activatesAtMs);
      if (schedule.retiresAtMs !== Infinity) changes.add(schedule.retiresAtMs);
      const key = cached.sign;
      const header = { alg: record.alg, typ: 'at+jwt', kid: record.kid };
      const idHeader = { alg: record.alg, typ: ID_TOKEN_TYP, kid: record.kid };
      const logoutHeader = { alg: record.alg, typ: LOGOUT_TOKEN_TYP, kid: record.kid };
      const headerFor = (use: 'access' | 'id' | 'logout') => (use === 'id' ? idHeader : use === 'logout' ? logoutHeader : header);
      candidates.push({
        ...schedule,
        kid: record.kid,
        key,
        header,
        idHeader,
        sign: signingWorker ? (payload, use) => signingWorker.sign(payload, headerFor(use), key) : (payload, use) => signJwt(payload, key, headerFor(use)),
      });
    }
    const kids = new Set(records.map((r) => r.kid));
    for (const kid of imported.keys()) {
      if (kids.has(kid)) continue;
      imported.delete(kid);
      signingWorker?.removeKey(kid);
    }
    return {
      candidates,
      changes: [...changes].sort((a, b) => a - b),
      verifying,
      algorithms: [...new Set(records.map((r) => r.alg))],
      jwksJson: JSON.stringify({ keys: published }),
    };
  };

  const readKeys = async (): Promise<LoadedKeys> => {
    const atMs = now();
    lastLoadMs = atMs;
    const records = await repo.listPublished(new Date(atMs));
    const print = records.map((r) => `${r.kid}:${r.activatesAt.getTime()}:${r.retiredAt?.getTime() ?? '-'}:${r.expiresAt?.getTime() ?? '-'}`).join(',');
    if (loaded && print === fingerprint) return loaded;
    const next = await buildLoaded(records, atMs);
    // A key set without a key for a needed algorithm (never expected:
    // start() creates them) keeps the old one signing.
    if (loaded && needed.some((alg) => !next.candidates.some((c) => c.alg === alg))) return loaded;
    loaded = next;
    view = null;
    fingerprint = print;
    return next;
  };

  /**
   * Reads the published keys and swaps the key set. Callers arriving while
   * a read runs (it may predate their change) share one more read after it,
   * so a burst of triggers costs at most two queries.
   */
  const load = (): Promise<LoadedKeys> => {
    if (!inFlight) {
      inFlight = readKeys().finally(() => {
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

  /**
   * Under the cluster-wide lock, so two instances starting together create
   * one set: creates the missing keys (signing at once), and with encryption
   * on encrypts keys stored plainly (before it was switched on) in place.
   */
  const ensureKeys = async () => {
    const isMissing = (records: SigningKeyRecord[], alg: string, atMs: number) => !records.some((r) => r.alg === alg && !isRetiredAt(r, atMs));
    const needsWork = (records: SigningKeyRecord[], atMs: number) =>
      needed.some((alg) => isMissing(records, alg, atMs)) || (protector.enabled && records.some((r) => !isSealed(r.privateJwk)));
    if (!needsWork(await repo.listPublished(new Date(now())), now())) return;
    await repo.withLock(async (tx) => {
      const atMs = now();
      const records = await repo.listPublished(new Date(atMs), tx);
      for (const alg of needed) {
        if (isMissing(records, alg, atMs)) await insertNew(alg, new Date(atMs), tx);
      }
      if (!protector.enabled) return;
      for (const record of records) {
        if (!isSealed(record.privateJwk)) await repo.replacePrivateJwk(record.kid, await protector.seal(record.kid, record.privateJwk as JWK), tx);
      }
    });
  };

  /**
   * A new key must be stored the way the current ones are, or some instance
   * could not open it: refuses when this instance's SIGNING_KEY_ENCRYPTION_KEY
   * does not open the keys that sign now or will (after `keys reencrypt`,
   * until the instance is restarted with the new key).
   */
  const checkStoredLikeThis = async (records: readonly SigningKeyRecord[], atMs: number) => {
    for (const record of records) {
      if (isRetiredAt(record, atMs)) continue;
      if (protector.enabled && !isSealed(record.privateJwk)) {
        throw new Error(`not rotated: signing key ${record.kid} is stored plainly but SIGNING_KEY_ENCRYPTION_KEY is set here (after "keys reencrypt --decrypt", restart without it)`);
      }
      try {
        await protector.open(record.kid, record.privateJwk);
      } catch (err) {
        throw new Error(`not rotated: ${err instanceof Error ? err.message : String(err)} (after "keys reencrypt", restart with the new key)`);
      }
    }
  };

  const announce = () => kv.publish(KEYS_CHANNEL, 'reload').catch(onError);

  const store: KeyStore = {
    snapshot() {
      if (!loaded) throw new Error('signing keys are not loaded: call services.start() first');
      const atMs = now();
      if (!view || atMs < view.fromMs || atMs >= view.untilMs) view = viewAt(loaded, atMs);
      return view.snapshot;
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
      if (!SUPPORTED_ALGS.includes(alg)) throw new Error(`unsupported signing algorithm ${alg}`);
      const kid = await repo.withLock(async (tx) => {
        const atMs = now();
        await checkStoredLikeThis(await repo.listPublished(new Date(atMs), tx), atMs);
        const activatesAt = new Date(atMs + activationDelayMs);
        const newKid = await insertNew(alg, activatesAt, tx);
        // The previous key signs until the new one does, then stays published for what it signed.
        await repo.retireOthers(alg, newKid, activatesAt, new Date(activatesAt.getTime() + retiredLifetimeMs), tx);
        return newKid;
      });
      if (loaded) await load();
      await announce();
      const rotated = (await store.list()).find((k) => k.kid === kid)!;
      await recordChange(deps.audit, context, { type: 'key.rotated', subject: { type: 'key', id: kid }, details: { alg } });
      return rotated;
    },
    async list() {
      const atMs = now();
      return infoAt(await repo.listPublished(new Date(atMs)), atMs);
    },
    async reseal(newKey, outer) {
      const next = createKeyProtector(newKey);
      const count = await repo.withLock(async (tx) => {
        const records = await repo.listAll(tx);
        // Open every key before writing any.
        const opened: Array<{ kid: string; jwk: JWK }> = [];
        for (const record of records) opened.push({ kid: record.kid, jwk: await protector.open(record.kid, record.privateJwk) });
        for (const { kid, jwk } of opened) await repo.replacePrivateJwk(kid, await next.seal(kid, jwk), tx);
        return opened.length;
      }, outer);
      return {
        count,
        adopt: () => {
          protector = next;
        },
      };
    },
    async start() {
      await ensureKeys();
      await load();
      // Reloads on a message and now and then: awaited when stopping, none begun after.
      const background = backgroundRuns(onError);
      const unsubscribe = await kv.subscribe(KEYS_CHANNEL, () => background.run(load));
      const timer = setInterval(() => background.run(load), reloadIntervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await background.stop();
        await unsubscribe();
      };
    },
  };
  return store;
}
