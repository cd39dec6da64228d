import t from 'tap';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { ANONYMOUS_SESSION_TTL_SECONDS, createSessionService } from '../../src/sessions/service.js';

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
