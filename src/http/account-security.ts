/**
 * The forms of the account page's password, apps and sessions sections
 * (`account-sections.ts`), one route each:
 *
 * - `POST /account/password`: the current password is checked through the
 *   one sign-in path (throttled like any guess), the new one through the
 *   password rule. On success the user's refresh tokens are revoked and
 *   every other session ends; this browser stays signed in under a new id.
 * - `POST /account/apps/revoke`: withdraws an app's consent and ends its
 *   refresh tokens (the consents' one revocation path).
 * - `POST /account/sessions/end`, `POST /account/sessions/end-others`: sign
 *   out one of the user's other sessions, or all of them.
 *
 * Every form carries the session's CSRF token; without the right one the
 * post changes nothing (403). Signed out, the post goes to the sign-in page.
 * Each answers 303 back to the page with a notice, or the page again with
 * the problem (role=alert summary, message next to the field).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { userActor } from '../audit/events.js';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { hasPassword } from '../users/account.js';
import { MAX_PASSWORD_LENGTH, PasswordPolicyError } from '../users/password-policy.js';
import { FIRST_PASSWORD_SIGN_IN_MAX_AGE_MS } from '../users/service.js';
import { renderAccountPage, type AccountNotice, type AccountServices } from './account.js';
import { signOut } from './login.js';
import { signedInFormPost } from './page-form.js';
import { throttledMessage, usePageErrors } from './pages.js';
import { htmlPage, redirect } from './schemas.js';
import { setSessionCookie } from './session-cookie.js';

type Deps = AccountServices & Pick<Services, 'audit'>;

const csrf = { type: 'string', maxLength: 200 } as const;
const formBody = (properties: Record<string, { type: 'string'; maxLength: number }>) => ({ type: 'object', properties: { csrf_token: csrf, ...properties } }) as const;

const RESPONSES = {
  303: redirect('Back to the account page with a notice (or, signed out, to the sign-in page).'),
  400: htmlPage('The account page again, with the problem.'),
  403: htmlPage('The form did not carry this session\'s CSRF token: nothing changed.'),
};

const doc = (summary: string, fields: string) => ({
  tags: ['browser'],
  summary: `${summary} (HTML form post)`,
  description: `Form fields: csrf_token, ${fields}.`,
  consumes: ['application/x-www-form-urlencoded'],
});

interface Current {
  user: User;
  session: BrowserSession;
}

export const accountSecurityRoutes: FastifyPluginAsync<{ services: Deps }> = async (app, { services }) => {
  const { config, sessions } = services;
  usePageErrors(app, config);

  /** The signed-in user of a form post with the right CSRF token; otherwise the answer has been sent (null). */
  const signedInForm = (request: FastifyRequest, reply: FastifyReply): Promise<Current | null> => signedInFormPost(request, reply, services, config, '/account');

  const back = (reply: FastifyReply, notice: AccountNotice) => reply.header('cache-control', 'no-store').redirect(`/account?notice=${notice}`, 303);
  const again = (reply: FastifyReply, current: Current, errors: Record<string, string>, status = 400) => renderAccountPage(reply, services, current, { errors, status });
  const recordEnded = (user: User, ip: string, reason: string) =>
    services.audit.record({ type: 'user.sessions_ended', actor: userActor(user), ip, subject: { type: 'user', id: user.id }, details: { username: user.username, reason } });

  app.post<{ Body: { csrf_token?: string; current_password?: string; new_password?: string } }>(
    '/account/password',
    {
      schema: {
        ...doc('Change your password', 'current_password, new_password'),
        body: formBody({ current_password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH }, new_password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH } }),
        response: { ...RESPONSES, 429: htmlPage('Too many wrong passwords: the page again, with Retry-After.') },
      },
    },
    async (request, reply) => {
      const current = await signedInForm(request, reply);
      if (!current) return reply;
      const currentPassword = request.body?.current_password ?? '';
      const newPassword = request.body?.new_password ?? '';
      const missing: Record<string, string> = {};
      // An account made by an upstream sign-in has none to enter (`changeOwnPassword`).
      if (currentPassword === '' && hasPassword(current.user)) missing.current_password = 'Enter your current password.';
      if (newPassword === '') missing.new_password = 'Enter a new password.';
      if (Object.keys(missing).length > 0) return again(reply, current, missing);

      let result;
      try {
        result = await services.users.changeOwnPassword(current.user.id, currentPassword, newPassword, { ip: request.ip, signedInAt: current.session.signedInAt ?? null });
      } catch (err) {
        if (err instanceof PasswordPolicyError) return again(reply, current, { new_password: err.problem });
        if (!(err instanceof OAuthError) || err.retryAfter === undefined) throw err;
        return again(reply, current, { current_password: throttledMessage(reply, err.retryAfter, 'Too many wrong passwords') }, 429);
      }
      if (!result.ok && result.reason === 'sign_in_again') {
        const minutes = FIRST_PASSWORD_SIGN_IN_MAX_AGE_MS / 60_000;
        return again(reply, current, { new_password: `To set a password, sign out and sign in again first: your sign-in must be less than ${minutes} minutes old.` });
      }
      if (!result.ok) return again(reply, current, { current_password: 'That is not your current password.' });

      // Every session signed in before the change is over (`findSignedIn`); this one goes on under a new id.
      const renewed = await sessions.signIn(current.session, current.user.id, current.session.amr ?? ['pwd']);
      setSessionCookie(reply, sessions, renewed, config);
      await sessions.endAllForUser(current.user.id, sessions.handleOf(renewed));
      await recordEnded(current.user, request.ip, 'password_changed');
      return back(reply, 'password_changed');
    },
  );

  app.post<{ Body: { csrf_token?: string; client_id?: string } }>(
    '/account/apps/revoke',
    { schema: { ...doc("Revoke an app's access", 'client_id'), body: formBody({ client_id: { type: 'string', maxLength: 2_000 } }), response: RESPONSES } },
    async (request, reply) => {
      const current = await signedInForm(request, reply);
      if (!current) return reply;
      try {
        await services.consents.revoke(current.user.id, request.body?.client_id ?? '', { actor: userActor(current.user), ip: request.ip });
      } catch (err) {
        if (!(err instanceof OAuthError) || err.error !== 'not_found') throw err;
        return again(reply, current, { 'apps-title': 'That app had no access to revoke.' });
      }
      return back(reply, 'app_revoked');
    },
  );

  app.post<{ Body: { csrf_token?: string; session?: string } }>(
    '/account/sessions/end',
    { schema: { ...doc('Sign out one of your sessions', 'session'), body: formBody({ session: { type: 'string', maxLength: 100 } }), response: RESPONSES } },
    async (request, reply) => {
      const current = await signedInForm(request, reply);
      if (!current) return reply;
      const handle = request.body?.session ?? '';
      if (handle === sessions.handleOf(current.session)) {
        // This browser's own session: that is signing out.
        await signOut({ config, sessions }, reply, current.session);
        return reply.header('cache-control', 'no-store').redirect('/login?signed_out=1', 303);
      }
      if (!(await sessions.endForUser(current.user.id, handle))) return again(reply, current, { 'sessions-title': 'That session has already ended.' });
      await recordEnded(current.user, request.ip, 'signed_out_elsewhere');
      return back(reply, 'session_ended');
    },
  );

  app.post<{ Body: { csrf_token?: string } }>(
    '/account/sessions/end-others',
    { schema: { ...doc('Sign out everywhere else', 'nothing else'), body: formBody({}), response: RESPONSES } },
    async (request, reply) => {
      const current = await signedInForm(request, reply);
      if (!current) return reply;
      const ended = await sessions.endAllForUser(current.user.id, sessions.handleOf(current.session));
      if (ended > 0) await recordEnded(current.user, request.ip, 'signed_out_elsewhere');
      return back(reply, 'others_ended');
    },
  );
};
