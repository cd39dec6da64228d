/**
 * The audit trail's rules without a database: how filters are read, what
 * details may hold, how a sign-in attempt becomes an event, and that
 * recording never throws into the caller (a fake repository fails on purpose).
 */
import t from 'tap';
import { parseAuditFilter } from '../../src/audit/filter.js';
import { cleanDetails, createAuditTrail } from '../../src/audit/service.js';
import { signInEvent } from '../../src/audit/sign-in.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { isOAuthError } from '../../src/errors.js';
import type { AuditEventFilter, AuditEventRepo, NewAuditEvent } from '../../src/storage/types.js';

const DAY = 86_400_000;

/** A repository in memory that can be told to fail. */
function fakeRepo() {
  const rows: NewAuditEvent[] = [];
  let failing: Error | null = null;
  const cutoffs: Date[] = [];
  const repo: AuditEventRepo & { rows: NewAuditEvent[]; fail(err: Error | null): void; cutoffs: Date[] } = {
    rows,
    cutoffs,
    fail(err) {
      failing = err;
    },
    async insert(event) {
      await new Promise((resolve) => setImmediate(resolve));
      if (failing) throw failing;
      rows.push(event);
    },
    async list(_filter: AuditEventFilter) {
      return rows.map((r, i) => ({ ...r, id: String(i + 1) })).reverse();
    },
    async count() {
      return rows.length;
    },
    async deleteBefore(cutoff) {
      if (failing) throw failing;
      cutoffs.push(cutoff);
      const before = rows.length;
      rows.splice(0, rows.length, ...rows.filter((r) => r.occurredAt >= cutoff));
      return before - rows.length;
    },
  };
  return repo;
}

t.test('AUDIT_RETENTION_DAYS: 90 by default, whole days from 1 to 3650', async (t) => {
  t.equal(loadConfig({}).auditRetentionDays, 90);
  t.equal(loadConfig({ AUDIT_RETENTION_DAYS: '7' }).auditRetentionDays, 7);
  for (const bad of ['0', '3651', '1.5', 'forever', '-1']) {
    t.throws(() => loadConfig({ AUDIT_RETENTION_DAYS: bad }), ConfigError, `"${bad}" is refused`);
    t.throws(() => loadConfig({ AUDIT_RETENTION_DAYS: bad }), /^AUDIT_RETENTION_DAYS: /);
  }
});

t.test('filters: empty is none, a trailing dot is a prefix, times are UTC unless zoned', async (t) => {
  t.same(parseAuditFilter({}), {});
  t.same(parseAuditFilter({ type: '', actor: '  ', outcome: '' }), {}, 'empty values (a GET form) are no filter');
  t.same(parseAuditFilter({ type: 'user.' }), { typePrefix: 'user.' });
  t.same(parseAuditFilter({ type: 'sign_in.failed' }), { type: 'sign_in.failed' });
  t.same(parseAuditFilter({ actor: ' alice ', subject: 's', client_id: 'c', outcome: 'failure' }), { actor: 'alice', subjectId: 's', clientId: 'c', outcome: 'failure' });
  t.same(parseAuditFilter({ since: '2025-01-31' }).since, new Date('2025-01-31T00:00:00Z'), 'a date is midnight UTC');
  t.same(parseAuditFilter({ since: '2025-01-31T08:30' }).since, new Date('2025-01-31T08:30:00Z'), 'no zone: UTC');
  t.same(parseAuditFilter({ since: '2025-01-31 08:30:15.5' }).since, new Date('2025-01-31T08:30:15.500Z'), 'a space for the T');
  t.same(parseAuditFilter({ until: '2025-01-31T08:30:00+02:00' }).until, new Date('2025-01-31T06:30:00Z'), 'a zone is honoured');
  t.same(parseAuditFilter({ since: '2024-02-29' }).since, new Date('2024-02-29T00:00:00Z'), 'a leap day in a leap year');
  for (const [input, name] of [
    [{ type: 'User.Created' }, 'type'],
    [{ type: 'user.*' }, 'type'],
    [{ outcome: 'maybe' }, 'outcome'],
    [{ since: 'yesterday' }, 'since'],
    [{ since: '2025-13-45' }, 'since'],
    [{ until: '2025-01-31T25:00' }, 'until'],
    [{ since: '2026-02-30' }, 'since'],
    [{ since: '2026-02-29T08:00Z' }, 'since'],
    [{ until: '2026-04-31' }, 'until'],
    [{ since: '2026-00-10' }, 'since'],
    [{ actor: 'x'.repeat(201) }, 'actor'],
  ] as const) {
    let refused: unknown = null;
    try {
      parseAuditFilter(input);
    } catch (err) {
      refused = err;
    }
    t.ok(isOAuthError(refused) && refused.error === 'invalid_request' && refused.description.startsWith(name), `${JSON.stringify(input)} is refused naming ${name}`);
  }
});

t.test('details keep only the known keys, each of its type, cut to size', async (t) => {
  const cleaned = cleanDetails({
    username: 'alice',
    password: 'hunter2hunter2',
    client_secret: 'sssh',
    refresh_token: 'rt',
    code: 'c',
    password_hash: '$argon2id$…',
    nested: { a: 1 },
    roles: ['admin', 42, 'support'],
    slowed_ms: 2.5,
    reason: 'x'.repeat(500),
    fields: Array.from({ length: 80 }, (_, i) => `f${i}`),
    source: 'login\u0000form\u001b[31m',
  });
  t.same(Object.keys(cleaned).sort(), ['fields', 'reason', 'roles', 'source', 'username']);
  t.same(cleaned.roles, ['admin', 'support'], 'only strings in a list');
  t.equal((cleaned.reason as string).length, 200, 'strings cut at 200');
  t.equal((cleaned.fields as string[]).length, 50, 'lists cut at 50');
  t.equal(cleaned.source, 'login?form?[31m', 'control characters replaced');
  t.notOk('slowed_ms' in cleaned, 'an integer field refuses a fraction');
});

t.test('a sign-in attempt becomes one event', async (t) => {
  const base = { username: 'alice', ip: '192.0.2.1', source: 'login_form' as const, clientId: null, slowedMs: 0, userId: null };
  t.match(signInEvent({ ...base, outcome: 'signed_in', userId: 'u1' }), {
    type: 'sign_in.succeeded',
    actor: { type: 'user', id: 'u1', username: 'alice' },
    subject: { type: 'user', id: 'u1' },
    ip: '192.0.2.1',
    details: { source: 'login_form' },
  });
  const failed = signInEvent({ ...base, outcome: 'invalid_credentials', slowedMs: 500 });
  t.match(failed, { type: 'sign_in.failed', outcome: 'failure', actor: { id: null, username: 'alice' }, subject: null, details: { reason: 'invalid_credentials', slowed_ms: 500 } });
  t.match(signInEvent({ ...base, outcome: 'disabled', userId: 'u1' }), { type: 'sign_in.failed', details: { reason: 'disabled' } });
  const throttled = signInEvent({ ...base, outcome: 'throttled', source: 'password_grant', clientId: 'c1' });
  t.match(throttled, { type: 'sign_in.throttled', outcome: 'failure', clientId: 'c1', details: { source: 'password_grant' } });
  t.notOk('slowed_ms' in throttled.details!, 'no slow-down when there was none');
});

t.test('recording: the clock, the actor name cut, and a failing insert that never reaches the caller', async (t) => {
  let clock = Date.parse('2025-06-01T00:00:00Z');
  const repo = fakeRepo();
  const errors: Array<{ err: unknown; what: string }> = [];
  const audit = createAuditTrail({ repo, now: () => clock, retentionDays: 90, onError: (err, what) => errors.push({ err, what }) });

  await audit.record({ type: 'sign_in.failed', outcome: 'failure', actor: { type: 'user', id: null, username: `${'x'.repeat(100)}` }, ip: '192.0.2.1' });
  t.equal(repo.rows.length, 1);
  t.same(repo.rows[0]!.occurredAt, new Date(clock), 'dated by the injected clock');
  t.equal(repo.rows[0]!.actorName!.length, 64, 'a typed username is cut to 64 characters');
  t.equal(repo.rows[0]!.outcome, 'failure');

  repo.fail(new Error('database gone'));
  await t.resolves(audit.record({ type: 'user.created', actor: { type: 'cli' } }), 'a failed insert resolves');
  t.equal(errors.length, 1);
  t.match(errors[0], { what: 'writing audit event user.created', err: { message: 'database gone' } });
  repo.fail(null);

  // Not awaited (as the sign-in hook does): flush() waits for it.
  void audit.record({ type: 'key.rotated', actor: { type: 'cli' }, subject: { type: 'key', id: 'kid-1' } });
  t.equal(repo.rows.length, 1, 'still being written');
  await audit.flush();
  t.equal(repo.rows.length, 2, 'written once flushed');
  t.match(repo.rows[1], { actorType: 'cli', actorId: null, actorName: null, subjectType: 'key', subjectId: 'kid-1', outcome: 'success' });

  clock += 10 * DAY;
  t.equal(await audit.prune(), 0, 'nothing is 90 days old yet');
  t.same(repo.cutoffs.at(-1), new Date(clock - 90 * DAY));
});

t.test('the pruning timer deletes old events, reports its failures and stops', async (t) => {
  let clock = Date.parse('2025-06-01T00:00:00Z');
  const repo = fakeRepo();
  const errors: string[] = [];
  const audit = createAuditTrail({ repo, now: () => clock, retentionDays: 30, pruneIntervalMs: 10, onError: (_err, what) => errors.push(what) });
  await audit.record({ type: 'user.created', actor: { type: 'system' } });
  clock += 20 * DAY;
  await audit.record({ type: 'user.deleted', actor: { type: 'system' } });
  const stop = audit.start();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(repo.rows.length, 2, 'nothing older than 30 days yet');
  clock += 15 * DAY;
  const deadline = Date.now() + 5_000;
  while (repo.rows.length > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(
    repo.rows.map((r) => r.type),
    ['user.deleted'],
    'the event 35 days old is gone, the one 15 days old stays',
  );
  repo.fail(new Error('database gone'));
  while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(errors.slice(0, 1), ['pruning old audit events'], 'a failed prune is reported, not thrown');
  await stop();
  const prunes = repo.cutoffs.length;
  repo.fail(null);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(repo.cutoffs.length, prunes, 'no pruning after stop');
});
