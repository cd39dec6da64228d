/**
 * The admin console: server-rendered HTML pages over the same services as
 * the admin JSON API (`services.clients`, `services.users`, `services.audit`).
 *
 * Paths: `GET /admin` (dashboard) and everything else under
 * `/admin/console/…`, so nothing collides with the JSON API at
 * `/admin/clients` and `/admin/users`.
 *
 * - The console has its own sign-in and its own session (`consoleSessions`:
 *   its own cookie, SameSite=Strict, `ADMIN_SESSION_TTL` idle timeout,
 *   renewed by every page the guard lets through), so
 *   an admin who signed in to some app through the login pages is NOT signed
 *   in to the console. The session id is replaced at sign-in. The role is
 *   checked again on every request, so taking `admin` away or disabling the
 *   account locks the console at once. The password goes through the
 *   server's one sign-in path (`users.signIn`, throttled like every other).
 * - An admin with an authenticator app gives its code next
 *   (`/admin/console/sign-in/code`, `secondFactor.verify`); the half-signed-in
 *   state lives in the console session for five minutes. With
 *   `REQUIRE_MFA_FOR_ADMINS=true` a console session without a second factor
 *   opens nothing, and an admin without an app is told so at sign-in, with a
 *   link to set one up on the account page (`/login?next=/account/authenticator…`),
 *   whose last page leads back to the console.
 * - Every form carries the session's CSRF token (synchronizer pattern) and
 *   every POST is refused without it.
 * - A client secret is shown once, in the response to the POST that created
 *   it, never stored, never put in a URL; the page is `no-store`.
 * - Bad input shows the form again, the message next to its field, what was
 *   typed kept (secrets never are).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isMultiFactor } from '../../oauth/acr.js';
import { isAdmin } from '../../users/account.js';
import { registerClientPages } from './clients.js';
import { CONSOLE, csrf, csrfOnly, SIGN_IN, type ConsoleAdmin, type ConsoleContext, type ConsoleServices } from './context.js';
import { registerEventPages } from './events.js';
import { registerIdentityProviderPages } from './identity-providers.js';
import { registerUserPages } from './users.js';
import { logError, toOAuthError } from '../../http/errors.js';
import { throttledMessage } from '../../http/pages.js';
import { loginThenReturnTo, safeConsolePath } from '../../http/return-path.js';
import { checkedFormSession, refuseForgedForm } from '../../http/page-form.js';
import { firstStepOf, halfSignedIn, type HalfSignedIn } from '../../http/second-factor-state.js';
import { clearSessionCookie, ensureSession, readSession, setSessionCookie } from '../../http/session-cookie.js';

const FLASH_KEY = 'adminConsoleNotice';
/** The admin whose password was right and whose code is awaited: `{ userId, expiresAt }` (epoch ms). */
const SECOND_FACTOR_KEY = 'consoleSecondFactor';
const CODE_PAGE = `${SIGN_IN}/code`;
/**
 * Where an admin without an authenticator app sets one up: the account page
 * (which signs in on its own), then back to the console (`next`, checked there
 * by `safeConsolePath`).
 */
const ENROL = loginThenReturnTo(`/account/authenticator?next=${encodeURIComponent('/admin')}`);
const ENROL_FIRST =
  'The admin console asks administrators for a code from an authenticator app, and your account has none set up yet. ' +
  'Set one up on your account page (you sign in there with your password), then sign in here again.';

const codeBody = { type: 'object', properties: { code: { type: 'string', maxLength: 64 }, next: { type: 'string', maxLength: 500 }, csrf_token: csrf } } as const;

const signInBody = {
  type: 'object',
  properties: { username: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 }, next: { type: 'string', maxLength: 500 }, csrf_token: csrf },
} as const;
const signInQuery = { type: 'object', properties: { next: { type: 'string', maxLength: 500 } } } as const;

interface SignInBody {
  username?: string;
  password?: string;
  next?: string;
  csrf_token?: string;
}

/**
 * Only the dashboard or a page inside the console may be a post-sign-in
 * destination, by the login pages' rule (`safeConsolePath`: no open redirect,
 * nothing a `Location` header cannot carry); anything else goes to the dashboard.
 */
function safeNext(next: string | undefined): string {
  return safeConsolePath(next) ?? '/admin';
}

export const adminConsole: FastifyPluginAsync<{ services: ConsoleServices }> = async (app, { services }) => {
  const { config } = services;

  app.decorateRequest('consoleAdmin', null);
  // HTML for people, not part of the API: none of the console's routes is in the OpenAPI document.
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true };
  });

  const render = (reply: FastifyReply, status: number, view: string, data: Record<string, unknown>) =>
    reply
      .code(status)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .view(`admin/${view}`, { serviceName: 'Admin console', ...data });

  const message = (reply: FastifyReply, status: number, title: string, text: string, admin: ConsoleAdmin | null) =>
    render(reply, status, 'message', { title, message: text, admin: admin ? navModel(admin) : null });

  const navModel = (admin: ConsoleAdmin) => ({ username: admin.user.username, csrfToken: admin.session.csrfToken });

  async function takeNotice(admin: ConsoleAdmin): Promise<string | null> {
    const notice = admin.session.data[FLASH_KEY];
    if (typeof notice !== 'string') return null;
    delete admin.session.data[FLASH_KEY];
    await services.consoleSessions.save(admin.session);
    return notice;
  }

  async function setNotice(admin: ConsoleAdmin, text: string): Promise<void> {
    admin.session.data[FLASH_KEY] = text;
    await services.consoleSessions.save(admin.session);
  }

  // Errors of this scope (validation, 404, 429, 503) as an HTML page.
  app.setErrorHandler(async (error, request, reply) => {
    const err = toOAuthError(error);
    logError(request, err);
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    const title = err.status === 404 ? 'Not found' : err.status >= 500 ? 'Something went wrong' : 'Cannot do that';
    return message(reply, err.status, title, err.description, request.consoleAdmin);
  });
  // Unknown console pages (only under the console's own prefix: the root 404 stays JSON).
  await app.register(
    async (scope) => {
      scope.setNotFoundHandler(async (_request, reply) => message(reply, 404, 'Not found', 'There is no such page in the admin console.', null));
    },
    { prefix: CONSOLE },
  );

  /**
   * The guard of every page but sign-in: a signed-in, enabled admin, and on
   * POST the session's CSRF token.
   */
  async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const session = await readSession(request, services.consoleSessions, config);
    // A deleted user is simply signed out; a dead database is a 503 page (the error handler).
    const user = session ? await services.users.findSignedIn(session) : null;
    if (!session || !user || !isAdmin(user) || !mfaMet(session)) {
      if (request.method === 'GET') {
        const next = request.url.split('?')[0]!;
        return reply.code(303).header('cache-control', 'no-store').redirect(`${SIGN_IN}?next=${encodeURIComponent(next)}`);
      }
      return message(reply, 401, 'Signed out', 'Your admin session has ended. Sign in again.', null);
    }
    const admin = { session, user };
    const expired = () => message(reply, 403, 'Form expired', 'This form is out of date or was not sent from this console. Go back, reload the page and try again.', admin);
    if (request.method === 'POST' && (await refuseForgedForm(request, reply, session, services.consoleSessions, config, expired))) return reply;
    // `ADMIN_SESSION_TTL` is an idle timeout: every use pushes the end back, in the store and in
    // the cookie's Max-Age alike (written at most every tenth of the TTL: `keepAlive`).
    if (await services.consoleSessions.keepAlive(session)) setSessionCookie(reply, services.consoleSessions, session, config);
    request.consoleAdmin = admin;
    return undefined;
  }

  const admin = (request: FastifyRequest): ConsoleAdmin => request.consoleAdmin!;
  /** `REQUIRE_MFA_FOR_ADMINS`: a console session counts only when it was signed in with a second factor. */
  function mfaMet(session: { amr?: string[] }): boolean {
    return !config.requireMfaForAdmins || isMultiFactor(session.amr);
  }
  const guarded = { preHandler: requireAdmin };

  // ---------------------------------------------------------------- sign-in

  const signInPage = (
    reply: FastifyReply,
    status: number,
    data: { csrfToken: string; username?: string; next: string; error?: string | null; notice?: string | null; enrolHref?: string | null },
  ) => render(reply, status, 'sign-in', { title: 'Admin sign-in', username: '', error: null, notice: null, enrolHref: null, ...data });

  app.get<{ Querystring: { next?: string } }>(`${SIGN_IN}`, { schema: { querystring: signInQuery } }, async (request, reply) => {
    const session = await ensureSession(request, reply, services.consoleSessions, config);
    let notice: string | null = null;
    if (session.userId) {
      const user = await services.users.findSignedIn(session);
      if (isAdmin(user) && mfaMet(session)) return reply.code(303).redirect(safeNext(request.query.next));
      if (user) notice = `You are signed in as ${user.username}, who is not an administrator. Sign in with an admin account.`;
    }
    return signInPage(reply, 200, { csrfToken: session.csrfToken, next: safeNext(request.query.next), notice });
  });

  app.post<{ Body: SignInBody }>(`${SIGN_IN}`, { schema: { body: signInBody } }, async (request, reply) => {
    const body = request.body ?? {};
    const username = body.username ?? '';
    const next = safeNext(body.next);
    // Login CSRF: a sign-in not started from this form is refused (the form again, with a fresh session's token).
    const session = await checkedFormSession(request, reply, services.consoleSessions, config, async () => {
      const fresh = await ensureSession(request, reply, services.consoleSessions, config);
      return signInPage(reply, 403, { csrfToken: fresh.csrfToken, username, next, error: 'This form has expired. Sign in again.' });
    });
    if (!session) return reply;
    if (username === '' || !body.password) {
      return signInPage(reply, 400, { csrfToken: session.csrfToken, username, next, error: 'Enter your username and password.' });
    }
    let result;
    try {
      result = await services.users.signIn(username, body.password, { ip: request.ip, source: 'admin_console' });
    } catch (err) {
      const e = toOAuthError(err);
      const error = e.retryAfter === undefined ? e.description : throttledMessage(reply, e.retryAfter, 'Too many sign-in attempts');
      return signInPage(reply, e.status, { csrfToken: session.csrfToken, username, next, error });
    }
    if (!result.ok) return signInPage(reply, 401, { csrfToken: session.csrfToken, username, next, error: 'Wrong username or password.' });
    const user = result.user;
    if (!isAdmin(user)) {
      return signInPage(reply, 403, { csrfToken: session.csrfToken, username, next, error: 'Only administrators can sign in to the admin console.' });
    }
    if (await services.secondFactor.isEnrolled(user.id)) {
      session.data[SECOND_FACTOR_KEY] = halfSignedIn(user.id, services.now());
      await services.consoleSessions.save(session);
      return reply.code(303).header('cache-control', 'no-store').redirect(`${CODE_PAGE}?next=${encodeURIComponent(next)}`);
    }
    // Said here, on the page the admin is looking at: the login page they are sent to next knows nothing of the console.
    if (config.requireMfaForAdmins) return signInPage(reply, 403, { csrfToken: session.csrfToken, username, next, error: ENROL_FIRST, enrolHref: ENROL });
    const signedIn = await services.consoleSessions.signIn(session, user.id);
    setSessionCookie(reply, services.consoleSessions, signedIn, config);
    request.log.info({ userId: user.id }, 'admin console sign-in');
    return reply.code(303).header('cache-control', 'no-store').redirect(next);
  });

  /** The admin whose code this console session waits for; null when none (or the time is up). */
  async function awaitedAdmin(session: { data: Record<string, unknown> } | null) {
    const entry = session?.data[SECOND_FACTOR_KEY] as HalfSignedIn | undefined;
    if (!entry || entry.expiresAt <= services.now()) return null;
    // A password change (or disable) since the password step voids the wait, as it ends signed-in sessions.
    const user = await services.users.findSignedIn(firstStepOf(entry));
    return isAdmin(user) ? user : null;
  }

  const codePage = (reply: FastifyReply, status: number, data: { csrfToken: string; next: string; username: string; error?: string | null }) =>
    render(reply, status, 'sign-in-code', { title: 'Admin sign-in', error: null, ...data });

  app.get<{ Querystring: { next?: string } }>(CODE_PAGE, { schema: { querystring: signInQuery } }, async (request, reply) => {
    const session = await readSession(request, services.consoleSessions, config);
    const user = await awaitedAdmin(session);
    if (!session || !user) return reply.code(303).header('cache-control', 'no-store').redirect(SIGN_IN);
    return codePage(reply, 200, { csrfToken: session.csrfToken, next: safeNext(request.query.next), username: user.username });
  });

  app.post<{ Body: { code?: string; next?: string; csrf_token?: string } }>(CODE_PAGE, { schema: { body: codeBody } }, async (request, reply) => {
    const body = request.body ?? {};
    const next = safeNext(body.next);
    const expired = () => message(reply, 403, 'Form expired', 'This form is out of date or was not sent from this console. Sign in again.', null);
    const session = await checkedFormSession(request, reply, services.consoleSessions, config, expired);
    if (!session) return reply;
    const user = await awaitedAdmin(session);
    if (!user) return reply.code(303).header('cache-control', 'no-store').redirect(SIGN_IN);
    const page = (status: number, error: string) => codePage(reply, status, { csrfToken: session.csrfToken, next, username: user.username, error });
    const code = (body.code ?? '').trim();
    if (code === '') return page(400, 'Enter the code from your authenticator app.');
    let method;
    try {
      method = await services.secondFactor.verify(user, code, request.ip);
    } catch (err) {
      const e = toOAuthError(err);
      if (e.retryAfter === undefined) throw err;
      return page(429, throttledMessage(reply, e.retryAfter, 'Too many wrong codes'));
    }
    if (!method) return page(401, 'That code is not right, or it was already used.');
    delete session.data[SECOND_FACTOR_KEY];
    const signedIn = await services.consoleSessions.signIn(session, user.id, ['pwd', 'otp']);
    setSessionCookie(reply, services.consoleSessions, signedIn, config);
    request.log.info({ userId: user.id }, 'admin console sign-in (with a second factor)');
    return reply.code(303).header('cache-control', 'no-store').redirect(next);
  });

  app.post(`${CONSOLE}/sign-out`, { ...guarded, schema: { body: csrfOnly } }, async (request, reply) => {
    await services.consoleSessions.destroy(admin(request).session);
    clearSessionCookie(reply, services.consoleSessions, config);
    return reply.code(303).header('cache-control', 'no-store').redirect(SIGN_IN);
  });

  // ---------------------------------------------------------------- dashboard

  app.get('/admin', guarded, async (request, reply) => {
    const a = admin(request);
    const [clients, users] = await Promise.all([services.clients.list({ limit: 1, offset: 0 }), services.users.list({ limit: 1, offset: 0 })]);
    return render(reply, 200, 'dashboard', {
      title: 'Dashboard',
      admin: navModel(a),
      notice: await takeNotice(a),
      clientCount: clients.total,
      userCount: users.total,
      issuer: config.issuer,
    });
  });

  // The metrics for a signed-in admin: /metrics itself wants Basic or a bearer token, which a
  // browser link turns into a Basic prompt although the admin is signed in to the console.
  app.get(`${CONSOLE}/metrics`, guarded, async (request, reply) => {
    const a = admin(request);
    const { body } = await services.metrics.render();
    return render(reply, 200, 'metrics', { title: 'Metrics', admin: navModel(a), notice: await takeNotice(a), metrics: body, metricsPort: config.metricsPort ?? null });
  });
  app.get(`${CONSOLE}`, async (_request, reply) => reply.code(303).redirect('/admin'));

  const ctx: ConsoleContext = { services, render, navModel, takeNotice, setNotice, guarded, admin };
  registerClientPages(app, ctx);
  registerUserPages(app, ctx);
  registerEventPages(app, ctx);
  registerIdentityProviderPages(app, ctx);
};
