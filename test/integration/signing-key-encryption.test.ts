/**
 * Private signing keys at rest (SIGNING_KEY_ENCRYPTION_KEY): the key store
 * writes them as JWEs, encrypts keys stored plainly before encryption was
 * switched on, keeps signing with the same keys, and refuses to start
 * without the right key, naming the variable; `keys reencrypt` moves every
 * stored key to a new encryption key (or back to plain JWKs) or changes
 * nothing. On both backends.
 */
import { randomBytes } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import t from 'tap';
import { createSigningKeyRepo } from '../../src/storage/sql/signing-keys.js';
import { signJwt } from '../../src/tokens/jwt.js';
import { createKeyProtector } from '../../src/tokens/key-encryption.js';
import { createKeyStore, generateSigningKey } from '../../src/tokens/keys.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';

const header = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string };

t.test(`signing keys encrypted at rest (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  const repo = createSigningKeyRepo(db);
  const base = { accessTokenAlg: 'ES256' as const, accessTokenTtlSeconds: 900 };
  const encryptionKey = new Uint8Array(randomBytes(32));
  let clock = Date.now();
  const store = (signingKeyEncryptionKey?: Uint8Array) =>
    createKeyStore({ repo, kv, config: { ...base, signingKeyEncryptionKey }, now: () => clock, reloadIntervalMs: 3_600_000 });
  const rows = async () => db.query<{ kid: string; private_jwk: Record<string, unknown> }>('SELECT kid, private_jwk FROM signing_keys ORDER BY kid');

  // Without the variable: stored as plain JWKs (as before).
  const plain = store();
  t.teardown(await plain.start());
  const before = await rows();
  t.equal(before.length, 2, 'an ES256 and an RS256 key');
  for (const row of before) t.type(row.private_jwk.d, 'string', `${row.kid}: plain JWK`);
  const signer = plain.snapshot().signing.get('ES256')!;
  const oldToken = await signJwt({ sub: 'x' }, signer.key, signer.header);

  // With it: the same keys, now encrypted in place; nothing private left in the rows.
  const sealed = store(encryptionKey);
  t.teardown(await sealed.start());
  const after = await rows();
  t.same(after.map((r) => r.kid), before.map((r) => r.kid), 'the same keys');
  for (const row of after) {
    t.same(Object.keys(row.private_jwk), ['jwe'], `${row.kid}: only the JWE is stored`);
    t.notMatch(JSON.stringify(row.private_jwk), /"d"|"p"|"q"|"dp"|"dq"|"qi"/, `${row.kid}: no private JWK member in the clear`);
    t.match(decodeProtectedHeader(row.private_jwk.jwe as string), { alg: 'dir', enc: 'A256GCM', kid: row.kid });
  }
  const newSigner = sealed.snapshot().signing.get('ES256')!;
  t.equal(newSigner.kid, signer.kid, 'signs with the same key');
  const newToken = await signJwt({ sub: 'y' }, newSigner.key, newSigner.header);
  await compactVerify(newToken, plain.snapshot().verifying.get(signer.kid)!.key);
  await compactVerify(oldToken, sealed.snapshot().verifying.get(signer.kid)!.key);

  // Rotation writes the new key encrypted too; it is decrypted and imported at once, ready to sign at its activation.
  const rotated = await sealed.rotate('ES256');
  const rotatedRow = (await rows()).find((r) => r.kid === rotated.kid)!;
  t.same(Object.keys(rotatedRow.private_jwk), ['jwe'], 'a rotated key is stored encrypted');
  clock = rotated.activatesAt.getTime();
  t.equal(sealed.snapshot().signing.get('ES256')!.kid, rotated.kid, 'and signs from its activation');

  // A server without the key, or with another one, refuses to start and says why.
  await t.rejects(store().start(), { message: /stored encrypted: set SIGNING_KEY_ENCRYPTION_KEY/ }, 'no key');
  await t.rejects(store(new Uint8Array(randomBytes(32))).start(), { message: /SIGNING_KEY_ENCRYPTION_KEY is not the key/ }, 'another key');
});

t.test(`re-encryption under a new key, all or nothing (${backendName})`, async (t) => {
  const db = await testDb(t);
  const kv = await testKv(t);
  const repo = createSigningKeyRepo(db);
  const base = { accessTokenAlg: 'ES256' as const, accessTokenTtlSeconds: 900 };
  const [keyA, keyB, keyC] = [1, 2, 3].map(() => new Uint8Array(randomBytes(32)));
  let clock = Date.now();
  const store = (signingKeyEncryptionKey?: Uint8Array) =>
    createKeyStore({ repo, kv, config: { ...base, signingKeyEncryptionKey }, now: () => clock, reloadIntervalMs: 3_600_000 });
  const rows = async () => db.query<{ kid: string; private_jwk: Record<string, unknown> }>('SELECT kid, private_jwk FROM signing_keys ORDER BY kid');
  /** The signing keys' part of `keys reencrypt`, as `services.reencryptSecrets` runs it: adopted once committed. */
  const reencrypt = async (keys: ReturnType<typeof store>, newKey: Uint8Array | undefined) => {
    const part = await db.transaction((tx) => keys.reseal(newKey, tx));
    part.adopt();
    return { count: part.count, encrypted: newKey !== undefined };
  };
  /** How many stored rows `key` opens, and how many there are. */
  const opening = async (key: Uint8Array | undefined) => {
    const protector = createKeyProtector(key);
    const all = await rows();
    const results = await Promise.all(all.map((r) => protector.open(r.kid, r.private_jwk).then(() => true, () => false)));
    return { opened: results.filter(Boolean).length, of: all.length };
  };

  const a = store(keyA);
  t.teardown(await a.start());
  // Started before the change and never restarted: it keeps the old key.
  const stale = store(keyA);
  t.teardown(await stale.start());
  const first = a.snapshot().signing.get('ES256')!;
  // A rotation, then time past the old key's unpublication: re-encryption covers unpublished rows too.
  const rotated = await a.rotate('ES256');
  // The stale instance hears of it (pub/sub) before the change.
  for (let i = 0; i < 100 && !stale.snapshot().verifying.has(rotated.kid); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(stale.snapshot().verifying.has(rotated.kid), 'the stale instance loaded the rotated key');
  clock = (await a.list()).find((k) => k.kid === first.kid)!.expiresAt!.getTime() + 1;
  t.notOk((await a.list()).some((k) => k.kid === first.kid), 'the first key is unpublished');
  t.equal((await rows()).length, 3, 'three rows: the first key, its successor and the RS256 key');

  const result = await reencrypt(a, keyB);
  t.same(result, { count: 3, encrypted: true }, 'every stored key, unpublished ones too');
  t.same(await opening(keyB), { opened: 3, of: 3 }, 'every row opens with the new key');
  t.same(await opening(keyA), { opened: 0, of: 3 }, 'none with the old one');
  for (const row of await rows()) t.same(Object.keys(row.private_jwk), ['jwe'], `${row.kid}: still only a JWE`);

  // The instance that ran it seals under the new key from now on.
  const again = await a.rotate('ES256');
  t.ok(await createKeyProtector(keyB).open(again.kid, (await rows()).find((r) => r.kid === again.kid)!.private_jwk), 'its next key is under the new key');
  // One still on the old key keeps signing with what it loaded, but may not add a key nobody else could open.
  t.equal(stale.snapshot().signing.get('ES256')!.kid, rotated.kid, 'a stale instance still signs');
  const before = await rows();
  await t.rejects(stale.rotate('ES256'), { message: /not rotated: .*SIGNING_KEY_ENCRYPTION_KEY is not the key.*restart with the new key/ }, 'and refuses to rotate');
  t.same(await rows(), before, 'nothing stored by the refused rotation');

  // A restart with the new key signs with the same keys; with the old one it refuses to start.
  const restarted = store(keyB);
  t.teardown(await restarted.start());
  t.equal(restarted.snapshot().signing.get('ES256')!.kid, a.snapshot().signing.get('ES256')!.kid, 'the restarted instance signs with the same key');
  const token = await signJwt({ sub: 'y' }, restarted.snapshot().signing.get('ES256')!.key, restarted.snapshot().signing.get('ES256')!.header);
  await compactVerify(token, a.snapshot().verifying.get(header(token).kid)!.key);
  await t.rejects(store(keyA).start(), { message: /SIGNING_KEY_ENCRYPTION_KEY is not the key/ }, 'the old key no longer opens them');

  // A stored key the configured key does not open (here an unpublished one, never opened at start): refused, nothing changed.
  const foreign = await generateSigningKey('ES256');
  const past = new Date(clock - 1_000);
  await repo.insert({ kid: foreign.kid, alg: 'ES256', privateJwk: await createKeyProtector(keyC).seal(foreign.kid, foreign.privateJwk), publicJwk: foreign.publicJwk as Record<string, unknown>, activatesAt: past });
  await db.query('UPDATE signing_keys SET retired_at = $2, expires_at = $2 WHERE kid = $1', [foreign.kid, past]);
  const unchanged = await rows();
  await t.rejects(reencrypt(restarted, keyC), { message: new RegExp(`${foreign.kid} cannot be decrypted`) }, 'the old key must open every stored key');
  t.same(await rows(), unchanged, 'no row rewritten');
  await db.query('DELETE FROM signing_keys WHERE kid = $1', [foreign.kid]);

  // Back to plain JWKs, and from plain JWKs to encrypted ones.
  t.same(await reencrypt(restarted, undefined), { count: 4, encrypted: false }, '--decrypt');
  for (const row of await rows()) t.type(row.private_jwk.d, 'string', `${row.kid}: plain JWK`);
  const plain = store();
  t.teardown(await plain.start());
  t.equal(plain.snapshot().signing.get('ES256')!.kid, restarted.snapshot().signing.get('ES256')!.kid, 'a server without the variable starts and signs');
  t.same(await reencrypt(plain, keyC), { count: 4, encrypted: true }, 'plain rows encrypted');
  t.same(await opening(keyC), { opened: 4, of: 4 }, 'every row opens with that key');
  t.same(await opening(undefined), { opened: 0, of: 4 }, 'nothing plain left');
});
