/**
 * Redis (or Redis Cluster) behind `KvStore`. Every operation touches one key,
 * so nothing needs hash tags to run on a cluster. Commands fail fast while
 * Redis is unreachable (no offline queue, a command timeout) and become
 * `UnavailableError`; ioredis keeps reconnecting in the background, so the
 * server recovers on its own when Redis returns.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { UnavailableError } from '../../errors.js';
import type { KvStore } from '../types.js';

export interface RedisKvOptions {
  url?: string | undefined;
  clusterNodes?: readonly string[] | undefined;
  /** Prepended to every key and channel, e.g. `oauth:`. */
  prefix: string;
  /** Called on connection errors (rate-limited by the caller's logger if needed). */
  onError?: (err: Error) => void;
  commandTimeoutMs?: number;
}

// INCR, then set the expiry only when the key is new (or somehow has none),
// so failures are counted in a fixed window. Returns {count, ttl}.
const INCREMENT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;

// DECR only an existing, positive counter (DECR would create a key without
// expiry at -1); the expiry is left as it is. Returns the new count.
const DECREMENT_SCRIPT = `
local n = tonumber(redis.call('GET', KEYS[1]))
if not n then return 0 end
if n <= 0 then return n end
return redis.call('DECR', KEYS[1])`;

// HSET, then extend the hash's expiry to at least ARGV[3] seconds (never
// shorten it: another field may need longer). EXPIRE … GT would need Redis 7.
const MAP_SET_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('TTL', KEYS[1])
if ttl < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return redis.call('HLEN', KEYS[1])`;

/** TTL of a missing key is -2 (nothing to extend); of a key without expiry -1 (none of ours). */
const EXTEND_SCRIPT = `
local ttl = redis.call('TTL', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1`;

type Client = Redis | Cluster;

/** Upper bound on waiting for a first connection at start (connectTimeout is 3 s). */
const START_WAIT_MS = 5_000;

/**
 * Resolves when `client` is ready or its first connection attempt failed
 * (ioredis keeps reconnecting either way), and after START_WAIT_MS at the
 * latest. Not just `connect()`: a Cluster whose ready check fails on the
 * first try reconnects by itself and becomes ready, but never settles the
 * promise of that first `connect()`, which hung about one start in ten.
 */
function started(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, START_WAIT_MS);
    client.once('ready', done);
    client.connect().then(done, done);
  });
}

function wrap<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((err: unknown) => {
    throw new UnavailableError('code store', err);
  });
}

export async function createRedisKv(options: RedisKvOptions): Promise<KvStore> {
  const base: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 2_000,
    connectTimeout: 3_000,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  };
  const cluster = options.clusterNodes && options.clusterNodes.length > 0;
  const make = (extra: RedisOptions): Client => {
    if (cluster) {
      const nodes = options.clusterNodes!.map((n) => {
        const i = n.lastIndexOf(':');
        return { host: n.slice(0, i), port: Number(n.slice(i + 1)) };
      });
      return new Cluster(nodes, {
        lazyConnect: true,
        enableOfflineQueue: extra.enableOfflineQueue ?? false,
        clusterRetryStrategy: (times) => Math.min(times * 100, 1_000),
        redisOptions: { ...base, ...extra, lazyConnect: false },
      });
    }
    return new Redis(options.url!, { ...base, ...extra });
  };

  const client = make({});
  // The subscriber queues its SUBSCRIBE until connected and resubscribes after
  // every reconnect (ioredis autoResubscribe), so pub/sub survives outages.
  // `maxRetriesPerRequest: null` keeps a queued SUBSCRIBE through any number
  // of failed connection attempts: with a number, ioredis flushes its offline
  // queue with an error after that many, so an instance started while Redis
  // was down never subscribed and heard no revocation or key rotation until
  // restarted (autoResubscribe only repeats subscriptions that succeeded).
  const subscriber = make({ enableOfflineQueue: true, commandTimeout: undefined, maxRetriesPerRequest: null });
  const onError = options.onError ?? (() => {});
  client.on('error', onError);
  subscriber.on('error', onError);

  client.defineCommand('kvIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
  const incr = (client as unknown as { kvIncrement(key: string, ttl: number): Promise<[number, number]> }).kvIncrement.bind(client);
  client.defineCommand('kvDecrement', { numberOfKeys: 1, lua: DECREMENT_SCRIPT });
  const decr = (client as unknown as { kvDecrement(key: string): Promise<number> }).kvDecrement.bind(client);
  client.defineCommand('kvMapSet', { numberOfKeys: 1, lua: MAP_SET_SCRIPT });
  const mapSet = (client as unknown as { kvMapSet(key: string, field: string, value: string, ttl: number): Promise<number> }).kvMapSet.bind(client);
  client.defineCommand('kvExtend', { numberOfKeys: 1, lua: EXTEND_SCRIPT });
  const extend = (client as unknown as { kvExtend(key: string, ttl: number): Promise<number> }).kvExtend.bind(client);

  // Start without waiting forever: if Redis is down at start, the server still
  // starts, answers 503 where Redis is needed and recovers when it comes up.
  await Promise.all([started(client), started(subscriber)]);

  const p = options.prefix;
  const handlers = new Map<string, Set<(message: string) => void>>();
  subscriber.on('message', (channel: string, message: string) => {
    for (const handler of handlers.get(channel) ?? []) handler(message);
  });
  /**
   * Whether each channel's subscription is in effect (see `onLive`). A
   * dropped connection ends them all at once; after a reconnect a channel is
   * live again when a SUBSCRIBE sent on the new connection is acknowledged
   * (Redis answers commands of one connection in order, so the resubscription
   * ioredis sent before it is in effect too).
   */
  const liveness = new Map<string, Set<(live: boolean) => void>>();
  const announceLive = (name: string, live: boolean) => {
    for (const onLive of liveness.get(name) ?? []) onLive(live);
  };
  const confirm = (name: string) => {
    subscriber.subscribe(name).then(
      () => {
        if (subscriber.status === 'ready') announceLive(name, true);
      },
      onError,
    );
  };
  let dropped = false;
  subscriber.on('close', () => {
    if (dropped) return;
    dropped = true;
    for (const name of liveness.keys()) announceLive(name, false);
  });
  subscriber.on('ready', () => {
    if (!dropped) return;
    dropped = false;
    for (const name of liveness.keys()) confirm(name);
  });

  return {
    kind: cluster ? 'redis-cluster' : 'redis',
    async set(key, value, ttlSeconds) {
      await wrap(client.set(p + key, value, 'EX', ttlSeconds));
    },
    async setIfAbsent(key, value, ttlSeconds) {
      return (await wrap(client.set(p + key, value, 'EX', ttlSeconds, 'NX'))) === 'OK';
    },
    get: (key) => wrap(client.get(p + key)),
    take: (key) => wrap(client.getdel(p + key)),
    async delete(key) {
      await wrap(client.del(p + key));
    },
    async increment(key, ttlSeconds) {
      const [count, ttl] = await wrap(incr(p + key, ttlSeconds));
      return { count: Number(count), ttlSeconds: Number(ttl) };
    },
    async decrement(key) {
      return Number(await wrap(decr(p + key)));
    },
    mapSet: (key, field, value, ttlSeconds) => wrap(mapSet(p + key, field, value, ttlSeconds)),
    async extend(key, ttlSeconds) {
      await wrap(extend(p + key, ttlSeconds));
    },
    mapEntries: (key) => wrap(client.hgetall(p + key)),
    async mapDelete(key, field) {
      await wrap(client.hdel(p + key, field));
    },
    async ping() {
      await wrap(client.ping());
    },
    async publish(channel, message) {
      await wrap(client.publish(p + channel, message));
    },
    async subscribe(channel, handler, onLive) {
      const name = p + channel;
      let set = handlers.get(name);
      if (!set) {
        set = new Set();
        handlers.set(name, set);
      }
      set.add(handler);
      if (onLive) {
        let watchers = liveness.get(name);
        if (!watchers) {
          watchers = new Set();
          liveness.set(name, watchers);
        }
        watchers.add(onLive);
      }
      // Queued until connected (see above); do not wait for it here. Sent for
      // each subscriber, so each one's `onLive(true)` follows an acknowledgement.
      confirm(name);
      return async () => {
        set.delete(handler);
        if (onLive) liveness.get(name)?.delete(onLive);
        if (set.size === 0) {
          liveness.delete(name);
          handlers.delete(name);
          // Not awaited: while Redis is down the UNSUBSCRIBE waits in the
          // offline queue (see above) and would hold up a shutdown. Nothing
          // is delivered to the channel any more either way (no handlers).
          subscriber.unsubscribe(name).catch(() => {});
        }
      };
    },
    async close() {
      handlers.clear();
      subscriber.disconnect();
      client.disconnect();
    },
  };
}
