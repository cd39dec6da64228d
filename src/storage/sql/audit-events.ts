/**
 * The audit trail's table (`audit_events`, migration 0005). The list and
 * count statements are put together from fixed fragments, one per filter
 * given, so each combination has its own plan that can use the filter's
 * index; every value is a parameter.
 */
import type { AuditEventFilter, AuditEventRecord, AuditEventRepo, Db, NewAuditEvent, Page } from '../types.js';

interface AuditEventRow {
  id: string;
  occurred_at: Date;
  type: string;
  outcome: string;
  actor_type: string;
  actor_id: string | null;
  actor_name: string | null;
  subject_type: string | null;
  subject_id: string | null;
  client_id: string | null;
  ip: string | null;
  details: Record<string, unknown> | null;
}

const COLUMNS = 'id::text AS id, occurred_at, type, outcome, actor_type, actor_id, actor_name, subject_type, subject_id, client_id, ip, details';

function toRecord(row: AuditEventRow): AuditEventRecord {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    type: row.type,
    outcome: row.outcome,
    actorType: row.actor_type,
    actorId: row.actor_id,
    actorName: row.actor_name,
    subjectType: row.subject_type,
    subjectId: row.subject_id,
    clientId: row.client_id,
    ip: row.ip,
    details: row.details ?? {},
  };
}

/**
 * The smallest string greater than every string starting with `prefix` in
 * the C collation (bytewise): the prefix with its last character incremented.
 * Null when there is none (a prefix of U+FFFF characters): then no upper bound.
 */
function prefixEnd(prefix: string): string | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const code = prefix.charCodeAt(i);
    if (code < 0xffff) return prefix.slice(0, i) + String.fromCharCode(code + 1);
  }
  return null;
}

/** `WHERE …` and its parameters for `filter` (the parameters numbered from 1). */
function where(filter: AuditEventFilter): { clause: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.type !== undefined) conditions.push(`type = ${param(filter.type)}`);
  if (filter.typePrefix !== undefined) {
    // A range on the C-collated column: index-friendly, and no LIKE wildcards to escape.
    conditions.push(`type >= ${param(filter.typePrefix)}`);
    const end = prefixEnd(filter.typePrefix);
    if (end !== null) conditions.push(`type < ${param(end)}`);
  }
  if (filter.actor !== undefined) {
    const value = param(filter.actor);
    conditions.push(`(actor_id = ${value} OR lower(actor_name) = lower(${value}))`);
  }
  if (filter.subjectId !== undefined) conditions.push(`subject_id = ${param(filter.subjectId)}`);
  if (filter.clientId !== undefined) conditions.push(`client_id = ${param(filter.clientId)}`);
  if (filter.outcome !== undefined) conditions.push(`outcome = ${param(filter.outcome)}`);
  if (filter.since !== undefined) conditions.push(`occurred_at >= ${param(filter.since)}`);
  if (filter.until !== undefined) conditions.push(`occurred_at < ${param(filter.until)}`);
  return { clause: conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`, params };
}

export function createAuditEventRepo(db: Db): AuditEventRepo {
  return {
    async insert(event: NewAuditEvent) {
      await db.query(
        `INSERT INTO audit_events (occurred_at, type, outcome, actor_type, actor_id, actor_name, subject_type, subject_id, client_id, ip, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          event.occurredAt,
          event.type,
          event.outcome,
          event.actorType,
          event.actorId,
          event.actorName,
          event.subjectType,
          event.subjectId,
          event.clientId,
          event.ip,
          JSON.stringify(event.details),
        ],
      );
    },
    async list(filter, page: Page) {
      const { clause, params } = where(filter);
      const rows = await db.query<AuditEventRow>(
        `SELECT ${COLUMNS} FROM audit_events ${clause} ORDER BY occurred_at DESC, id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, page.limit, page.offset],
      );
      return rows.map(toRecord);
    },
    async count(filter) {
      const { clause, params } = where(filter);
      const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events ${clause}`, params);
      return rows[0]!.n;
    },
    async deleteBefore(cutoff) {
      const rows = await db.query<{ n: number }>(
        'WITH gone AS (DELETE FROM audit_events WHERE occurred_at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone',
        [cutoff],
      );
      return rows[0]!.n;
    },
  };
}
