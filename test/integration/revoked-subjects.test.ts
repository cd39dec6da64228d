/**
 * The per-subject part of the revocation repository (migration 0002): a
 * user's access tokens issued before `notBefore` are refused until
 * `expiresAt`. Run on every database available.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createRevocationRepo } from '../../src/storage/sql/revocations.js';
import { dbKinds, testDb } from '../helpers/backend.js';

const MINUTE = 60_000;
const sub = () => `user-${randomBytes(6).toString('hex')}`;

for (const kind of dbKinds) {
  t.test(`revoked subjects on ${kind}`, async (t) => {
    const repo = createRevocationRepo(await testDb(t, { kind }));
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const at = (minutes: number) => new Date(now.getTime() + minutes * MINUTE);

    t.test('upsert keeps the later instants', async (t) => {
      const s = sub();
      t.equal(await repo.findSubject(s, now), null);
      await repo.revokeSubject({ sub: s, notBefore: at(0), expiresAt: at(15) });
      await repo.revokeSubject({ sub: s, notBefore: at(-5), expiresAt: at(10) });
      t.same(await repo.findSubject(s, now), { sub: s, notBefore: at(0), expiresAt: at(15) }, 'an older revocation does not move the cut-off back');
      await repo.revokeSubject({ sub: s, notBefore: at(1), expiresAt: at(16) });
      t.same(await repo.findSubject(s, now), { sub: s, notBefore: at(1), expiresAt: at(16) });
    });

    t.test('expiry, listing since, cleanup', async (t) => {
      const old = sub();
      const recent = sub();
      const expired = sub();
      await repo.revokeSubject({ sub: old, notBefore: at(-10), expiresAt: at(5) });
      await repo.revokeSubject({ sub: recent, notBefore: at(-1), expiresAt: at(14) });
      await repo.revokeSubject({ sub: expired, notBefore: at(-30), expiresAt: at(-15) });
      t.equal(await repo.findSubject(expired, now), null, 'expired revocations are not in force');
      const since = (await repo.listSubjectsSince(at(-2), now)).map((r) => r.sub);
      t.ok(since.includes(recent));
      t.notOk(since.includes(old), 'older than `since`');
      const all = (await repo.listSubjectsSince(null, now)).map((r) => r.sub);
      t.ok(all.includes(old) && all.includes(recent));
      t.notOk(all.includes(expired));
      t.ok((await repo.deleteExpired(now)) >= 1);
      t.equal((await repo.listSubjectsSince(null, at(-20))).some((r) => r.sub === expired), false, 'deleted');
    });
  });
}
