/**
 * In-process TTL store standing in for Redis when `REDIS_URL` is unset.
 * Expiry is honoured on every read, exactly like Redis (an entry whose time is
 * up is gone, even before the sweeper runs); an unref'd timer sweeps expired
 * entries so memory stays flat, and stops on close. Pub/sub is an in-process
 * emitter: fine for one instance, which is the only way this store can be used.
 */
import { EventEmitter } from 'node:events';
import type { KvStore } from '../types.js';

interface Entry {
  value: string;
  expiresAtMs: number;
}

interface MapEntry {
  fields: Map<string, string>;
  expiresAtMs: number;
}

export interface MemoryKvOptions {
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  sweepIntervalMs?: number;
}

export function createMemoryKv(options: MemoryKvOptions = {}): KvStore {
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  // Maps (`mapSet`) in their own table: a key holds a string or a map, as in Redis.
  const maps = new Map<string, MapEntry>();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  let closed = false;

  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  const liveMap = (key: string): MapEntry | undefined => {
    const entry = maps.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= now()) {
      maps.delete(key);
      return undefined;
    }
    return entry;
  };
  const put = (key: string, value: string, ttlSeconds: number) => {
    entries.set(key, { value, expiresAtMs: now() + ttlSeconds * 1000 });
  };

  const sweeper = setInterval(() => {
    const t = now();
    for (const [key, entry] of entries) if (entry.expiresAtMs <= t) entries.delete(key);
    for (const [key, entry] of maps) if (entry.expiresAtMs <= t) maps.delete(key);
  }, options.sweepIntervalMs ?? 10_000);
  sweeper.unref();

  return {
    kind: 'memory',
    async set(key, value, ttlSeconds) {
      put(key, value, ttlSeconds);
    },
    async setIfAbsent(key, value, ttlSeconds) {
      if (live(key)) return false;
      put(key, value, ttlSeconds);
      return true;
    },
    async get(key) {
      return live(key)?.value ?? null;
    },
    async take(key) {
      const entry = live(key);
      if (!entry) return null;
      entries.delete(key);
      return entry.value;
    },
    async delete(key) {
      entries.delete(key);
      maps.delete(key);
    },
    async increment(key, ttlSeconds) {
      const entry = live(key);
      if (!entry) {
        put(key, '1', ttlSeconds);
        return { count: 1, ttlSeconds };
      }
      entry.value = String(Number(entry.value) + 1);
      return { count: Number(entry.value), ttlSeconds: Math.max(1, Math.ceil((entry.expiresAtMs - now()) / 1000)) };
    },
    async decrement(key) {
      const entry = live(key);
      if (!entry) return 0;
      const count = Math.max(0, Number(entry.value) - 1);
      entry.value = String(count);
      return count;
    },
    async mapSet(key, field, value, ttlSeconds) {
      const expiresAtMs = now() + ttlSeconds * 1000;
      const entry = liveMap(key);
      if (!entry) {
        maps.set(key, { fields: new Map([[field, value]]), expiresAtMs });
        return 1;
      }
      entry.fields.set(field, value);
      entry.expiresAtMs = Math.max(entry.expiresAtMs, expiresAtMs);
      return entry.fields.size;
    },
    async extend(key, ttlSeconds) {
      const expiresAtMs = now() + ttlSeconds * 1000;
      for (const entry of [live(key), liveMap(key)]) if (entry) entry.expiresAtMs = Math.max(entry.expiresAtMs, expiresAtMs);
    },
    async mapEntries(key) {
      return Object.fromEntries(liveMap(key)?.fields ?? []);
    },
    async mapDelete(key, field) {
      const entry = liveMap(key);
      if (!entry) return;
      entry.fields.delete(field);
      if (entry.fields.size === 0) maps.delete(key);
    },
    async ping() {
      if (closed) throw new Error('memory store closed');
    },
    async publish(channel, message) {
      // Deliver asynchronously, like Redis, so publishers never run handlers inline.
      setImmediate(() => bus.emit(channel, message));
    },
    async subscribe(channel, handler, onLive) {
      bus.on(channel, handler);
      // In-process delivery cannot drop a message: live from the start, for good.
      if (onLive) setImmediate(() => onLive(true));
      return async () => {
        bus.off(channel, handler);
      };
    },
    async close() {
      closed = true;
      clearInterval(sweeper);
      bus.removeAllListeners();
      entries.clear();
      maps.clear();
    },
  };
}
