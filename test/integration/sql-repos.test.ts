/**
 * The SQL repositories' contract (storage/types.ts), written once and run
 * against every database available: PGlite always, PostgreSQL too when
 * DATABASE_URL is set. One database per backend, distinct rows per subtest.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import t from 'tap';
import { createClientRepo } from '../../src/storage/sql/clients.js';
import { createConsentRepo } from '../../src/storage/sql/consents.js';
import { createInitialAccessTokenRepo } from '../../src/storage/sql/initial-access-tokens.js';
import { createPasskeyRepo } from '../../src/storage/sql/passkeys.js';
import { createRefreshTokenRepo } from '../../src/storage/sql/refresh-tokens.js';
import { createRevocationRepo } from '../../src/storage/sql/revocations.js';
import { createSigningKeyRepo } from '../../src/storage/sql/signing-keys.js';
import { createUserRepo } from '../../src/storage/sql/users.js';
import type { Db, NewClient, NewRefreshToken } from '../../src/storage/types.js';
import { dbKinds, testDb } from '../helpers/backend.js';

const id = () => randomBytes(8).toString('hex');
const HOUR = 3_600_000;

function newUser(username = `user_${id()}`) {
  return { id: randomUUID(), username, email: null, passwordHash: 'argon2-hash-placeholder', roles: [] as string[] };
}

function newClient(overrides: Partial<NewClient> = {}): NewClient {
  return {
    clientId: `client_${id()}`,
    clientSecretHash: 'sha256$x',
    clientName: 'Contract client',
    redirectUris: ['https://app.example.com/cb'],
    grantTypes: ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    tokenEndpointAuthMethod: 'client_secret_basic',
    scope: 'openid api:read',
    resourceServer: false,
    ...overrides,
  };
}

for (const kind of dbKinds) {
  t.test(`SQL repositories on ${kind}`, async (t) => {
    const db: Db = await testDb(t, { kind });
    const users = createUserRepo(db);
    const clients = createClientRepo(db);
    const consents = createConsentRepo(db);
    const refreshTokens = createRefreshTokenRepo(db);
    const keys = createSigningKeyRepo(db);
    const revocations = createRevocationRepo(db);

    // Rows other subtests hang off.
    const owner = (await users.create(newUser()))!;
    const client = await clients.create(newClient());

    t.test('users: usernames are unique case-insensitively', async (t) => {
      const name = `Alice_${id()}`;
      const alice = await users.create(newUser(name));
      t.ok(alice);
      t.equal(alice!.username, name, 'spelling kept as given');
      t.equal(await users.create(newUser(name.toLowerCase())), null, 'same name in other case refused');
      t.equal(await users.create(newUser(name.toUpperCase())), null);
      t.equal((await users.findByUsername(name.toUpperCase()))?.id, alice!.id, 'lookup ignores case');
      t.equal(await users.findById(randomUUID()), null);
      t.equal(await users.findByUsername(`nobody_${id()}`), null);
    });

    t.test('users: update, roles, disabled, delete', async (t) => {
      const user = (await users.create(newUser()))!;
      const role = `role_${id()}`;
      t.notOk(await users.existsWithRole(role));
      const updated = await users.update(user.id, { email: 'u@example.com', roles: [role], passwordHash: 'new-hash' });
      t.same(updated && { email: updated.email, roles: updated.roles, hash: updated.passwordHash }, { email: 'u@example.com', roles: [role], hash: 'new-hash' });
      t.ok(updated!.updatedAt.getTime() >= user.updatedAt.getTime());
      t.ok(await users.existsWithRole(role));
      await users.update(user.id, { disabled: true });
      t.notOk(await users.existsWithRole(role), 'a disabled user does not count');
      t.equal((await users.update(user.id, { email: null }))!.email, null, 'email cleared');
      t.equal(await users.update(randomUUID(), { disabled: true }), null, 'unknown id');
      t.equal(await users.delete(user.id), true);
      t.equal(await users.delete(user.id), false);
      t.equal(await users.findById(user.id), null);
    });

    t.test('users: list pages in creation order, count', async (t) => {
      const before = await users.count();
      const made = [];
      for (let i = 0; i < 3; i++) made.push((await users.create(newUser()))!);
      t.equal(await users.count(), before + 3);
      const all = await users.list({ limit: 1000, offset: 0 });
      t.equal(all.length, before + 3);
      // Creation order; PGlite's clock can give two rows the same created_at, and then the id orders them.
      t.same(new Set(all.slice(before).map((u) => u.id)), new Set(made.map((u) => u.id)), 'the newest last');
      const page = await users.list({ limit: 2, offset: before + 1 });
      t.same(page.map((u) => u.id), all.slice(before + 1, before + 3).map((u) => u.id), 'a page is a slice of the whole list');
    });

    t.test('clients: create, find, update, list, delete', async (t) => {
      const c = await clients.create(newClient({ scope: 'openid' }));
      t.same((await clients.findById(c.clientId))?.redirectUris, ['https://app.example.com/cb']);
      const updated = await clients.update(c.clientId, { clientName: 'Renamed', redirectUris: ['https://a.example/cb', 'https://b.example/cb'] });
      t.equal(updated!.clientName, 'Renamed');
      t.same(updated!.redirectUris, ['https://a.example/cb', 'https://b.example/cb'], 'order kept');
      t.equal(updated!.scope, 'openid', 'fields not in the patch unchanged');
      t.same(c.postLogoutRedirectUris, [], 'no post-logout redirect URI unless given');
      const withLogout = await clients.update(c.clientId, { postLogoutRedirectUris: ['https://a.example/bye', 'https://b.example/bye'] });
      t.same(withLogout!.postLogoutRedirectUris, ['https://a.example/bye', 'https://b.example/bye']);
      t.same((await clients.findById(c.clientId))!.redirectUris, ['https://a.example/cb', 'https://b.example/cb'], 'redirect_uris untouched');
      const created = await clients.create(newClient({ postLogoutRedirectUris: ['https://c.example/bye'] }));
      t.same((await clients.findById(created.clientId))!.postLogoutRedirectUris, ['https://c.example/bye']);
      t.equal(c.backchannelLogoutUri, null, 'no back-channel logout URI unless given');
      t.equal(c.backchannelLogoutSessionRequired, false);
      const withBackchannel = await clients.update(c.clientId, { backchannelLogoutUri: 'https://a.example/bc', backchannelLogoutSessionRequired: true });
      t.equal(withBackchannel!.backchannelLogoutUri, 'https://a.example/bc');
      t.equal(withBackchannel!.backchannelLogoutSessionRequired, true);
      const createdWithBackchannel = await clients.create(newClient({ backchannelLogoutUri: 'https://d.example/bc' }));
      t.equal((await clients.findById(createdWithBackchannel.clientId))!.backchannelLogoutUri, 'https://d.example/bc');
      t.equal(await clients.update(`nope_${id()}`, { clientName: 'x' }), null);
      t.ok((await clients.list({ limit: 1000, offset: 0 })).some((x) => x.clientId === c.clientId));
      t.ok((await clients.count()) >= 2);
      t.equal(await clients.delete(c.clientId), true);
      t.equal(await clients.delete(c.clientId), false);
      t.equal(await clients.findById(c.clientId), null);
    });

    t.test('clients: the schema ties a secret to the auth method', async (t) => {
      await t.rejects(clients.create(newClient({ tokenEndpointAuthMethod: 'none' })), 'a public client with a secret hash');
      await t.rejects(clients.create(newClient({ clientSecretHash: null })), 'a confidential client without one');
      const pub = await clients.create(newClient({ tokenEndpointAuthMethod: 'none', clientSecretHash: null }));
      t.equal(pub.clientSecretHash, null);
    });

    t.test('clients: origin and registration access token hash are stored; admin by default', async (t) => {
      const admin = await clients.create(newClient());
      t.equal(admin.origin, 'admin');
      t.equal(admin.registrationAccessTokenHash, null);
      t.equal(admin.lastUsedAt, null);
      const dynamic = await clients.create(newClient({ origin: 'dynamic', registrationAccessTokenHash: 'sha256$rat', tokenEndpointAuthMethod: 'none', clientSecretHash: null }));
      t.equal(dynamic.origin, 'dynamic');
      t.equal((await clients.findById(dynamic.clientId))!.registrationAccessTokenHash, 'sha256$rat');
      await t.rejects(clients.create(newClient({ origin: 'someone' as never })), 'an unknown origin is refused by the schema');
    });

    t.test('clients: touch writes last_used_at once per period, whoever calls', async (t) => {
      const c = await clients.create(newClient());
      const day1 = new Date('2030-01-01T00:00:00Z');
      const dayAgo = (d: Date) => new Date(d.getTime() - 86_400_000);
      const results = await Promise.all([1, 2, 3].map(() => clients.touch(c.clientId, day1, dayAgo(day1))));
      t.equal(results.filter(Boolean).length, 1, 'of concurrent callers, one writes');
      t.same((await clients.findById(c.clientId))!.lastUsedAt, day1);
      const later = new Date(day1.getTime() + 3_600_000);
      t.equal(await clients.touch(c.clientId, later, dayAgo(later)), false, 'not again within the period');
      const nextDay = new Date(day1.getTime() + 90_000_000);
      t.equal(await clients.touch(c.clientId, nextDay, dayAgo(nextDay)), true);
      t.same((await clients.findById(c.clientId))!.lastUsedAt, nextDay);
      t.equal(await clients.touch(`nope_${id()}`, nextDay, dayAgo(nextDay)), false);
    });

    t.test('clients: a metadata-document client is upserted as one row, never over another origin', async (t) => {
      const url = `https://app.example/${id()}/client.json`;
      const doc = { clientId: url, clientName: 'Doc App', redirectUris: ['https://app.example/cb'], grantTypes: ['authorization_code'] as const, responseTypes: ['code'] as const, tokenEndpointAuthMethod: 'none' as const, scope: 'openid', resourceServer: false };
      const at = new Date('2030-02-01T00:00:00Z');
      const rows = await Promise.all([1, 2].map(() => clients.upsertMetadataDocumentClient({ ...doc, grantTypes: [...doc.grantTypes], responseTypes: [...doc.responseTypes] }, at)));
      t.ok(rows.every((r) => r !== null && r.client.clientId === url && r.client.origin === 'metadata_document' && r.client.clientSecretHash === null));
      t.equal(rows.filter((r) => r!.created).length, 1, 'one of them created it');
      const renamed = await clients.upsertMetadataDocumentClient({ ...doc, grantTypes: ['authorization_code'], responseTypes: ['code'], clientName: 'Renamed' }, new Date(at.getTime() + 1000));
      t.equal(renamed!.client.clientName, 'Renamed', 'the document changed: the row follows');
      t.same(renamed!.client.postLogoutRedirectUris, []);
      const withLogout = await clients.upsertMetadataDocumentClient({ ...doc, grantTypes: ['authorization_code'], responseTypes: ['code'], postLogoutRedirectUris: ['https://app.example/bye'] }, at);
      t.same(withLogout!.client.postLogoutRedirectUris, ['https://app.example/bye'], 'and its post-logout redirect URIs');
      const withBackchannel = await clients.upsertMetadataDocumentClient({ ...doc, grantTypes: ['authorization_code'], responseTypes: ['code'], backchannelLogoutUri: 'https://app.example/bc' }, at);
      t.equal(withBackchannel!.client.backchannelLogoutUri, 'https://app.example/bc', 'and its back-channel logout URI');
      t.equal(renamed!.created, false);
      t.same(renamed!.client.lastUsedAt, new Date(at.getTime() + 1000));
      const admin = await clients.create(newClient());
      t.equal(await clients.upsertMetadataDocumentClient({ ...doc, clientId: admin.clientId, grantTypes: ['authorization_code'], responseTypes: ['code'] }, at), null);
      t.equal((await clients.findById(admin.clientId))!.origin, 'admin', 'an admin client is left as it was');
    });

    t.test('clients: listIdle names only clients no admin registered, idle since before the cutoff', async (t) => {
      const oldTime = new Date('2001-01-01T00:00:00Z');
      const publicClient = { tokenEndpointAuthMethod: 'none' as const, clientSecretHash: null };
      const idleDynamic = await clients.create(newClient({ origin: 'dynamic', ...publicClient }));
      await clients.touch(idleDynamic.clientId, oldTime, oldTime);
      const freshDynamic = await clients.create(newClient({ origin: 'dynamic', ...publicClient }));
      const idleAdmin = await clients.create(newClient());
      await clients.touch(idleAdmin.clientId, oldTime, oldTime);
      const doc = await clients.upsertMetadataDocumentClient(
        { clientId: `https://idle.example/${id()}`, clientName: 'Idle doc', redirectUris: ['https://idle.example/cb'], grantTypes: ['authorization_code'], responseTypes: ['code'], tokenEndpointAuthMethod: 'none', scope: '', resourceServer: false },
        new Date('2000-06-01T00:00:00Z'),
      );
      const idle = await clients.listIdle(new Date('2010-01-01T00:00:00Z'), 100);
      t.same(idle.filter((cid) => [idleDynamic.clientId, freshDynamic.clientId, idleAdmin.clientId, doc!.client.clientId].includes(cid)), [doc!.client.clientId, idleDynamic.clientId], 'least recently used first');
      const neverUsed = await clients.listIdle(new Date(Date.now() + 60_000), 1000);
      t.ok(neverUsed.includes(freshDynamic.clientId), 'never used: idle since it was registered');
      t.notOk(neverUsed.includes(idleAdmin.clientId));
      t.equal((await clients.listIdle(new Date('2010-01-01T00:00:00Z'), 1)).length, 1, 'limit');
    });

    t.test('initial access tokens: create, list, use within expiry and uses, delete', async (t) => {
      const tokens = createInitialAccessTokenRepo(db);
      const now = new Date('2030-03-01T00:00:00Z');
      const once = await tokens.create({ id: `iat_${id()}`, tokenHash: `sha256$${id()}`, description: 'for the CI', expiresAt: null, maxUses: 2 });
      t.equal(once.uses, 0);
      t.equal(once.description, 'for the CI');
      t.notOk('tokenHash' in once, 'the hash is never read back');
      const hash = `sha256$${id()}`;
      const limited = await tokens.create({ id: `iat_${id()}`, tokenHash: hash, description: '', expiresAt: new Date(now.getTime() + 60_000), maxUses: 2 });
      const uses = await Promise.all([1, 2, 3, 4].map(() => tokens.use(hash, now)));
      t.equal(uses.filter((u) => u !== null).length, 2, 'of concurrent uses, at most max_uses succeed');
      t.equal((await tokens.findById(limited.id))!.uses, 2);
      t.same((await tokens.findById(limited.id))!.lastUsedAt, now);
      const hash2 = `sha256$${id()}`;
      await tokens.create({ id: `iat_${id()}`, tokenHash: hash2, description: '', expiresAt: new Date(now.getTime() + 60_000), maxUses: null });
      t.ok(await tokens.use(hash2, now));
      t.ok(await tokens.use(hash2, now), 'no limit on uses');
      t.equal(await tokens.use(hash2, new Date(now.getTime() + 60_000)), null, 'expired at expires_at');
      t.equal(await tokens.use(`sha256$${id()}`, now), null, 'unknown');
      t.ok((await tokens.list({ limit: 100, offset: 0 })).some((x) => x.id === once.id));
      t.ok((await tokens.count()) >= 3);
      t.equal(await tokens.delete(once.id), true);
      t.equal(await tokens.delete(once.id), false);
      t.equal(await tokens.findById(once.id), null);
      await t.rejects(tokens.create({ id: `iat_${id()}`, tokenHash: hash, description: '', expiresAt: null, maxUses: null }), 'hashes are unique');
    });

    t.test('consents: grant unions scopes, revoke, cascade', async (t) => {
      const user = (await users.create(newUser()))!;
      t.equal(await consents.find(user.id, client.clientId), null);
      await consents.grant(user.id, client.clientId, ['openid', 'api:read'], ['https://api.example/']);
      const merged = await consents.grant(user.id, client.clientId, ['api:read', 'profile'], ['https://mcp.example/', 'https://api.example/']);
      t.same(merged.scopes, ['api:read', 'openid', 'profile']);
      t.same(merged.resources, ['https://api.example/', 'https://mcp.example/'], 'and resources');
      t.same((await consents.listForUser(user.id)).map((c) => c.clientId), [client.clientId]);
      t.equal(await consents.revoke(user.id, client.clientId), true);
      t.equal(await consents.revoke(user.id, client.clientId), false);
      await consents.grant(user.id, client.clientId, ['openid'], []);
      await users.delete(user.id);
      t.same(await consents.listForUser(user.id), [], "deleting the user removes the user's consents");
    });

    const token = (familyId: string, overrides: Partial<NewRefreshToken> = {}): NewRefreshToken => ({
      tokenHash: `hash_${id()}`,
      familyId,
      clientId: client.clientId,
      userId: owner.id,
      scope: 'openid',
      resources: ['https://as.example/api'],
      authTime: null,
      accessTokenJti: `jti_${id()}`,
      accessTokenExpiresAt: new Date(Date.now() + HOUR),
      expiresAt: new Date(Date.now() + 24 * HOUR),
      ...overrides,
    });

    t.test('refresh tokens: findByHashWithUser returns the record and its user in one query', async (t) => {
      const rt = token(`fam_${id()}`, { scope: 'openid api:read' });
      await refreshTokens.insert(rt);
      const found = await refreshTokens.findByHashWithUser(rt.tokenHash);
      t.same(found?.record, await refreshTokens.findByHash(rt.tokenHash), 'the same record findByHash reads');
      t.same(found?.user, await users.findById(owner.id), 'the owner, every column mapped');
      t.equal(await refreshTokens.findByHashWithUser(`hash_${id()}`), null, 'unknown hash');

      const other = token(`fam_${id()}`);
      await refreshTokens.insert(other);
      const unknown = `hash_${id()}`;
      const many = await refreshTokens.findManyByHashWithUser([rt.tokenHash, unknown, other.tokenHash]);
      t.same([...many.keys()].sort(), [rt.tokenHash, other.tokenHash].sort(), 'many at once: the known ones, by hash');
      t.same(many.get(rt.tokenHash), found, 'each as findByHashWithUser reads it');
      t.same(many.get(other.tokenHash), await refreshTokens.findByHashWithUser(other.tokenHash));
      t.same(await refreshTokens.findManyByHashWithUser([]), new Map(), 'none asked');
    });

    t.test('refresh tokens: the resources of the grant are kept through insert and rotation', async (t) => {
      const family = `fam_${id()}`;
      const rt = token(family, { resources: ['https://as.example/mcp', 'https://as.example/api'] });
      await refreshTokens.insert(rt);
      t.same((await refreshTokens.findByHash(rt.tokenHash))?.resources, ['https://as.example/mcp', 'https://as.example/api'], 'in the order given');
      const successor = token(family, { resources: ['https://as.example/mcp'] });
      t.equal(await refreshTokens.rotate(rt.tokenHash, new Date(), successor), true);
      t.same((await refreshTokens.findByHash(successor.tokenHash))?.resources, ['https://as.example/mcp'], 'the successor has its own');
      t.same((await refreshTokens.findByHashWithUser(successor.tokenHash))?.record.resources, ['https://as.example/mcp'], 'read with its user too');
      t.same((await refreshTokens.findLatestInFamily(family))?.resources, ['https://as.example/mcp']);
      // A row stored before migration 0006 has none: read as null (the default resource).
      const legacy = token(`fam_${id()}`);
      await refreshTokens.insert(legacy);
      await db.query('UPDATE refresh_tokens SET resources = NULL WHERE token_hash = $1', [legacy.tokenHash]);
      t.equal((await refreshTokens.findByHash(legacy.tokenHash))?.resources, null);
    });

    t.test('refresh tokens: amr and acr of the grant are kept through insert and rotation', async (t) => {
      const family = `fam_${id()}`;
      const rt = token(family, { amr: ['pwd', 'otp'], acr: 'urn:oauth-server:acr:mfa' });
      await refreshTokens.insert(rt);
      t.match(await refreshTokens.findByHash(rt.tokenHash), { amr: ['pwd', 'otp'], acr: 'urn:oauth-server:acr:mfa' });
      const successor = token(family, { amr: rt.amr, acr: rt.acr });
      t.equal(await refreshTokens.rotate(rt.tokenHash, new Date(), successor), true);
      t.match((await refreshTokens.findByHashWithUser(successor.tokenHash))?.record, { amr: ['pwd', 'otp'], acr: 'urn:oauth-server:acr:mfa' }, 'the successor, read with its user');
      t.match(await refreshTokens.findLatestInFamily(family), { amr: ['pwd', 'otp'], acr: 'urn:oauth-server:acr:mfa' });
      // None recorded (a row from before migration 0015, or the password grant): null, through rotation too.
      const plain = token(`fam_${id()}`);
      await refreshTokens.insert(plain);
      t.match(await refreshTokens.findByHash(plain.tokenHash), { amr: null, acr: null });
      const next = token(plain.familyId);
      t.equal(await refreshTokens.rotate(plain.tokenHash, new Date(), next), true);
      t.match(await refreshTokens.findByHash(next.tokenHash), { amr: null, acr: null });
    });

    t.test('refresh tokens: rotate marks used and inserts the successor in one step, one winner among 20', async (t) => {
      const family = `fam_${id()}`;
      const rt = token(family);
      await refreshTokens.insert(rt);
      const now = new Date();
      const successors = Array.from({ length: 20 }, () => token(family));
      const results = await Promise.all(successors.map((s) => refreshTokens.rotate(rt.tokenHash, now, s)));
      t.equal(results.filter(Boolean).length, 1, 'exactly one rotation won');
      const winner = successors[results.indexOf(true)]!;
      const stored = await refreshTokens.findByHash(winner.tokenHash);
      t.equal(stored?.familyId, family, 'the winner’s successor is stored, in the family');
      t.equal(stored?.usedAt, null, 'unused');
      t.same(stored?.accessTokenExpiresAt, winner.accessTokenExpiresAt, 'with its timestamps');
      for (const [i, s] of successors.entries()) {
        if (results[i]) continue;
        t.equal(await refreshTokens.findByHash(s.tokenHash), null, 'a losing rotation inserted nothing');
      }
      t.ok((await refreshTokens.findByHash(rt.tokenHash))!.usedAt, 'the old token is used');
      t.equal(await refreshTokens.rotate(rt.tokenHash, new Date(), token(family)), false, 'and cannot be rotated again');

      const expired = token(`fam_${id()}`, { expiresAt: new Date(Date.now() - 1000) });
      await refreshTokens.insert(expired);
      const revokedFamily = `fam_${id()}`;
      const revoked = token(revokedFamily);
      await refreshTokens.insert(revoked);
      await refreshTokens.revokeFamily(revokedFamily, new Date());
      for (const [label, hash] of [['expired', expired.tokenHash], ['revoked', revoked.tokenHash], ['unknown', `hash_${id()}`]] as const) {
        const successor = token(`fam_${id()}`);
        t.equal(await refreshTokens.rotate(hash, new Date(), successor), false, `${label}: not rotated`);
        t.equal(await refreshTokens.findByHash(successor.tokenHash), null, `${label}: no successor`);
      }
    });

    t.test('refresh tokens: family revocation, latest in family, per-user revocation', async (t) => {
      const family = `fam_${id()}`;
      const first = token(family);
      const stale = token(family, { accessTokenExpiresAt: new Date(Date.now() - 1000) });
      await refreshTokens.insert(first);
      await refreshTokens.insert(stale);
      const second = token(family);
      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct created_at
      await refreshTokens.insert(second);
      t.equal((await refreshTokens.findLatestInFamily(family))!.tokenHash, second.tokenHash);
      const other = token(`fam_${id()}`);
      await refreshTokens.insert(other);

      const jtis = await refreshTokens.revokeFamily(family, new Date());
      t.same(new Set(jtis.map((j) => j.jti)), new Set([first.accessTokenJti, second.accessTokenJti]), 'unexpired access tokens of the family');
      for (const rt of [first, second, stale]) t.ok((await refreshTokens.findByHash(rt.tokenHash))!.revokedAt);
      t.equal((await refreshTokens.findByHash(other.tokenHash))!.revokedAt, null, 'other families untouched');
      t.same(await refreshTokens.revokeFamily(family, new Date()), [], 'revoking again changes nothing');

      // The same in one statement, with the deny entries.
      const together = `fam_${id()}`;
      const rows = [token(together), token(together, { accessTokenExpiresAt: new Date(Date.now() - 1000) }), token(together)];
      for (const row of rows) await refreshTokens.insert(row);
      const denied = await refreshTokens.revokeFamilyAndAccessTokens(together, new Date());
      t.same(new Set(denied.map((j) => j.jti)), new Set([rows[0]!.accessTokenJti, rows[2]!.accessTokenJti]), 'unexpired access tokens of the family');
      for (const row of rows) t.ok((await refreshTokens.findByHash(row.tokenHash))!.revokedAt, 'every token of the family revoked');
      t.ok(await revocations.isRevoked(rows[0]!.accessTokenJti!), 'its access tokens deny-listed');
      t.ok(await revocations.isRevoked(rows[2]!.accessTokenJti!));
      t.notOk(await revocations.isRevoked(rows[1]!.accessTokenJti!), 'an expired one is not');
      t.same(await refreshTokens.revokeFamilyAndAccessTokens(together, new Date()), [], 'revoking again changes nothing');

      // Presented tokens, many at once (RFC 7009 requests written together):
      // each revokes its family only at its own client.
      const otherClient = await clients.create(newClient());
      const [famA, famB, famC] = [`fam_${id()}`, `fam_${id()}`, `fam_${id()}`];
      const [a1, a2, b1, c1] = [token(famA), token(famA), token(famB), token(famC)];
      for (const row of [a1, a2, b1, c1]) await refreshTokens.insert(row);
      const presented = await refreshTokens.revokePresented(
        [
          { tokenHash: a2.tokenHash, clientId: client.clientId },
          { tokenHash: a1.tokenHash, clientId: client.clientId },
          { tokenHash: b1.tokenHash, clientId: client.clientId },
          { tokenHash: c1.tokenHash, clientId: otherClient.clientId },
          { tokenHash: `hash_${id()}`, clientId: client.clientId },
        ],
        new Date(),
      );
      t.same(new Set(presented.map((j) => j.jti)), new Set([a1.accessTokenJti, a2.accessTokenJti, b1.accessTokenJti]), 'the families of the tokens presented by their own client');
      for (const row of [a1, a2, b1]) t.ok((await refreshTokens.findByHash(row.tokenHash))!.revokedAt, 'revoked');
      t.ok(await revocations.isRevoked(b1.accessTokenJti!), 'with their access tokens deny-listed');
      t.equal((await refreshTokens.findByHash(c1.tokenHash))!.revokedAt, null, "another client's token is left alone");
      t.notOk(await revocations.isRevoked(c1.accessTokenJti!));
      t.same(await refreshTokens.revokePresented([{ tokenHash: a1.tokenHash, clientId: client.clientId }], new Date()), [], 'revoking again changes nothing');
      t.same(await refreshTokens.revokePresented([], new Date()), [], 'nothing presented');

      const user = (await users.create(newUser()))!;
      const mine = token(`fam_${id()}`, { userId: user.id });
      await refreshTokens.insert(mine);
      const byUser = await refreshTokens.revokeForUser(user.id, client.clientId, new Date());
      t.same(byUser.map((j) => j.jti), [mine.accessTokenJti]);
      t.equal((await refreshTokens.findByHash(other.tokenHash))!.revokedAt, null);
    });

    t.test('refresh tokens: deleteExpired', async (t) => {
      const old = token(`fam_${id()}`, { expiresAt: new Date(Date.now() - HOUR) });
      await refreshTokens.insert(old);
      t.ok((await refreshTokens.deleteExpired(new Date())) >= 1);
      t.equal(await refreshTokens.findByHash(old.tokenHash), null);
    });

    t.test('signing keys: published by activation (latest first), retired keys stay until expiry', async (t) => {
      const alg = `TEST${id()}`;
      const now = new Date();
      const a = { kid: `a_${id()}`, alg, privateJwk: { d: 'secret' }, publicJwk: { kty: 'EC', x: '1' }, activatesAt: new Date(now.getTime() - HOUR) };
      // Inserted first but activating last: the order is by activation, not by insertion.
      const c = { kid: `c_${id()}`, alg, privateJwk: { d: 'secret3' }, publicJwk: { kty: 'EC', x: '3' }, activatesAt: new Date(now.getTime() + HOUR) };
      const b = { kid: `b_${id()}`, alg, privateJwk: { d: 'secret2' }, publicJwk: { kty: 'EC', x: '2' }, activatesAt: now };
      await keys.insert(c);
      await keys.insert(a);
      await keys.insert(b);
      const mine = (list: Awaited<ReturnType<typeof keys.listPublished>>) => list.filter((k) => k.alg === alg);
      t.same(mine(await keys.listPublished(now)).map((k) => k.kid), [c.kid, b.kid, a.kid]);
      const stored = mine(await keys.listPublished(now))[0]!;
      t.same(stored.publicJwk, c.publicJwk, 'JSON round trip');
      t.equal(stored.activatesAt.getTime(), c.activatesAt.getTime(), 'activation instant round trip');
      t.equal(stored.retiredAt, null);

      // Retirement may lie ahead (the successor is pending); keys already retiring keep their instant.
      const retiresAt = new Date(now.getTime() + HOUR);
      t.equal(await keys.retireOthers(alg, c.kid, retiresAt, new Date(now.getTime() + 2 * HOUR)), 2, 'a and b');
      t.equal(await keys.retireOthers(alg, c.kid, new Date(now.getTime() + 3 * HOUR), new Date(now.getTime() + 4 * HOUR)), 0, 'nothing left to retire');
      const retired = mine(await keys.listPublished(now)).find((k) => k.kid === a.kid)!;
      t.equal(retired.retiredAt?.getTime(), retiresAt.getTime(), 'still published while its tokens may live');
      t.same(mine(await keys.listPublished(new Date(now.getTime() + 3 * HOUR))).map((k) => k.kid), [c.kid], 'gone after expiry');
      t.same(
        (await keys.listAll()).filter((k) => k.alg === alg).map((k) => k.kid),
        [c.kid, b.kid, a.kid],
        'listAll: unpublished keys too (re-encryption covers every stored key)',
      );
      t.ok(await keys.replacePrivateJwk(a.kid, { jwe: 'sealed' }));
      t.same((await keys.listAll()).find((k) => k.kid === a.kid)!.privateJwk, { jwe: 'sealed' }, 'private JWK replaced');
      t.notOk(await keys.replacePrivateJwk(`none_${id()}`, { jwe: 'x' }), 'false for an unknown kid');
    });

    t.test('signing keys: withLock serialises critical sections', async (t) => {
      const order: string[] = [];
      const section = (name: string) =>
        keys.withLock(async (tx) => {
          order.push(`${name}:in`);
          await tx.query('SELECT pg_sleep(0.05)');
          order.push(`${name}:out`);
        });
      await Promise.all([section('a'), section('b')]);
      t.ok(order[1]!.endsWith(':out') && order[0]!.split(':')[0] === order[1]!.split(':')[0], `no interleaving: ${order.join(' ')}`);
    });

    t.test('revocations: idempotent deny list with expiry', async (t) => {
      const now = new Date();
      const live = { jti: `jti_${id()}`, expiresAt: new Date(now.getTime() + HOUR) };
      const dead = { jti: `jti_${id()}`, expiresAt: new Date(now.getTime() - HOUR) };
      await revocations.revoke([live, dead]);
      await revocations.revoke([live]);
      await revocations.revoke([]);
      t.ok(await revocations.isRevoked(live.jti));
      t.notOk(await revocations.isRevoked(`jti_${id()}`));
      const listed = (await revocations.listSince(null, now)).map((r) => r.jti);
      t.ok(listed.includes(live.jti) && !listed.includes(dead.jti), 'only unexpired entries listed');
      t.same((await revocations.listSince(new Date(now.getTime() + HOUR), now)).filter((r) => r.jti === live.jti), [], 'since filters');
      t.ok((await revocations.deleteExpired(now)) >= 1);
      t.ok(await revocations.isRevoked(live.jti));
    });

    t.test("revocations: a token's standing in one query (its jti, the latest cut-off of its subjects)", async (t) => {
      const now = new Date();
      const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
      const [user, client, stranger] = [`sub_${id()}`, `client:${id()}`, `sub_${id()}`];
      t.same(await revocations.standing(`jti_${id()}`, [user, client], now), { revoked: false, notBefore: null }, 'nothing recorded');
      await revocations.revokeSubject({ sub: user, notBefore: at(-2), expiresAt: at(15) });
      await revocations.revokeSubject({ sub: client, notBefore: at(-1), expiresAt: at(15) });
      await revocations.revokeSubject({ sub: stranger, notBefore: at(0), expiresAt: at(15) });
      const jti = `jti_${id()}`;
      await revocations.revoke([{ jti, expiresAt: at(60) }]);
      t.same(await revocations.standing(jti, [user, client], now), { revoked: true, notBefore: at(-1) }, 'the later of the two cut-offs; not the stranger’s');
      t.same(await revocations.standing(`jti_${id()}`, [user], now), { revoked: false, notBefore: at(-2) });
      t.same(await revocations.standing(`jti_${id()}`, [user], at(20)), { revoked: false, notBefore: null }, 'an expired cut-off is not in force');
    });

    t.test('passkeys: one account per credential, counters only move forward (atomically), delete by owner, cascade', async (t) => {
      const passkeys = createPasskeyRepo(db);
      const holder = (await users.create(newUser()))!;
      const other = (await users.create(newUser()))!;
      const base = { userId: holder.id, publicKey: 'pQECAyYgASFYIA', transports: ['internal', 'hybrid'], deviceType: 'singleDevice' as const, backedUp: false, name: 'Laptop' };
      const first = await passkeys.create({ ...base, id: randomUUID(), credentialId: `cred_${id()}`, counter: 4_294_967_295 });
      t.match(first, { ...base, counter: 4_294_967_295, lastUsedAt: null });
      t.ok(first!.createdAt instanceof Date);
      t.equal(await passkeys.create({ ...base, id: randomUUID(), credentialId: first!.credentialId, userId: other.id, counter: 0 }), null, 'a credential id belongs to one account');
      t.same(await passkeys.findByCredentialId(first!.credentialId), first);
      t.equal(await passkeys.findByCredentialId('nope'), null);

      const zero = (await passkeys.create({ ...base, id: randomUUID(), credentialId: `cred_${id()}`, counter: 0, name: 'Synced' }))!;
      t.same((await passkeys.listForUser(holder.id)).map((p) => p.name), ['Laptop', 'Synced'], 'oldest first');
      const use = (counter: number) => ({ counter, deviceType: 'multiDevice' as const, backedUp: true, usedAt: new Date() });
      t.ok(await passkeys.recordUse(zero.id, use(0)), '0 after 0: an authenticator without a counter');
      t.ok(await passkeys.recordUse(zero.id, use(7)));
      t.notOk(await passkeys.recordUse(zero.id, use(7)), 'the same counter again');
      t.notOk(await passkeys.recordUse(zero.id, use(0)), 'back to 0 after 7');
      const racing = await Promise.all(Array.from({ length: 10 }, () => passkeys.recordUse(zero.id, use(8))));
      t.equal(racing.filter(Boolean).length, 1, 'one winner among concurrent uses of one counter');
      t.match(await passkeys.findByCredentialId(zero.credentialId), { counter: 8, deviceType: 'multiDevice', backedUp: true, lastUsedAt: Date });

      t.equal(await passkeys.delete(other.id, zero.id), null, "never another user's");
      t.match(await passkeys.delete(holder.id, zero.id), { id: zero.id });
      t.equal(await passkeys.delete(holder.id, zero.id), null);
      await users.delete(holder.id);
      t.equal(await passkeys.findByCredentialId(first!.credentialId), null, "deleting the user deletes its passkeys");
    });
  });
}
