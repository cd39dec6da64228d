/**
 * DPoP server nonces (RFC 9449 §8 at the token endpoint, §9 at resources),
 * accepted by every instance without per-request shared state: time is cut
 * into slots of `DPOP_NONCE_SLOT_SECONDS`; each slot has one random nonce,
 * created by whichever instance first needs it (`setIfAbsent` in the shared
 * TTL store, so all instances agree) and cached by each instance for the
 * slot. A nonce is good during its slot and the next one: between one and
 * two slots. The nonce names its slot, so checking one costs at most one
 * store read per slot and instance, and none after that. Nothing secret is
 * stored: a nonce is public; it only has to be unpredictable before its slot.
 */
import { randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../security/constant-time.js';
import type { KvStore } from '../storage/types.js';

/** Length of a nonce slot, seconds: a nonce lives 5 to 10 minutes. */
export const DPOP_NONCE_SLOT_SECONDS = 300;

export interface DpopNonces {
  /** The nonce of the current slot (sent as `DPoP-Nonce`). */
  current(): Promise<string>;
  /** Whether `nonce` is the nonce of the current or the previous slot. */
  isValid(nonce: unknown): Promise<boolean>;
}

export function createDpopNonces(deps: { kv: Pick<KvStore, 'get' | 'setIfAbsent'>; now: () => number }): DpopNonces {
  const { kv, now } = deps;
  /** slot → its nonce, for the slots still valid (at most three entries). */
  const known = new Map<number, Promise<string>>();
  const slotAt = (ms: number) => Math.floor(ms / 1000 / DPOP_NONCE_SLOT_SECONDS);

  /** The nonce of `slot`: this instance's copy, else the shared one, else a new one (the first writer wins). */
  function nonceOf(slot: number): Promise<string> {
    const cached = known.get(slot);
    if (cached) return cached;
    const loading = (async () => {
      const key = `dpop-nonce:${slot}`;
      const candidate = `${slot.toString(36)}.${randomBytes(16).toString('base64url')}`;
      // Kept for two slots and a margin: as long as any instance may accept it.
      if (await kv.setIfAbsent(key, candidate, 2 * DPOP_NONCE_SLOT_SECONDS + 60)) return candidate;
      const stored = await kv.get(key);
      if (stored === null) throw new Error('the DPoP nonce of this slot vanished from the store');
      return stored;
    })();
    known.set(slot, loading);
    // A failed store call is not remembered: the next request tries again.
    loading.catch(() => known.delete(slot));
    for (const old of known.keys()) if (old < slot - 1) known.delete(old);
    return loading;
  }

  return {
    current: () => nonceOf(slotAt(now())),
    async isValid(nonce) {
      if (typeof nonce !== 'string') return false;
      const slot = Number.parseInt(nonce.slice(0, nonce.indexOf('.')), 36);
      const current = slotAt(now());
      if (slot !== current && slot !== current - 1) return false;
      return constantTimeEqual(nonce, await nonceOf(slot));
    },
  };
}
