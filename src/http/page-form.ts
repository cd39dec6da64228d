/**
 * The one rule of an HTML form post: it carries the CSRF token of the
 * session its cookie names, in the field `csrf_token` (synchronizer
 * pattern). Without it the post changes nothing and is answered with the
 * forged-form page (403, "reload and try again"), or with a route's own
 * answer where the route shows something else (the sign-up form again, the
 * admin console's pages).
 *
 * The session service is an argument, so the admin console's sessions
 * (`consoleSessions`, its own cookie) are checked by the same rule.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Services } from '../services.js';
import type { BrowserSession, SessionService } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { renderErrorPage } from './pages.js';
import { loginThenReturnTo } from './return-path.js';
import { readSession } from './session-cookie.js';

type PageConfig = Pick<Config, 'secureCookies' | 'issuer'>;
/** A route's own answer to a refused post: it sends the reply (awaited, as a page or the reply itself). */
type Refusal = () => unknown;

export const FORGED_FORM = 'This form has expired or was not sent from this site. Go back, reload the page and try again.';

/** The answer to a form post without the session's CSRF token (403): the form is to be reloaded. */
function forgedFormPage(reply: FastifyReply, config: PageConfig): Promise<FastifyReply> {
  return renderErrorPage(reply, config, 403, FORGED_FORM, { title: 'This form has expired' });
}

/**
 * Refuses a form post that does not carry `session`'s CSRF token: sends
 * `refuse` (by default the forged-form page) and returns true. False when
 * the token is right. For routes that have read the session already (or
 * whose session is optional).
 */
export async function refuseForgedForm(
  request: FastifyRequest,
  reply: FastifyReply,
  session: BrowserSession,
  sessions: SessionService,
  config: PageConfig,
  refuse: Refusal = () => forgedFormPage(reply, config),
): Promise<boolean> {
  if (sessions.verifyCsrf(session, (request.body as { csrf_token?: unknown } | null | undefined)?.csrf_token)) return false;
  await refuse();
  return true;
}

/**
 * The session of a form post that carries its CSRF token. Otherwise null,
 * and `refuse` (by default the forged-form page) has been sent: a post
 * without a session (expired, cookies blocked, another site's) is refused
 * like one with the wrong token.
 */
export async function checkedFormSession(
  request: FastifyRequest,
  reply: FastifyReply,
  sessions: SessionService,
  config: PageConfig,
  refuse: Refusal = () => forgedFormPage(reply, config),
): Promise<BrowserSession | null> {
  const session = await readSession(request, sessions, config);
  if (!session) {
    await refuse();
    return null;
  }
  return (await refuseForgedForm(request, reply, session, sessions, config, refuse)) ? null : session;
}

/**
 * The signed-in user of a form post that carries its session's CSRF token,
 * with the session (the account page's forms). Otherwise null, and the
 * answer has been sent: the forged-form page for a wrong or missing token;
 * when no one is signed in (no session, or its sign-in has ended), the
 * sign-in page, which comes back to `returnTo`.
 */
export async function signedInFormPost(
  request: FastifyRequest,
  reply: FastifyReply,
  services: Pick<Services, 'sessions' | 'users'>,
  config: PageConfig,
  returnTo: string,
): Promise<{ user: User; session: BrowserSession } | null> {
  const session = await readSession(request, services.sessions, config);
  if (session && (await refuseForgedForm(request, reply, session, services.sessions, config))) return null;
  const user = session ? await services.users.findSignedIn(session) : null;
  if (!session || !user) {
    await reply.header('cache-control', 'no-store').redirect(loginThenReturnTo(returnTo), 303);
    return null;
  }
  return { user, session };
}
