/**
 * `buildApp(config, services)`: the one composition root of the HTTP server,
 * used by `main.ts` and by the tests. Nothing runs at import time.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import view from '@fastify/view';
import { Eta } from 'eta';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { adminRoutes } from './admin/routes.js';
import type { Config } from './config.js';
import { createAdminAuth } from './http/admin-auth.js';
import { adminPages } from './http/admin-pages.js';
import { authorizeRoutes } from './http/authorize.js';
import { AccessLogController } from './http/access-log.js';
import { adminBearerVerifier } from './http/bearer.js';
import { discoveryRoutes } from './http/discovery.js';
import { registerCors } from './http/cors.js';
import { registerDocs } from './http/docs.js';
import { jsonErrorHandler } from './http/errors.js';
import { rejectNonFiniteNumbers } from './http/finite-numbers.js';
import { redactUrl, serializeError } from './http/log-redaction.js';
import { metricsRoutes, registerRequestMetrics } from './http/metrics.js';
import { oauthEndpoints } from './http/oauth-endpoints.js';
import { opsRoutes } from './http/ops.js';
import { registerRoutes } from './http/register.js';
import { resourceRoutes } from './http/resource.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import type { Services } from './services.js';

export const VIEWS_DIR = fileURLToPath(new URL('../views/', import.meta.url));
export const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));

export interface BuildOptions {
  /** Fastify logger options (or false); default: JSON logs at `LOG_LEVEL` with credentials redacted. */
  logger?: FastifyServerOptions['logger'];
}

/** Paths pino must never print. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
];

export function defaultLogger(config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req(req) {
        return {
          method: req.method,
          // Query values only of harmless parameters (http/log-redaction.ts).
          url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
          remoteAddress: req.ip,
        };
      },
      err: serializeError,
    },
  };
}

export async function buildApp(config: Config, services: Services, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? defaultLogger(config),
    // Hot machine-facing routes log their two request lines at debug (http/access-log.ts).
    logController: new AccessLogController(),
    bodyLimit: config.bodyLimitBytes,
    // A slow client cannot hold a socket forever (slowloris): its headers must
    // arrive within HEADERS_TIMEOUT_MS and the whole request within
    // REQUEST_TIMEOUT_MS, else Node answers 408 and closes the connection;
    // a socket idle that long is closed too. Node checks these deadlines
    // every `connectionsCheckingInterval` (30 s by default, which would let a
    // slow client overstay by up to 30 s): every second instead.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: { headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: 1_000 },
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    },
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    routerOptions: { maxParamLength: 200 },
  });

  app.addHook('onClose', async () => {
    await services.close();
  });
  // Callback style, not async: this runs on every response, and an async hook costs a promise each time.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  registerRequestMetrics(app, services.metrics);

  // Helmet's headers on every response (CSP, frame-ancestors, Referrer-Policy): see security-headers.ts.
  await registerSecurityHeaders(app, config);
  await app.register(formbody, { bodyLimit: config.bodyLimitBytes });
  await app.register(cookie);
  await app.register(view, {
    engine: { eta: new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true }) },
    templates: VIEWS_DIR,
    viewExt: 'eta',
  });
  await registerCors(app, config);
  // Before every route: the OpenAPI generator only sees routes added after it.
  await registerDocs(app, config);

  app.setErrorHandler(jsonErrorHandler);
  // After validation, before every handler: ajv's coercion lets ±Infinity past numeric bounds (see the file).
  app.addHook('preHandler', rejectNonFiniteNumbers);
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).header('cache-control', 'no-store');
    return { error: 'not_found', error_description: `No route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` };
  });

  // The one stylesheet of the HTML pages, read once; a strict CSP allows only 'self' styles.
  const css = await readFile(`${PUBLIC_DIR}app.css`);
  const cssEtag = `"${createHash('sha256').update(css).digest('base64url').slice(0, 16)}"`;
  app.get('/assets/app.css', async (request, reply) => {
    reply.header('cache-control', 'public, max-age=3600').header('etag', cssEtag);
    if (request.headers['if-none-match'] === cssEtag) return reply.code(304).send();
    return reply.type('text/css; charset=utf-8').send(css);
  });

  await app.register(opsRoutes, { services });
  await app.register(authorizeRoutes, { services });
  await app.register(oauthEndpoints, { services });
  await app.register(discoveryRoutes, { services });
  await app.register(resourceRoutes, { services });
  await app.register(adminRoutes, { services, verifyBearer: adminBearerVerifier(services) });
  await app.register(adminPages, { services });
  await app.register(metricsRoutes, { metrics: services.metrics, config, authenticate: createAdminAuth({ services, verifyBearer: adminBearerVerifier(services) }) });
  await app.register(registerRoutes, { services });

  return app;
}
