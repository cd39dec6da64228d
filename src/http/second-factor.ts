/**
 * `GET/POST /login/second-factor`: the code after the password, for a user
 * with an authenticator app, and the step-up of a signed-in session when an
 * authorization request's `acr_values` asks for a multi-factor sign-in.
 *
 * - After a right password, `/login` does not sign in: it records the user in
 *   the (still signed-out) session for `SECOND_FACTOR_TTL_MS` and sends the
 *   browser here. Only a right code signs in (a new session id), with amr
 *   `pwd otp`. The half-signed-in state is bound to that session: another
 *   browser, or this one after the time is up, starts again at the password.
 * - A code is a current one of the app or an unused recovery code, checked by
 *   `secondFactor.verify`: single use, throttled per account and address.
 * - Every form carries the session's CSRF token; the pending authorization
 *   request (`rid`) or the return path (`next`) travels with the form.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { amrOf } from '../oauth/acr.js';
import type { PendingAuthorization } from '../sessions/pending-authorization.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { toOAuthError } from './errors.js';
import { type BrowserFlowServices, completeSignIn, EXPIRED_REQUEST, FORM_POST_RESPONSES } from './login.js';
import { checkedFormSession } from './page-form.js';
import { renderErrorPage, renderPage, throttledMessage } from './pages.js';
import { safeReturnPath } from './return-path.js';
import { htmlPage, redirect } from './schemas.js';
import { firstStepOf, SECOND_FACTOR_KEY, SECOND_FACTOR_PATH, type HalfSignedIn } from './second-factor-state.js';
import { readSession } from './session-cookie.js';

const WRONG_CODE = 'That code is not right, or it was already used. Enter the current code from your app, or an unused recovery code.';

const querySchema = {
  type: 'object',
  properties: { rid: { type: 'string', maxLength: 100 }, next: { type: 'string', maxLength: 300 } },
} as const;
const bodySchema = {
  type: 'object',
  properties: {
    code: { type: 'string', maxLength: 64 },
    csrf_token: { type: 'string', maxLength: 200 },
    rid: { type: 'string', maxLength: 100 },
    next: { type: 'string', maxLength: 300 },
  },
} as const;

export function registerSecondFactorRoutes(app: FastifyInstance, services: BrowserFlowServices): void {
  const { config, pendingAuthorizations: store } = services;

  /**
   * Whose code this session waits for: the user whose password was right
   * (not yet signed in), or, with a pending request, the signed-in user
   * stepping up. `stepUp` says which.
   */
  async function awaitedUser(
    session: BrowserSession,
    pending: PendingAuthorization | null,
  ): Promise<{ user: User; stepUp: boolean; firstStep: readonly string[] } | null> {
    const entry = session.data[SECOND_FACTOR_KEY] as HalfSignedIn | undefined;
    if (entry && entry.expiresAt > services.now()) {
      const user = await services.users.findSignedIn(firstStepOf(entry));
      return user ? { user, stepUp: false, firstStep: entry.amr ?? ['pwd'] } : null;
    }
    if (!pending) return null;
    const user = await services.users.findSignedIn(session);
    return user && (await services.secondFactor.isEnrolled(user.id)) ? { user, stepUp: true, firstStep: amrOf(session.amr) } : null;
  }

  async function codePage(
    reply: FastifyReply,
    session: BrowserSession,
    view: { pending: PendingAuthorization | null; next: string | null; user: User; error?: string; status?: number },
  ): Promise<FastifyReply> {
    return renderPage(
      reply,
      config,
      'second-factor',
      {
        title: 'Two-step sign-in',
        csrfToken: session.csrfToken,
        username: view.user.username,
        rid: view.pending?.id ?? null,
        next: view.pending ? null : view.next,
        error: view.error ?? null,
      },
      { status: view.status ?? 200, formTargets: view.pending ? [view.pending.request.redirectUri] : [] },
    );
  }

  /** Back to the password: the half-signed-in state is gone (or never was). */
  const startAgain = (reply: FastifyReply, pending: PendingAuthorization | null, next: string | null) => {
    const query = pending ? `?rid=${encodeURIComponent(pending.id)}` : next ? `?next=${encodeURIComponent(next)}` : '';
    return reply.header('cache-control', 'no-store').redirect(`/login${query}`, 303);
  };

  async function loadPending(session: BrowserSession, rid: string | undefined): Promise<PendingAuthorization | null | 'expired'> {
    if (rid === undefined || rid === '') return null;
    return (await store.load(rid, session)) ?? 'expired';
  }

  app.get<{ Querystring: { rid?: string; next?: string } }>(
    SECOND_FACTOR_PATH,
    {
      schema: {
        tags: ['browser'],
        summary: 'Second-factor form (HTML)',
        produces: ['text/html'],
        querystring: querySchema,
        response: { 200: htmlPage('HTML page.'), 303: redirect('No code awaited: to the sign-in page.') },
      },
    },
    async (request, reply) => {
      const session = await readSession(request, services.sessions, config);
      const next = safeReturnPath(request.query.next);
      if (!session) return startAgain(reply, null, next);
      const pending = await loadPending(session, request.query.rid);
      if (pending === 'expired') return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
      const awaited = await awaitedUser(session, pending);
      if (!awaited) return startAgain(reply, pending, next);
      return codePage(reply, session, { pending, next, user: awaited.user });
    },
  );

  app.post<{ Body: { code?: string; csrf_token?: string; rid?: string; next?: string } }>(
    SECOND_FACTOR_PATH,
    {
      schema: {
        tags: ['browser'],
        summary: 'Second factor (HTML form post)',
        description: 'Form fields: code (a current authenticator-app code or a recovery code), csrf_token, rid, next. Answers 303 to the next step, or the form again with a message.',
        consumes: ['application/x-www-form-urlencoded'],
        body: bodySchema,
        response: FORM_POST_RESPONSES,
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const session = await checkedFormSession(request, reply, services.sessions, config);
      if (!session) return reply;
      const pending = await loadPending(session, body.rid);
      if (pending === 'expired') return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
      const next = safeReturnPath(body.next);
      const awaited = await awaitedUser(session, pending);
      if (!awaited) return startAgain(reply, pending, next);
      const { user, firstStep } = awaited;

      const code = (body.code ?? '').trim();
      if (code === '') return codePage(reply, session, { pending, next, user, error: 'Enter the code from your authenticator app.', status: 400 });
      let method;
      try {
        method = await services.secondFactor.verify(user, code, request.ip);
      } catch (err) {
        const e = toOAuthError(err);
        if (e.retryAfter === undefined) throw err;
        return codePage(reply, session, { pending, next, user, error: throttledMessage(reply, e.retryAfter, 'Too many wrong codes'), status: 429 });
      }
      if (!method) return codePage(reply, session, { pending, next, user, error: WRONG_CODE, status: 400 });

      delete session.data[SECOND_FACTOR_KEY];
      // RFC 8176: a recovery code is a one-time password too. The methods of the first step (or of
      // the session a step-up started from) are kept.
      const amr = [...new Set([...firstStep, 'otp'])];
      // The one end of every sign-in: a new session id (no session fixation), also for a step-up.
      const location = await completeSignIn(services, reply, session, { userId: user.id, amr, pending, next });
      return reply.header('cache-control', 'no-store').redirect(location, 303);
    },
  );
}
