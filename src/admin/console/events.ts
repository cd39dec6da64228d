/**
 * The admin console's Events page: the audit trail, newest first, with the
 * filters of `GET /admin/events` in a GET form (so a filtered view is a link
 * to share) and paging that keeps them. A bad filter shows the form again
 * with the message.
 */
import type { FastifyInstance } from 'fastify';
import { AUDIT_EVENT_TYPES, AUDIT_OUTCOMES, type AuditEvent } from '../../audit/events.js';
import type { AuditFilterInput } from '../../audit/filter.js';
import { OAuthError } from '../../errors.js';
import { CONSOLE, PAGE_SIZE, pager, type ConsoleContext } from './context.js';

const FILTERS = ['type', 'actor', 'subject', 'client_id', 'outcome', 'since', 'until'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

const filterString = { type: 'string', maxLength: 200 } as const;
const eventsQuery = {
  type: 'object',
  properties: {
    page: { type: 'integer', minimum: 1, maximum: 100_000 },
    ...Object.fromEntries(FILTERS.map((name) => [name, filterString])),
  },
} as const;

/** The prefixes offered next to the types (`user.`, `client.`, …). */
const TYPE_CHOICES = [...new Set(AUDIT_EVENT_TYPES.map((t) => `${t.split('.')[0]!}.`)), ...AUDIT_EVENT_TYPES];

function actorLabel(actor: AuditEvent['actor']): string {
  if (actor.type === 'cli') return 'CLI';
  if (actor.type === 'system') return 'system';
  if (actor.type === 'anonymous') return 'anonymous';
  return actor.username ?? actor.id ?? 'unknown';
}

function detailsText(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(' ') || '-' : String(value as string | number | boolean)}`)
    .join('; ');
}

function eventRow(event: AuditEvent) {
  return {
    time: event.occurredAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    type: event.type,
    outcome: event.outcome,
    actor: actorLabel(event.actor),
    // Filtering by id when there is one: a username typed at a failed sign-in is matched by name.
    actorFilter: event.actor.id ?? event.actor.username ?? null,
    subject: event.subject,
    clientId: event.clientId,
    ip: event.ip ?? '',
    details: detailsText(event.details),
  };
}

/** Registers the Events page on the console's scope. */
export function registerEventPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { services, render, navModel, takeNotice, guarded, admin } = ctx;

  app.get<{ Querystring: Partial<Filters> & { page?: number } }>(`${CONSOLE}/events`, { ...guarded, schema: { querystring: eventsQuery } }, async (request, reply) => {
    const a = admin(request);
    const page = request.query.page ?? 1;
    const filters = Object.fromEntries(FILTERS.map((name) => [name, (request.query[name] ?? '').trim()])) as Filters;
    const view = {
      title: 'Events',
      admin: navModel(a),
      notice: await takeNotice(a),
      filters,
      typeChoices: TYPE_CHOICES,
      outcomes: AUDIT_OUTCOMES,
      retentionDays: services.config.auditRetentionDays,
    };
    let listed;
    try {
      listed = await services.audit.list(filters satisfies AuditFilterInput, { limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE });
    } catch (err) {
      if (err instanceof OAuthError && err.status === 400) {
        return render(reply, 400, 'events', { ...view, error: err.description, events: [], pager: pager(`${CONSOLE}/events`, 1, 0) });
      }
      throw err;
    }
    const kept = Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== ''));
    return render(reply, 200, 'events', {
      ...view,
      error: null,
      events: listed.events.map(eventRow),
      pager: pager(`${CONSOLE}/events`, page, listed.total, kept),
    });
  });
}
