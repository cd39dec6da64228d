/** `events …`: read the audit trail (the same filters as `GET /admin/events`). */
import { AUDIT_EVENT_TYPES, AUDIT_OUTCOMES, type AuditEvent } from '../../audit/events.js';
import { parseAuditFilter, type AuditFilterInput } from '../../audit/filter.js';
import { OAuthError } from '../../errors.js';
import { auditEventToWire } from '../wire.js';
import { pageArgs, pageOptions, stringValue, table } from './format.js';
import { UsageError, type Command, type CommandGroup } from './types.js';

function actorText(actor: AuditEvent['actor']): string {
  if (actor.type !== 'user') return actor.type;
  return actor.username ?? actor.id ?? 'unknown';
}

function detailsText(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : String(value as string | number | boolean)}`)
    .join(' ');
}

const list: Command = {
  name: 'list',
  summary: 'List audit events, newest first (sign-ins, throttling, refresh-token reuse, consent, changes to clients, users and keys)',
  options: {
    type: { type: 'string', valueName: 'TYPE', description: `An event type, or a prefix ending in "." (e.g. user.): ${AUDIT_EVENT_TYPES.join(', ')}` },
    actor: { type: 'string', valueName: 'WHO', description: 'A user id or username (also the name typed at a failed sign-in)' },
    subject: { type: 'string', valueName: 'ID', description: 'What was acted on: a user id, client_id, kid or refresh-token family id' },
    'client-id': { type: 'string', valueName: 'CLIENT_ID', description: 'The OAuth client involved' },
    outcome: { type: 'string', valueName: 'OUTCOME', description: AUDIT_OUTCOMES.join(' or ') },
    since: { type: 'string', valueName: 'TIME', description: 'ISO 8601 date or date-time, UTC unless a zone is given (events at or after it)' },
    until: { type: 'string', valueName: 'TIME', description: 'ISO 8601 date or date-time (events before it)' },
    ...pageOptions,
  },
  examples: ['events list --type sign_in.failed --since 2025-01-31', 'events list --type user. --actor alice --limit 20', 'events list --client-id CLIENT_ID --json'],
  async run(services, args) {
    const filter: AuditFilterInput = {
      type: stringValue(args, 'type'),
      actor: stringValue(args, 'actor'),
      subject: stringValue(args, 'subject'),
      client_id: stringValue(args, 'client-id'),
      outcome: stringValue(args, 'outcome'),
      since: stringValue(args, 'since'),
      until: stringValue(args, 'until'),
    };
    try {
      parseAuditFilter(filter);
    } catch (err) {
      // A malformed filter is a mistake in the call: exit code 2.
      if (err instanceof OAuthError) throw new UsageError(err.description);
      throw err;
    }
    const page = pageArgs(args);
    const { events, total } = await services.audit.list(filter, page);
    const rows = events.map((e) => [
      e.occurredAt.toISOString(),
      e.type,
      e.outcome,
      actorText(e.actor),
      e.subject ? `${e.subject.type}:${e.subject.id}` : '-',
      e.clientId ?? '-',
      e.ip ?? '-',
      detailsText(e.details),
    ]);
    const footer = `${events.length} of ${total} event(s)${page.offset > 0 ? ` from offset ${page.offset}` : ''}`;
    return {
      data: { items: events.map(auditEventToWire), total, ...page },
      text: events.length === 0 ? `No events (${total} in total).` : `${table(['TIME', 'TYPE', 'OUTCOME', 'ACTOR', 'SUBJECT', 'CLIENT', 'IP', 'DETAILS'], rows)}\n\n${footer}`,
    };
  },
};

export const eventCommands: CommandGroup = {
  name: 'events',
  summary: 'The audit trail: list security events',
  commands: [list],
};
