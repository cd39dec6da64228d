/**
 * `GET` and `POST /end-session`: OpenID Connect RP-Initiated Logout 1.0
 * (`end_session_endpoint`). A relying party sends the browser here to sign
 * its user out; the request is judged by `oauth/end-session.ts`, and a
 * refused one is the error page (400), never a redirect.
 *
 * - Nobody signs out by opening a link (logout CSRF, §6): a browser that is
 *   signed in is asked first, on a page whose form posts the request back
 *   with `confirm=yes` and the session's CSRF token (`page-form.ts`); the
 *   request is judged again then. A confirmation without the token changes
 *   nothing.
 * - Signing out is `POST /logout`'s (`signOut`); then the browser goes to
 *   the registered `post_logout_redirect_uri` with `state` (303), or sees
 *   the signed-out page. A browser that is not signed in goes there at once.
 * - The session cookie is SameSite=Lax, so a relying party's cross-site
 *   form post arrives without it: such a post (no session) is answered with
 *   a 303 to the same request as a GET, a top-level navigation that does
 *   carry the cookie, rather than telling a signed-in person they are out.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isOAuthError } from '../errors.js';
import { END_SESSION_PARAMETERS, END_SESSION_PATH, validateEndSessionRequest, type EndSessionRequest } from '../oauth/end-session.js';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import { signOut } from './login.js';
import { checkedFormSession } from './page-form.js';
import { renderErrorPage, renderPage, usePageErrors } from './pages.js';
import { htmlPage, redirect } from './schemas.js';
import { readSession } from './session-cookie.js';

type EndSessionServices = Pick<Services, 'config' | 'sessions' | 'users' | 'endSessionRequests'>;

const DESCRIPTIONS: Record<keyof typeof END_SESSION_PARAMETERS, string> = {
  id_token_hint: 'An ID token this server issued to the client (expired ones too): names the user and the client',
  client_id: 'The client; with id_token_hint, it must be the token’s audience',
  post_logout_redirect_uri: 'Where to go after signing out: exactly one of the client’s registered post_logout_redirect_uris; needs client_id or id_token_hint',
  state: 'Returned unchanged with the redirect to post_logout_redirect_uri',
  logout_hint: 'Accepted and not used',
  ui_locales: 'Accepted and not used',
};

/**
 * Documentation of the parameters (lengths are in the descriptions): the
 * request is judged by `validateEndSessionRequest`, whose refusals are the
 * error page with a message that says what is wrong.
 */
const parametersSchema = {
  type: 'object',
  properties: Object.fromEntries(
    Object.entries(DESCRIPTIONS).map(([name, description]) => [
      name,
      { type: 'string', description: `${description} (at most ${END_SESSION_PARAMETERS[name as keyof typeof END_SESSION_PARAMETERS]} characters)` },
    ]),
  ),
} as const;

const confirmBodySchema = {
  type: 'object',
  properties: {
    ...parametersSchema.properties,
    confirm: { type: 'string', description: 'Sent by the confirmation form ("yes"): the post is the person’s confirmation, to be signed out.' },
    csrf_token: { type: 'string', description: 'The confirmation form’s: the CSRF token of the session it was shown to.' },
  },
} as const;

const RESPONSES = {
  200: htmlPage('The confirmation page ("Sign out of …?") when a user is signed in; else the signed-out page.'),
  303: redirect('To post_logout_redirect_uri with state, once signed out (or when nobody was signed in).'),
  400: htmlPage('Error page (never a redirect): a parameter repeated or too long, an id_token_hint this server did not issue, client_id and the hint disagreeing, a post_logout_redirect_uri not registered for the client.'),
};

export const endSessionRoutes: FastifyPluginAsync<{ services: EndSessionServices }> = async (app, { services }) => {
  const { config } = services;
  usePageErrors(app, config);
  // Form-encoded posts only (as at /authorize): every value the checks see is a string or a list of them.
  app.removeContentTypeParser(['application/json', 'text/plain']);

  /** After signing out (or with nobody signed in): to the client, or the signed-out page. */
  function finish(reply: FastifyReply, logout: EndSessionRequest): Promise<FastifyReply> | FastifyReply {
    if (logout.location !== null) return reply.header('cache-control', 'no-store').redirect(logout.location, 303);
    return renderPage(reply, config, 'signed-out', { title: 'You are signed out', clientName: logout.client?.clientName ?? null });
  }

  function confirmPage(reply: FastifyReply, session: BrowserSession, user: User, logout: EndSessionRequest): Promise<FastifyReply> {
    const serviceName = new URL(config.issuer).host;
    return renderPage(
      reply,
      config,
      'end-session',
      {
        title: `Sign out of ${serviceName}?`,
        username: user.username,
        clientName: logout.client?.clientName ?? null,
        // The client signed someone else in: say whom this signs out.
        otherUser: logout.hintSubject !== null && logout.hintSubject !== user.id,
        csrfToken: session.csrfToken,
        fields: Object.entries(logout.params).map(([name, value]) => ({ name, value })),
      },
      // Signing out ends in a 303 to the client (Chromium applies form-action to it).
      { formTargets: logout.location === null ? [] : [logout.location] },
    );
  }

  /** The request judged; null when refused, and the error page (400, never a redirect) has been sent. */
  async function judged(reply: FastifyReply, params: unknown): Promise<EndSessionRequest | null> {
    try {
      return await validateEndSessionRequest(params, services.endSessionRequests);
    } catch (err) {
      if (!isOAuthError(err) || err.error !== 'invalid_request') throw err;
      await renderErrorPage(reply, config, 400, err.description, { title: 'This sign-out link is not valid' });
      return null;
    }
  }

  async function endSession(request: FastifyRequest, reply: FastifyReply, params: unknown): Promise<FastifyReply> {
    const logout = await judged(reply, params);
    if (!logout) return reply;
    const session = await readSession(request, services.sessions, config);
    const user = session ? await services.users.findSignedIn(session) : null;
    if (session && user) return confirmPage(reply, session, user, logout);
    if (request.method === 'POST' && !session) {
      // Maybe a cross-site post, which carries no SameSite=Lax cookie: asked again as a top-level GET, which does.
      return reply.header('cache-control', 'no-store').redirect(`${END_SESSION_PATH}?${new URLSearchParams(logout.params).toString()}`, 303);
    }
    return finish(reply, logout);
  }

  app.get(
    END_SESSION_PATH,
    {
      attachValidation: true,
      schema: { tags: ['browser'], summary: 'End-session endpoint (OpenID Connect RP-Initiated Logout 1.0)', produces: ['text/html'], querystring: parametersSchema, response: RESPONSES },
    },
    (request, reply) => endSession(request, reply, request.query),
  );

  app.post<{ Body: { confirm?: unknown } | undefined }>(
    END_SESSION_PATH,
    {
      attachValidation: true,
      schema: {
        tags: ['browser'],
        summary: 'End-session endpoint, form-encoded; also the confirmation form’s post',
        description:
          'Without confirm: a logout request as at GET. With it: the confirmation, which must carry its session’s csrf_token (else 403, and nothing changes); the request is judged again, the browser is signed out and sent on.',
        consumes: ['application/x-www-form-urlencoded'],
        body: confirmBodySchema,
        response: { ...RESPONSES, 403: htmlPage('The confirmation was not sent from this site, or its session has ended: nothing changed.') },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      // A relying party's request never says `confirm`; the confirmation form does, with its CSRF token.
      if (body.confirm === undefined) return endSession(request, reply, body);
      const session = await checkedFormSession(request, reply, services.sessions, config);
      if (!session) return reply;
      const logout = await judged(reply, body);
      if (!logout) return reply;
      await signOut(services, reply, session);
      return finish(reply, logout);
    },
  );
};
