/**
 * The account page's "Linked sign-in providers": the upstream providers the
 * user signs in with, by name, each with "Remove" (a CSRF-protected form).
 * Removing the last way in of an account without a password is refused
 * (`linkedAccounts.unlink`), with the reason on the page.
 */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.js';
import type { User } from '../storage/types.js';
import { signedInFormPost } from './page-form.js';
import { redirect, htmlPage } from './schemas.js';

/** An entry of `ACCOUNT_SECTIONS` (`account.ts`). */
export const linkedProvidersSection = {
  template: 'linked-providers',
  async load({ user, services }: { user: User; services: Pick<Services, 'linkedAccounts'> }) {
    const links = await services.linkedAccounts.listForUser(user.id);
    return {
      links: links.map((l) => ({ providerId: l.providerId, subject: l.subject, displayName: l.displayName, email: l.email, linkedAt: l.linkedAt.toISOString().slice(0, 10) })),
    };
  },
};

const removeBody = {
  type: 'object',
  properties: {
    csrf_token: { type: 'string', maxLength: 200 },
    provider: { type: 'string', maxLength: 63 },
    subject: { type: 'string', maxLength: 255 },
  },
} as const;

export function registerLinkedProviderRoutes(app: FastifyInstance, services: Pick<Services, 'config' | 'sessions' | 'users' | 'linkedAccounts'>): void {
  const { config } = services;
  app.post<{ Body: { csrf_token?: string; provider?: string; subject?: string } }>(
    '/account/linked-providers/remove',
    {
      schema: {
        tags: ['browser'],
        summary: 'Remove a linked sign-in provider (HTML form post)',
        description: 'Form fields: csrf_token, provider, subject. Refused (409) when it is the last way to sign in to an account without a password.',
        consumes: ['application/x-www-form-urlencoded'],
        body: removeBody,
        response: { 303: redirect('Removed; back to /account.'), 403: htmlPage('The form was forged or expired.'), 404: htmlPage('No such link.'), 409: htmlPage('The last way to sign in.') },
      },
    },
    async (request, reply) => {
      const current = await signedInFormPost(request, reply, services, config, '/account');
      if (!current) return reply;
      const { user } = current;
      await services.linkedAccounts.unlink(user, request.body?.provider ?? '', request.body?.subject ?? '', request.ip);
      return reply.header('cache-control', 'no-store').redirect('/account', 303);
    },
  );
}
