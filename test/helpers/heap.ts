/**
 * Heap measurements for leak tests. Importing this exposes `gc` (as
 * `--expose-gc` would) in this process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** `heapUsed` after three collections, `settleMs` apart (so finalisers and timers can run). */
export async function heapAfterGc(settleMs = 20): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(settleMs);
  }
  return process.memoryUsage().heapUsed;
}
