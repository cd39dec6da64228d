/**
 * "Sign in with <provider>": `GET /login/providers/:id` sends the browser to
 * the upstream OpenID Connect provider, `GET /login/providers/:id/callback`
 * receives its answer (the redirect URI registered there). The protocol
 * checks live in `identity-providers/`; this file reads the request and
 * ends like the password form (`finishSignIn`).
 *
 * A provider that cannot be reached is a 503 error page naming it, never a
 * 500; a refused answer (state, `iss`, ID token) is a 400 page and the user
 * is not signed in.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import { completeSignIn, EXPIRED_REQUEST, type BrowserFlowServices } from './login.js';
import { renderErrorPage, usePageErrors } from './pages.js';
import { safeReturnPath } from './return-path.js';
import { awaitSecondFactor, SECOND_FACTOR_KEY, secondFactorLocation } from './second-factor-state.js';
import { htmlPage, redirect } from './schemas.js';
import { ensureSession, readSession } from './session-cookie.js';

export type UpstreamLoginServices = BrowserFlowServices & Pick<Services, 'upstreamSignIn'>;

const NO_SESSION = 'This sign-in has expired or was not started in this browser. Start again from the sign-in page.';

const providerParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 63, description: 'The identity provider (its id, as in the redirect URI).' } },
} as const;

const startQuery = {
  type: 'object',
  properties: {
    rid: { type: 'string', maxLength: 100, description: 'The pending authorization request (from /login?rid=…).' },
    next: { type: 'string', maxLength: 300, description: 'A page of this server to return to (e.g. /account); other values are ignored.' },
  },
} as const;

/** Documented only: the provider's answer is read from the raw query by oauth4webapi. */
const callbackQuery = {
  type: 'object',
  properties: {
    code: { type: 'string', maxLength: 2048 },
    state: { type: 'string', maxLength: 200 },
    iss: { type: 'string', maxLength: 500, description: 'RFC 9207: the provider that answered.' },
    error: { type: 'string', maxLength: 200 },
    error_description: { type: 'string', maxLength: 1000 },
    session_state: { type: 'string', maxLength: 500 },
    scope: { type: 'string', maxLength: 2000 },
  },
} as const;

const errorPages = {
  400: htmlPage('The sign-in expired, was not started in this browser, or the provider\'s answer was refused.'),
  404: htmlPage('No such provider, or it is switched off.'),
  503: htmlPage('The provider cannot be reached right now.'),
};

export const upstreamLoginRoutes: FastifyPluginAsync<{ services: UpstreamLoginServices }> = async (app, { services }) => {
  const { config } = services;
  usePageErrors(app, config);

  app.get<{ Params: { id: string }; Querystring: { rid?: string; next?: string } }>(
    '/login/providers/:id',
    {
      schema: {
        tags: ['browser'],
        summary: 'Sign in with an upstream OpenID Connect provider',
        params: providerParams,
        querystring: startQuery,
        response: { 303: redirect("To the provider's authorization endpoint (code flow with PKCE, state and nonce)."), ...errorPages },
      },
    },
    async (request, reply) => {
      const session = await ensureSession(request, reply, services.sessions, config);
      const { rid } = request.query;
      let pendingId: string | null = null;
      if (rid !== undefined && rid !== '') {
        const pending = await services.pendingAuthorizations.load(rid, session);
        if (!pending) return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
        pendingId = pending.id;
      }
      const next = pendingId ? null : safeReturnPath(request.query.next);
      const { authorizationUrl, sessionChanged } = await services.upstreamSignIn.begin(request.params.id, session, { rid: pendingId, next });
      if (sessionChanged) await services.sessions.save(session);
      return reply.header('cache-control', 'no-store').redirect(authorizationUrl, 303);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/login/providers/:id/callback',
    {
      schema: {
        tags: ['browser'],
        summary: "The upstream provider's redirect back (the redirect URI to register there)",
        params: providerParams,
        querystring: callbackQuery,
        response: { 303: redirect('Signed in: to the consent page, the client, the page of `next`, or /account.'), 403: htmlPage('The account is disabled, or the provider refused.'), ...errorPages },
      },
    },
    async (request, reply) => {
      const session = await readSession(request, services.sessions, config);
      if (!session) return renderErrorPage(reply, config, 400, NO_SESSION);
      // The query as the provider sent it: oauth4webapi reads `iss`, `state`, `code` and `error` from it.
      const callbackUrl = new URL(request.url, config.issuer);
      const { user, returnTo, amr } = await services.upstreamSignIn.complete(request.params.id, session, callbackUrl, request.ip);
      // The application's request may have expired meanwhile: signed in all the same, to /account.
      const pending = returnTo.rid ? await services.pendingAuthorizations.load(returnTo.rid, session) : null;
      // The provider vouches for who this is; an authenticator app the user set up here is still asked for.
      if (await services.secondFactor.isEnrolled(user.id)) {
        awaitSecondFactor(session, user.id, services.now(), amr);
        await services.sessions.save(session);
        return reply.header('cache-control', 'no-store').redirect(secondFactorLocation(pending, returnTo.next), 303);
      }
      delete session.data[SECOND_FACTOR_KEY];
      const location = await completeSignIn(services, reply, session, { userId: user.id, amr, pending, next: returnTo.next });
      return reply.header('cache-control', 'no-store').redirect(location, 303);
    },
  );
};
