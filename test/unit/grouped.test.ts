/**
 * Grouped statements (`tokens/grouped.ts`): the first call runs at once;
 * calls made while runs are in flight are taken together by the next run;
 * each call settles with the run that took it, with its own result.
 */
import t from 'tap';
import { grouped } from '../../src/tokens/grouped.js';

/** A write that records its batches and completes when told. */
function controlledWrite() {
  const batches: number[][] = [];
  const pending: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  const write = (items: number[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push(items);
      pending.push({ resolve, reject });
    });
  return { write, batches, pending };
}

const settled = (p: Promise<void>) => p.then(() => 'resolved', (err: Error) => `rejected: ${err.message}`);
const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('calls arriving during a write are written together by the next one', async (t) => {
  const { write, batches, pending } = controlledWrite();
  const submit = grouped(write, { maxInFlight: 1 });
  const first = settled(submit(1));
  const rest = [2, 3, 4].map((n) => settled(submit(n)));
  t.same(batches, [[1]], 'the first is written at once, alone');
  pending[0]!.resolve();
  t.equal(await first, 'resolved');
  await tick();
  t.same(batches, [[1], [2, 3, 4]], 'the others in one write after it');
  let done = false;
  void Promise.all(rest).then(() => (done = true));
  await tick();
  t.notOk(done, 'not settled before their write commits');
  pending[1]!.resolve();
  t.same(await Promise.all(rest), ['resolved', 'resolved', 'resolved']);
});

t.test('a failed write rejects exactly the calls it took; the next write goes ahead', async (t) => {
  const { write, batches, pending } = controlledWrite();
  const submit = grouped(write, { maxInFlight: 1 });
  const first = settled(submit(1));
  const second = settled(submit(2));
  const third = settled(submit(3));
  pending[0]!.reject(new Error('database unavailable'));
  t.equal(await first, 'rejected: database unavailable');
  await tick();
  t.same(batches, [[1], [2, 3]]);
  pending[1]!.resolve();
  t.same(await Promise.all([second, third]), ['resolved', 'resolved']);
});

t.test('a write that throws instead of rejecting rejects its calls', async (t) => {
  const submit = grouped<number>(() => {
    throw new Error('bad statement');
  });
  t.equal(await settled(submit(1)), 'rejected: bad statement');
});

t.test('up to maxInFlight writes at once, each batch at most maxBatch items', async (t) => {
  const { write, batches, pending } = controlledWrite();
  const submit = grouped(write, { maxInFlight: 2, maxBatch: 2 });
  const calls = [1, 2, 3, 4, 5, 6].map((n) => settled(submit(n)));
  t.same(batches, [[1], [2]], 'two writes in flight, one call each');
  pending[0]!.resolve();
  await tick();
  t.same(batches, [[1], [2], [3, 4]], 'then two of the four waiting');
  pending[1]!.resolve();
  await tick();
  t.same(batches, [[1], [2], [3, 4], [5, 6]]);
  pending[2]!.resolve();
  pending[3]!.resolve();
  t.same(await Promise.all(calls), Array(6).fill('resolved'));
});

t.test('reads: each call gets its own item\'s result, in the order asked', async (t) => {
  const runs: string[][] = [];
  const lookup = grouped<string, string | null>(async (keys) => {
    runs.push(keys);
    await new Promise((resolve) => setImmediate(resolve));
    return keys.map((key) => (key.startsWith('known') ? key.toUpperCase() : null));
  });
  const answers = await Promise.all(['known-a', 'unknown', 'known-b', 'known-a'].map(lookup));
  t.same(answers, ['KNOWN-A', null, 'KNOWN-B', 'KNOWN-A']);
  t.same(runs, [['known-a'], ['unknown'], ['known-b', 'known-a']], 'two at once, then the rest together');
});
