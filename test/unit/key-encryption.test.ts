/**
 * The private-key protector: a JWE (dir, A256GCM) bound to its kid, plain
 * JWKs passed through when encryption is off, and clear refusals.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createKeyProtector, isSealed } from '../../src/tokens/key-encryption.js';

const jwk = { kty: 'EC', crv: 'P-256', x: 'x-coord', y: 'y-coord', d: 'private-part' };
const key = () => new Uint8Array(randomBytes(32));

t.test('round trip, bound to the kid', async (t) => {
  const protector = createKeyProtector(key());
  t.equal(protector.enabled, true);
  const stored = await protector.seal('kid-1', jwk);
  t.ok(isSealed(stored));
  t.notMatch(JSON.stringify(stored), /private-part/, 'the private part is not readable');
  t.same(await protector.open('kid-1', stored), jwk);
  t.not((await protector.seal('kid-1', jwk)).jwe, stored.jwe, 'a fresh IV each time');
  await t.rejects(protector.open('kid-2', stored), { message: /kid-2 cannot be decrypted/ }, "another row's ciphertext is refused");
});

t.test('refusals name the variable', async (t) => {
  const stored = await createKeyProtector(key()).seal('kid-1', jwk);
  await t.rejects(createKeyProtector(undefined).open('kid-1', stored), { message: /set SIGNING_KEY_ENCRYPTION_KEY/ });
  await t.rejects(createKeyProtector(key()).open('kid-1', stored), { message: /SIGNING_KEY_ENCRYPTION_KEY is not the key/ });
  const tampered = { jwe: `${(stored.jwe as string).slice(0, -4)}AAAA` };
  await t.rejects(createKeyProtector(key()).open('kid-1', tampered), { message: /cannot be decrypted/ });
});

t.test('off: plain JWKs in and out; plain rows are read with encryption on', async (t) => {
  const off = createKeyProtector(undefined);
  t.equal(off.enabled, false);
  t.same(await off.seal('kid-1', jwk), jwk);
  t.same(await off.open('kid-1', jwk), jwk);
  t.same(await createKeyProtector(key()).open('kid-1', jwk), jwk);
  t.notOk(isSealed(jwk));
});
