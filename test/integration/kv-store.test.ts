/**
 * The TTL store's contract (`KvStore`), written once and run against the
 * in-process store always (with an injected clock, so expiry is checked to
 * the millisecond without sleeping) and against Redis when REDIS_URL is set.
 */
import t from 'tap';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import type { KvStore } from '../../src/storage/types.js';
import { openTestKv, REDIS_URL } from '../helpers/backend.js';

interface Backend {
  name: string;
  open(): Promise<{ kv: KvStore; clock?: { advance(ms: number): void } }>;
}

const backends: Backend[] = [
  {
    name: 'memory',
    async open() {
      let now = 1_700_000_000_000;
      const kv = createMemoryKv({ now: () => now });
      return { kv, clock: { advance: (ms) => (now += ms) } };
    },
  },
];
if (REDIS_URL) backends.push({ name: 'redis', open: async () => ({ kv: await openTestKv() }) });

/** Resolves with the first message on `channel`, or null after `ms`. */
function nextMessage(kv: KvStore, channel: string, ms = 2_000): Promise<{ message: string | null; unsubscribe: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    let unsubscribe: () => Promise<void> = async () => {};
    const timer = setTimeout(() => resolve({ message: null, unsubscribe }), ms);
    kv.subscribe(channel, (message) => {
      clearTimeout(timer);
      resolve({ message, unsubscribe });
    }).then((u) => {
      unsubscribe = u;
    }, reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of backends) {
  t.test(`KvStore contract on ${backend.name}`, async (t) => {
    const { kv, clock } = await backend.open();
    t.teardown(() => kv.close());

    t.test('set, get, overwrite, delete', async (t) => {
      t.equal(await kv.get('a'), null);
      await kv.set('a', 'one', 60);
      t.equal(await kv.get('a'), 'one');
      await kv.set('a', 'two', 60);
      t.equal(await kv.get('a'), 'two');
      await kv.delete('a');
      t.equal(await kv.get('a'), null);
      await kv.delete('never-set');
      await kv.ping();
    });

    t.test('expiry is honoured exactly', async (t) => {
      await kv.set('ttl', 'v', 10);
      if (clock) {
        clock.advance(9_999);
        t.equal(await kv.get('ttl'), 'v', 'alive 1 ms before expiry');
        clock.advance(1);
        t.equal(await kv.get('ttl'), null, 'gone at expiry, before any sweep');
        t.equal(await kv.take('ttl'), null);
        t.equal(await kv.setIfAbsent('ttl', 'new', 10), true, 'an expired key is absent');
      } else {
        await kv.set('short', 'v', 1);
        t.equal(await kv.get('short'), 'v');
        let gone = false;
        for (let i = 0; i < 30 && !gone; i++) {
          await sleep(100);
          gone = (await kv.get('short')) === null;
        }
        t.ok(gone, 'gone after its second');
        t.equal(await kv.get('ttl'), 'v', 'a longer one is still there');
      }
    });

    t.test('take is atomic: of 50 concurrent callers exactly one gets the value', async (t) => {
      await kv.set('code', 'the-code', 60);
      const results = await Promise.all(Array.from({ length: 50 }, () => kv.take('code')));
      t.same(
        results.filter((r) => r !== null),
        ['the-code'],
      );
      t.equal(await kv.get('code'), null, 'deleted');
      t.equal(await kv.take('code'), null);
    });

    t.test('setIfAbsent stores only once', async (t) => {
      t.equal(await kv.setIfAbsent('once', 'first', 60), true);
      t.equal(await kv.setIfAbsent('once', 'second', 60), false);
      t.equal(await kv.get('once'), 'first');
      const racers = await Promise.all(Array.from({ length: 20 }, (_, i) => kv.setIfAbsent('race', String(i), 60)));
      t.equal(racers.filter(Boolean).length, 1, 'one of 20 concurrent callers wins');
    });

    t.test('increment counts in a fixed window', async (t) => {
      t.same(await kv.increment('count', 30), { count: 1, ttlSeconds: 30 });
      if (clock) clock.advance(10_000);
      const second = await kv.increment('count', 30);
      t.equal(second.count, 2);
      if (clock) t.equal(second.ttlSeconds, 20, 'the window is not extended by later increments');
      else t.ok(second.ttlSeconds <= 30 && second.ttlSeconds > 0);
      const many = await Promise.all(Array.from({ length: 10 }, () => kv.increment('count', 30)));
      t.same(
        many.map((m) => m.count).sort((a, b) => a - b),
        [3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        'concurrent increments are not lost',
      );
      if (clock) {
        clock.advance(20_000);
        t.same(await kv.increment('count', 30), { count: 1, ttlSeconds: 30 }, 'a new window after expiry');
      }
    });

    t.test('decrement gives back an increment: never below zero, never creates, keeps the window', async (t) => {
      t.equal(await kv.decrement('given-back'), 0, 'an absent counter');
      t.equal(await kv.get('given-back'), null, 'stays absent');
      await kv.increment('given-back', 30);
      await kv.increment('given-back', 30);
      if (clock) clock.advance(10_000);
      t.equal(await kv.decrement('given-back'), 1);
      const next = await kv.increment('given-back', 30);
      t.equal(next.count, 2);
      if (clock) t.equal(next.ttlSeconds, 20, 'the window is not restarted');
      else t.ok(next.ttlSeconds <= 30 && next.ttlSeconds > 0);
      const many = await Promise.all(Array.from({ length: 5 }, () => kv.decrement('given-back')));
      t.same(many.sort((a, b) => a - b), [0, 0, 0, 0, 1], 'concurrent decrements stop at zero');
      t.equal(await kv.get('given-back'), '0');
      if (clock) {
        clock.advance(20_000);
        t.equal(await kv.decrement('given-back'), 0);
        t.equal(await kv.get('given-back'), null, 'an expired counter is not brought back');
      }
    });

    t.test('a map: set, list, delete a field; its expiry is extended, never shortened', async (t) => {
      t.same(await kv.mapEntries('map'), {}, 'absent: empty');
      t.equal(await kv.mapSet('map', 'a', '1', 30), 1, 'each set tells how many fields the map has');
      t.equal(await kv.mapSet('map', 'b', '2', 10), 2);
      t.same(await kv.mapEntries('map'), { a: '1', b: '2' });
      t.equal(await kv.mapSet('map', 'a', 'one', 30), 2);
      t.same(await kv.mapEntries('map'), { a: 'one', b: '2' }, 'a field is overwritten');
      await Promise.all(Array.from({ length: 20 }, (_, i) => kv.mapSet('map', `f${i}`, String(i), 30)));
      t.equal(Object.keys(await kv.mapEntries('map')).length, 22, 'concurrent sets are not lost');
      await kv.mapDelete('map', 'b');
      await kv.mapDelete('map', 'never-set');
      await kv.mapDelete('no-map', 'a');
      t.notOk('b' in (await kv.mapEntries('map')));
      if (clock) {
        clock.advance(29_999);
        t.equal((await kv.mapEntries('map')).a, 'one', 'the shorter ttl of a later set did not shorten it');
        clock.advance(1);
        t.same(await kv.mapEntries('map'), {}, 'gone at expiry');
      }
      await kv.mapSet('last', 'only', 'x', 30);
      await kv.mapDelete('last', 'only');
      t.same(await kv.mapEntries('last'), {}, 'gone with its last field');
      await kv.mapSet('deleted', 'x', 'y', 30);
      await kv.delete('deleted');
      t.same(await kv.mapEntries('deleted'), {}, 'delete removes a map too');
    });

    t.test('extend: a map or a value lives longer, never shorter; a missing key stays missing', async (t) => {
      // Redis counts in real seconds: one second, then outlived below.
      const first = clock ? 10 : 1;
      await kv.mapSet('extended-map', 'a', '1', first);
      await kv.set('extended-value', 'v', first);
      await kv.extend('extended-map', 30);
      await kv.extend('extended-value', 30);
      await kv.extend('extended-value', 5);
      await kv.extend('never-set', 30);
      t.equal(await kv.get('never-set'), null);
      t.same(await kv.mapEntries('never-set'), {});
      if (clock) {
        clock.advance(29_999);
        t.same(await kv.mapEntries('extended-map'), { a: '1' }, 'the map outlived its first ttl');
        t.equal(await kv.get('extended-value'), 'v', 'so did the value, and the shorter extension did not shorten it');
        clock.advance(1);
        t.same(await kv.mapEntries('extended-map'), {}, 'gone at the new expiry');
        t.equal(await kv.get('extended-value'), null);
      } else {
        await sleep(1_200);
        t.same(await kv.mapEntries('extended-map'), { a: '1' }, 'the map outlived its first ttl');
        t.equal(await kv.get('extended-value'), 'v', 'so did the value');
      }
    });

    t.test('publish reaches subscribers; unsubscribe stops it', async (t) => {
      const received = nextMessage(kv, 'events');
      await sleep(REDIS_URL ? 100 : 0); // let the SUBSCRIBE reach Redis
      await kv.publish('events', 'hello');
      const { message, unsubscribe } = await received;
      t.equal(message, 'hello');
      await unsubscribe();
      const after = nextMessage(kv, 'other-events', 300);
      await kv.publish('events', 'nobody listens');
      t.equal((await after).message, null, 'no cross-channel delivery');
      await (await after).unsubscribe();
    });

    t.test('onLive(true) once the subscription is in effect: a message published then is delivered', async (t) => {
      const live = new Promise<boolean>((resolve) => {
        void kv.subscribe('liveness', () => {}, resolve);
      });
      t.equal(await live, true);
      // No sleep: in effect means in effect.
      const received = nextMessage(kv, 'liveness');
      await live;
      await kv.publish('liveness', 'heard');
      const { message, unsubscribe } = await received;
      t.equal(message, 'heard');
      await unsubscribe();
    });
  });
}

t.test('the memory store refuses after close', async (t) => {
  const kv = createMemoryKv();
  await kv.close();
  await t.rejects(kv.ping());
});
