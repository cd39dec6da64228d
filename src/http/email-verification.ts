/**
 * `GET,POST /verify-email`: the link mailed at registration when
 * `REQUIRE_EMAIL_VERIFICATION=true` (`users/email-verification.ts`).
 * Opening it shows the address and a button; pressing the button (a form
 * post with the link's token and the browser session's CSRF token) marks the
 * address verified, once; UserInfo then reports `email_verified: true`. A
 * GET changes nothing, so a mail scanner that opens every link verifies
 * nothing. Mounted only with that setting (else 404).
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Services } from '../services.js';
import { checkedFormSession } from './page-form.js';
import { renderErrorPage, renderPage, usePageErrors } from './pages.js';
import { htmlPage } from './schemas.js';
import { ensureSession } from './session-cookie.js';

const INVALID_LINK = 'This link is not valid any more: it was used already, it is older than a day, or the account has another address now.';

const token = { type: 'string', maxLength: 100 } as const;

export const emailVerificationRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'sessions' | 'emailVerification'> }> = async (app, { services }) => {
  const { config, sessions, emailVerification } = services;
  if (emailVerification === null) return;
  usePageErrors(app, config);

  const invalidLink = (reply: FastifyReply) => renderErrorPage(reply, config, 400, INVALID_LINK, { title: 'This link has expired' });

  app.get<{ Querystring: { token?: string } }>(
    '/verify-email',
    {
      schema: {
        tags: ['browser'],
        summary: 'The mailed email-verification link (HTML): shows the address and a button that verifies it',
        produces: ['text/html'],
        querystring: { type: 'object', properties: { token } },
        response: { 200: htmlPage('The address, and the button.'), 400: htmlPage('The link is not valid (used, expired, unknown, or the address changed).') },
      },
    },
    async (request, reply) => {
      const session = await ensureSession(request, reply, sessions, config);
      const linkToken = request.query.token ?? '';
      const email = await emailVerification.check(linkToken);
      if (email === null) return invalidLink(reply);
      return renderPage(reply, config, 'verify-email', { title: 'Verify your email address', email, token: linkToken, csrfToken: session.csrfToken, done: false });
    },
  );

  app.post<{ Body: { token?: string; csrf_token?: string } }>(
    '/verify-email',
    {
      schema: {
        tags: ['browser'],
        summary: 'Verify the address with the mailed link (HTML form post)',
        description: 'Form fields: token, csrf_token.',
        consumes: ['application/x-www-form-urlencoded'],
        body: { type: 'object', properties: { token, csrf_token: { type: 'string', maxLength: 200 } } },
        response: { 200: htmlPage('Verified.'), 400: htmlPage('The link is not valid (used, expired, unknown, or the address changed).'), 403: htmlPage('No CSRF token.') },
      },
    },
    async (request, reply) => {
      const session = await checkedFormSession(request, reply, sessions, config);
      if (!session) return reply;
      const email = await emailVerification.verify(request.body?.token ?? '');
      if (email === null) return invalidLink(reply);
      return renderPage(reply, config, 'verify-email', { title: 'Email address verified', email, done: true });
    },
  );
};
