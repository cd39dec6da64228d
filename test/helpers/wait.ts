import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` every `everyMs` until it returns true (then true) or `ms`
 * have passed (then false). A probe that throws counts as "not yet".
 */
export async function eventually(ms: number, probe: () => Promise<boolean>, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}
