/**
 * Signing and verification cost of the JWS algorithms this server can use for
 * access tokens, measured with jose on this machine (keys imported once, as
 * the server does). Run: `node --import tsx bench/jose-algorithms.ts [seconds]`.
 *
 * "sequential" awaits one operation at a time (latency-bound, one request);
 * "parallel" keeps 64 in flight, which is what a busy server sees: jose uses
 * WebCrypto, whose sign/verify jobs run on libuv's thread pool.
 */
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import { cpus } from 'node:os';

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

async function rate(op: () => Promise<unknown>, inFlight: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await op();
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (done * 1000) / (performance.now() - start);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(8);
process.stdout.write(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${seconds}s per cell\n`);
process.stdout.write('alg      sign seq  sign par   verify seq  verify par   (ops/s)  token bytes\n');
for (const alg of algs) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) });
  const priv = (await importJWK(await exportJWK(privateKey), alg)) as CryptoKey;
  const pub = (await importJWK(await exportJWK(publicKey), alg)) as CryptoKey;
  const sign = () => new SignJWT(claims).setProtectedHeader({ alg, typ: 'at+jwt', kid: 'k1' }).setIssuedAt().setExpirationTime('15m').sign(priv);
  const token = await sign();
  const verify = () => jwtVerify(token, pub, { issuer: claims.iss, audience: claims.aud, typ: 'at+jwt', algorithms: [alg] });
  await rate(sign, 8); // warm up
  const row = [await rate(sign, 1), await rate(sign, 64), await rate(verify, 1), await rate(verify, 64)];
  process.stdout.write(`${alg.padEnd(6)} ${fmt(row[0]!)}  ${fmt(row[1]!)}    ${fmt(row[2]!)}    ${fmt(row[3]!)}             ${token.length}\n`);
}
