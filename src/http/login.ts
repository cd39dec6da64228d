/**
 * `GET/POST /login` and `POST /logout`: the sign-in form of the browser flows.
 *
 * - Every form carries the session's CSRF token (synchronizer pattern); a
 *   POST without the right one is refused with 403 and changes nothing.
 * - The password is checked by the server's one sign-in path
 *   (`users.signIn`): wrong credentials get one generic message whether or
 *   not the user exists (at the same argon2 cost), failures are counted per
 *   username and per IP in the shared TTL store so the limit holds across
 *   instances, and over the limit the form answers 429 with Retry-After.
 * - A user with an authenticator app is not signed in by the password: the
 *   code comes next (`second-factor.ts`).
 * - Signing in replaces the session id (no session fixation) and answers 303,
 *   so the browser follows with GET and never re-posts the password.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import type { PendingAuthorization } from '../sessions/pending-authorization.js';
import type { BrowserSession } from '../sessions/service.js';
import { MAX_PASSWORD_LENGTH } from '../users/password.js';
import { passkeyScripts } from './assets.js';
import { renderErrorPage, renderPage, stepLocation, throttledMessage } from './pages.js';
import { safeReturnPath } from './return-path.js';
import { awaitSecondFactor, SECOND_FACTOR_KEY, secondFactorLocation } from './second-factor-state.js';
import { checkedFormSession, refuseForgedForm } from './page-form.js';
import { htmlPage, redirect } from './schemas.js';
import { clearSessionCookie, ensureSession, readSession, setSessionCookie } from './session-cookie.js';

/** What the browser flow's routes use. */
export type BrowserFlowServices = Pick<
  Services,
  'config' | 'now' | 'authorization' | 'pendingAuthorizations' | 'sessions' | 'clients' | 'users' | 'secondFactor' | 'resources' | 'passkeys' | 'identityProviders'
>;

export const EXPIRED_REQUEST = 'This sign-in request has expired or was already answered. Return to the application and start again.';
const WRONG_CREDENTIALS = 'Incorrect username or password.';

/** What a form post of the flow answers (documented; the pages render HTML or redirect). */
export const FORM_POST_RESPONSES = {
  303: redirect('To the next step of the flow (consent, or the client with a code).'),
  200: htmlPage('The form again, with a message.'),
};

const loginQuerySchema = {
  type: 'object',
  properties: {
    rid: { type: 'string', maxLength: 100, description: 'The pending authorization request (set by /authorize).' },
    next: { type: 'string', maxLength: 300, description: "A page of this server to return to after signing in (e.g. /account); other values are ignored." },
    signed_out: { type: 'string', maxLength: 1 },
  },
} as const;

const loginBodySchema = {
  type: 'object',
  properties: {
    username: { type: 'string', maxLength: 200 },
    password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH },
    csrf_token: { type: 'string', maxLength: 200 },
    rid: { type: 'string', maxLength: 100 },
    next: { type: 'string', maxLength: 300 },
  },
} as const;

const logoutBodySchema = { type: 'object', properties: { csrf_token: { type: 'string', maxLength: 200 } } } as const;

/** What follows a verified sign-in, whatever proved it (password, passkey). */
export interface SignInDone {
  userId: string;
  /** RFC 8176 methods of this sign-in (the session's `amr`). */
  amr: readonly string[];
  /** The authorization request it was for, if any (loaded for this session). */
  pending: PendingAuthorization | null;
  /** Where to go without a pending request (already checked by `safeReturnPath`). */
  next: string | null;
}

/**
 * The tail of every sign-in of the login page: a new session id (an id
 * planted before sign-in is worthless) in the cookie, then the next step:
 * the pending authorization request goes on (consent, or the client), else
 * the `next` page or the account page. Returns where the browser goes.
 */
export async function completeSignIn(
  services: Pick<BrowserFlowServices, 'config' | 'sessions' | 'authorization' | 'pendingAuthorizations'>,
  reply: FastifyReply,
  session: BrowserSession,
  done: SignInDone,
): Promise<string> {
  const signedIn = await services.sessions.signIn(session, done.userId, done.amr);
  setSessionCookie(reply, services.sessions, signedIn, services.config);
  const { pending } = done;
  if (!pending) return done.next ?? '/account';
  pending.loginDone = true;
  await services.pendingAuthorizations.save(pending);
  return stepLocation(await services.authorization.proceed(pending, signedIn));
}

/**
 * Signs the browser out: its session ends (and leaves the user's list of
 * sessions) and its cookie is cleared. The one sign-out of the login pages'
 * sessions: `POST /logout`, "sign out" of this session on the account page,
 * and a confirmed `/end-session`.
 */
export async function signOut(services: Pick<BrowserFlowServices, 'config' | 'sessions'>, reply: FastifyReply, session: BrowserSession): Promise<void> {
  await services.sessions.destroy(session);
  clearSessionCookie(reply, services.sessions, services.config);
}

/** The "Sign in with …" links of the login page, carrying the pending request or `next` along. */
async function providerLinks(services: Pick<BrowserFlowServices, 'identityProviders'>, rid: string | null, next: string | null) {
  const query = rid ? `?rid=${encodeURIComponent(rid)}` : next ? `?next=${encodeURIComponent(next)}` : '';
  return (await services.identityProviders.listEnabled()).map((p) => ({ displayName: p.displayName, href: `/login/providers/${p.id}${query}` }));
}

interface LoginView {
  pending?: PendingAuthorization | null;
  username?: string | undefined;
  /** Where to go after signing in without a pending request (checked by `safeReturnPath`). */
  next?: string | null;
  error?: string;
  notice?: string;
  status?: number;
}

export function registerLoginRoutes(app: FastifyInstance, services: BrowserFlowServices): void {
  const { config, pendingAuthorizations: store } = services;

  async function loginPage(reply: FastifyReply, session: BrowserSession, view: LoginView): Promise<FastifyReply> {
    const pending = view.pending ?? null;
    const next = pending ? null : (view.next ?? null);
    const [client, providers] = await Promise.all([pending ? services.clients.find(pending.request.clientId) : null, providerLinks(services, pending?.id ?? null, next)]);
    return renderPage(
      reply,
      config,
      'login',
      {
        title: 'Sign in',
        csrfToken: session.csrfToken,
        rid: pending?.id ?? null,
        next,
        providers,
        clientName: client?.clientName ?? null,
        username: view.username ?? '',
        error: view.error ?? null,
        notice: view.notice ?? null,
        registrationOpen: config.registration === 'open',
        // "Forgot your password?" only when mail can go out (`SMTP_URL`).
        forgotPassword: config.smtp !== undefined,
        passkeyScripts: services.passkeys.available ? passkeyScripts() : [],
      },
      // A sign-in may end in a redirect straight to the client (remembered consent).
      { status: view.status ?? 200, formTargets: pending ? [pending.request.redirectUri] : [], scripts: services.passkeys.available },
    );
  }

  app.get<{ Querystring: { rid?: string; next?: string; signed_out?: string } }>(
    '/login',
    { schema: { tags: ['browser'], summary: 'Sign-in form (HTML)', produces: ['text/html'], querystring: loginQuerySchema, response: { 200: htmlPage('HTML page.') } } },
    async (request, reply) => {
      const session = await ensureSession(request, reply, services.sessions, config);
      const { rid } = request.query;
      // As in the form post: an empty rid is no request.
      if (rid !== undefined && rid !== '') {
        const pending = await store.load(rid, session);
        if (!pending) return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
        return loginPage(reply, session, { pending, username: pending.request.loginHint });
      }
      const next = safeReturnPath(request.query.next);
      const user = await services.users.findSignedIn(session);
      if (user) return reply.header('cache-control', 'no-store').redirect(next ?? '/account', 303);
      return loginPage(reply, session, { next, ...(request.query.signed_out === '1' ? { notice: 'You have signed out.' } : {}) });
    },
  );

  app.post<{ Body: { username?: string; password?: string; csrf_token?: string; rid?: string; next?: string } }>(
    '/login',
    {
      schema: {
        tags: ['browser'],
        summary: 'Sign in (HTML form post)',
        description: 'Form fields: username, password, csrf_token, rid, next. Answers 303 to the next step, or the form again with a message.',
        consumes: ['application/x-www-form-urlencoded'],
        body: loginBodySchema,
        response: FORM_POST_RESPONSES,
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const session = await checkedFormSession(request, reply, services.sessions, config);
      if (!session) return reply;

      const pending = body.rid === undefined || body.rid === '' ? null : await store.load(body.rid, session);
      if (body.rid && !pending) return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
      const next = safeReturnPath(body.next);

      const username = (body.username ?? '').trim();
      const password = body.password ?? '';
      if (username === '' || password === '') {
        return loginPage(reply, session, { pending, next, username, error: 'Enter your username and password.', status: 400 });
      }

      let result;
      try {
        result = await services.users.signIn(username, password, { ip: request.ip, source: 'login_form' });
      } catch (err) {
        if (!(err instanceof OAuthError) || err.retryAfter === undefined) throw err;
        const error = throttledMessage(reply, err.retryAfter, 'Too many failed sign-in attempts');
        return loginPage(reply, session, { pending, next, username, error, status: 429 });
      }
      if (!result.ok) return loginPage(reply, session, { pending, next, username, error: WRONG_CREDENTIALS, status: 400 });

      // With an authenticator app, the password only leads to the code (`second-factor.ts`).
      if (await services.secondFactor.isEnrolled(result.user.id)) {
        awaitSecondFactor(session, result.user.id, services.now());
        await services.sessions.save(session);
        return reply.header('cache-control', 'no-store').redirect(secondFactorLocation(pending, next), 303);
      }
      // A half sign-in of another account in this browser (its password, no code yet) ends here.
      delete session.data[SECOND_FACTOR_KEY];
      const location = await completeSignIn(services, reply, session, { userId: result.user.id, amr: ['pwd'], pending, next });
      return reply.header('cache-control', 'no-store').redirect(location, 303);
    },
  );

  app.post<{ Body: { csrf_token?: string } }>(
    '/logout',
    {
      schema: {
        tags: ['browser'],
        summary: 'Sign out (HTML form post)',
        description: 'Form field: csrf_token. Ends the browser session; 303 to the sign-in page.',
        consumes: ['application/x-www-form-urlencoded'],
        body: logoutBodySchema,
        response: { 303: redirect('Signed out; to the sign-in page.') },
      },
    },
    async (request, reply) => {
      const session = await readSession(request, services.sessions, config);
      // Without a session (a cross-site post carries no SameSite=Lax cookie)
      // there is nothing to end, and the cookie is left alone: clearing it
      // would let any site sign the browser out.
      if (session) {
        if (await refuseForgedForm(request, reply, session, services.sessions, config)) return reply;
        await signOut(services, reply, session);
      }
      return reply.header('cache-control', 'no-store').redirect('/login?signed_out=1', 303);
    },
  );
}
