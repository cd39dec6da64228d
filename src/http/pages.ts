/**
 * Rendering of the HTML pages (login, consent, error) and their error
 * dialect: every failure in a page route becomes the error page with the
 * right status, never a JSON body or a redirect to an unverified URI.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { FlowStep } from '../oauth/authorization.js';
import { formActionSource } from '../oauth/redirect-uri.js';
import { logError, toOAuthError } from './errors.js';
import { htmlPage } from './schemas.js';
import { widenPagePolicy } from './security-headers.js';

export interface PageOptions {
  status?: number;
  /** Redirect URIs a form on this page may end up at (see `widenPagePolicy`). */
  formTargets?: readonly string[];
  /**
   * The page loads our own scripts (`/assets/…`, never inline) that call our
   * own JSON endpoints: its CSP allows `script-src 'self'` and
   * `connect-src 'self'`, on this page only.
   */
  scripts?: boolean;
}

/** Renders `views/<template>.eta` as an uncacheable HTML page. */
export async function renderPage(
  reply: FastifyReply,
  config: Pick<Config, 'secureCookies' | 'issuer'>,
  template: string,
  model: Record<string, unknown> & { title: string },
  options: PageOptions = {},
): Promise<FastifyReply> {
  // Pages carry CSRF tokens and personal data: never stored by caches or the back/forward cache.
  reply.code(options.status ?? 200).header('cache-control', 'no-store').type('text/html; charset=utf-8');
  widenPagePolicy(reply, config, { formSources: (options.formTargets ?? []).map(formActionSource), scripts: options.scripts });
  return reply.view(template, { serviceName: new URL(config.issuer).host, ...model });
}

const TITLES: Record<number, string> = {
  400: 'Something is wrong with this request',
  403: 'Not allowed',
  404: 'Not found',
  429: 'Too many attempts',
  500: 'Something went wrong',
  503: 'Temporarily unavailable',
};

/**
 * A form post refused by a throttle: sets `Retry-After` and returns the
 * sentence for the form, `<what>. Try again in N minute(s).`
 */
export function throttledMessage(reply: FastifyReply, retryAfter: number, what: string): string {
  reply.header('retry-after', String(retryAfter));
  const minutes = Math.max(1, Math.ceil(retryAfter / 60));
  return `${what}. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
}

/** The error page. `message` is shown escaped; it must never name a secret. */
export function renderErrorPage(
  reply: FastifyReply,
  config: Pick<Config, 'secureCookies' | 'issuer'>,
  status: number,
  message: string,
  options: { title?: string; retryAfter?: number | undefined } = {},
): Promise<FastifyReply> {
  if (options.retryAfter !== undefined) reply.header('retry-after', String(options.retryAfter));
  const title = options.title ?? TITLES[status] ?? TITLES[status >= 500 ? 500 : 400]!;
  return renderPage(reply, config, 'error', { title, message }, { status });
}

/**
 * The error page's HTML, rendered by the instance rather than a reply: for
 * an answer Fastify gives before routing (`unroutable.ts`), whose reply has
 * none of the decorations (no `reply.view`).
 */
export function errorPageHtml(server: FastifyInstance, config: Pick<Config, 'issuer'>, status: number, message: string): Promise<string> {
  const title = TITLES[status] ?? TITLES[status >= 500 ? 500 : 400]!;
  return server.view('error', { serviceName: new URL(config.issuer).host, title, message });
}

/** A browser navigating (a GET that accepts HTML), which gets an error as a page; API clients get JSON. */
export function isPageNavigation(request: FastifyRequest): boolean {
  return request.method === 'GET' && /\btext\/html\b/.test(request.headers.accept ?? '');
}

/** Error handler of the page scopes: the error page in place of JSON. */
function pageErrorHandler(config: Pick<Config, 'secureCookies' | 'issuer'>) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const err = toOAuthError(error);
    logError(request, err);
    return renderErrorPage(reply, config, err.status, err.description, { retryAfter: err.retryAfter });
  };
}

/** How the error page is documented: every 4xx a page route documents no more precisely. */
const ERROR_PAGE = htmlPage('The error page (HTML), saying what went wrong.');

/**
 * Makes `app` a page scope: every error becomes the error page
 * (`pageErrorHandler`), and every route of the scope documents it so in the
 * OpenAPI document (a `4xx` HTML answer beside the codes the route documents
 * itself), where the JSON error body would otherwise be filled in
 * (`docs.ts`). Call before the scope's routes: an `onRoute` hook sees only
 * the routes added after it.
 */
export function usePageErrors(app: FastifyInstance, config: Pick<Config, 'secureCookies' | 'issuer'>): void {
  app.setErrorHandler(pageErrorHandler(config));
  app.addHook('onRoute', (route) => {
    if (route.schema === undefined) return;
    route.schema = { ...route.schema, response: { '4xx': ERROR_PAGE, ...(route.schema.response as Record<string, unknown> | undefined) } };
  });
}

/**
 * Answers a flow step: 303 to the client, the login page or the consent page.
 * 303 makes the browser follow with GET after a POST (RFC 9700 §4.11: a 307
 * would re-post the user's credentials to the client).
 */
export function sendStep(reply: FastifyReply, step: FlowStep): FastifyReply {
  return reply.header('cache-control', 'no-store').redirect(stepLocation(step), 303);
}

/** Where a flow step sends the browser: the client, the login page or the consent page. */
export function stepLocation(step: FlowStep): string {
  switch (step.kind) {
    case 'redirect':
      return step.location;
    case 'login':
      return `/login?rid=${encodeURIComponent(step.pending.id)}`;
    case 'consent':
      return `/consent?rid=${encodeURIComponent(step.pending.id)}`;
    case 'second_factor':
      return `/login/second-factor?rid=${encodeURIComponent(step.pending.id)}`;
  }
}
