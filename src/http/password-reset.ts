/**
 * "Forgot password" (SPEC "Signing in"), mounted only with `SMTP_URL`
 * (without it the routes do not exist: 404, and the login page has no link):
 *
 * - `GET,POST /forgot-password`: a form with `email`. The answer is the same
 *   page whether or not an account has the address; the mail goes out after
 *   it (`users/password-reset.ts`). 429 when this address asked too often.
 * - `GET,POST /reset-password?token=…`: the mailed link opens a form with
 *   `password`; posting it sets the password (the rule shown and applied),
 *   uses the link up and signs the account out everywhere.
 *
 * The token travels in the query, which the logs redact, and never reaches
 * another site (`Referrer-Policy: no-referrer`). Every form carries the
 * browser session's CSRF token.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, PASSWORD_RULE, PasswordPolicyError } from '../users/password-policy.js';
import type { PasswordReset } from '../users/password-reset.js';
import { checkedFormSession } from './page-form.js';
import { renderErrorPage, renderPage, usePageErrors } from './pages.js';
import { htmlPage } from './schemas.js';
import { ensureSession } from './session-cookie.js';

const INVALID_LINK = 'This link is not valid any more: it was used already, it is older than 30 minutes, or the password has changed since it was sent. Ask for a new one.';

const tokenQuery = { type: 'object', properties: { token: { type: 'string', maxLength: 100 } } } as const;
const csrf = { type: 'string', maxLength: 200 } as const;

export const passwordResetRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'sessions' | 'passwordReset'> }> = async (app, { services }) => {
  const { config, sessions } = services;
  if (services.passwordReset === null) return;
  const reset: PasswordReset = services.passwordReset;
  usePageErrors(app, config);

  const forgotPage = (reply: FastifyReply, session: BrowserSession, view: { email?: string; error?: string; sent?: boolean; status?: number }) =>
    renderPage(
      reply,
      config,
      'forgot-password',
      { title: 'Forgot your password?', csrfToken: session.csrfToken, email: view.email ?? '', error: view.error ?? null, sent: view.sent ?? false },
      { status: view.status ?? 200 },
    );

  const resetPage = (reply: FastifyReply, session: BrowserSession, view: { token: string; username: string; error?: string; status?: number }) =>
    renderPage(
      reply,
      config,
      'reset-password',
      {
        title: 'Choose a new password',
        csrfToken: session.csrfToken,
        token: view.token,
        username: view.username,
        error: view.error ?? null,
        done: false,
        minPasswordLength: MIN_PASSWORD_LENGTH,
        passwordRule: PASSWORD_RULE,
      },
      { status: view.status ?? 200 },
    );

  const invalidLink = (reply: FastifyReply) => renderErrorPage(reply, config, 400, INVALID_LINK, { title: 'This link has expired' });

  app.get(
    '/forgot-password',
    { schema: { tags: ['browser'], summary: 'Forgot password form (HTML)', produces: ['text/html'], response: { 200: htmlPage('HTML page.') } } },
    async (request, reply) => forgotPage(reply, await ensureSession(request, reply, sessions, config), {}),
  );

  app.post<{ Body: { email?: string; csrf_token?: string } }>(
    '/forgot-password',
    {
      schema: {
        tags: ['browser'],
        summary: 'Ask for a password reset link (HTML form post)',
        description: 'Form fields: email, csrf_token. The same answer whether or not an account has the address.',
        consumes: ['application/x-www-form-urlencoded'],
        body: { type: 'object', properties: { email: { type: 'string', maxLength: 254 }, csrf_token: csrf } },
        response: { 200: htmlPage('The answer (the same for every address), or the form with a message.'), 403: htmlPage('No CSRF token.'), 429: htmlPage('Too many requests.') },
      },
    },
    async (request, reply) => {
      const session = await checkedFormSession(request, reply, sessions, config);
      if (!session) return reply;
      const email = (request.body?.email ?? '').trim();
      if (email === '') return forgotPage(reply, session, { error: 'Enter the email address of your account.', status: 400 });
      try {
        await reset.request(email, request.ip);
      } catch (err) {
        if (!(err instanceof OAuthError) || err.retryAfter === undefined) throw err;
        reply.header('retry-after', String(err.retryAfter));
        return forgotPage(reply, session, { email, error: 'Too many requests from your network. Try again later.', status: 429 });
      }
      return forgotPage(reply, session, { email, sent: true });
    },
  );

  app.get<{ Querystring: { token?: string } }>(
    '/reset-password',
    {
      schema: {
        tags: ['browser'],
        summary: 'The mailed password reset link (HTML)',
        produces: ['text/html'],
        querystring: tokenQuery,
        response: { 200: htmlPage('The new-password form.'), 400: htmlPage('The link is not valid (used, expired, unknown).') },
      },
    },
    async (request, reply) => {
      const session = await ensureSession(request, reply, sessions, config);
      const token = request.query.token ?? '';
      const user = await reset.check(token);
      if (!user) return invalidLink(reply);
      return resetPage(reply, session, { token, username: user.username });
    },
  );

  app.post<{ Body: { token?: string; password?: string; csrf_token?: string } }>(
    '/reset-password',
    {
      schema: {
        tags: ['browser'],
        summary: 'Set a new password with the mailed link (HTML form post)',
        description: 'Form fields: token, password, csrf_token.',
        consumes: ['application/x-www-form-urlencoded'],
        body: { type: 'object', properties: { token: { type: 'string', maxLength: 100 }, password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH }, csrf_token: csrf } },
        response: { 200: htmlPage('Done, or the form with the problem.'), 400: htmlPage('The link is not valid, or the password is refused.'), 403: htmlPage('No CSRF token.') },
      },
    },
    async (request, reply) => {
      const session = await checkedFormSession(request, reply, sessions, config);
      if (!session) return reply;
      const token = request.body?.token ?? '';
      const password = request.body?.password ?? '';
      const user = await reset.check(token);
      if (!user) return invalidLink(reply);
      if (password === '') return resetPage(reply, session, { token, username: user.username, error: 'Enter a new password.', status: 400 });
      let result;
      try {
        result = await reset.complete(token, password, request.ip);
      } catch (err) {
        if (!(err instanceof PasswordPolicyError)) throw err;
        return resetPage(reply, session, { token, username: user.username, error: err.problem, status: 400 });
      }
      if (!result.ok) return invalidLink(reply);
      return renderPage(reply, config, 'reset-password', { title: 'Your password has been changed', done: true, username: result.user.username });
    },
  );
};
