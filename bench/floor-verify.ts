/**
 * Case (d), the crypto floor: a bare Fastify route that does nothing but
 * `jose.jwtVerify` of the bearer token against our server's public key (the
 * same key, imported once; the same checks: issuer, audience, `typ: at+jwt`,
 * algorithm allow-list, expiry) and answers a small JSON body. No logging, no
 * hooks, no deny list: the least any JWT resource route can cost on this
 * stack. Started by `bench/run.ts` in its own process; not part of the product.
 *
 * Case (j), the same with DPoP (RFC 9449 §7): `Authorization: DPoP <token>`
 * plus the proof, verified with jose against its embedded key (`typ`,
 * algorithm), then `htm`, `htu`, `iat` (±60 s), `ath`, the key against the
 * token's `cnf.jkt`, and the `jti` against an in-process map (a single
 * process needs no shared store; ours writes each `jti` to Redis). No nonce.
 *
 * Environment: PORT, FLOOR_JWK (the public JWK, JSON, with `alg`),
 * FLOOR_ISSUER, FLOOR_AUDIENCE. Prints `listening <url>` when ready.
 */
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { calculateJwkThumbprint, EmbeddedJWK, importJWK, jwtVerify, type CryptoKey, type JWK, type JWTPayload } from 'jose';

const jwk = JSON.parse(process.env.FLOOR_JWK ?? 'null') as (JWK & { alg: string }) | null;
const issuer = process.env.FLOOR_ISSUER;
const audience = process.env.FLOOR_AUDIENCE;
if (!jwk || !issuer || !audience) throw new Error('FLOOR_JWK, FLOOR_ISSUER and FLOOR_AUDIENCE are required');
const key = (await importJWK(jwk, jwk.alg)) as CryptoKey;
const options = { issuer, audience, typ: 'at+jwt', algorithms: [jwk.alg] };

const htu = `${issuer}/api/hello`;
const proofOptions = { typ: 'dpop+jwt', algorithms: ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] };
/** jti → when it may be forgotten (epoch seconds). */
const seen = new Map<string, number>();
let lastSweep = 0;

/** RFC 9449 §4.3 and §7.1 for one request; throws when anything is off. */
async function verifyProof(proof: string | string[] | undefined, token: string, payload: JWTPayload): Promise<void> {
  if (typeof proof !== 'string') throw new Error('no proof');
  const { payload: claims, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, proofOptions);
  const now = Math.floor(Date.now() / 1000);
  if (claims.htm !== 'GET' || claims.htu !== htu || typeof claims.iat !== 'number' || Math.abs(now - claims.iat) > 60) throw new Error('htm, htu or iat');
  if (claims.ath !== createHash('sha256').update(token).digest('base64url')) throw new Error('ath');
  if ((await calculateJwkThumbprint(protectedHeader.jwk!)) !== (payload.cnf as { jkt?: string } | undefined)?.jkt) throw new Error('key');
  const jti = String(claims.jti);
  if (seen.has(jti)) throw new Error('replay');
  seen.set(jti, now + 120);
  if (now - lastSweep > 10) {
    lastSweep = now;
    for (const [id, until] of seen) if (until < now) seen.delete(id);
  }
}

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/api/hello', async (request, reply) => {
  const header = request.headers.authorization ?? '';
  const dpop = header.startsWith('DPoP ');
  try {
    const token = header.slice(dpop ? 5 : 7);
    const { payload } = await jwtVerify(token, key, options);
    if (dpop) await verifyProof(request.headers.dpop, token, payload);
    else if (payload.cnf !== undefined) throw new Error('a bound token as Bearer');
    return { message: `Hello, ${String(payload.preferred_username ?? payload.client_id)}!`, sub: payload.sub, client_id: payload.client_id, scope: payload.scope };
  } catch {
    return reply.code(401).send({ error: 'invalid_token' });
  }
});

const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
process.stdout.write(`listening ${address}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
