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
 * Each route declares its policy itself, `config: { cors: 'public' | 'app' }`;
 * a route without it is same-origin only. A preflight (`OPTIONS`) is matched
 * by the wildcard route, so the policies of the routes with a static path
 * are also collected as they are added (`onRoute`) and looked up by path.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Config } from '../config.js';

/** A route's CORS policy: readable from any origin, or from the origins in `CORS_ORIGINS`. */
export type CorsPolicy = 'public' | 'app';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may read this route's answers cross-origin (`http/cors.ts`); absent: nobody. */
    cors?: CorsPolicy;
  }
}

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
    // MCP-Protocol-Version: what an MCP client sends with every request after initialize (the sample MCP server, /mcp).
    // DPoP: the proof (RFC 9449 §4.1) a browser app sends to the token endpoint and the resources.
    allowedHeaders: ['Authorization', 'Content-Type', 'MCP-Protocol-Version', 'DPoP'],
    // The headers an app needs to read on errors and rate limits, and the DPoP server nonce (RFC 9449 §8).
    exposedHeaders: ['WWW-Authenticate', 'Retry-After', 'X-Request-Id', 'DPoP-Nonce'],
    credentials: false,
    maxAge: 600,
    strictPreflight: true,
  };
  const publicOptions: Options = { ...common, origin: '*' };
  const anyOrigin = config.corsOrigins.includes('*');
  const allowed = new Set(config.corsOrigins);
  const appAny: Options = { ...common, origin: '*' };
  const exposed = (common.exposedHeaders as string[]).join(', ');

  /** The CORS options for a policy and the request's Origin. */
  const optionsFor = (policy: CorsPolicy | undefined, origin: string | undefined): Options => {
    if (origin === undefined || policy === undefined) return NO_CORS;
    if (policy === 'public') return publicOptions;
    if (anyOrigin) return appAny;
    // An origin not on the list gets no CORS headers at all (and its preflight a 404).
    return allowed.has(origin) ? { ...common, origin } : NO_CORS;
  };

  // Actual (non-preflight) requests to a route with a policy: the headers
  // @fastify/cors would add for it (Access-Control-Allow-Origin and
  // -Expose-Headers, and `Vary: Origin` since the answer depends on Origin),
  // set directly by a hook added to that route alone. The plugin
  // re-normalised its options on every request, with or without an Origin
  // header: a measurable share of a token request (bench/README.md,
  // "Hot-path changes"). Routes without a policy answer the same to every
  // Origin and get nothing.
  const corsHeaders = (policy: CorsPolicy): onRequestHookHandler =>
    function setCorsHeaders(request, reply, done) {
      const vary = reply.getHeader('vary');
      if (vary === undefined) reply.header('vary', 'Origin');
      else if (!/(^|,)\s*origin\s*(,|$)/i.test(String(vary))) reply.header('vary', `${String(vary)}, Origin`);
      const options = optionsFor(policy, request.headers.origin);
      if (options.origin !== false) {
        reply.header('access-control-allow-origin', options.origin === '*' ? '*' : request.headers.origin!);
        reply.header('access-control-expose-headers', exposed);
      }
      done();
    };

  /** Policies of the routes with a static path, for preflights (which match the `OPTIONS *` route). */
  const byPath = new Map<string, CorsPolicy>();
  app.addHook('onRoute', (route) => {
    const policy = route.config?.cors;
    if (policy === undefined) return;
    if (!route.url.includes(':') && !route.url.includes('*')) byPath.set(route.url, policy);
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [corsHeaders(policy), ...own];
  });

  // Preflights (OPTIONS) stay with @fastify/cors, registered in a scope of
  // their own: its hook then runs only for its `OPTIONS *` route.
  await app.register(async (preflights) => {
    await preflights.register(cors, {
      hideOptionsRoute: true,
      delegator(request: FastifyRequest, callback: (err: Error | null, options: Options) => void) {
        callback(null, optionsFor(byPath.get(pathOf(request)), request.headers.origin));
      },
    } as FastifyCorsOptions);
  });
}
