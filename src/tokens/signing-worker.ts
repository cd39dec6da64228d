/**
 * Signing off the event loop, in batches (bench/README.md, "A signing
 * worker, measured"). jose signs through WebCrypto: one job on libuv's pool,
 * and one wake-up of a pool thread, per token, which on a busy token
 * endpoint costs the main thread more than the signature itself. Under load
 * this module hands every token asked for in one turn of the event loop to a
 * worker thread in one message; the worker signs them with fast-jwt
 * (node:crypto, synchronously, on its own thread) and answers with the
 * tokens in order.
 *
 * The worker is an optimisation and never a dependency of a request: every
 * token it cannot sign (not started yet, idle-stopped, died, an unknown key,
 * any error) is signed on the main thread with jose instead, so a request
 * never fails or waits because of it. It starts only under sustained load
 * (`startAtPerSecond` tokens in one second), so a quiet server keeps no
 * second V8 isolate, and stops after `idleMs` without a token. A worker that
 * dies is replaced at the next load, no sooner than `restartDelayMs` later.
 *
 * Both ways produce the same compact JWS (RFC 7515 §7.1): the protected
 * header `{"alg","typ","kid"}` in that order and the payload serialised with
 * `JSON.stringify` (fast-jwt keeps a payload's own `iat` and `exp` and adds
 * nothing when they are present, which they always are here); only the
 * signature differs, as two ECDSA signatures of the same input always do.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { CryptoKey, JWK } from 'jose';
import { signJwt } from './jwt.js';
import type { SigningWorkerStats } from './types.js';

export interface JwsHeader {
  alg: string;
  typ: string;
  kid: string;
}

export interface SigningWorkerOptions {
  /** Tokens signed within one second that start the worker (default 50; 0 starts it at the first token). */
  startAtPerSecond?: number;
  /** A worker without a token for this long is stopped, ms (default 30 s). */
  idleMs?: number;
  /** After a worker died, how long before another may start, ms (default 5 s). */
  restartDelayMs?: number;
  /** Called with each worker started (tests use it to kill one). */
  onStart?: (worker: Worker) => void;
  now?: () => number;
  /** A worker that died or failed a token (the token was signed here instead). */
  onError?: (err: unknown) => void;
}

export interface SigningWorker {
  /** Makes a private key available to the worker (now, and to every worker started later). */
  addKey(kid: string, alg: string, privateJwk: JWK): void;
  removeKey(kid: string): void;
  /** Signs `payload` under `header` with the key `header.kid`; `key` is that key imported for jose, for signing here. */
  sign(payload: object, header: JwsHeader, key: CryptoKey): Promise<string>;
  stats(): SigningWorkerStats;
  /** Stops the worker; what it was signing is signed here. */
  close(): Promise<void>;
}

/**
 * The worker, plain JavaScript evaluated as a CommonJS script (a worker gets
 * no TypeScript loader). Keys arrive as JWKs and are converted once to the
 * PEM fast-jwt takes; a signer is built once per key and `typ`. A token it
 * cannot sign is answered with null.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createPrivateKey } = require('node:crypto');
const { createSigner } = require(workerData.fastJwt);
const keys = new Map();
let failure = null;
// A key that cannot be converted stays unknown here: its tokens are signed on the main thread.
const add = ({ kid, alg, jwk }) => {
  try {
    const pem = createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
    keys.set(kid, { alg, pem, signers: new Map() });
  } catch (err) {
    failure ??= 'key ' + kid + ': ' + String(err && err.message || err);
  }
};
const signerFor = (kid, typ) => {
  const key = keys.get(kid);
  if (!key) throw new Error('no usable signing key ' + kid);
  let signer = key.signers.get(typ);
  if (!signer) {
    signer = createSigner({ key: key.pem, algorithm: key.alg, kid, typ });
    key.signers.set(typ, signer);
  }
  return signer;
};
for (const key of workerData.keys) add(key);
parentPort.on('message', (message) => {
  if (message.type === 'sign') {
    const tokens = message.items.map((item) => {
      try {
        return signerFor(item.kid, item.typ)(item.payload);
      } catch (err) {
        failure ??= String(err && err.message || err);
        return null;
      }
    });
    parentPort.postMessage({ id: message.id, tokens, failure });
    failure = null;
  } else if (message.type === 'add') add(message.key);
  else if (message.type === 'remove') keys.delete(message.kid);
});
parentPort.postMessage({ ready: true });
`;

interface Pending {
  payload: object;
  header: JwsHeader;
  key: CryptoKey;
  resolve: (token: string) => void;
  reject: (err: unknown) => void;
}

type FromWorker = { ready: true } | { id: number; tokens: Array<string | null>; failure: string | null };

export function createSigningWorker(options: SigningWorkerOptions = {}): SigningWorker {
  const startAtPerSecond = options.startAtPerSecond ?? 50;
  const idleMs = options.idleMs ?? 30_000;
  const restartDelayMs = options.restartDelayMs ?? 5_000;
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => {});
  const fastJwt = createRequire(import.meta.url).resolve('fast-jwt');
  const keys = new Map<string, { kid: string; alg: string; jwk: JWK }>();
  const stats = { signedInWorker: 0, batches: 0, signedHere: 0, starts: 0 };

  let worker: Worker | null = null;
  let ready = false;
  let closed = false;
  let idleTimer: NodeJS.Timeout | null = null;
  /** No worker starts before this instant (after one died). */
  let startableAt = 0;
  /** Tokens asked for in the current second, to decide when a worker pays off. */
  let second = 0;
  let inSecond = 0;
  /** Asked for in this turn of the event loop, sent together at its end. */
  let queue: Pending[] = [];
  let nextId = 0;
  let failureReported = false;
  const inFlight = new Map<number, Pending[]>();

  const signHere = (p: Pending) => {
    stats.signedHere++;
    signJwt(p.payload, p.key, p.header).then(p.resolve, p.reject);
  };

  /** The worker is gone: what it held is signed here. */
  const drain = () => {
    const held = [...inFlight.values()].flat().concat(queue);
    inFlight.clear();
    queue = [];
    for (const p of held) signHere(p);
  };

  const stop = (target: Worker) => {
    if (worker !== target) return;
    worker = null;
    ready = false;
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = null;
    drain();
  };

  const onMessage = (message: FromWorker) => {
    if ('ready' in message) {
      ready = true;
      // Idle from now on.
      idleTimer?.refresh();
      return;
    }
    const batch = inFlight.get(message.id);
    if (!batch) return;
    inFlight.delete(message.id);
    stats.batches++;
    // Reported once per worker: a failure that repeats would otherwise be logged with every batch.
    if (message.failure !== null && !failureReported) {
      failureReported = true;
      onError(new Error(`signing worker: ${message.failure} (signed on the main thread instead)`));
    }
    for (let i = 0; i < batch.length; i++) {
      const token = message.tokens[i];
      if (typeof token === 'string') {
        stats.signedInWorker++;
        batch[i]!.resolve(token);
      } else signHere(batch[i]!);
    }
  };

  const start = () => {
    stats.starts++;
    failureReported = false;
    const started = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { fastJwt, keys: [...keys.values()] },
      // The worker needs no loader hooks or flags of the main thread (tsx in tests).
      execArgv: [],
    });
    worker = started;
    ready = false;
    // Never what keeps the process alive.
    started.unref();
    started.on('message', onMessage);
    // An uncaught error is followed by 'exit': reported once. A worker stopped on purpose is no longer `worker`.
    const died = (err: unknown) => {
      if (worker !== started) return;
      onError(err);
      startableAt = now() + restartDelayMs;
      stop(started);
    };
    started.on('error', died);
    started.on('exit', (code) => died(new Error(`signing worker exited with code ${code}`)));
    options.onStart?.(started);
    idleTimer = setTimeout(function idle() {
      if (worker !== started) return;
      // Still starting (a loaded machine), or busy: look again later.
      if (!ready || inFlight.size > 0 || queue.length > 0) {
        idleTimer = setTimeout(idle, idleMs).unref();
        return;
      }
      stop(started);
      void started.terminate();
    }, idleMs).unref();
  };

  const flush = () => {
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    if (!worker || !ready) {
      for (const p of batch) signHere(p);
      return;
    }
    const id = ++nextId;
    inFlight.set(id, batch);
    worker.postMessage({
      type: 'sign',
      id,
      items: batch.map((p) => ({ kid: p.header.kid, typ: p.header.typ, payload: p.payload })),
    });
    idleTimer?.refresh();
  };

  return {
    addKey(kid, alg, privateJwk) {
      const key = { kid, alg, jwk: privateJwk };
      keys.set(kid, key);
      worker?.postMessage({ type: 'add', key });
    },
    removeKey(kid) {
      if (!keys.delete(kid)) return;
      worker?.postMessage({ type: 'remove', kid });
    },
    sign(payload, header, key) {
      const atMs = now();
      const atSecond = Math.floor(atMs / 1000);
      if (atSecond !== second) {
        second = atSecond;
        inSecond = 0;
      }
      inSecond++;
      if (!worker && !closed && inSecond >= startAtPerSecond && atMs >= startableAt && keys.has(header.kid)) start();
      if (!ready) {
        stats.signedHere++;
        return signJwt(payload, key, header);
      }
      return new Promise((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush);
        queue.push({ payload, header, key, resolve, reject });
      });
    },
    stats() {
      return { running: worker !== null, ready, ...stats };
    },
    async close() {
      closed = true;
      const target = worker;
      if (!target) return;
      stop(target);
      await target.terminate();
    },
  };
}
