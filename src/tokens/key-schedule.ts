/**
 * Which signing key signs when: a pure function of the instants stored with
 * each key (`activates_at`, `retired_at`) and the clock, so every instance,
 * and `keys list`, reach the same answer without talking to each other
 * (`keys.ts` explains the rollover).
 */
import type { SigningKeyRecord } from '../storage/types.js';
import type { SigningKeyInfo } from './types.js';

/** When a key signs: from `activatesAtMs` until `retiresAtMs` (Infinity: not retiring). */
export interface Schedule {
  alg: string;
  activatesAtMs: number;
  retiresAtMs: number;
}

export const scheduleOf = (record: SigningKeyRecord): Schedule => ({
  alg: record.alg,
  activatesAtMs: record.activatesAt.getTime(),
  retiresAtMs: record.retiredAt?.getTime() ?? Infinity,
});

export const isRetiredAt = (record: SigningKeyRecord, atMs: number) => record.retiredAt !== null && record.retiredAt.getTime() <= atMs;

/**
 * The key of each algorithm that signs at `atMs`, from keys ordered by
 * activation, latest first: among the keys not retired then, the one
 * activated last; when none has been activated yet, the earliest pending one
 * (the first key of an algorithm signs at once, as nothing else can).
 */
export function signersAt<T extends Schedule>(keys: readonly T[], atMs: number): Map<string, T> {
  const chosen = new Map<string, T>();
  const earliestPending = new Map<string, T>();
  for (const key of keys) {
    if (key.retiresAtMs <= atMs) continue;
    if (key.activatesAtMs <= atMs) {
      if (!chosen.has(key.alg)) chosen.set(key.alg, key);
    } else {
      earliestPending.set(key.alg, key);
    }
  }
  for (const [alg, key] of earliestPending) if (!chosen.has(alg)) chosen.set(alg, key);
  return chosen;
}

export function infoAt(records: readonly SigningKeyRecord[], atMs: number): SigningKeyInfo[] {
  const schedules = records.map((record) => ({ record, ...scheduleOf(record) }));
  const signing = new Set([...signersAt(schedules, atMs).values()].map((s) => s.record.kid));
  return records.map((record): SigningKeyInfo => ({
    kid: record.kid,
    alg: record.alg,
    status: signing.has(record.kid) ? 'active' : record.activatesAt.getTime() > atMs ? 'pending' : 'retired',
    createdAt: record.createdAt,
    activatesAt: record.activatesAt,
    retiredAt: record.retiredAt,
    expiresAt: record.expiresAt,
  }));
}
