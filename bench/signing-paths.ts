/**
 * Where should the token endpoint sign? `node --import tsx bench/signing-paths.ts`
 *
 * The client-credentials case of `npm run bench` spends about a third of the
 * server's main thread handing each ES256 signature to libuv's thread pool
 * (jose signs through WebCrypto: one job, and one wake-up of a pool thread,
 * per token). This compares, on a bare Fastify route that signs the same
 * RFC 9068 claims set per request:
 *
 *   jose     jose's SignJWT on the event loop (WebCrypto: a pool job per token),
 *            as a quiet server does;
 *   worker   the server's signing worker (src/tokens/signing-worker.ts): a
 *            worker thread that signs with fast-jwt (node:crypto, no pool
 *            job), fed in batches: every request that arrives in one turn of
 *            the event loop goes to the worker in one message.
 *
 * Each mode is its own server process (`--serve MODE --port N`), loaded by
 * autocannon from this process with 50 connections; rounds alternate the
 * modes (`--rounds N`, default 3). Reported: req/s and the server's CPU per
 * request (all threads). Before its run, a token of the worker mode is
 * verified by jose (signature, `typ`, `iss`, `aud`, `kid`).
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { importJWK, importPKCS8, jwtVerify, SignJWT, type JWK } from 'jose';
import { createSigningWorker } from '../src/tokens/signing-worker.js';
import { freePort, startServer } from './lib/processes.js';

const SELF = fileURLToPath(import.meta.url);
const ISSUER = 'http://127.0.0.1';
const KID = 'bench-key';

interface Claims {
  [claim: string]: unknown;
}

function claimsFor(n: number): Claims {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, sub: 'machine-client', aud: 'https://api.example', client_id: 'machine-client', scope: 'api:read', iat: now, exp: now + 900, jti: `t${n}-${Math.random().toString(36).slice(2)}` };
}

/** The server's signing worker (`src/tokens/signing-worker.ts`), started at the first token. */
async function workerSigner(pem: string): Promise<(claims: Claims) => Promise<string>> {
  const key = await importPKCS8(pem, 'ES256');
  const privateJwk = { ...(createPrivateKey(pem).export({ format: 'jwk' }) as JWK), alg: 'ES256', kid: KID };
  const signing = createSigningWorker({ startAtPerSecond: 0, onError: (err) => process.stderr.write(`${String(err)}\n`) });
  signing.addKey(KID, 'ES256', privateJwk);
  const header = { alg: 'ES256', typ: 'at+jwt', kid: KID };
  await signing.sign(claimsFor(0), header, key);
  while (!signing.stats().ready) await new Promise((resolve) => setTimeout(resolve, 10));
  return (claims) => signing.sign(claims, header, key);
}

async function serve(mode: string, port: number, pem: string, publicJwk: JWK): Promise<void> {
  let sign: (claims: Claims) => Promise<string>;
  if (mode === 'jose') {
    const key = await importPKCS8(pem, 'ES256');
    sign = (claims) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: KID }).sign(key);
  } else {
    sign = await workerSigner(pem);
    // Byte-for-byte a JWS jose accepts, with the header the server sends.
    const verifyKey = await importJWK(publicJwk, 'ES256');
    const { protectedHeader } = await jwtVerify(await sign(claimsFor(0)), verifyKey, { typ: 'at+jwt', issuer: ISSUER, audience: 'https://api.example' });
    if (protectedHeader.kid !== KID) throw new Error('worker token: wrong header');
  }
  const app = Fastify({ logger: false });
  let n = 0;
  app.post('/token', async (_request, reply) => {
    const token = await sign(claimsFor(++n));
    reply.header('cache-control', 'no-store');
    return { access_token: token, token_type: 'Bearer', expires_in: 900, scope: 'api:read' };
  });
  app.get('/ready', async () => ({ ok: true }));
  await app.listen({ port, host: '127.0.0.1' });
}

async function main(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 3;
  const seconds = 10;
  const results: Record<string, Array<{ rps: number; cpuUsPerReq: number }>> = { jose: [], worker: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['jose', 'worker']) {
      const port = await freePort();
      const server = await startServer({
        name: mode,
        args: ['--import', 'tsx', SELF, '--serve', mode, '--port', String(port)],
        env: { ...process.env, BENCH_KEY_PEM: pem, BENCH_PUBLIC_JWK: JSON.stringify(publicJwk) } as Record<string, string>,
        port,
        readyPath: '/ready',
        logFile: `/tmp/signing-paths-${mode}.log`,
        cwd: process.cwd(),
      });
      try {
        const options = { url: `${server.url}/token`, method: 'POST' as const, connections: 50 };
        await autocannon({ ...options, duration: 3 });
        const cpuBefore = server.cpuSeconds() ?? 0;
        const result = await autocannon({ ...options, duration: seconds });
        const cpu = (server.cpuSeconds() ?? 0) - cpuBefore;
        const rps = result.requests.average;
        const cpuUsPerReq = (cpu * 1e6) / result.requests.total;
        if (result.non2xx || result.errors) throw new Error(`${mode}: ${result.non2xx} non-2xx, ${result.errors} errors`);
        results[mode]!.push({ rps, cpuUsPerReq });
        process.stdout.write(`round ${round} ${mode.padEnd(6)} ${Math.round(rps).toLocaleString('en')} req/s, server CPU ${cpuUsPerReq.toFixed(0)} µs/req\n`);
      } finally {
        await server.stop();
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const mode of ['jose', 'worker']) {
    const r = results[mode]!;
    process.stdout.write(`${mode}: median ${Math.round(median(r.map((x) => x.rps))).toLocaleString('en')} req/s, ${median(r.map((x) => x.cpuUsPerReq)).toFixed(0)} µs/req\n`);
  }
}

if (process.argv.includes('--serve')) {
  const mode = process.argv[process.argv.indexOf('--serve') + 1]!;
  const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
  await serve(mode, port, process.env.BENCH_KEY_PEM!, JSON.parse(process.env.BENCH_PUBLIC_JWK!) as JWK);
} else await main();
