/**
 * `GET /verify-email?token=…`: the link mailed at registration when
 * `REQUIRE_EMAIL_VERIFICATION=true` (`users/email-verification.ts`). Opening
 * it marks the address verified (once); UserInfo then reports
 * `email_verified: true`. Mounted only with that setting (else 404).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import { renderErrorPage, renderPage, usePageErrors } from './pages.js';
import { htmlPage } from './schemas.js';

export const emailVerificationRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'emailVerification'> }> = async (app, { services }) => {
  const { config, emailVerification } = services;
  if (emailVerification === null) return;
  usePageErrors(app, config);

  app.get<{ Querystring: { token?: string } }>(
    '/verify-email',
    {
      schema: {
        tags: ['browser'],
        summary: 'The mailed email-verification link (HTML)',
        produces: ['text/html'],
        querystring: { type: 'object', properties: { token: { type: 'string', maxLength: 100 } } },
        response: { 200: htmlPage('Verified.'), 400: htmlPage('The link is not valid (used, expired, unknown, or the address changed).') },
      },
    },
    async (request, reply) => {
      const email = await emailVerification.verify(request.query.token ?? '');
      if (email === null) {
        return renderErrorPage(reply, config, 400, 'This link is not valid any more: it was used already, it is older than a day, or the account has another address now.', {
          title: 'This link has expired',
        });
      }
      return renderPage(reply, config, 'email-verified', { title: 'Email address verified', email });
    },
  );
};
