/**
 * `buildApp(config, services)`: the HTTP server over the finished domain
 * services (`services.ts` builds those, once). Registers the shared plugins
 * and then each route scope, giving each the services it declares it uses.
 * Used by `main.ts` and by the tests. Nothing runs at import time.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import view from '@fastify/view';
import { Eta } from 'eta';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { adminApi } from './admin/api.js';
import { adminConsole } from './admin/console/routes.js';
import type { Config, TrustProxy } from './config.js';
import { assetRoutes } from './http/assets.js';
import { accountRoutes } from './http/account.js';
import { accountSecurityRoutes } from './http/account-security.js';
import { accountAuthenticatorRoutes } from './http/account-authenticator.js';
import { authorizeRoutes } from './http/authorize.js';
import { clientRegistrationRoutes } from './http/client-registration.js';
import { deviceRoutes } from './http/device.js';
import { registerCors } from './http/cors.js';
import { discoveryRoutes } from './http/discovery.js';
import { emailVerificationRoutes } from './http/email-verification.js';
import { endSessionRoutes } from './http/end-session.js';
import { homeRoutes } from './http/home.js';
import { registerDocs } from './http/docs.js';
import { jsonErrorHandler } from './http/errors.js';
import { closeConnectionsLingeringly } from './http/lingering-close.js';
import { rejectNonFiniteNumbers } from './http/finite-numbers.js';
import { mcpRoutes } from './http/mcp.js';
import { oauthEndpoints } from './http/oauth-endpoints.js';
import { passwordResetRoutes } from './http/password-reset.js';
import { passkeyRoutes } from './http/passkeys.js';
import { pushedAuthorizationRoutes } from './http/pushed-authorization.js';
import { resourceRoutes } from './http/resource.js';
import { resourceMetadataRoutes } from './http/resource-metadata.js';
import { registerSecurityHeaders, securityHeaders } from './http/security-headers.js';
import { isPageNavigation, renderErrorPage } from './http/pages.js';
import { clientErrorHandler, unroutableHandler } from './http/unroutable.js';
import { signUpRoutes } from './http/sign-up.js';
import { upstreamLoginRoutes } from './http/upstream-login.js';
import { AccessLogController } from './observability/access-log.js';
import { healthRoutes } from './observability/health.js';
import { defaultLogger } from './observability/logger.js';
import { registerRequestMetrics } from './observability/metrics-http.js';
import type { Services } from './services.js';

const VIEWS_DIR = fileURLToPath(new URL('../views/', import.meta.url));

export interface BuildOptions {
  /** Fastify logger options (or false); default: JSON logs at `LOG_LEVEL` with credentials redacted (`observability/logger.ts`). */
  logger?: FastifyServerOptions['logger'];
}

/**
 * `TRUST_PROXY` as Fastify's `trustProxy`. A hop count becomes a function:
 * Fastify 5 takes a bare number as "trust nothing" (it cannot tell a proxy
 * from a client connecting directly), but the operator who sets a hop count
 * says the server is reachable only through that many proxies (SPEC
 * `TRUST_PROXY`). Hop 0 is the socket's peer, so `n` trusts it and the
 * `n - 1` entries nearest to it: the address is the n-th from the right.
 */
function fastifyTrustProxy(trust: TrustProxy): FastifyServerOptions['trustProxy'] {
  if (typeof trust === 'number') return (_address: string, hop: number) => hop < trust;
  if (typeof trust === 'boolean') return trust;
  return [...trust];
}

export async function buildApp(config: Config, services: Services, options: BuildOptions = {}): Promise<FastifyInstance> {
  // Helmet's headers depend only on the configuration: computed once, for the routes and for unroutable URLs.
  const headers = securityHeaders(config);
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
    // The idle-socket timeout a little later than the request timeout (and its once-a-second
    // check): a request whose body stopped coming gets its 408 instead of a silent close.
    connectionTimeout: config.requestTimeoutMs + 1_500,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // joinDuplicateHeaders: a header sent twice arrives as both values joined ("a, b"), which the
    // strict parsers refuse, instead of Node keeping the first of two Authorization headers and
    // silently dropping the other.
    http: { headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: 1_000, joinDuplicateHeaders: true },
    trustProxy: fastifyTrustProxy(config.trustProxy),
    return503OnClosing: true,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    },
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    routerOptions: { maxParamLength: 200 },
    frameworkErrors: unroutableHandler(config, headers),
    clientErrorHandler: clientErrorHandler(headers),
  });

  // An answer sent before the request body was read (413 over BODY_LIMIT) must reach the
  // client, also through a proxy still sending that body: see http/lingering-close.ts. A
  // refused body is read on for at most BODY_LIMIT + 1 MiB (nginx's default
  // client_max_body_size is 1 MiB) and within the request's deadline.
  closeConnectionsLingeringly(app.server, { discardLimitBytes: config.bodyLimitBytes + 1_048_576 });

  app.addHook('onClose', async () => {
    await services.close();
  });
  // Set when the request arrives, so every answer carries it (an error's too: Fastify keeps
  // the reply's headers). Callback style, not async: an async hook costs a promise each time.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  registerRequestMetrics(app, services.metrics);

  // Helmet's headers on every response (CSP, frame-ancestors, Referrer-Policy): see security-headers.ts.
  await registerSecurityHeaders(app, headers);
  await app.register(formbody, { bodyLimit: config.bodyLimitBytes });
  // Cookies are read only where a session is (`http/session-cookie.ts`), not parsed on every request.
  await app.register(cookie, { hook: false });
  // Templates get all their data from the route (`reply.view(page, data)`); with `locals` declared
  // here, @fastify/view adds no hook that gives every request an empty `reply.locals`.
  app.decorateReply('locals', null);
  await app.register(view, {
    engine: { eta: new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true }) },
    templates: VIEWS_DIR,
    viewExt: 'eta',
  });
  await registerCors(app, config);
  // Before every route: the OpenAPI generator only sees routes added after it.
  await registerDocs(app, config);

  app.setErrorHandler(jsonErrorHandler);
  // After validation, before the handler of each route that validates a query or path parameters:
  // ajv's coercion lets ±Infinity past numeric bounds (see the file).
  app.addHook('onRoute', rejectNonFiniteNumbers);
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).header('cache-control', 'no-store');
    const path = request.url.split('?')[0]!.slice(0, 200);
    // A person who mistyped an address gets the error page; API clients the JSON body.
    if (isPageNavigation(request)) return renderErrorPage(reply, config, 404, `There is no page at ${path} on this server.`);
    return { error: 'not_found', error_description: `No route ${request.method} ${path}` };
  });

  await app.register(assetRoutes);
  await app.register(homeRoutes, { services });
  await app.register(healthRoutes, { services });
  await app.register(authorizeRoutes, { services });
  await app.register(endSessionRoutes, { services });
  await app.register(deviceRoutes, { services });
  await app.register(oauthEndpoints, { services });
  await app.register(pushedAuthorizationRoutes, { services });
  await app.register(clientRegistrationRoutes, { services });
  await app.register(discoveryRoutes, { services });
  await app.register(resourceRoutes, { services });
  await app.register(resourceMetadataRoutes, { services });
  await app.register(mcpRoutes, { services });
  await app.register(adminApi, { services });
  await app.register(adminConsole, { services });
  await app.register(signUpRoutes, { services });
  await app.register(upstreamLoginRoutes, { services });
  await app.register(accountRoutes, { services });
  await app.register(accountSecurityRoutes, { services });
  await app.register(passwordResetRoutes, { services });
  await app.register(emailVerificationRoutes, { services });
  await app.register(passkeyRoutes, { services });
  await app.register(accountAuthenticatorRoutes, { services });

  return app;
}
