/**
 * DPoP building blocks without an app: `htu` normalisation (RFC 9449 §4.3),
 * the proof verifier with nonces off (`DPOP_NONCE=false`: `iat` and the
 * single-use `jti` are the only limits), and server nonces shared by two
 * instances through one TTL store, good for their slot and the next.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import t from 'tap';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { createDpopVerifier, normalizeHtu } from '../../src/tokens/dpop.js';
import { createDpopNonces, DPOP_NONCE_SLOT_SECONDS } from '../../src/tokens/dpop-nonce.js';

t.test('htu is compared without query and fragment, normalised', async (t) => {
  t.equal(normalizeHtu('HTTPS://AS.Example:443/token?x=1#y'), 'https://as.example/token');
  t.equal(normalizeHtu('http://localhost:3000/a/../token'), 'http://localhost:3000/token');
  t.equal(normalizeHtu('http://localhost:3000/api/hello'), 'http://localhost:3000/api/hello');
  t.equal(normalizeHtu('ftp://as.example/token'), null, 'http(s) only');
  t.equal(normalizeHtu('/token'), null, 'absolute only');
});

t.test('with nonces off, a fresh proof passes once', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  let nowMs = Date.now();
  const verifier = createDpopVerifier({ kv, now: () => nowMs, nonces: null });
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  const sign = (iat: number) =>
    new SignJWT({ jti: randomUUID(), htm: 'POST', htu: 'https://as.example/token', iat }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
  const expected = { method: 'POST', url: 'https://as.example/token' };
  const proof = await sign(Math.floor(nowMs / 1000));
  t.ok((await verifier.verify(proof, expected)).jkt, 'accepted without a nonce');
  const refusal = async (attempt: Promise<unknown>) => (await attempt.then(() => null, (err: unknown) => err)) as { error?: string } | null;
  t.equal((await refusal(verifier.verify(proof, expected)))?.error, 'invalid_dpop_proof', 'not twice');
  t.equal((await refusal(verifier.verify([proof, proof], expected)))?.error, 'invalid_dpop_proof', 'two DPoP headers');
  nowMs += 61_000;
  t.equal((await refusal(verifier.verify(await sign(Math.floor(nowMs / 1000) - 61), expected)))?.error, 'invalid_dpop_proof', 'iat more than 60 s old');
});

t.test('nonces: shared by instances, good for their slot and the next', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  let nowMs = 1_800_000_000_000;
  const one = createDpopNonces({ kv, now: () => nowMs });
  const two = createDpopNonces({ kv, now: () => nowMs });
  const [a, b] = await Promise.all([one.current(), two.current()]);
  t.equal(a, b, 'two instances agree on the slot nonce');
  t.ok(await two.isValid(a));
  t.notOk(await two.isValid(`${a}x`));
  t.notOk(await two.isValid(undefined));
  nowMs += DPOP_NONCE_SLOT_SECONDS * 1000;
  t.not(await one.current(), a, 'a new slot, a new nonce');
  t.ok(await one.isValid(a), 'the previous slot still counts');
  nowMs += DPOP_NONCE_SLOT_SECONDS * 1000;
  t.notOk(await one.isValid(a), 'two slots later it has expired');
});
