/**
 * `POST /par`, the pushed authorization request endpoint (RFC 9126 §2): a
 * client authenticates as at the token endpoint and posts the parameters of
 * an authorization request; the answer is 201 with a `request_uri` for
 * `/authorize`. Every error is RFC 6749 §5.2 JSON (RFC 9126 §2.3), never a
 * redirect. The work is `services.pushedRequests` (`oauth/pushed-requests.ts`).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import { dpopNonceHook } from './dpop.js';
import { endpointRequest, methodNotAllowed, noStore, useClientFormDialect } from './oauth-endpoints.js';
import { errorResponses, SECURITY } from './schemas.js';

/** Called by apps (browser-based ones from `CORS_ORIGINS` too), once per sign-in. */
const FOR_APPS = { cors: 'app', accessLog: 'debug', securityHeaders: 'api' } as const;

const str = (description: string) => ({ type: 'string', description }) as const;

/** Documentation only: the parameters are judged by the authorization request's named checks. */
const parBody = {
  type: 'object',
  properties: {
    client_id: str('The client; with HTTP Basic it may be left out'),
    client_secret: str('client_secret_post only; prefer HTTP Basic'),
    response_type: str('As at /authorize: code, or token for clients registered for it'),
    redirect_uri: str('As at /authorize: one of the registered redirect URIs'),
    scope: str('As at /authorize'),
    state: str('As at /authorize'),
    code_challenge: str('PKCE, S256: required for response_type=code'),
    code_challenge_method: str('S256'),
    resource: str('RFC 8707, may repeat'),
    nonce: str('OIDC'),
    prompt: str('OIDC'),
    max_age: str('OIDC'),
    login_hint: str('OIDC'),
    id_token_hint: str('OIDC'),
  },
} as const;

const parResponse = {
  type: 'object',
  required: ['request_uri', 'expires_in'],
  properties: {
    request_uri: { type: 'string', description: 'urn:ietf:params:oauth:request_uri:…, for /authorize with client_id; single-use' },
    expires_in: { type: 'integer', description: 'Seconds the request_uri is valid (60)' },
  },
} as const;

export const pushedAuthorizationRoutes: FastifyPluginAsync<{ services: Pick<Services, 'pushedRequests' | 'dpop'> }> = async (app, { services }) => {
  useClientFormDialect(app);
  const sendNonce = dpopNonceHook(services.dpop.nonces);

  app.post(
    '/par',
    {
      attachValidation: true,
      config: FOR_APPS,
      // RFC 9449 §8: the server nonce travels with every answer to a request with a proof.
      preHandler: sendNonce,
      schema: {
        tags: ['oauth'],
        security: SECURITY.client,
        summary: 'Pushed authorization request (RFC 9126): the parameters of /authorize, answered with a request_uri',
        consumes: ['application/x-www-form-urlencoded'],
        body: parBody,
        response: { 201: parResponse, ...errorResponses(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const pushed = await services.pushedRequests.push(endpointRequest(request));
      noStore(reply);
      return reply.code(201).send(pushed);
    },
  );

  // RFC 9126 §2: POST only. Hidden from the docs.
  app.route({ method: ['GET', 'PUT', 'PATCH', 'DELETE'], url: '/par', config: FOR_APPS, schema: { hide: true }, handler: methodNotAllowed });
};
