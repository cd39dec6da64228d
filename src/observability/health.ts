/**
 * Liveness and readiness. `/healthz` answers while the process runs;
 * `/readyz` answers 200 only when the database and the code store both
 * answer, and says which one is down otherwise (503), so a load balancer
 * stops sending traffic to an instance that cannot serve it.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';

const CHECK_TIMEOUT_MS = 2_000;

async function check(probe: () => Promise<void>): Promise<'ok' | 'unavailable'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([probe(), timeout]);
    return 'ok';
  } catch {
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

const checkSchema = { type: 'string', enum: ['ok', 'unavailable'] } as const;
const readySchema = {
  type: 'object',
  properties: {
    status: checkSchema,
    checks: { type: 'object', properties: { database: checkSchema, code_store: checkSchema } },
  },
} as const;

export const healthRoutes: FastifyPluginAsync<{ services: Pick<Services, 'health'> }> = async (app, { services }) => {
  app.get(
    '/healthz',
    { config: { accessLog: 'debug' }, schema: { tags: ['operations'], summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { status: 'ok' };
    },
  );

  app.get(
    '/readyz',
    {
      config: { accessLog: 'debug' },
      schema: { tags: ['operations'], summary: 'Readiness: database and code store reachable', response: { 200: readySchema, 503: readySchema } },
    },
    async (_request, reply) => {
      const [database, codeStore] = await Promise.all([check(services.health.database), check(services.health.codeStore)]);
      const ready = database === 'ok' && codeStore === 'ok';
      reply.code(ready ? 200 : 503).header('cache-control', 'no-store');
      return { status: ready ? 'ok' : 'unavailable', checks: { database, code_store: codeStore } };
    },
  );
};
