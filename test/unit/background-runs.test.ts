/**
 * The token module's background runs (`tokens/background.ts`): stopping
 * waits for the work in flight and begins none after; failures go to the
 * error handler, thrown or rejected.
 */
import t from 'tap';
import { backgroundRuns } from '../../src/tokens/background.js';

t.test('stop waits for a run in flight; nothing begins after', async (t) => {
  const errors: unknown[] = [];
  const background = backgroundRuns((err) => errors.push(err));
  let finish!: () => void;
  let finished = false;
  background.run(
    () =>
      new Promise<void>((resolve) => {
        finish = () => {
          finished = true;
          resolve();
        };
      }),
  );
  await Promise.resolve();
  let stopped = false;
  const stopping = background.stop().then(() => (stopped = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(stopped, false, 'not stopped while the run is in flight');
  finish();
  await stopping;
  t.ok(finished && stopped, 'stopped once it ended');
  let late = false;
  background.run(async () => {
    late = true;
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(late, false, 'no run begins after stop');
  t.same(errors, []);
});

t.test('a failure, rejected or thrown, goes to onError and ends the run', async (t) => {
  const errors: unknown[] = [];
  const background = backgroundRuns((err) => errors.push(err));
  background.run(() => Promise.reject(new Error('rejected')));
  background.run(() => {
    throw new Error('thrown');
  });
  await background.stop();
  t.same(errors.map((e) => (e as Error).message).sort(), ['rejected', 'thrown']);
});
