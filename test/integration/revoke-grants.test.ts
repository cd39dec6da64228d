/**
 * The one revocation path (src/tokens/revoke.ts) over the real repositories:
 * refresh-token families, the access-token deny entries and a user's
 * cut-off are written in one transaction, all or nothing, and announced to
 * the deny list only once committed. Run on every database available.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { createClientRepo } from '../../src/storage/sql/clients.js';
import { createRefreshTokenRepo } from '../../src/storage/sql/refresh-tokens.js';
import { createRevocationRepo } from '../../src/storage/sql/revocations.js';
import { createUserRepo } from '../../src/storage/sql/users.js';
import type { Client, NewRefreshToken, RevocationRepo, RevokedSubject } from '../../src/storage/types.js';
import type { RevokedJtiEntry } from '../../src/tokens/deny-list.js';
import { hashRefreshToken } from '../../src/tokens/refresh-tokens.js';
import { createRevoker } from '../../src/tokens/revoke.js';
import { dbKinds, testDb } from '../helpers/backend.js';

const id = () => randomBytes(8).toString('hex');
const HOUR = 3_600_000;
const ACCESS_TOKEN_TTL = 900;

for (const kind of dbKinds) {
  t.test(`revokeGrants on ${kind}`, async (t) => {
    const db = await testDb(t, { kind });
    const users = createUserRepo(db);
    const clients = createClientRepo(db);
    const refreshTokens = createRefreshTokenRepo(db);
    const revocations = createRevocationRepo(db);

    /** Which revocation statement fails (injected), if any. */
    let failing: 'revoke' | 'revokeSubject' | null = null;
    const flaky: Pick<RevocationRepo, 'revoke' | 'revokeSubject'> = {
      async revoke(entries, tx) {
        await revocations.revoke(entries, tx);
        if (failing === 'revoke') throw new Error('injected failure after the deny entries');
      },
      async revokeSubject(entry, tx) {
        await revocations.revokeSubject(entry, tx);
        if (failing === 'revokeSubject') throw new Error('injected failure after the subject cut-off');
      },
    };

    /** Each announcement, with whether its jtis were already visible outside the transaction. */
    const announced: Array<{ jtis: string[]; subjects: RevokedSubject[]; committed: boolean }> = [];
    const denyList = {
      async announce(jtis: readonly RevokedJtiEntry[], subjects: readonly RevokedSubject[] = []) {
        const visible = await Promise.all(jtis.map((e) => revocations.isRevoked(e.jti)));
        announced.push({ jtis: jtis.map((e) => e.jti).sort(), subjects: [...subjects], committed: visible.every(Boolean) });
      },
    };
    const revoker = createRevoker({
      db,
      refreshTokens,
      revocations: flaky,
      denyList,
      verifier: { verify: () => Promise.reject(new Error('not used here')) },
      config: { accessTokenTtlSeconds: ACCESS_TOKEN_TTL },
      now: Date.now,
    });

    const user = async () => (await users.create({ id: randomUUID(), username: `user_${id()}`, email: null, passwordHash: 'x', roles: [] }))!.id;
    const client = async () =>
      (
        await clients.create({
          clientId: `client_${id()}`,
          clientSecretHash: 'sha256$x',
          clientName: 'Revocation client',
          redirectUris: ['https://app.example.com/cb'],
          grantTypes: ['authorization_code', 'refresh_token'],
          responseTypes: ['code'],
          tokenEndpointAuthMethod: 'client_secret_basic',
          scope: 'api:read',
          resourceServer: false,
        })
      ).clientId;
    /** A stored refresh token (its own family unless given) with the access token issued beside it. */
    const grant = async (userId: string, clientId: string, familyId = `fam_${id()}`, tokenHash = `hash_${id()}`): Promise<NewRefreshToken & { accessTokenJti: string }> => {
      const row = {
        tokenHash,
        familyId,
        clientId,
        userId,
        scope: 'api:read',
        resources: ['https://as.example/api'],
        authTime: null,
        accessTokenJti: `jti_${id()}`,
        accessTokenExpiresAt: new Date(Date.now() + ACCESS_TOKEN_TTL * 1000),
        expiresAt: new Date(Date.now() + HOUR),
      };
      await refreshTokens.insert(row);
      return row;
    };
    const isRevoked = async (row: NewRefreshToken & { accessTokenJti: string }) => {
      const [record, denied] = await Promise.all([refreshTokens.findByHash(row.tokenHash), revocations.isRevoked(row.accessTokenJti)]);
      return { family: record!.revokedAt !== null, accessToken: denied };
    };
    const lastAnnounced = () => announced.at(-1);

    t.test('a user at one client (withdrawn consent): that pair only, committed before it is announced', async (t) => {
      const [erin, frank, appA, appB] = [await user(), await user(), await client(), await client()];
      const first = await grant(erin, appA);
      const rotated = await grant(erin, appA, first.familyId);
      const second = await grant(erin, appA);
      const atOtherClient = await grant(erin, appB);
      const otherUser = await grant(frank, appA);
      const before = announced.length;

      await revoker.revokeUserAtClient(erin, appA);
      for (const row of [first, rotated, second]) t.same(await isRevoked(row), { family: true, accessToken: true });
      t.same(await isRevoked(atOtherClient), { family: false, accessToken: false }, 'the same user at another client keeps its grant');
      t.same(await isRevoked(otherUser), { family: false, accessToken: false }, 'another user at the same client keeps theirs');
      t.equal(announced.length, before + 1, 'announced once');
      t.same(lastAnnounced(), { jtis: [first, rotated, second].map((r) => r.accessTokenJti).sort(), subjects: [], committed: true });
      t.equal(await revocations.findSubject(erin, new Date()), null, 'no cut-off: access tokens at other clients stay valid');
    });

    t.test('a whole user: every family, its access tokens and the cut-off together', async (t) => {
      const [gina, appA, appB] = [await user(), await client(), await client()];
      const rows = [await grant(gina, appA), await grant(gina, appB)];
      const at = Date.now();
      await revoker.revokeUser(gina);
      for (const row of rows) t.same(await isRevoked(row), { family: true, accessToken: true });
      const subject = await revocations.findSubject(gina, new Date());
      t.ok(subject && subject.notBefore.getTime() > at, 'tokens issued until now are refused');
      t.ok(subject && subject.expiresAt.getTime() >= at + ACCESS_TOKEN_TTL * 1000, 'for as long as one of them can live');
      t.same(lastAnnounced(), { jtis: rows.map((r) => r.accessTokenJti).sort(), subjects: [subject], committed: true });
    });

    t.test('a failing statement leaves nothing revoked and nothing announced; a retry revokes it all', async (t) => {
      const [hana, appA, appB] = [await user(), await client(), await client()];
      const rows = [await grant(hana, appA), await grant(hana, appB)];
      const before = announced.length;
      t.teardown(() => {
        failing = null;
      });

      failing = 'revokeSubject';
      await t.rejects(revoker.revokeUser(hana), /injected/);
      for (const row of rows) t.same(await isRevoked(row), { family: false, accessToken: false }, 'user revocation rolled back whole');
      t.equal(await revocations.findSubject(hana, new Date()), null);

      failing = 'revoke';
      await t.rejects(revoker.revokeUserAtClient(hana, appA), /injected/);
      t.same(await isRevoked(rows[0]!), { family: false, accessToken: false }, 'consent revocation rolled back whole');
      t.equal(announced.length, before, 'nothing announced');
      // (One family alone is one statement, `revokeFamilyAndAccessTokens`: no step of it can fail apart.)

      failing = null;
      await revoker.revokeUserAtClient(hana, appA);
      t.same(await isRevoked(rows[0]!), { family: true, accessToken: true });
      await revoker.revokeUser(hana);
      t.same(await isRevoked(rows[1]!), { family: true, accessToken: true });
      t.ok(await revocations.findSubject(hana, new Date()));
    });

    t.test('what one grant issued (replayed code): its family and its access token, each jti once', async (t) => {
      const [ivan, app] = [await user(), await client()];
      const row = await grant(ivan, app);
      const before = announced.length;
      await revoker.revokeIssued({ familyId: row.familyId, accessTokenJti: row.accessTokenJti, accessTokenExpiresAt: row.accessTokenExpiresAt });
      t.same(await isRevoked(row), { family: true, accessToken: true });
      t.same(lastAnnounced()?.jtis, [row.accessTokenJti], 'the access token recorded on the family and named besides: announced once');

      // No refresh token: only the access token, with the longest lifetime when its expiry is unknown.
      const jti = `jti_${id()}`;
      await revoker.revokeIssued({ accessTokenJti: jti });
      t.ok(await revocations.isRevoked(jti));
      const entry = (await revocations.listSince(null, new Date())).find((e) => e.jti === jti);
      t.ok(entry && entry.expiresAt.getTime() > Date.now() + (ACCESS_TOKEN_TTL - 5) * 1000, 'kept for a whole access-token lifetime');

      const count = announced.length;
      await revoker.revokeIssued({});
      t.equal(announced.length, count, 'nothing issued, nothing to do');
      t.equal(count, before + 2);
    });

    t.test('refresh tokens presented at once (RFC 7009): written together, only the caller\'s own, each committed before announced', async (t) => {
      const [jo, appA, appB] = [await user(), await client(), await client()];
      /** A grant whose refresh token has a real token's shape, so `revoke` can be given its text. */
      const presentable = async (clientId: string) => {
        const token = randomBytes(32).toString('base64url');
        return { token, row: await grant(jo, clientId, undefined, hashRefreshToken(token)) };
      };
      const mine = [await presentable(appA), await presentable(appA), await presentable(appA), await presentable(appA)];
      const theirs = await presentable(appB);
      const before = announced.length;
      const caller = { clientId: appA } as Client;
      await Promise.all([...mine, theirs].map(({ token }) => revoker.revoke(token, 'refresh_token', caller)));
      for (const { row } of mine) t.same(await isRevoked(row), { family: true, accessToken: true }, 'the family of each token of the caller');
      t.same(await isRevoked(theirs.row), { family: false, accessToken: false }, "another client's token is left alone");
      const batches = announced.slice(before);
      t.ok(batches.length < mine.length + 1, `fewer writes than requests (${batches.length})`);
      t.ok(batches.every((b) => b.committed), 'each announced after its commit');
      t.same(batches.flatMap((b) => b.jtis).sort(), mine.map(({ row }) => row.accessTokenJti).sort(), 'their access tokens announced, each once');
    });
  });
}
