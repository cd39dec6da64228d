/**
 * The browser side of the authorization server: `GET/POST /authorize`
 * (RFC 6749 §4.1.1 / §4.2.1; OIDC Core §3.1.2.1 asks for GET and POST),
 * `GET/POST /consent`, and the sign-in routes (`login.ts`).
 *
 * Errors before `client_id` and `redirect_uri` are known to belong together
 * are shown on the error page and never redirected (RFC 6749 §4.1.2.1,
 * RFC 9700 §4.1.1); later ones go back to the client with `error`, `state`
 * and `iss`. Every other failure in this scope is the HTML error page.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopbackHost } from '../config.js';
import { OAuthError, UnavailableError } from '../errors.js';
import type { FlowStep } from '../oauth/authorization.js';
import { parseAuthorizationRequest, type AuthorizeQuery } from '../oauth/authorize-request.js';
import type { AuthorizationParameters } from '../oauth/pushed-requests.js';
import type { Services } from '../services.js';
import { describeScopes } from '../oauth/scope-descriptions.js';
import { registerSecondFactorRoutes } from './second-factor.js';
import { type BrowserFlowServices, EXPIRED_REQUEST, FORM_POST_RESPONSES, registerLoginRoutes } from './login.js';
import { checkedFormSession } from './page-form.js';
import { renderErrorPage, renderPage, sendStep, usePageErrors } from './pages.js';
import { htmlPage, redirect } from './schemas.js';
import { ensureSession, readSession } from './session-cookie.js';

const str = (description: string) => ({ type: 'string', description }) as const;

/** Documentation of the parameters; validation is done by `parseAuthorizationRequest` (errors must redirect). */
const authorizeParamsSchema = {
  type: 'object',
  properties: {
    response_type: str('code, or token (implicit) for clients registered for it'),
    client_id: str('The client identifier'),
    redirect_uri: str('Exactly one of the registered redirect URIs; optional when exactly one is registered and scope has no openid'),
    scope: str('Space-separated; default: every scope the client is registered for'),
    resource: str('RFC 8707: a resource the tokens are for, one of RESOURCES (may repeat; one only for response_type=token); default: the default resource'),
    state: str('Opaque value returned unchanged'),
    code_challenge: str('PKCE: BASE64URL(SHA-256(code_verifier)); required for response_type=code'),
    code_challenge_method: str('PKCE: must be S256'),
    nonce: str('OIDC: copied into the ID token'),
    prompt: str('OIDC: none, login, consent or select_account'),
    max_age: str('OIDC: seconds since the last sign-in after which the user must sign in again'),
    login_hint: str('OIDC: prefills the username'),
    id_token_hint: str('OIDC: an ID token this server issued (expired ones too) naming the user expected; another user signed in must sign in again (prompt=none: login_required)'),
    acr_values: str('OIDC: space-separated authentication context classes accepted (acr_values_supported); naming only the mfa class asks for the second factor'),
    request_uri: str('RFC 9126: the request_uri the pushed authorization request endpoint (/par) answered, with client_id; every other parameter is then ignored. Single-use, valid 60 seconds'),
  },
} as const;

/** What `/authorize` answers (documented; pages render HTML or redirect). */
const authorizeResponses = {
  303: redirect(
    'To the sign-in or consent page, or back to the registered redirect_uri with code, state and iss (RFC 9207), or with error, state and iss. Implicit: access_token in the fragment.',
  ),
  400: htmlPage(
    'Error page, shown (never redirected) when client_id or redirect_uri is unknown or they do not belong together, or a request_uri is unknown, expired, used or was pushed by another client.',
  ),
};

const consentQuerySchema = { type: 'object', properties: { rid: { type: 'string', maxLength: 100 } } } as const;
const consentBodySchema = {
  type: 'object',
  properties: {
    decision: { type: 'string', enum: ['allow', 'deny'] },
    csrf_token: { type: 'string', maxLength: 200 },
    rid: { type: 'string', maxLength: 100 },
    ticket: { type: 'string', maxLength: 100 },
  },
} as const;

function hostOf(uri: string): string {
  try {
    const url = new URL(uri);
    return url.host || url.protocol;
  } catch {
    return uri;
  }
}

/** Whether the answer goes to this computer (RFC 8252 §7.3 loopback redirect URIs, and localhost). */
function isLoopbackRedirect(uri: string): boolean {
  try {
    const url = new URL(uri);
    return url.protocol === 'http:' && isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

export const authorizeRoutes: FastifyPluginAsync<{ services: BrowserFlowServices & Pick<Services, 'pushedRequests' | 'authorizationRequests'> }> = async (app, { services }) => {
  const { config, authorization: flow, pendingAuthorizations: pending } = services;

  usePageErrors(app, config);
  // The pages here post HTML forms, and POST /authorize takes form-encoded
  // parameters only (OIDC Core §3.1.2.1): a JSON or text body is 415, so
  // every value the checks see is a string or a list of strings.
  app.removeContentTypeParser(['application/json', 'text/plain']);

  async function authorize(request: FastifyRequest, reply: FastifyReply, params: unknown): Promise<FastifyReply> {
    const query = (typeof params === 'object' && params !== null ? params : {}) as AuthorizeQuery;
    // RFC 9126 §4: with a request_uri, the pushed parameters (taken once), nothing else.
    let sent: AuthorizationParameters;
    try {
      sent = await services.pushedRequests.authorizationParameters(query);
    } catch (err) {
      if (!(err instanceof OAuthError) || err instanceof UnavailableError) throw err;
      request.log.debug({ error: err.error, description: err.description }, 'request_uri refused (not redirected)');
      return renderErrorPage(reply, config, 400, err.description, { title: 'This sign-in link is not valid' });
    }
    const result = await parseAuthorizationRequest(sent.params, services.authorizationRequests, {
      pushed: sent.pushed,
      pushRequiredByServer: config.requirePushedAuthorizationRequests,
    });
    if (!result.ok) {
      if (result.target === null) {
        request.log.debug({ error: result.error.error, description: result.error.description }, 'authorization request refused (not redirected)');
        return renderErrorPage(reply, config, 400, result.error.description, { title: 'This sign-in link is not valid' });
      }
      return sendStep(reply, flow.errorRedirect(result.target, result.error));
    }
    let step: FlowStep;
    try {
      const session = await ensureSession(request, reply, services.sessions, config);
      step = await flow.begin(result.client, result.request, session);
    } catch (err) {
      // RFC 6749 §4.1.2.1 / §4.2.2.1: `temporarily_unavailable` exists because
      // a 503 cannot travel in a redirect. The client and redirect URI are
      // verified by now, so a store outage (sessions, consents) goes back to
      // the client like any other error instead of stranding the user here.
      if (!(err instanceof UnavailableError)) throw err;
      request.log.warn({ err: err.cause ?? err }, err.description);
      const { redirectUri, responseMode, state } = result.request;
      step = flow.errorRedirect({ redirectUri, responseMode, state }, err);
    }
    return sendStep(reply, step);
  }

  // attachValidation: a malformed value is for parseAuthorizationRequest to
  // judge, so that errors after the redirect URI is known are redirected.
  app.get(
    '/authorize',
    {
      attachValidation: true,
      schema: { tags: ['browser'], summary: 'Authorization endpoint (RFC 6749 §3.1)', querystring: authorizeParamsSchema, response: authorizeResponses },
    },
    (request, reply) => authorize(request, reply, request.query),
  );
  app.post(
    '/authorize',
    {
      attachValidation: true,
      schema: {
        tags: ['browser'],
        summary: 'Authorization endpoint, form-encoded (OIDC Core §3.1.2.1)',
        consumes: ['application/x-www-form-urlencoded'],
        body: authorizeParamsSchema,
        response: authorizeResponses,
      },
    },
    (request, reply) => authorize(request, reply, request.body),
  );

  app.get<{ Querystring: { rid?: string } }>(
    '/consent',
    { schema: { tags: ['browser'], summary: 'Consent page (HTML)', produces: ['text/html'], querystring: consentQuerySchema, response: { 200: htmlPage('HTML page.') } } },
    async (request, reply) => {
      const session = await readSession(request, services.sessions, config);
      const found = session ? await pending.load(request.query.rid, session) : null;
      if (!session || !found) return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
      const step = await flow.proceed(found, session);
      if (step.kind !== 'consent') return sendStep(reply, step);
      const ticket = await flow.showConsent(found, step.user);
      return renderPage(
        reply,
        config,
        'consent',
        {
          title: `Allow ${step.client.clientName}?`,
          clientName: step.client.clientName,
          username: step.user.username,
          scopes: describeScopes(step.scopes),
          // RFC 8707: consent is per resource (an API, an MCP server); the page names them.
          resources: found.request.resources,
          redirectHost: hostOf(found.request.redirectUri),
          // A client no administrator registered (RFC 7591, or a metadata document) says so.
          unregistered: step.client.origin !== 'admin',
          documentHost: step.client.origin === 'metadata_document' ? hostOf(step.client.clientId) : null,
          loopback: isLoopbackRedirect(found.request.redirectUri),
          remembered: true,
          csrfToken: session.csrfToken,
          rid: found.id,
          ticket,
        },
        // Both buttons end in a 303 to the client's redirect URI.
        { formTargets: [found.request.redirectUri] },
      );
    },
  );

  app.post<{ Body: { decision?: 'allow' | 'deny'; csrf_token?: string; rid?: string; ticket?: string } }>(
    '/consent',
    {
      schema: {
        tags: ['browser'],
        summary: 'Consent decision (HTML form post)',
        description: 'Form fields: decision (allow or deny), csrf_token, rid, ticket. Answers 303 to the client.',
        consumes: ['application/x-www-form-urlencoded'],
        body: consentBodySchema,
        response: FORM_POST_RESPONSES,
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const session = await checkedFormSession(request, reply, services.sessions, config);
      if (!session) return reply;
      if (body.decision === undefined) return renderErrorPage(reply, config, 400, 'Choose Allow or Deny.');
      const found = await pending.load(body.rid, session);
      if (!found) return renderErrorPage(reply, config, 400, EXPIRED_REQUEST);
      return sendStep(reply, await flow.decide(found, session, body.ticket, body.decision === 'allow', request.ip));
    },
  );

  registerLoginRoutes(app, services);
  registerSecondFactorRoutes(app, services);
};
