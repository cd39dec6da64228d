/**
 * The audit trail's repository (storage/types.ts `AuditEventRepo`), written
 * once and run against every database available: PGlite always, PostgreSQL
 * too when DATABASE_URL is set. Each subtest writes its own event types (a
 * random group), so they share one database without seeing each other.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createAuditEventRepo } from '../../src/storage/sql/audit-events.js';
import type { AuditEventFilter, Db, NewAuditEvent } from '../../src/storage/types.js';
import { dbKinds, testDb } from '../helpers/backend.js';

const id = () => randomBytes(6).toString('hex');
const T0 = Date.parse('2025-03-01T12:00:00Z');
const MINUTE = 60_000;

function event(overrides: Partial<NewAuditEvent> = {}): NewAuditEvent {
  return {
    occurredAt: new Date(T0),
    type: `g${id()}.happened`,
    outcome: 'success',
    actorType: 'system',
    actorId: null,
    actorName: null,
    subjectType: null,
    subjectId: null,
    clientId: null,
    ip: null,
    details: {},
    ...overrides,
  };
}

for (const kind of dbKinds) {
  t.test(`audit events on ${kind}`, async (t) => {
    const db: Db = await testDb(t, { kind });
    const repo = createAuditEventRepo(db);

    t.test('every column round-trips; lists are newest first, ties by insertion', async (t) => {
      const group = `g${id()}`;
      const full = event({
        occurredAt: new Date(T0 + 5 * MINUTE),
        type: `${group}.full`,
        outcome: 'failure',
        actorType: 'user',
        actorId: 'user-1',
        actorName: 'Alice',
        subjectType: 'client',
        subjectId: 'client-1',
        clientId: 'client-1',
        ip: '2001:db8::1',
        details: { fields: ['redirect_uris', 'scope'], slowed_ms: 250, reason: 'x' },
      });
      await repo.insert(event({ type: `${group}.first`, occurredAt: new Date(T0) }));
      await repo.insert(full);
      // Same instant as the first: the later insert comes first.
      await repo.insert(event({ type: `${group}.second`, occurredAt: new Date(T0) }));
      const listed = await repo.list({ typePrefix: `${group}.` }, { limit: 10, offset: 0 });
      t.same(
        listed.map((e) => e.type),
        [`${group}.full`, `${group}.second`, `${group}.first`],
      );
      const { id: rowId, ...stored } = listed[0]!;
      t.match(rowId, /^\d+$/, 'the id is a decimal string');
      t.same(stored, full);
      t.ok(BigInt(listed[1]!.id) > BigInt(listed[2]!.id), 'ids grow with insertion');
      t.same(listed[2]!.details, {}, 'empty details');
    });

    t.test('filters: each alone and combined (AND)', async (t) => {
      const group = `g${id()}`;
      const at = (minutes: number) => new Date(T0 + minutes * MINUTE);
      const rows: NewAuditEvent[] = [
        event({ type: `${group}.created`, occurredAt: at(0), actorType: 'user', actorId: 'u-alice', actorName: 'Alice', subjectType: 'user', subjectId: 's-1' }),
        event({ type: `${group}.updated`, occurredAt: at(1), actorType: 'user', actorId: 'u-bob', actorName: 'bob', subjectId: 's-1', clientId: 'c-1' }),
        event({ type: `${group}.updated`, occurredAt: at(2), actorType: 'cli', subjectId: 's-2', clientId: 'c-1', outcome: 'failure' }),
        // Typed at a failed sign-in: a name, no id.
        event({ type: `${group}x.failed`, occurredAt: at(3), actorType: 'user', actorName: 'ALICE', outcome: 'failure' }),
        event({ type: `${group}_other.x`, occurredAt: at(4) }),
      ];
      for (const row of rows) await repo.insert(row);
      const types = async (filter: AuditEventFilter) => {
        const listed = await repo.list(filter, { limit: 50, offset: 0 });
        t.equal(await repo.count(filter), listed.length, 'count agrees with the list');
        return listed.map((e) => `${e.type}@${(e.occurredAt.getTime() - T0) / MINUTE}`);
      };
      // Only this subtest's rows: its group of types, its minutes.
      const mine = { typePrefix: group, since: at(0), until: at(5) };

      t.same(await types({ ...mine, type: `${group}.updated` }), [`${group}.updated@2`, `${group}.updated@1`], 'exact type');
      t.same(
        await types({ since: at(0), until: at(5), typePrefix: `${group}.` }),
        [`${group}.updated@2`, `${group}.updated@1`, `${group}.created@0`],
        'a prefix ending in "." stops at the dot: not gx.failed nor g_other',
      );
      t.same(await types({ since: at(0), until: at(5), typePrefix: `${group}_` }), [`${group}_other.x@4`], 'underscore is no wildcard');
      t.same(await types({ ...mine, actor: 'u-alice' }), [`${group}.created@0`], 'actor by user id');
      t.same(await types({ ...mine, actor: 'alice' }), [`${group}x.failed@3`, `${group}.created@0`], 'actor by username, case-insensitively');
      t.same(await types({ ...mine, subjectId: 's-1' }), [`${group}.updated@1`, `${group}.created@0`]);
      t.same(await types({ ...mine, clientId: 'c-1' }), [`${group}.updated@2`, `${group}.updated@1`]);
      t.same(await types({ ...mine, clientId: 'c-1', outcome: 'failure' }), [`${group}.updated@2`], 'combined');
      t.same(await types({ typePrefix: `${group}`, since: at(1), until: at(3) }), [`${group}.updated@2`, `${group}.updated@1`], 'since inclusive, until exclusive');
      t.same(await types({ ...mine, type: `${group}.nothing` }), [], 'no match');
    });

    t.test('paging: limit and offset over the newest-first order', async (t) => {
      const group = `g${id()}`;
      for (let i = 0; i < 7; i++) await repo.insert(event({ type: `${group}.n${i}`, occurredAt: new Date(T0 + i * MINUTE) }));
      const page = async (limit: number, offset: number) => (await repo.list({ typePrefix: `${group}.` }, { limit, offset })).map((e) => e.type.split('.')[1]);
      t.same(await page(3, 0), ['n6', 'n5', 'n4']);
      t.same(await page(3, 3), ['n3', 'n2', 'n1']);
      t.same(await page(3, 6), ['n0']);
      t.same(await page(3, 9), []);
      t.equal(await repo.count({ typePrefix: `${group}.` }), 7);
    });

    t.test('deleteBefore removes exactly the events older than the cut-off', async (t) => {
      const group = `g${id()}`;
      // Far in the past, so no other subtest's rows are older.
      const old = Date.parse('2001-01-01T00:00:00Z');
      await repo.insert(event({ type: `${group}.old`, occurredAt: new Date(old) }));
      await repo.insert(event({ type: `${group}.older`, occurredAt: new Date(old - MINUTE) }));
      await repo.insert(event({ type: `${group}.cutoff`, occurredAt: new Date(old + MINUTE) }));
      t.equal(await repo.deleteBefore(new Date(old + MINUTE)), 2);
      t.same((await repo.list({ typePrefix: `${group}.` }, { limit: 10, offset: 0 })).map((e) => e.type), [`${group}.cutoff`], 'the one at the cut-off stays');
      t.equal(await repo.deleteBefore(new Date(old + MINUTE)), 0, 'nothing left to delete');
    });

    t.test('each filter has an index', async (t) => {
      const rows = await db.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_events'");
      const defs = rows.map((r) => r.indexdef).join('\n');
      for (const column of ['occurred_at', '(type', '(actor_id', 'lower(actor_name)', '(subject_id', '(client_id', '(outcome']) {
        t.ok(defs.includes(column), `an index on ${column}`);
      }
    });
  });
}
