/**
 * Security headers on every response, computed by helmet (a route that
 * answers machines with JSON gets the subset `API_HEADERS`):
 *
 * - `Content-Security-Policy`: nothing but our own stylesheet; no scripts,
 *   no frames, `frame-ancestors 'none'` (clickjacking, RFC 9700 §4.16),
 *   `form-action 'self'`, `base-uri 'none'`.
 * - `X-Frame-Options: DENY` for browsers without `frame-ancestors`.
 * - `Referrer-Policy: no-referrer`, so codes, states and request ids in our
 *   URLs never leak to other sites (RFC 9700 §4.2.4).
 * - HSTS and `upgrade-insecure-requests` only when the issuer is https (on
 *   an http localhost issuer they would break the pages).
 *
 * Chromium applies `form-action` to every redirect that follows a form
 * submission, so a page whose form may end in a redirect to a client (login
 * and consent) must also allow that client's origin: `widenPagePolicy`
 * widens `form-action` for one response (and allows our own scripts on the
 * pages that need them: passkeys).
 *
 * To adjust the policy for a route (e.g. Swagger UI), build it with
 * `contentSecurityPolicy(config, { 'script-src': ["'self'"] })` and set it
 * with `reply.header('content-security-policy', …)`.
 *
 * The headers depend only on the configuration, so helmet computes them once
 * at start and each request only copies them. (@fastify/helmet, used before,
 * ran helmet's whole middleware on every request in two onRequest hooks:
 * bench/README.md, "Hot-path changes".)
 */
import helmet from 'helmet';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Config } from '../config.js';

export type CspDirectives = Record<string, readonly string[]>;

/** The strict policy of the HTML pages (and every other response). */
export function cspDirectives(config: Pick<Config, 'secureCookies'>): CspDirectives {
  const directives: Record<string, readonly string[]> = {
    'default-src': ["'none'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'form-action': ["'self'"],
    'frame-ancestors': ["'none'"],
    'base-uri': ["'none'"],
  };
  if (config.secureCookies) directives['upgrade-insecure-requests'] = [];
  return directives;
}

/** Serialises directives (merged over the defaults) into a header value. */
export function contentSecurityPolicy(config: Pick<Config, 'secureCookies'>, overrides: CspDirectives = {}): string {
  const merged = { ...cspDirectives(config), ...overrides };
  return Object.entries(merged)
    .map(([name, values]) => [name, ...values].join(' '))
    .join('; ');
}

/**
 * Widens the policy of one page: `formSources` (CSP source expressions from
 * `formActionSource`) are added to `form-action`, so the redirect to the
 * client after the page's form is posted is not blocked; `scripts` allows
 * our own scripts (`script-src 'self'`) and their calls to our own JSON
 * endpoints (`connect-src 'self'`), never inline ones. Nothing to widen:
 * the strict default stays.
 */
export function widenPagePolicy(
  reply: FastifyReply,
  config: Pick<Config, 'secureCookies'>,
  widen: { formSources?: ReadonlyArray<string | null>; scripts?: boolean | undefined },
): void {
  const overrides: Record<string, readonly string[]> = {};
  const extra = [...new Set((widen.formSources ?? []).filter((s): s is string => s !== null))];
  if (extra.length > 0) overrides['form-action'] = ["'self'", ...extra];
  if (widen.scripts) {
    overrides['script-src'] = ["'self'"];
    overrides['connect-src'] = ["'self'"];
  }
  if (Object.keys(overrides).length === 0) return;
  reply.header('content-security-policy', contentSecurityPolicy(config, overrides));
}

/** The response headers helmet sets for this configuration (lower-case names). None depends on the request. */
export function securityHeaders(config: Pick<Config, 'secureCookies'>): ReadonlyMap<string, string> {
  const directives: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(cspDirectives(config))) directives[name] = [...values];
  const middleware = helmet({
    contentSecurityPolicy: { useDefaults: false, directives },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: config.secureCookies ? { maxAge: 31_536_000, includeSubDomains: false } : false,
  });
  const headers = new Map<string, string>();
  let failure: unknown;
  // helmet only calls setHeader/removeHeader on the response; it reads nothing from the request.
  const response = {
    setHeader: (name: string, value: string | number | readonly string[]) => void headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value)),
    removeHeader: (name: string) => void headers.delete(name.toLowerCase()),
  };
  middleware({} as Parameters<typeof middleware>[0], response as unknown as Parameters<typeof middleware>[1], (err?: unknown) => (failure = err));
  if (failure) throw failure instanceof Error ? failure : new Error(`helmet failed: ${String(failure as string)}`);
  return headers;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `'api'`: this route answers machines with JSON, never a page, and gets
     * the API subset of the headers (`API_HEADERS`). Declared on the route.
     */
    securityHeaders?: 'api';
  }
}

/**
 * What a JSON answer keeps (OWASP's REST Security Cheat Sheet): the strict
 * CSP with `frame-ancestors 'none'`, `X-Frame-Options`, `nosniff`,
 * `Referrer-Policy`, `Cross-Origin-Resource-Policy` and HSTS. The rest of
 * helmet's set only affects documents a browser renders (COOP,
 * Origin-Agent-Cluster, DNS prefetching, IE's download dialog, Flash and
 * PDF cross-domain policies, the retired XSS auditor), and each header is
 * work on every answer of the busiest routes.
 */
const API_HEADERS: ReadonlySet<string> = new Set([
  'content-security-policy',
  'x-frame-options',
  'x-content-type-options',
  'referrer-policy',
  'cross-origin-resource-policy',
  'strict-transport-security',
]);

/** The API subset (`API_HEADERS`) of `securityHeaders(config)`: what a JSON answer carries. */
export function apiSecurityHeaders(all: ReadonlyMap<string, string>): Array<[string, string]> {
  return [...all].filter(([name]) => API_HEADERS.has(name));
}

/** Sets `securityHeaders(config)` on every response (call on the root instance, before the routes). */
export async function registerSecurityHeaders(app: FastifyInstance, all: ReadonlyMap<string, string>): Promise<void> {
  const headers = [...all];
  const apiHeaders = apiSecurityHeaders(all);
  // On Fastify's reply, not the raw response: Node then writes all headers
  // in one go (writeHead's fast path) instead of re-validating each of
  // Fastify's headers through setHeader. A route's own reply.header() (a
  // page's widened CSP) replaces the value, as it did with helmet.
  app.addHook('onRequest', (request, reply, done) => {
    for (const [name, value] of request.routeOptions.config.securityHeaders === 'api' ? apiHeaders : headers) reply.header(name, value);
    done();
  });
}
