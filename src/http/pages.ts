/**
 * Rendering of the HTML pages (login, consent, error) and their error
 * dialect: every failure in a page route becomes the error page with the
 * right status, never a JSON body or a redirect to an unverified URI.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { FlowStep } from '../oauth/authorization.js';
import { formActionSource } from '../oauth/redirect-uri.js';
import { logError, toOAuthError } from './errors.js';
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
  403: 'This form has expired',
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

/** Error handler of the page scopes: the error page in place of JSON. */
export function pageErrorHandler(config: Pick<Config, 'secureCookies' | 'issuer'>) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const err = toOAuthError(error);
    logError(request, err);
    return renderErrorPage(reply, config, err.status, err.description, { retryAfter: err.retryAfter });
  };
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
