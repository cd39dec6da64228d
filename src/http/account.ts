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
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { appsSection, passwordSection, sessionsSection } from './account-sections.js';
import { passkeyScripts } from './assets.js';
import { linkedProvidersSection, registerLinkedProviderRoutes } from './account-linked-providers.js';
import { renderPage, usePageErrors } from './pages.js';
import { passkeyListView } from './passkeys.js';
import { loginThenReturnTo } from './return-path.js';
import { htmlPage, redirect } from './schemas.js';
import { deviceOf, readSession } from './session-cookie.js';

export type AccountServices = Pick<Services, 'config' | 'sessions' | 'users' | 'consents' | 'clients' | 'passkeys' | 'linkedAccounts' | 'secondFactor'>;

/** What a section's loader gets: the user, their session, the services. */
export interface AccountContext {
  user: User;
  session: BrowserSession;
  services: AccountServices;
  /** Messages for the fields of the form just posted (by field name), when it is shown again. */
  errors?: Record<string, string> | undefined;
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
  passwordSection,
  {
    template: 'passkeys',
    load: async ({ user, services }) => ({ available: services.passkeys.available, passkeys: passkeyListView(await services.passkeys.list(user.id)) }),
    scripts: ({ services }) => (services.passkeys.available ? passkeyScripts() : []),
  },
  // The authenticator app (TOTP): its own pages in `account-authenticator.ts`.
  { template: 'authenticator', load: ({ user, services }) => services.secondFactor.status(user.id) },
  linkedProvidersSection,
  appsSection,
  sessionsSection,
  { template: 'sign-out', load: () => ({}) },
];

/**
 * What the page says after a form of it was posted (`/account?notice=…`):
 * codes, never text from the URL, so a link cannot make the page say anything.
 */
const NOTICES = {
  password_changed: 'Your password has been changed. Every other session has been signed out.',
  app_revoked: 'The app no longer has access to your account.',
  session_ended: 'That session has been signed out.',
  others_ended: 'Every other session has been signed out.',
} as const;

export type AccountNotice = keyof typeof NOTICES;

/** The account page of the signed-in user; with `errors` (and a 4xx status) after a form of it failed. */
export async function renderAccountPage(
  reply: FastifyReply,
  services: AccountServices,
  current: { user: User; session: BrowserSession },
  view: { notice?: string | undefined; errors?: Record<string, string>; status?: number } = {},
): Promise<FastifyReply> {
  const context: AccountContext = { ...current, services, errors: view.errors };
  const sections = await Promise.all(
    ACCOUNT_SECTIONS.map(async (section) => ({ template: `account/${section.template}`, data: await section.load(context) })),
  );
  const errors = Object.entries(view.errors ?? {}).map(([field, message]) => ({ field, message }));
  const scripts = [...new Set(ACCOUNT_SECTIONS.flatMap((section) => section.scripts?.(context) ?? []))];
  return renderPage(
    reply,
    services.config,
    'account',
    {
      title: 'Your account',
      username: current.user.username,
      csrfToken: current.session.csrfToken,
      notice: view.notice !== undefined && Object.hasOwn(NOTICES, view.notice) ? NOTICES[view.notice as AccountNotice] : null,
      errors,
      sections,
      scripts,
    },
    { status: view.status ?? 200, scripts: scripts.length > 0 },
  );
}

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
  usePageErrors(app, config);
  registerLinkedProviderRoutes(app, services);

  app.get<{ Querystring: { notice?: string } }>(
    '/account',
    {
      schema: {
        tags: ['browser'],
        summary: 'Your account (HTML)',
        produces: ['text/html'],
        querystring: { type: 'object', properties: { notice: { type: 'string', maxLength: 40, description: 'What the page says after one of its forms was posted.' } } },
        response: { 200: htmlPage('HTML page.'), 303: redirect('Not signed in: to the sign-in page, which comes back here.') },
      },
    },
    async (request, reply) => {
      const current = await signedInUser(services, await readSession(request, services.sessions, config));
      if (!current) return reply.header('cache-control', 'no-store').redirect(loginThenReturnTo('/account'), 303);
      // "Last seen" and where from, for the list of sessions (written at most once a minute).
      await services.sessions.touch(current.session, deviceOf(request));
      return renderAccountPage(reply, services, current, { notice: request.query.notice });
    },
  );
};
