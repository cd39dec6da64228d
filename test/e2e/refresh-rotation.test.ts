/**
 * Refresh-token rotation in strict mode (REFRESH_REUSE_GRACE=0): reuse
 * detection revokes the whole family (the newest token and the access tokens
 * too), and concurrent refreshes of one token, on one instance or two
 * sharing the database and the TTL store, let exactly one succeed.
 */
import t, { type Test } from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';

t.test(`refresh rotation, reuse detection and races (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  const a = await buildTestApp(t, { db, kv });
  const b = await buildTestApp(t, { db, kv });
  const { services } = a;

  const client = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'openid api:read' });
  const auth = basic(client.clientId, client.clientSecret!);
  const erin = await seedUser(services, { username: 'erin' });

  const passwordGrant = async () => {
    const res = await postForm(a.app, '/token', { grant_type: 'password', username: 'erin', password: erin.password, scope: 'api:read' }, { authorization: auth });
    t.equal(res.statusCode, 200);
    return res.json() as { access_token: string; refresh_token: string };
  };
  const refresh = (app: typeof a.app, refreshToken: string) => postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: auth });
  const introspect = async (tokenValue: string) => (await postForm(a.app, '/introspect', { token: tokenValue }, { authorization: auth })).json();

  t.test('presenting a used refresh token revokes the whole family', async (t) => {
    const first = await passwordGrant();
    const second = (await refresh(a.app, first.refresh_token)).json();
    const third = (await refresh(b.app, second.refresh_token)).json();
    t.not(third.refresh_token, second.refresh_token);
    t.equal((await getWithToken(a.app, '/api/hello', third.access_token)).statusCode, 200);

    const reuse = await refresh(a.app, first.refresh_token);
    t.equal(reuse.statusCode, 400);
    t.equal(reuse.json().error, 'invalid_grant');

    // The newest token of the family is revoked too…
    const newest = await refresh(a.app, third.refresh_token);
    t.equal(newest.statusCode, 400);
    t.equal(newest.json().error, 'invalid_grant');
    t.same(await introspect(third.refresh_token), { active: false });
    // …and so are the access tokens issued with the family, on both instances.
    for (const app of [a.app, b.app]) {
      const res = await getWithToken(app, '/api/hello', third.access_token);
      t.equal(res.statusCode, 401);
      t.match(res.headers['www-authenticate'], /error="invalid_token".*revoked/);
    }
    t.same(await introspect(second.access_token), { active: false });
    t.same(await introspect(first.access_token), { active: false });

    // Another family of the same user is untouched.
    const unrelated = await passwordGrant();
    t.equal((await refresh(a.app, unrelated.refresh_token)).statusCode, 200);
  });

  t.test('refresh tokens introspected at once (one query for all): each answered for itself', async (t) => {
    const [live, other] = [await passwordGrant(), await passwordGrant()];
    const rotated = (await refresh(b.app, other.refresh_token)).json() as { refresh_token: string };
    const unknown = 'A'.repeat(43);
    const asked = [live.refresh_token, other.refresh_token, unknown, rotated.refresh_token, live.refresh_token];
    const answers = await Promise.all(asked.map(introspect));
    t.same(
      answers.map((a: { active: boolean; token_type?: string }) => a.active),
      [true, false, false, true, true],
      'live, used (rotated on the other instance), unknown, its successor, live again',
    );
    t.same(answers[0], answers[4], 'the same token, the same answer');
    t.same(answers[3], await introspect(rotated.refresh_token), 'as one asked alone');
    t.equal(answers[0].token_type, 'refresh_token');
  });

  const race = async (t: Test, apps: Array<typeof a.app>, n: number) => {
    const start = await passwordGrant();
    const results = await Promise.all(Array.from({ length: n }, (_, i) => refresh(apps[i % apps.length]!, start.refresh_token)));
    const winners = results.filter((r) => r.statusCode === 200);
    t.equal(winners.length, 1, `exactly one of ${n} concurrent refreshes succeeds`);
    for (const loser of results.filter((r) => r.statusCode !== 200)) {
      t.equal(loser.statusCode, 400);
      t.equal(loser.json().error, 'invalid_grant');
    }
    // Strict mode: the losers presented a used token, so the family, with the
    // winner's new tokens, is revoked (RFC 9700 §4.14.2).
    const winner = winners[0]!.json();
    t.equal((await refresh(apps[0]!, winner.refresh_token)).statusCode, 400);
    t.equal((await getWithToken(apps[apps.length - 1]!, '/api/hello', winner.access_token)).statusCode, 401);
  };

  t.test('concurrent refreshes on one instance: exactly one succeeds', (t) => race(t, [a.app], 8));
  t.test('concurrent refreshes across two instances: exactly one succeeds', (t) => race(t, [a.app, b.app], 8));
});
