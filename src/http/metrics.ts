/**
 * Prometheus exposition. Request counts and latency are recorded by one
 * `onResponse` hook labelled with the route pattern (never the raw URL, so
 * `/admin/clients/abc` and `/admin/clients/def` are one series).
 *
 * `GET /metrics` is served either on the main port behind admin
 * authentication, or, when `METRICS_PORT` is set, only on that port without
 * authentication (meant for a private interface a scraper reaches) and not
 * at all on the main port.
 */
import { createServer, type Server } from 'node:http';
import type { FastifyInstance, FastifyPluginAsync, onRequestAsyncHookHandler } from 'fastify';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';

/** Records every answered request. Register on the root instance before the route scopes. */
export function registerRequestMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

export interface MetricsRouteOptions {
  metrics: Metrics;
  config: Pick<Config, 'metricsPort'>;
  /** Admin authentication (HTTP Basic or an admin bearer token), run before anything else of the request. */
  authenticate: onRequestAsyncHookHandler;
}

/** `GET /metrics` on the main port, for admins; absent when `METRICS_PORT` is set. */
export const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async (app, { metrics, config, authenticate }) => {
  if (config.metricsPort !== undefined) return;
  // Set by the admin authentication hook (admin-auth.ts) in this scope too.
  app.decorateRequest('adminPrincipal', null);
  app.get(
    '/metrics',
    {
      onRequest: authenticate,
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (admin only; on METRICS_PORT instead when that is set)',
        security: [{ adminBasic: [] }, { bearerAuth: [] }],
        response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.header('cache-control', 'no-store').type(contentType).send(body);
    },
  );
};

/**
 * Serves `GET /metrics` alone on `port`, unauthenticated: bind it where only
 * the scraper reaches (the default host is loopback). Resolves once
 * listening; the returned function closes it.
 */
export async function startMetricsServer(metrics: Metrics, port: number, host: string): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end('Not found\n');
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  // A scraper's idle keep-alive socket must not hold shutdown up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
