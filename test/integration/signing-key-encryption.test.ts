/**
 * Private signing keys at rest (SIGNING_KEY_ENCRYPTION_KEY): the key store
 * writes them as JWEs, encrypts keys stored plainly before encryption was
 * switched on, keeps signing with the same keys, and refuses to start
 * without the right key, naming the variable. On both backends.
 */
import { randomBytes } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import t from 'tap';
import { createSigningKeyRepo } from '../../src/storage/sql/signing-keys.js';
import { signJwt } from '../../src/tokens/jwt.js';
import { createKeyStore } from '../../src/tokens/keys.js';
import { backendName, testDb, testKv } from '../helpers/backend.js';

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
