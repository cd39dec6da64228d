/**
 * Signing and verification cost of the JWS algorithms this server can use for
 * access tokens, measured with jose on this machine (keys imported once, as
 * the server does), and for ES256 the same with fast-jwt, which signs and
 * verifies synchronously with node:crypto on the calling thread.
 * Run: `node --import tsx bench/jose-algorithms.ts [seconds]`.
 *
 * "sequential" awaits one operation at a time (latency-bound, one request);
 * "parallel" keeps 64 in flight, which is what a busy server sees: jose uses
 * WebCrypto, whose sign/verify jobs run on libuv's thread pool. Each cell
 * gives operations per second and the process's CPU time (all threads) per
 * operation.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { cpus } from 'node:os';
import { createSigner, createVerifier } from 'fast-jwt';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';

const algs = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const;
const seconds = Number(process.argv[2] ?? 2);
const claims = {
  iss: 'http://localhost:3000',
  sub: 'c2b8e6c1-7d0e-4c9b-9a5e-1f2a3b4c5d6e',
  aud: 'http://localhost:3000/api',
  client_id: 'Zq3b0uYkQ2a8m3JxW9pD7w',
  scope: 'openid profile api:read',
  roles: ['admin'],
  jti: 'b0sXh1bG9r1e0k2oN3pQ5w',
};

/** Operations per second and CPU µs (all threads) per operation, `inFlight` at a time. */
async function rate(op: () => unknown, inFlight: number): Promise<{ ops: number; cpuUs: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await op();
      done++;
    }
  };
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const used = process.cpuUsage(cpu);
  return { ops: (done * 1000) / (performance.now() - start), cpuUs: (used.user + used.system) / done };
}

const cell = (r: { ops: number; cpuUs: number }) => `${Math.round(r.ops).toLocaleString('en-US').padStart(7)} (${r.cpuUs.toFixed(0).padStart(3)} µs)`;
process.stdout.write(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${seconds}s per cell; ops/s (CPU µs per op, all threads)\n`);
process.stdout.write('library   alg      sign seq         sign par         verify seq       verify par        token bytes\n');
for (const alg of algs) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) });
  const privateJwk = await exportJWK(privateKey);
  const publicJwk = await exportJWK(publicKey);
  const priv = (await importJWK(privateJwk, alg)) as CryptoKey;
  const pub = (await importJWK(publicJwk, alg)) as CryptoKey;
  const sign = () => new SignJWT(claims).setProtectedHeader({ alg, typ: 'at+jwt', kid: 'k1' }).setIssuedAt().setExpirationTime('15m').sign(priv);
  const token = await sign();
  const verify = () => jwtVerify(token, pub, { issuer: claims.iss, audience: claims.aud, typ: 'at+jwt', algorithms: [alg] });
  await rate(sign, 8); // warm up
  const row = [await rate(sign, 1), await rate(sign, 64), await rate(verify, 1), await rate(verify, 64)];
  process.stdout.write(`jose      ${alg.padEnd(6)} ${row.map(cell).join('  ')}   ${token.length}\n`);
  if (alg !== 'ES256') continue;
  // fast-jwt takes PEM keys; it is synchronous, so "parallel" is the same loop with 64 callers.
  const fastSign = createSigner({
    key: createPrivateKey({ key: privateJwk as JWK & { kty: string }, format: 'jwk' }).export({ format: 'pem', type: 'pkcs8' }).toString(),
    algorithm: alg,
    kid: 'k1',
    header: { alg, typ: 'at+jwt' },
    expiresIn: 900_000,
  });
  const fastVerify = createVerifier({
    key: createPublicKey({ key: publicJwk as JWK & { kty: string }, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString(),
    algorithms: [alg],
    allowedIss: claims.iss,
    allowedAud: claims.aud,
    cache: false,
  });
  const fastToken = fastSign(claims);
  if ((await jwtVerify(fastToken, pub, { typ: 'at+jwt', algorithms: [alg] })).payload.jti !== claims.jti) throw new Error('fast-jwt token not verified by jose');
  const fast = [await rate(() => fastSign(claims), 1), await rate(() => fastSign(claims), 64), await rate(() => fastVerify(token), 1), await rate(() => fastVerify(token), 64)];
  process.stdout.write(`fast-jwt  ${alg.padEnd(6)} ${fast.map(cell).join('  ')}   ${fastToken.length}\n`);
}
