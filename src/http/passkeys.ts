/**
 * Passkey routes (the ceremonies live in `users/passkeys.ts`):
 *
 * - `POST /account/passkeys/options` → `POST /account/passkeys`: the signed-in
 *   user adds a passkey (the account page's "Add a passkey").
 * - `POST /account/passkeys/:id/remove`: an HTML form post ("Remove").
 * - `POST /login/passkey/options` → `POST /login/passkey`: "Sign in with a
 *   passkey" on the login page, username-less; success goes on exactly like
 *   a password sign-in (`completeSignIn`: a new session, then the pending
 *   authorization request or `next`) and answers where the browser goes.
 *
 * The JSON routes are called by `public/passkeys.js` with the session's
 * CSRF token in `X-CSRF-Token` (a header no other site can send without a
 * CORS preflight, which nothing here allows): without the session's token,
 * 403 and nothing happens. Each ceremony's challenge belongs to the session
 * that asked for it and is used once.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError, invalidRequest } from '../errors.js';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { Passkey, User } from '../storage/types.js';
import { MAX_PASSKEY_NAME_LENGTH } from '../users/passkeys.js';
import { completeSignIn, EXPIRED_REQUEST } from './login.js';
import { FORGED_FORM, signedInFormPost } from './page-form.js';
import { renderErrorPage, usePageErrors } from './pages.js';
import { safeReturnPath } from './return-path.js';
import { errorResponses, redirect } from './schemas.js';
import { readSession } from './session-cookie.js';

export type PasskeyRouteServices = Pick<Services, 'config' | 'sessions' | 'users' | 'passkeys' | 'authorization' | 'pendingAuthorizations'>;

/** The request header that carries the session's CSRF token on the JSON routes. */
export const CSRF_HEADER = 'x-csrf-token';

const NOT_SIGNED_IN = 'Sign in first.';

/** A passkey as the account page lists it. */
export function passkeyListView(passkeys: readonly Passkey[]) {
  const day = (date: Date) => date.toISOString().slice(0, 10);
  return passkeys.map((p) => ({
    id: p.id,
    name: p.name,
    backedUp: p.backedUp,
    createdAt: day(p.createdAt),
    createdAtIso: p.createdAt.toISOString(),
    lastUsedAt: p.lastUsedAt ? day(p.lastUsedAt) : null,
    lastUsedAtIso: p.lastUsedAt?.toISOString() ?? null,
  }));
}

const options = (description: string) => ({ description, type: 'object', additionalProperties: true }) as const;
const webauthnResponse = { type: 'object', description: 'The browser\'s PublicKeyCredential as JSON (@simplewebauthn/browser).', additionalProperties: true } as const;

const registerBody = {
  type: 'object',
  required: ['response'],
  properties: { response: webauthnResponse, name: { type: 'string', maxLength: MAX_PASSKEY_NAME_LENGTH * 4 } },
} as const;

const signInBody = {
  type: 'object',
  required: ['response'],
  properties: {
    response: webauthnResponse,
    rid: { type: 'string', maxLength: 100, description: 'The pending authorization request, as on the login form.' },
    next: { type: 'string', maxLength: 300, description: 'As on the login form.' },
  },
} as const;

const csrfHeaders = {
  type: 'object',
  properties: { [CSRF_HEADER]: { type: 'string', maxLength: 200, description: "The session's CSRF token (from the page)." } },
} as const;

export const passkeyRoutes: FastifyPluginAsync<{ services: PasskeyRouteServices }> = async (app, { services }) => {
  const { config } = services;

  /** The request's session if it carries that session's CSRF token in the header; else 403. */
  async function sessionWithCsrf(request: FastifyRequest): Promise<BrowserSession> {
    const session = await readSession(request, services.sessions, config);
    if (!session || !services.sessions.verifyCsrf(session, request.headers[CSRF_HEADER])) throw new OAuthError('forbidden', FORGED_FORM);
    return session;
  }

  async function signedIn(request: FastifyRequest): Promise<{ session: BrowserSession; user: User }> {
    const session = await sessionWithCsrf(request);
    const user = await services.users.findSignedIn(session);
    if (!user) throw new OAuthError('unauthorized', NOT_SIGNED_IN);
    return { session, user };
  }

  const json = (reply: FastifyReply) => reply.header('cache-control', 'no-store');
  const tags = ['browser'];

  // The JSON routes answer errors as JSON (the app's error handler).
  await app.register(async (api) => {
    // JSON bodies only: what another site's form can send (urlencoded, text/plain) is 415 before anything is read.
    api.removeAllContentTypeParsers();
    api.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.bodyLimitBytes }, api.getDefaultJsonParser('error', 'error'));
    api.post(
      '/account/passkeys/options',
      {
        schema: {
          tags,
          summary: 'Options to add a passkey (JSON, for navigator.credentials.create)',
          headers: csrfHeaders,
          response: { 200: options('PublicKeyCredentialCreationOptionsJSON.'), ...errorResponses(400, 401, 403, 503) },
        },
      },
      async (request, reply) => {
        const { session, user } = await signedIn(request);
        return json(reply).send(await services.passkeys.registrationOptions(user, session));
      },
    );

    api.post<{ Body: { response: Record<string, unknown>; name?: string } }>(
      '/account/passkeys',
      {
        schema: {
          tags,
          summary: 'Add a passkey (JSON: the browser\'s answer to the options)',
          headers: csrfHeaders,
          body: registerBody,
          response: {
            201: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } },
            ...errorResponses(400, 401, 403, 409, 503),
          },
        },
      },
      async (request, reply) => {
        const { session, user } = await signedIn(request);
        const passkey = await services.passkeys.register(user, session, request.body.response, request.body.name, request.ip);
        return json(reply).code(201).send({ id: passkey.id, name: passkey.name });
      },
    );

    api.post(
      '/login/passkey/options',
      {
        schema: {
          tags,
          summary: 'Options to sign in with a passkey (JSON, for navigator.credentials.get)',
          headers: csrfHeaders,
          response: { 200: options('PublicKeyCredentialRequestOptionsJSON.'), ...errorResponses(400, 403, 503) },
        },
      },
      async (request, reply) => {
        const session = await sessionWithCsrf(request);
        return json(reply).send(await services.passkeys.authenticationOptions(session));
      },
    );

    api.post<{ Body: { response: Record<string, unknown>; rid?: string; next?: string } }>(
      '/login/passkey',
      {
        schema: {
          tags,
          summary: 'Sign in with a passkey (JSON: the browser\'s answer to the options)',
          description: 'On success the session is signed in (new cookie) and `location` says where the browser goes next: the consent page, the client, or `next`.',
          headers: csrfHeaders,
          body: signInBody,
          response: { 200: { type: 'object', properties: { location: { type: 'string' } } }, ...errorResponses(400, 403, 429, 503) },
        },
      },
      async (request, reply) => {
        const session = await sessionWithCsrf(request);
        const { rid } = request.body;
        const pending = rid === undefined || rid === '' ? null : await services.pendingAuthorizations.load(rid, session);
        if (rid && !pending) throw invalidRequest(EXPIRED_REQUEST);
        const { user, amr } = await services.passkeys.authenticate(session, request.body.response, request.ip);
        const location = await completeSignIn(services, reply, session, { userId: user.id, amr, pending, next: safeReturnPath(request.body.next) });
        return json(reply).send({ location });
      },
    );
  });

  // The form post answers like the other pages: the error page, or 303 back to the account page.
  await app.register(async (pages) => {
    usePageErrors(pages, config);
    pages.post<{ Params: { id: string }; Body: { csrf_token?: string } }>(
      '/account/passkeys/:id/remove',
      {
        schema: {
          tags,
          summary: 'Remove a passkey (HTML form post)',
          description: 'Form field: csrf_token. 303 back to the account page.',
          consumes: ['application/x-www-form-urlencoded'],
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 100 } } },
          body: { type: 'object', properties: { csrf_token: { type: 'string', maxLength: 200 } } },
          response: { 303: redirect('Back to the account page (or to sign in).') },
        },
      },
      async (request, reply) => {
        const current = await signedInFormPost(request, reply, services, config, '/account');
        if (!current) return reply;
        const { user } = current;
        const removed = await services.passkeys.remove(user, request.params.id, request.ip);
        if (!removed) return renderErrorPage(reply, config, 404, 'You have no such passkey.');
        return reply.header('cache-control', 'no-store').redirect('/account', 303);
      },
    );
  });
};
