import t from 'tap';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { ANONYMOUS_SESSION_TTL_SECONDS, createSessionService, MAX_REMEMBERED_CLIENTS, type EndedSession } from '../../src/sessions/service.js';

t.test('anonymous sessions expire early; signed-in sessions last SESSION_TTL', async (t) => {
  let nowMs = Date.UTC(2026, 0, 1);
  const now = () => nowMs;
  const kv = createMemoryKv({ now });
  t.teardown(() => kv.close());
  const sessions = createSessionService({ kv, ttlSeconds: 28_800, now });

  const anonymous = await sessions.create();
  const signedIn = await sessions.signIn(await sessions.create(), 'user-1');

  nowMs += (ANONYMOUS_SESSION_TTL_SECONDS - 1) * 1000;
  t.ok(await sessions.load(anonymous.id), 'anonymous session alive just before its TTL');
  nowMs += 2000;
  t.equal(await sessions.load(anonymous.id), null, 'anonymous session gone after its TTL');
  t.ok(await sessions.load(signedIn.id), 'signed-in session still alive');

  nowMs += 28_800 * 1000;
  t.equal(await sessions.load(signedIn.id), null, 'signed-in session gone after SESSION_TTL');
});

t.test('sign-in replaces the session id and the CSRF token', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const sessions = createSessionService({ kv, ttlSeconds: 600 });
  const before = await sessions.create();
  const after = await sessions.signIn(before, 'user-1');
  t.not(after.id, before.id);
  t.not(after.csrfToken, before.csrfToken);
  t.equal(await sessions.load(before.id), null, 'old id no longer works');
  t.equal((await sessions.load(after.id))?.userId, 'user-1');
  t.ok(sessions.verifyCsrf(after, after.csrfToken));
  t.notOk(sessions.verifyCsrf(after, before.csrfToken), 'the pre-sign-in token is refused');
  t.notOk(sessions.verifyCsrf(after, undefined));
  t.notOk(sessions.verifyCsrf(after, ['x']));
});

t.test('keepAlive: sliding expiry, written at most every tenth of the TTL', async (t) => {
  let nowMs = Date.UTC(2026, 0, 1);
  const now = () => nowMs;
  const kv = createMemoryKv({ now });
  t.teardown(() => kv.close());
  const sessions = createSessionService({ kv, kind: 'console', ttlSeconds: 600, now });
  const anonymous = await sessions.create();
  t.equal(await sessions.keepAlive(anonymous), false, 'an anonymous session is never extended');
  const session = await sessions.signIn(await sessions.create(), 'user-1');

  nowMs += 59_000;
  t.equal(await sessions.keepAlive(session), false, 'less than a tenth of the TTL since the last write: no write');
  nowMs += 1_000;
  t.equal(await sessions.keepAlive(session), true, 'a tenth: written');
  nowMs += 599_000;
  t.ok(await sessions.load(session.id), 'alive 599 s after the last use, 659 s after sign-in');
  nowMs += 1_000;
  t.equal(await sessions.load(session.id), null, 'gone a full TTL after the last write');
});

t.test('sid: random, not the cookie or its hash; kept while the same user signs in again, new for another user', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const sessions = createSessionService({ kv, ttlSeconds: 600 });
  const first = await sessions.signIn(await sessions.create(), 'user-1');
  const sid = sessions.sidOf(first);
  t.match(sid, /^[\w-]{43}$/);
  t.not(sid, first.id);
  t.not(sid, sessions.handleOf(first));
  t.equal(sessions.sidOf((await sessions.load(first.id))!), sid, 'stored with the session');
  await sessions.rememberClient(first, 'web');
  const again = await sessions.signIn(first, 'user-1', ['pwd', 'otp']);
  t.not(again.id, first.id, 'a new id');
  t.equal(sessions.sidOf(again), sid, 'the same sid (a step-up or re-authentication)');
  t.same(await sessions.rememberedClients(again), ['web'], 'and the same clients');
  const someoneElse = await sessions.signIn(again, 'user-2');
  t.not(sessions.sidOf(someoneElse), sid, 'another user: another session');
  t.same(await sessions.rememberedClients(someoneElse), []);
  t.not(sessions.sidOf(await sessions.signIn(await sessions.create(), 'user-1')), sid, 'another browser: another sid');
  // A session stored before sid existed: derived from its handle, stable, still not the cookie.
  const legacy = { ...first, sid: undefined };
  t.equal(sessions.sidOf(legacy), sessions.sidOf({ ...legacy }));
  t.not(sessions.sidOf(legacy), sessions.handleOf(legacy));
});

t.test('remembered clients: each once, at most MAX_REMEMBERED_CLIENTS (the least recent forgotten), stored', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  let nowMs = Date.now();
  const sessions = createSessionService({ kv, ttlSeconds: 600, now: () => (nowMs += 1) });
  const session = await sessions.signIn(await sessions.create(), 'user-1');
  await sessions.rememberClient(session, 'a');
  await sessions.rememberClient(session, 'a');
  t.same(await sessions.rememberedClients((await sessions.load(session.id))!), ['a']);
  for (let i = 0; i < MAX_REMEMBERED_CLIENTS + 5; i++) await sessions.rememberClient(session, `c${i}`);
  await sessions.rememberClient(session, 'c6');
  const stored = await sessions.rememberedClients((await sessions.load(session.id))!);
  t.equal(stored.length, MAX_REMEMBERED_CLIENTS);
  t.equal(stored[0], 'c5', "'a' and c0-c4 forgotten");
  t.equal(stored.at(-1), 'c6', 'signing in to a client again makes it the most recent');
});

t.test('remembered clients: none lost to concurrent authorizations or to a save of an older copy of the session', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const sessions = createSessionService({ kv, ttlSeconds: 600 });
  const session = await sessions.signIn(await sessions.create(), 'user-1');
  // Two requests of one browser, each with the session as it loaded it.
  const [one, two, three] = [(await sessions.load(session.id))!, (await sessions.load(session.id))!, (await sessions.load(session.id))!];
  await Promise.all([sessions.rememberClient(one, 'mail'), sessions.rememberClient(two, 'calendar')]);
  three.data.page = 'account';
  await sessions.save(three);
  t.same((await sessions.rememberedClients((await sessions.load(session.id))!)).sort(), ['calendar', 'mail']);
});

t.test('remembered clients live as long as their session; a legacy list in the value still counts', async (t) => {
  let nowMs = Date.now();
  const kv = createMemoryKv({ now: () => nowMs });
  t.teardown(() => kv.close());
  const sessions = createSessionService({ kv, ttlSeconds: 600, now: () => nowMs });
  const session = await sessions.signIn(await sessions.create(), 'user-1');
  await sessions.rememberClient(session, 'web');
  // Kept alive past the lifetime it had when the client was remembered.
  for (let i = 0; i < 4; i++) {
    nowMs += 300_000;
    t.ok(await sessions.keepAlive((await sessions.load(session.id))!));
  }
  t.same(await sessions.rememberedClients((await sessions.load(session.id))!), ['web'], 'still remembered 20 minutes on');
  const legacy = { ...session, clients: ['old', 'web'] };
  t.same(await sessions.rememberedClients(legacy), ['old', 'web']);
});

t.test('onEnd: told of each signed-in session that ends (destroy, endForUser, endAllForUser), never of an anonymous or replaced one', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const ended: EndedSession[] = [];
  const sessions = createSessionService({ kv, ttlSeconds: 600, onEnd: (e) => ended.push(e) });
  await sessions.destroy(await sessions.create());
  const a = await sessions.signIn(await sessions.create(), 'user-1');
  t.same(ended, [], 'nothing for an anonymous session or a sign-in');
  await sessions.rememberClient(a, 'web');
  await sessions.destroy(a);
  t.same(ended, [{ userId: 'user-1', sid: sessions.sidOf(a), clientIds: ['web'] }]);
  ended.splice(0);
  const b = await sessions.signIn(await sessions.create(), 'user-1');
  const c = await sessions.signIn(await sessions.create(), 'user-1');
  const d = await sessions.signIn(await sessions.create(), 'user-1');
  await sessions.rememberClient(b, 'mail');
  t.notOk(await sessions.endForUser('user-2', sessions.handleOf(b)), 'not that user\'s');
  t.same(ended, []);
  t.ok(await sessions.endForUser('user-1', sessions.handleOf(b)));
  t.same(ended, [{ userId: 'user-1', sid: sessions.sidOf(b), clientIds: ['mail'] }]);
  ended.splice(0);
  t.equal(await sessions.endAllForUser('user-1', sessions.handleOf(d)), 1);
  t.same(ended, [{ userId: 'user-1', sid: sessions.sidOf(c), clientIds: [] }]);
});
