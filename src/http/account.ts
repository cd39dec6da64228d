/**
 * `GET /account`: the signed-in user's own page. Others are sent to sign in
 * and come back here.
 *
 * The page is a list of sections, each a partial under `views/account/`
 * with the data it needs loaded by its own function, so a sign-in method
 * (passkeys, an authenticator app, linked providers) or a list (apps holding
 * consent, sessions) is one entry in `ACCOUNT_SECTIONS`, one partial and its
 * own routes for the forms it posts.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { passkeyScripts } from './assets.js';
import { pageErrorHandler, renderPage } from './pages.js';
import { passkeyListView } from './passkeys.js';
import { loginThenReturnTo } from './return-path.js';
import { htmlPage, redirect } from './schemas.js';
import { readSession } from './session-cookie.js';

export type AccountServices = Pick<Services, 'config' | 'sessions' | 'users' | 'passkeys'>;

/** What a section's loader gets: the user, their session, the services. */
export interface AccountContext {
  user: User;
  session: BrowserSession;
  services: AccountServices;
}

export interface AccountSection {
  /** The partial rendered for it: `views/account/<template>.eta`. */
  template: string;
  /** The data the partial reads as `it.section`. */
  load(context: AccountContext): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Our own scripts the section needs (`/assets/…`); the page then allows `script-src 'self'`. */
  scripts?(context: AccountContext): readonly string[];
}

/** The sections, in page order. */
const ACCOUNT_SECTIONS: readonly AccountSection[] = [
  {
    template: 'passkeys',
    load: async ({ user, services }) => ({ available: services.passkeys.available, passkeys: passkeyListView(await services.passkeys.list(user.id)) }),
    scripts: ({ services }) => (services.passkeys.available ? passkeyScripts() : []),
  },
  { template: 'sign-out', load: () => ({}) },
];

/** The signed-in user of the request's browser session, with the session; null if none. */
export async function signedInUser(
  services: AccountServices,
  session: BrowserSession | null,
): Promise<{ user: User; session: BrowserSession } | null> {
  if (!session) return null;
  const user = await services.users.findSignedIn(session);
  return user ? { user, session } : null;
}

export const accountRoutes: FastifyPluginAsync<{ services: AccountServices }> = async (app, { services }) => {
  const { config } = services;
  app.setErrorHandler(pageErrorHandler(config));

  app.get<{ Querystring: { notice?: string } }>(
    '/account',
    {
      schema: {
        tags: ['browser'],
        summary: 'Your account (HTML)',
        produces: ['text/html'],
        response: { 200: htmlPage('HTML page.'), 303: redirect('Not signed in: to the sign-in page, which comes back here.') },
      },
    },
    async (request, reply) => {
      const current = await signedInUser(services, await readSession(request, services.sessions, config));
      if (!current) return reply.header('cache-control', 'no-store').redirect(loginThenReturnTo('/account'), 303);
      const context: AccountContext = { ...current, services };
      const sections = await Promise.all(
        ACCOUNT_SECTIONS.map(async (section) => ({ template: `account/${section.template}`, data: await section.load(context) })),
      );
      const scripts = [...new Set(ACCOUNT_SECTIONS.flatMap((section) => section.scripts?.(context) ?? []))];
      return renderPage(
        reply,
        config,
        'account',
        { title: 'Your account', username: current.user.username, csrfToken: current.session.csrfToken, sections, scripts },
        { scripts: scripts.length > 0 },
      );
    },
  );
};
