/**
 * The filters of the audit trail, read the same way by the admin API
 * (`GET /admin/events`), the console's Events page and `events list`: an
 * empty value is no filter; a type ending in `.` is a prefix (`user.`);
 * times are ISO 8601, UTC unless they say otherwise.
 */
import { invalidRequest } from '../errors.js';
import type { AuditEventFilter } from '../storage/types.js';
import { AUDIT_OUTCOMES } from './events.js';

/** The filters as they arrive (query string, form, command line). */
export interface AuditFilterInput {
  type?: string | undefined;
  actor?: string | undefined;
  subject?: string | undefined;
  client_id?: string | undefined;
  outcome?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

export const AUDIT_TYPE_PATTERN = '^[a-z0-9_.]{1,64}$';
const TYPE = new RegExp(AUDIT_TYPE_PATTERN);
/** A date, or a date and time (minutes at least), with an optional zone: `2025-01-31`, `2025-01-31T08:00`, `2025-01-31T08:00:00.5+01:00`. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/i;
export const MAX_FILTER_LENGTH = 200;

/** Whether the `YYYY-MM-DD` that `raw` starts with is a day of the calendar (`2026-02-30` is not). */
function isCalendarDay(raw: string): boolean {
  const [year, month, day] = raw.slice(0, 10).split('-').map(Number) as [number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  // An impossible month or day rolls over into the next month (or year).
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function time(name: string, raw: string): Date {
  if (!ISO_TIME.test(raw)) throw invalidRequest(`${name} must be an ISO 8601 date or date-time, e.g. 2025-01-31 or 2025-01-31T08:00:00Z`);
  // `new Date` rolls a day past the month's end over (2026-02-30 is March 2nd), silently moving the filter.
  if (!isCalendarDay(raw)) throw invalidRequest(`${name} is not a valid date`);
  // A date alone, or a time without a zone, is UTC (Date.parse would take the latter as local time).
  const text = raw.length === 10 ? `${raw}T00:00:00Z` : /(?:Z|[+-]\d{2}:\d{2})$/i.test(raw) ? raw : `${raw}Z`;
  const at = new Date(text.replace(' ', 'T'));
  if (Number.isNaN(at.getTime())) throw invalidRequest(`${name} is not a valid date`);
  return at;
}

/** Turns the filters as given into the repository's filter; throws `invalid_request` naming the bad one. */
export function parseAuditFilter(input: AuditFilterInput): AuditEventFilter {
  const value = (name: keyof AuditFilterInput): string | undefined => {
    const raw = input[name]?.trim();
    if (raw === undefined || raw === '') return undefined;
    if (raw.length > MAX_FILTER_LENGTH) throw invalidRequest(`${name} must be at most ${MAX_FILTER_LENGTH} characters`);
    return raw;
  };
  const filter: AuditEventFilter = {};
  const type = value('type');
  if (type !== undefined) {
    if (!TYPE.test(type)) throw invalidRequest('type must be an event type (e.g. sign_in.failed) or a prefix ending in "." (e.g. user.)');
    if (type.endsWith('.')) filter.typePrefix = type;
    else filter.type = type;
  }
  const actor = value('actor');
  if (actor !== undefined) filter.actor = actor;
  const subject = value('subject');
  if (subject !== undefined) filter.subjectId = subject;
  const clientId = value('client_id');
  if (clientId !== undefined) filter.clientId = clientId;
  const outcome = value('outcome');
  if (outcome !== undefined) {
    if (!(AUDIT_OUTCOMES as readonly string[]).includes(outcome)) throw invalidRequest(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`);
    filter.outcome = outcome;
  }
  const since = value('since');
  if (since !== undefined) filter.since = time('since', since);
  const until = value('until');
  if (until !== undefined) filter.until = time('until', until);
  return filter;
}
