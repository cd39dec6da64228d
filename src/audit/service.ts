/**
 * The audit trail (`services.audit`): security events written to the
 * database, listed newest first by the admin API, the console and the CLI,
 * and deleted after `AUDIT_RETENTION_DAYS`.
 *
 * Recording never fails the request it describes: a failed insert (the
 * database away, a bug) goes to `onError` (the server logs it) and the
 * request goes on. Writes still in flight are awaited by `flush()`, which
 * `services.close()` calls before the storage closes.
 *
 * Details are cleaned on the way in, so a careless caller cannot store a
 * secret or a large object: only the keys listed in `AUDIT_DETAIL_FIELDS`,
 * each of its type (strings cut at 200 characters, lists at 50). Every
 * stored string loses its control characters (a typed username is shown in
 * a terminal).
 */
import type { AuditEventRecord, AuditEventRepo, Page } from '../storage/types.js';
import { AUDIT_DETAIL_FIELDS, type AuditEvent, type AuditEventInput, type AuditRecorder } from './events.js';
import { parseAuditFilter, type AuditFilterInput } from './filter.js';

const DAY_MS = 86_400_000;
const MAX_DETAIL_STRING = 200;
const MAX_DETAIL_LIST = 50;
/** Longest actor name kept: a username someone typed at a failed sign-in is cut here. */
const MAX_ACTOR_NAME = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

export interface AuditTrailDeps {
  repo: AuditEventRepo;
  now: () => number;
  retentionDays: number;
  /** How often old events are deleted, ms (default hourly). */
  pruneIntervalMs?: number;
  /** A failed write or prune; it never reaches a request. */
  onError?: (err: unknown, what: string) => void;
}

export interface AuditTrail extends AuditRecorder {
  /** Events matching the filters (see `filter.ts`; throws `invalid_request` for a bad one), newest first, and how many match in all. */
  list(filter: AuditFilterInput, page: Page): Promise<{ events: AuditEvent[]; total: number }>;
  /** Deletes events older than the retention period, as of `now()`; returns how many. */
  prune(): Promise<number>;
  /** Resolves when every write started so far has finished. */
  flush(): Promise<void>;
  /** Prunes now and then every `pruneIntervalMs` (unref'd timer); returns the stop. */
  start(): () => Promise<void>;
}

function clean(text: string, max: number): string {
  return text.replace(CONTROL, '?').slice(0, max);
}

/** The details as stored: only the keys of `AUDIT_DETAIL_FIELDS`, each with a value of its type. */
export function cleanDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(AUDIT_DETAIL_FIELDS)) {
    const value = details?.[key];
    if (kind === 'string' && typeof value === 'string') out[key] = clean(value, MAX_DETAIL_STRING);
    else if (kind === 'integer' && Number.isSafeInteger(value)) out[key] = value;
    else if (kind === 'strings' && Array.isArray(value)) {
      out[key] = value
        .filter((v): v is string => typeof v === 'string')
        .slice(0, MAX_DETAIL_LIST)
        .map((v) => clean(v, MAX_DETAIL_STRING));
    }
  }
  return out;
}

function toEvent(record: AuditEventRecord): AuditEvent {
  return {
    id: record.id,
    occurredAt: record.occurredAt,
    type: record.type,
    outcome: record.outcome,
    actor: { type: record.actorType, id: record.actorId, username: record.actorName },
    subject: record.subjectType !== null && record.subjectId !== null ? { type: record.subjectType, id: record.subjectId } : null,
    clientId: record.clientId,
    ip: record.ip,
    details: record.details,
  };
}

export function createAuditTrail(deps: AuditTrailDeps): AuditTrail {
  const { repo, now } = deps;
  const onError = deps.onError ?? (() => {});
  const pruneIntervalMs = deps.pruneIntervalMs ?? 3_600_000;
  const inFlight = new Set<Promise<unknown>>();

  /** Runs `work` to completion in the background of whoever called, counted for `flush()`; never rejects. */
  const track = <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
    const running = (async () => {
      try {
        return await work();
      } catch (err) {
        onError(err, what);
        return undefined;
      }
    })();
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
    return running;
  };

  const prune = () => repo.deleteBefore(new Date(now() - deps.retentionDays * DAY_MS));

  return {
    async record(event: AuditEventInput) {
      await track(`writing audit event ${event.type}`, async () => {
        const { actor } = event;
        await repo.insert({
          occurredAt: new Date(now()),
          type: event.type,
          outcome: event.outcome ?? 'success',
          actorType: actor.type,
          actorId: actor.type === 'user' ? actor.id : null,
          actorName: actor.type === 'user' ? clean(actor.username, MAX_ACTOR_NAME) : null,
          subjectType: event.subject?.type ?? null,
          subjectId: event.subject ? clean(event.subject.id, MAX_DETAIL_STRING) : null,
          clientId: event.clientId ? clean(event.clientId, MAX_DETAIL_STRING) : null,
          ip: event.ip ? clean(event.ip, 64) : null,
          details: cleanDetails(event.details),
        });
      });
    },
    async list(input, page) {
      const filter = parseAuditFilter(input);
      const [records, total] = await Promise.all([repo.list(filter, page), repo.count(filter)]);
      return { events: records.map(toEvent), total };
    },
    prune,
    async flush() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    start() {
      const run = () => void track('pruning old audit events', prune);
      run();
      const timer = setInterval(run, pruneIntervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await Promise.all([...inFlight]);
      };
    },
  };
}
