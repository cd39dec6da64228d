/**
 * CORS (`@fastify/cors`) for the endpoints a browser-based app calls directly
 * (OAuth 2.0 for Browser-Based Apps; RFC 8414 §3; OIDC Discovery §4):
 *
 * - discovery documents and JWKS: public, no credentials, the same for
 *   everyone, so any origin may read them (`*`);
 * - token, revocation, UserInfo and the sample resource routes: only the
 *   origins in `CORS_ORIGINS` (none by default). These carry their own
 *   credentials (PKCE verifier, bearer header), never cookies, so
 *   `Access-Control-Allow-Credentials` is never sent;
 * - introspection: none. RFC 7662 is for resource servers, which are
 *   confidential clients and do not run in a browser;
 * - admin API, admin console, login/consent pages: none. They rely on
 *   HTTP Basic or the session cookie and must stay same-origin.
 *
 * A preflight (`OPTIONS`) is matched by the wildcard route, so the decision
 * is made from the request path, not from per-route config; only exact paths
 * listed here get CORS headers.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';

/** Readable from any origin. */
export const PUBLIC_CORS_PATHS: ReadonlySet<string> = new Set([
  '/.well-known/oauth-authorization-server',
  '/.well-known/openid-configuration',
  '/jwks.json',
]);

/** Readable from the origins in `CORS_ORIGINS`. */
export const APP_CORS_PATHS: ReadonlySet<string> = new Set(['/token', '/revoke', '/userinfo', '/api/hello', '/api/admin/hello']);

type Options = Omit<FastifyCorsOptions, 'delegator' | 'hook'>;

const NO_CORS: Options = { origin: false };

function pathOf(request: FastifyRequest): string {
  const url = request.url;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export async function registerCors(app: FastifyInstance, config: Pick<Config, 'corsOrigins'>): Promise<void> {
  const common: Options = {
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    // The headers an app needs to read on errors and rate limits.
    exposedHeaders: ['WWW-Authenticate', 'Retry-After', 'X-Request-Id'],
    credentials: false,
    maxAge: 600,
    strictPreflight: true,
  };
  const publicOptions: Options = { ...common, origin: '*' };
  const anyOrigin = config.corsOrigins.includes('*');
  const allowed = new Set(config.corsOrigins);
  const appAny: Options = { ...common, origin: '*' };
  const exposed = (common.exposedHeaders as string[]).join(', ');

  /** The CORS policy for a request's path and Origin. */
  const optionsFor = (request: FastifyRequest): Options => {
    const origin = request.headers.origin;
    if (origin === undefined) return NO_CORS;
    const path = pathOf(request);
    if (PUBLIC_CORS_PATHS.has(path)) return publicOptions;
    if (APP_CORS_PATHS.has(path)) {
      if (anyOrigin) return appAny;
      // An origin not on the list gets no CORS headers at all (and its preflight a 404).
      if (allowed.has(origin)) return { ...common, origin };
    }
    return NO_CORS;
  };

  // Actual (non-preflight) requests: the headers @fastify/cors would add for
  // the same policy (Access-Control-Allow-Origin and -Expose-Headers, and
  // `Vary: Origin` on every response since the answer depends on Origin),
  // set directly. The plugin re-normalised its options on every request,
  // with or without an Origin header: a measurable share of a token request
  // (bench/README.md, "Hot-path changes").
  app.addHook('onRequest', (request, reply, done) => {
    if (request.method === 'OPTIONS') return done();
    const vary = reply.getHeader('vary');
    if (vary === undefined) reply.header('vary', 'Origin');
    else if (!/(^|,)\s*origin\s*(,|$)/i.test(String(vary))) reply.header('vary', `${String(vary)}, Origin`);
    const options = optionsFor(request);
    if (options.origin !== false) {
      reply.header('access-control-allow-origin', options.origin === '*' ? '*' : request.headers.origin!);
      reply.header('access-control-expose-headers', exposed);
    }
    done();
  });

  // Preflights (OPTIONS) stay with @fastify/cors, registered in a scope of
  // their own: its hook then runs only for its `OPTIONS *` route.
  await app.register(async (preflights) => {
    await preflights.register(cors, {
      hideOptionsRoute: true,
      delegator(request: FastifyRequest, callback: (err: Error | null, options: Options) => void) {
        callback(null, optionsFor(request));
      },
    } as FastifyCorsOptions);
  });
}
