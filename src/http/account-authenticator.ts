/**
 * The account page's authenticator app (TOTP, `users/second-factor.ts`):
 *
 * - `GET /account/authenticator`: the setup page: the QR code (a PNG data
 *   URL made here by `qrcode`, no script), the `otpauth://` link and the
 *   secret as text, and a form for the first code.
 * - `POST /account/authenticator`: a right code turns the app on and shows
 *   the ten recovery codes, once.
 * - `POST /account/authenticator/recovery-codes`: new recovery codes, after a
 *   current code.
 * - `POST /account/authenticator/remove`: off again, after a current code (or
 *   a recovery code) or the password.
 *
 * Setting up may start from the admin console's sign-in (`REQUIRE_MFA_FOR_ADMINS`):
 * `?next=` names the console page to go back to (only that: `safeConsolePath`),
 * carried through the form to the recovery codes' page, which links back to it.
 *
 * Every form carries the session's CSRF token; the pages are `no-store`.
 * The service records each change in the audit trail (`second_factor.*`).
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { signedInUser, type AccountServices } from './account.js';
import { toOAuthError } from './errors.js';
import { signedInFormPost } from './page-form.js';
import { renderErrorPage, renderPage, usePageErrors } from './pages.js';
import { loginThenReturnTo, safeConsolePath } from './return-path.js';
import { htmlPage, redirect } from './schemas.js';
import { readSession } from './session-cookie.js';

const SETUP = '/account/authenticator';
const WRONG_CODE = 'That code is not right, or it was already used. Enter the current code from your app.';

const codeBody = {
  type: 'object',
  properties: {
    code: { type: 'string', maxLength: 64 },
    password: { type: 'string', maxLength: 1024 },
    csrf_token: { type: 'string', maxLength: 200 },
    next: { type: 'string', maxLength: 300 },
  },
} as const;
interface CodeBody {
  code?: string;
  password?: string;
  csrf_token?: string;
  next?: string;
}
const setupQuery = {
  type: 'object',
  properties: { next: { type: 'string', maxLength: 300, description: 'The admin console page to go back to once the app is set up; other values are ignored.' } },
} as const;

/** The setup page for `next` (a console page to go back to), or the plain one. */
const setupPath = (next: string | null) => (next ? `${SETUP}?next=${encodeURIComponent(next)}` : SETUP);

const formResponses = {
  200: htmlPage('The recovery codes, or the form again with a message.'),
  303: redirect('Back to the account page (or to sign in).'),
};

export const accountAuthenticatorRoutes: FastifyPluginAsync<{ services: AccountServices }> = async (app, { services }) => {
  const { config, secondFactor } = services;
  usePageErrors(app, config);

  const toAccount = (reply: FastifyReply) => reply.header('cache-control', 'no-store').redirect('/account', 303);
  const toSignIn = (reply: FastifyReply, path: string) => reply.header('cache-control', 'no-store').redirect(loginThenReturnTo(path), 303);

  async function setupPage(reply: FastifyReply, user: User, session: BrowserSession, next: string | null, error: string | null = null, status = 200) {
    const enrolment = await secondFactor.beginEnrolment(user);
    // Loaded here, not at start: only enrolment draws a QR code.
    const { toDataURL } = await import('qrcode');
    const qrCode = await toDataURL(enrolment.uri, { errorCorrectionLevel: 'M', margin: 2, width: 240 });
    return renderPage(reply, config, 'authenticator-setup', { title: 'Set up an authenticator app', csrfToken: session.csrfToken, ...enrolment, qrCode, next, error }, { status });
  }

  /** `next`: the admin console page the setup started from (a link back to it), or null. */
  const recoveryCodesPage = (reply: FastifyReply, session: BrowserSession, codes: string[], intro: string, next: string | null = null) =>
    renderPage(reply, config, 'recovery-codes', { title: 'Your recovery codes', csrfToken: session.csrfToken, codes, intro, next });

  /** A wrong code answered as the page's message; 429 with Retry-After past the limit. */
  function codeError(reply: FastifyReply, err: unknown): { message: string; status: number } {
    const e = toOAuthError(err);
    if (e.retryAfter === undefined) throw err;
    reply.header('retry-after', String(e.retryAfter));
    return { message: e.description, status: 429 };
  }

  app.get<{ Querystring: { next?: string } }>(
    SETUP,
    {
      schema: {
        tags: ['browser'],
        summary: 'Set up an authenticator app (HTML)',
        produces: ['text/html'],
        querystring: setupQuery,
        response: { 200: htmlPage('HTML page.'), 303: redirect('Signed out, or already set up (to the account page, or to `next`).') },
      },
    },
    async (request, reply) => {
      const next = safeConsolePath(request.query.next);
      const current = await signedInUser(services, await readSession(request, services.sessions, config));
      if (!current) return toSignIn(reply, setupPath(next));
      if (await secondFactor.isEnrolled(current.user.id)) return reply.header('cache-control', 'no-store').redirect(next ?? '/account', 303);
      return setupPage(reply, current.user, current.session, next);
    },
  );

  app.post<{ Body: CodeBody }>(
    SETUP,
    { schema: { tags: ['browser'], summary: 'Confirm the authenticator app (HTML form post)', consumes: ['application/x-www-form-urlencoded'], body: codeBody, response: formResponses } },
    async (request, reply) => {
      const next = safeConsolePath(request.body?.next);
      const current = await signedInFormPost(request, reply, services, config, setupPath(next));
      if (!current) return reply;
      const { user, session } = current;
      if (await secondFactor.isEnrolled(user.id)) return toAccount(reply);
      let codes: string[] | null;
      try {
        codes = await secondFactor.confirmEnrolment(user, request.body?.code ?? '', request.ip);
      } catch (err) {
        const { message, status } = codeError(reply, err);
        return setupPage(reply, user, session, next, message, status);
      }
      if (!codes) return setupPage(reply, user, session, next, WRONG_CODE, 400);
      return recoveryCodesPage(reply, session, codes, 'Your authenticator app is set up: from now on, signing in asks for its code after your password.', next);
    },
  );

  app.post<{ Body: CodeBody }>(
    `${SETUP}/recovery-codes`,
    { schema: { tags: ['browser'], summary: 'New recovery codes (HTML form post)', consumes: ['application/x-www-form-urlencoded'], body: codeBody, response: formResponses } },
    async (request, reply) => {
      const current = await signedInFormPost(request, reply, services, config, '/account');
      if (!current) return reply;
      const { user, session } = current;
      let codes: string[] | null;
      try {
        codes = await secondFactor.regenerateRecoveryCodes(user, request.body?.code ?? '', request.ip);
      } catch (err) {
        const { message, status } = codeError(reply, err);
        return renderErrorPage(reply, config, status, message);
      }
      if (!codes) return renderErrorPage(reply, config, 400, `${WRONG_CODE} Go back and try again.`);
      return recoveryCodesPage(reply, session, codes, 'Your new recovery codes: the old ones no longer work.');
    },
  );

  app.post<{ Body: CodeBody }>(
    `${SETUP}/remove`,
    {
      schema: {
        tags: ['browser'],
        summary: 'Remove the authenticator app (HTML form post)',
        description: 'Form fields: code (a current code) or password, csrf_token.',
        consumes: ['application/x-www-form-urlencoded'],
        body: codeBody,
        response: formResponses,
      },
    },
    async (request, reply) => {
      const current = await signedInFormPost(request, reply, services, config, '/account');
      if (!current) return reply;
      const { user } = current;
      const body = request.body ?? {};
      const code = (body.code ?? '').trim();
      const password = body.password ?? '';
      if (code === '' && password === '') return renderErrorPage(reply, config, 400, 'Enter a current code from your app, or your password. Go back and try again.');
      let proved: boolean;
      try {
        // Both throttled: the code like every code, the password through the one sign-in path.
        if (code !== '') proved = (await secondFactor.verify(user, code, request.ip)) !== null;
        else proved = (await services.users.signIn(user.username, password, { ip: request.ip, source: 'login_form' })).ok;
      } catch (err) {
        const { message, status } = codeError(reply, err);
        return renderErrorPage(reply, config, status, message);
      }
      if (!proved) return renderErrorPage(reply, config, 400, 'That code or password is not right. Go back and try again.');
      await secondFactor.remove(user, request.ip);
      return toAccount(reply);
    },
  );
};
