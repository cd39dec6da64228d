/**
 * Withdrawing a remembered consent (admin API) ends what it produced, through
 * the token service's one revocation path: the user's refresh tokens at that
 * client are refused, and so are the access tokens issued with them, by
 * introspection and by the resource routes of every instance. The same
 * user's grant at another client survives.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';

/** Polls `probe` every 20 ms until it returns true or `ms` have passed. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test(`revoking consent revokes the tokens issued under it (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  const a = await buildTestApp(t, { db, kv });
  // B hears of the revocation only by pub/sub: its database poll is slowed down to a minute.
  const b = await buildTestApp(t, { db, kv, serviceOptions: { tokenTimings: { denyListPollMs: 60_000 } } });
  const { app, services } = a;

  const admin = await seedUser(services, { username: 'consent-admin', roles: ['admin'] });
  const adminAuth = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
  const dora = await seedUser(services, { username: 'dora' });
  const revoked = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'api:read' });
  const kept = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'api:read' });
  const revokedAuth = basic(revoked.clientId, revoked.clientSecret!);
  const keptAuth = basic(kept.clientId, kept.clientSecret!);

  const passwordGrant = async (auth: string) => {
    const res = await postForm(app, '/token', { grant_type: 'password', username: 'dora', password: dora.password }, { authorization: auth });
    t.equal(res.statusCode, 200);
    return res.json() as { access_token: string; refresh_token: string };
  };
  const refresh = (auth: string, refreshToken: string) => postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: auth });
  const introspect = async (auth: string, token: string) => (await postForm(app, '/introspect', { token }, { authorization: auth })).json() as { active: boolean };
  const hello = async (instance: typeof app, token: string) => (await getWithToken(instance, '/api/hello', token)).statusCode;

  // Two grants at the client whose consent goes (one of them rotated once), one at the other client.
  const first = await passwordGrant(revokedAuth);
  const rotated = (await refresh(revokedAuth, first.refresh_token)).json() as { access_token: string; refresh_token: string };
  const second = await passwordGrant(revokedAuth);
  const other = await passwordGrant(keptAuth);
  await services.consents.grant(dora.id, revoked.clientId, ['api:read'], [`${services.config.issuer}/api`]);
  await services.consents.grant(dora.id, kept.clientId, ['api:read'], [`${services.config.issuer}/api`]);
  for (const token of [rotated.access_token, second.access_token, other.access_token]) t.equal(await hello(b.app, token), 200, 'valid before');

  const res = await app.inject({ method: 'DELETE', url: `/admin/users/${dora.id}/consents/${revoked.clientId}`, headers: { authorization: adminAuth } });
  t.equal(res.statusCode, 204);
  t.equal(await services.consents.find(dora.id, revoked.clientId), null, 'the consent is forgotten');

  t.test("the client's refresh tokens are refused and inactive", async (t) => {
    for (const token of [rotated.refresh_token, second.refresh_token]) {
      t.same(await introspect(revokedAuth, token), { active: false });
      const res = await refresh(revokedAuth, token);
      t.equal(res.statusCode, 400);
      t.equal(res.json().error, 'invalid_grant');
    }
  });

  t.test("the client's access tokens are refused everywhere", async (t) => {
    for (const token of [first.access_token, rotated.access_token, second.access_token]) {
      t.same(await introspect(keptAuth, token), { active: false }, 'introspection (the database) sees it at once');
      t.equal(await hello(app, token), 401, 'at once on the revoking instance');
      t.ok(await within(1_000, async () => (await hello(b.app, token)) === 401), 'on the other instance within a second');
    }
  });

  t.test("the same user's grant at another client survives", async (t) => {
    t.equal(await hello(app, other.access_token), 200);
    t.equal(await hello(b.app, other.access_token), 200);
    t.match(await introspect(keptAuth, other.access_token), { active: true, client_id: kept.clientId, sub: dora.id });
    t.ok(await services.consents.find(dora.id, kept.clientId), 'its consent is kept');
    const res = await refresh(keptAuth, other.refresh_token);
    t.equal(res.statusCode, 200, 'its refresh token still works');
    t.equal(await hello(app, (res.json() as { access_token: string }).access_token), 200);
  });

  t.test('the user can be asked again: new tokens at the client work', async (t) => {
    const fresh = await passwordGrant(revokedAuth);
    t.equal(await hello(app, fresh.access_token), 200, 'no subject cut-off: only the grants were revoked');
    t.equal((await refresh(revokedAuth, fresh.refresh_token)).statusCode, 200);
  });
});
