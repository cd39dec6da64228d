/**
 * The access-token deny list, held in memory by every instance so the
 * resource routes check revocation without any I/O per request.
 *
 * The database is the truth (`revoked_access_tokens`, `revoked_subjects`).
 * Each instance keeps a copy that is
 * - loaded whole at start,
 * - updated at once over the TTL store's `revocations` channel (pub/sub;
 *   the revoking instance also adds the entries to its own copy before it
 *   answers),
 * - and re-synchronised every `pollIntervalMs` (5 s) from the database, in
 *   case a message was lost (Redis down or restarting).
 *
 * Entries are dropped once the token they name would have expired anyway, so
 * memory is bounded by the revocations of one access-token lifetime.
 *
 * The copy is *current* (`isCurrent`) while no message can have been missed:
 * the subscription has been in effect without a break since before a
 * database sync that completed. A revocation is written to the database
 * before it is announced, so it is then either in the copy already or on its
 * way over the subscription. Introspection answers from a current copy
 * without asking the database (`introspect.ts`); a dropped subscription makes
 * the copy not current until it is back and a sync started after that has
 * completed.
 */
import type { KvStore, RevocationRepo, RevokedSubject } from '../storage/types.js';
import { backgroundRuns } from './background.js';

export const REVOCATIONS_CHANNEL = 'revocations';

/**
 * The revoked-subject key that ends every access token of a client, whoever
 * it was issued for (the client was deleted). User ids are UUIDs and a
 * client's own tokens have `sub` = its client_id, so the prefix keeps the
 * two apart.
 */
export const clientSubject = (clientId: string) => `client:${clientId}`;

/** Re-read this much before the newest entry seen, for transactions that committed late. */
const POLL_OVERLAP_MS = 60_000;

export interface DenyListDeps {
  repo: RevocationRepo;
  kv: KvStore;
  now: () => number;
  pollIntervalMs?: number;
  onError?: (err: unknown) => void;
}

export interface RevokedJtiEntry {
  jti: string;
  expiresAt: Date;
}

export interface DenyList {
  /**
   * Whether an access token is refused: its `jti` is deny-listed, or its
   * subject or its client was revoked after it was issued (`iat` in epoch
   * seconds). Pure memory lookups.
   */
  isDenied(jti: string, sub: string, iat: number, clientId: string): boolean;
  /**
   * The earliest `iat` (epoch seconds) a new token of `sub` may carry so it
   * is not refused by a subject revocation made in the current second; 0
   * when none is in force.
   */
  earliestIat(sub: string): number;
  /** Whether the copy has every revocation the database holds, as far as this instance can know (see above). */
  isCurrent(): boolean;
  /** Adds entries already persisted to this instance's copy and tells every other instance. */
  announce(jtis: readonly RevokedJtiEntry[], subjects?: readonly RevokedSubject[]): Promise<void>;
  start(): Promise<() => Promise<void>>;
}

interface Message {
  j?: Array<[string, number]>;
  s?: Array<[string, number, number]>;
}

export function createDenyList(deps: DenyListDeps): DenyList {
  const { repo, kv, now } = deps;
  const pollIntervalMs = deps.pollIntervalMs ?? 5_000;
  const onError = deps.onError ?? (() => {});
  /** jti → expiry (ms). */
  const jtis = new Map<string, number>();
  /** sub → tokens issued before `notBeforeMs` are refused, until `expiresMs`. */
  const subjects = new Map<string, { notBeforeMs: number; expiresMs: number }>();
  let jtiCursor: Date | null = null;
  let subjectCursor: Date | null = null;
  /** Whether the subscription is in effect now. */
  let live = false;
  /** Counts the subscription's changes, so a sync knows whether it was live throughout. */
  let liveChanges = 0;
  let current = false;

  const addJti = (jti: string, expiresMs: number) => {
    if (expiresMs > now()) jtis.set(jti, expiresMs);
  };
  const addSubject = (sub: string, notBeforeMs: number, expiresMs: number) => {
    if (expiresMs <= now()) return;
    const old = subjects.get(sub);
    subjects.set(sub, { notBeforeMs: Math.max(notBeforeMs, old?.notBeforeMs ?? 0), expiresMs: Math.max(expiresMs, old?.expiresMs ?? 0) });
  };

  const sweep = () => {
    const t = now();
    for (const [jti, expiresMs] of jtis) if (expiresMs <= t) jtis.delete(jti);
    for (const [sub, entry] of subjects) if (entry.expiresMs <= t) subjects.delete(sub);
  };

  const back = (cursor: Date | null) => (cursor === null ? null : new Date(cursor.getTime() - POLL_OVERLAP_MS));

  const sync = async () => {
    // Live since before this read, and still (checked after it): the copy is then current.
    const wasLive = live;
    const changesBefore = liveChanges;
    const at = new Date(now());
    const [revoked, revokedSubjects] = await Promise.all([repo.listSince(back(jtiCursor), at), repo.listSubjectsSince(back(subjectCursor), at)]);
    for (const entry of revoked) {
      addJti(entry.jti, entry.expiresAt.getTime());
      if (jtiCursor === null || entry.revokedAt > jtiCursor) jtiCursor = entry.revokedAt;
    }
    for (const entry of revokedSubjects) {
      addSubject(entry.sub, entry.notBefore.getTime(), entry.expiresAt.getTime());
      if (subjectCursor === null || entry.notBefore > subjectCursor) subjectCursor = entry.notBefore;
    }
    // Nothing seen yet: later polls need not re-read from the beginning of time.
    jtiCursor ??= at;
    subjectCursor ??= at;
    sweep();
    if (wasLive && live && liveChanges === changesBefore) current = true;
  };

  /** Syncs begun by the poll or by the subscription's coming back: awaited when stopping, none begun after. */
  const background = backgroundRuns(onError);
  const syncInBackground = () => background.run(sync);

  const onLive = (isLive: boolean) => {
    live = isLive;
    liveChanges += 1;
    current = false;
    // Back: catch up with what was announced while the subscription was down.
    if (isLive) syncInBackground();
  };

  const onMessage = (raw: string) => {
    try {
      const message = JSON.parse(raw) as Message;
      for (const entry of Array.isArray(message.j) ? message.j : []) {
        if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number') addJti(entry[0], entry[1]);
      }
      for (const entry of Array.isArray(message.s) ? message.s : []) {
        if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number' && typeof entry[2] === 'number') {
          addSubject(entry[0], entry[1], entry[2]);
        }
      }
    } catch (err) {
      onError(err);
    }
  };

  return {
    isDenied(jti, sub, iat, clientId) {
      if (jtis.has(jti)) return true;
      if (subjects.size === 0) return false;
      const subject = subjects.get(sub);
      if (subject !== undefined && iat * 1000 < subject.notBeforeMs) return true;
      const client = subjects.get(clientSubject(clientId));
      return client !== undefined && iat * 1000 < client.notBeforeMs;
    },
    isCurrent: () => current,
    earliestIat(sub) {
      const subject = subjects.size === 0 ? undefined : subjects.get(sub);
      return subject === undefined ? 0 : Math.ceil(subject.notBeforeMs / 1000);
    },
    async announce(entries, revokedSubjects = []) {
      if (entries.length === 0 && revokedSubjects.length === 0) return;
      for (const e of entries) addJti(e.jti, e.expiresAt.getTime());
      for (const s of revokedSubjects) addSubject(s.sub, s.notBefore.getTime(), s.expiresAt.getTime());
      const message: Message = {
        j: entries.map((e) => [e.jti, e.expiresAt.getTime()]),
        s: revokedSubjects.map((s) => [s.sub, s.notBefore.getTime(), s.expiresAt.getTime()]),
      };
      // Best effort: the database poll delivers it if the TTL store is down.
      await kv.publish(REVOCATIONS_CHANNEL, JSON.stringify(message)).catch(onError);
    },
    async start() {
      const unsubscribe = await kv.subscribe(REVOCATIONS_CHANNEL, onMessage, onLive);
      await sync();
      const timer = setInterval(syncInBackground, pollIntervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        onLive(false);
        await background.stop();
        await unsubscribe();
      };
    },
  };
}
