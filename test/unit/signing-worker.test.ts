/**
 * The signing worker (`src/tokens/signing-worker.ts`) on its own: under load
 * it signs a turn's tokens in one batch, and what it signs is the compact JWS
 * jose would have produced (same header and payload segments, a signature
 * jose verifies) for every algorithm the server signs with; when it cannot
 * sign (not started, an unknown key, died, idle-stopped, closed) the token is
 * signed on the main thread instead and nothing fails.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { compactVerify, CompactSign, importJWK, type CryptoKey, type JWK } from 'jose';
import t from 'tap';
import { createSigningWorker, type SigningWorker } from '../../src/tokens/signing-worker.js';
import { eventually } from '../helpers/wait.js';

const encoder = new TextEncoder();

interface TestKey {
  kid: string;
  alg: string;
  privateJwk: JWK;
  signKey: CryptoKey;
  verifyKey: CryptoKey;
}

async function testKey(alg: string): Promise<TestKey> {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `${alg}-key`;
  // As the key store hands it over: the stored JWK with its metadata.
  const privateJwk = { ...(pair.privateKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  const publicJwk = pair.publicKey.export({ format: 'jwk' }) as JWK;
  return { kid, alg, privateJwk, signKey: (await importJWK(privateJwk, alg)) as CryptoKey, verifyKey: (await importJWK(publicJwk, alg)) as CryptoKey };
}

const claims = (n: number) => {
  const iat = Math.floor(Date.now() / 1000);
  return { iss: 'http://localhost:3000', sub: `user-${n}`, aud: 'http://localhost:3000/api', client_id: 'app', scope: 'openid api:read', iat, exp: iat + 900, jti: `jti-${n}`, roles: ['admin'] };
};

/** Waits (up to 10 s) for `probe`; fails the test with `what` otherwise. */
async function waitFor(probe: () => boolean, what: string): Promise<void> {
  if (!(await eventually(10_000, async () => probe()))) throw new Error(`timed out: ${what}`);
}

const header = (key: TestKey, typ = 'at+jwt') => ({ alg: key.alg, typ, kid: key.kid });

async function started(t: { teardown(fn: () => unknown): void }, options: Parameters<typeof createSigningWorker>[0] = {}): Promise<{ worker: SigningWorker; errors: unknown[] }> {
  const errors: unknown[] = [];
  const worker = createSigningWorker({ startAtPerSecond: 0, onError: (err) => errors.push(err), ...options });
  t.teardown(() => worker.close());
  return { worker, errors };
}

/** Signs once to start the worker (that token is signed here) and waits until it answers. */
async function warm(worker: SigningWorker, key: TestKey): Promise<void> {
  await worker.sign(claims(0), header(key), key.signKey);
  await waitFor(() => worker.stats().ready, 'the worker answers');
}

/** A worker holding `keys`, started and answering. */
async function running(t: { teardown(fn: () => unknown): void }, keys: TestKey[], options: Parameters<typeof createSigningWorker>[0] = {}) {
  const made = await started(t, options);
  for (const key of keys) made.worker.addKey(key.kid, key.alg, key.privateJwk);
  await warm(made.worker, keys[0]!);
  return made;
}

t.test('the worker signs what jose would, for every signing algorithm', async (t) => {
  const keys = await Promise.all(['ES256', 'RS256', 'PS256', 'EdDSA'].map(testKey));
  const { worker, errors } = await running(t, keys);
  const before = worker.stats().signedInWorker;
  for (const key of keys) {
    for (const typ of ['at+jwt', 'JWT']) {
      const payload = claims(1);
      const token = await worker.sign(payload, header(key, typ), key.signKey);
      const joseToken = await new CompactSign(encoder.encode(JSON.stringify(payload))).setProtectedHeader(header(key, typ)).sign(key.signKey);
      const [h, p] = token.split('.');
      const [jh, jp] = joseToken.split('.');
      t.equal(h, jh, `${key.alg} ${typ}: the protected header, byte for byte`);
      t.equal(p, jp, `${key.alg} ${typ}: the payload, byte for byte`);
      const verified = await compactVerify(token, key.verifyKey, { algorithms: [key.alg] });
      t.same(JSON.parse(new TextDecoder().decode(verified.payload)), payload, `${key.alg} ${typ}: jose verifies the signature`);
    }
  }
  t.equal(worker.stats().signedInWorker - before, keys.length * 2, 'every one of them signed in the worker');
  t.same(errors, []);
});

t.test("a turn's tokens go to the worker in one message", async (t) => {
  const key = await testKey('ES256');
  const { worker } = await running(t, [key]);
  const before = worker.stats();
  const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => worker.sign(claims(i), header(key), key.signKey)));
  const after = worker.stats();
  t.equal(after.batches - before.batches, 1, 'one batch');
  t.equal(after.signedInWorker - before.signedInWorker, 200, 'of 200 tokens');
  t.equal(new Set(tokens).size, 200);
  const subs = await Promise.all(tokens.map(async (token) => JSON.parse(new TextDecoder().decode((await compactVerify(token, key.verifyKey)).payload)).sub));
  t.same(subs, Array.from({ length: 200 }, (_, i) => `user-${i}`), 'each caller gets its own token, in order');
});

t.test('a quiet server starts no worker; sustained load does', async (t) => {
  const key = await testKey('ES256');
  let nowMs = 1_000_000;
  const { worker } = await started(t, { startAtPerSecond: 5, now: () => nowMs });
  worker.addKey(key.kid, key.alg, key.privateJwk);
  for (let i = 0; i < 4; i++) {
    await worker.sign(claims(i), header(key), key.signKey);
    nowMs += 1000;
  }
  t.equal(worker.stats().starts, 0, 'one token a second: everything signed here');
  t.equal(worker.stats().signedHere, 4);
  for (let i = 0; i < 5; i++) await worker.sign(claims(i), header(key), key.signKey);
  t.equal(worker.stats().starts, 1, 'five in one second start it');
});

t.test('an unknown key is signed here, and the failure reported', async (t) => {
  const known = await testKey('ES256');
  const unknown = await testKey('EdDSA');
  const { worker, errors } = await running(t, [known]);
  worker.addKey(unknown.kid, unknown.alg, unknown.privateJwk);
  worker.removeKey(unknown.kid);
  const before = worker.stats();
  const token = await worker.sign(claims(1), header(unknown), unknown.signKey);
  await compactVerify(token, unknown.verifyKey);
  t.equal(worker.stats().signedHere - before.signedHere, 1, 'signed on the main thread');
  t.match(String(errors[0]), /no usable signing key EdDSA-key/);
  await compactVerify(await worker.sign(claims(2), header(unknown), unknown.signKey), unknown.verifyKey);
  t.equal(errors.length, 1, 'reported once, not with every batch');
});

t.test('a worker that dies loses no token; another starts after the delay', async (t) => {
  const key = await testKey('ES256');
  let nowMs = Date.now();
  let thread: Worker | undefined;
  const { worker, errors } = await running(t, [key], { restartDelayMs: 5_000, now: () => nowMs, onStart: (w) => (thread = w) });
  const before = worker.stats();
  const pending = Array.from({ length: 2000 }, (_, i) => worker.sign(claims(i), header(key), key.signKey));
  // The batch is on its way to the worker (sent at the end of the turn); the worker dies while signing it.
  await new Promise((resolve) => setImmediate(resolve));
  await thread!.terminate();
  const tokens = await Promise.all(pending);
  for (const token of tokens) await compactVerify(token, key.verifyKey);
  t.equal(worker.stats().signedHere - before.signedHere, 2000, 'the batch it died on was signed here');
  t.notOk(worker.stats().running, 'the worker is gone');
  t.match(String(errors[0]), /signing worker exited/, 'its death reported');
  await worker.sign(claims(2), header(key), key.signKey);
  t.equal(worker.stats().starts, 1, 'not restarted within the delay');
  nowMs += 5_000;
  await worker.sign(claims(3), header(key), key.signKey);
  t.equal(worker.stats().starts, 2, 'restarted after it');
});

t.test('an idle worker stops, and starts again with the next load', async (t) => {
  const key = await testKey('ES256');
  const { worker } = await running(t, [key], { idleMs: 100 });
  await worker.sign(claims(1), header(key), key.signKey);
  await waitFor(() => !worker.stats().running, 'the idle worker stops');
  await warm(worker, key);
  t.equal(worker.stats().starts, 2);
  const token = await worker.sign(claims(2), header(key), key.signKey);
  await compactVerify(token, key.verifyKey);
});

t.test('closing signs what was in flight here', async (t) => {
  const key = await testKey('ES256');
  const { worker } = await running(t, [key]);
  const pending = Array.from({ length: 50 }, (_, i) => worker.sign(claims(i), header(key), key.signKey));
  await new Promise((resolve) => setImmediate(resolve));
  await worker.close();
  for (const token of await Promise.all(pending)) await compactVerify(token, key.verifyKey);
  t.notOk(worker.stats().running);
  await worker.sign(claims(1), header(key), key.signKey);
  t.equal(worker.stats().starts, 1, 'a closed worker never starts again');
});

t.test('a key the worker cannot use leaves it running; its tokens are signed here', async (t) => {
  const good = await testKey('ES256');
  const bad = await testKey('ES256');
  const { worker, errors } = await started(t);
  worker.addKey(good.kid, good.alg, good.privateJwk);
  worker.addKey('broken', 'ES256', { ...bad.privateJwk, crv: 'P-999' });
  await warm(worker, good);
  const token = await worker.sign(claims(1), { alg: 'ES256', typ: 'at+jwt', kid: 'broken' }, bad.signKey);
  await compactVerify(token, bad.verifyKey);
  t.match(String(errors[0]), /key broken/, 'the key named in the report');
  await compactVerify(await worker.sign(claims(2), header(good), good.signKey), good.verifyKey);
  t.equal(worker.stats().starts, 1, 'the worker kept running');
  t.ok(worker.stats().signedInWorker >= 1, 'and signing with the good key');
});
