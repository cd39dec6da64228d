/**
 * Case (d), the crypto floor: a bare Fastify route that does nothing but
 * `jose.jwtVerify` of the bearer token against our server's public key (the
 * same key, imported once; the same checks: issuer, audience, `typ: at+jwt`,
 * algorithm allow-list, expiry) and answers a small JSON body. No logging, no
 * hooks, no deny list: the least any JWT resource route can cost on this
 * stack. Started by `bench/run.ts` in its own process; not part of the product.
 *
 * Environment: PORT, FLOOR_JWK (the public JWK, JSON, with `alg`),
 * FLOOR_ISSUER, FLOOR_AUDIENCE. Prints `listening <url>` when ready.
 */
import Fastify from 'fastify';
import { importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';

const jwk = JSON.parse(process.env.FLOOR_JWK ?? 'null') as (JWK & { alg: string }) | null;
const issuer = process.env.FLOOR_ISSUER;
const audience = process.env.FLOOR_AUDIENCE;
if (!jwk || !issuer || !audience) throw new Error('FLOOR_JWK, FLOOR_ISSUER and FLOOR_AUDIENCE are required');
const key = (await importJWK(jwk, jwk.alg)) as CryptoKey;
const options = { issuer, audience, typ: 'at+jwt', algorithms: [jwk.alg] };

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.get('/api/hello', async (request, reply) => {
  const header = request.headers.authorization ?? '';
  try {
    const { payload } = await jwtVerify(header.slice(7), key, options);
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
