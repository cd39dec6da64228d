/**
 * `POST /token` (RFC 6749 §3.2), `POST /revoke` (RFC 7009) and
 * `POST /introspect` (RFC 7662): one encapsulated scope with its own body
 * parsing and error dialect.
 *
 * - Only `application/x-www-form-urlencoded` bodies are parsed here; any
 *   other body (JSON included) reaches the handler unparsed and is refused by
 *   the endpoint's first check with `invalid_request` (400, not 415: RFC 6749
 *   §5.2 has one error format for clients).
 * - Errors are RFC 6749 §5.2 JSON with `Cache-Control: no-store` and
 *   `Pragma: no-cache`; `invalid_client` is 401 with a `WWW-Authenticate:
 *   Basic` challenge (§5.2, and RFC 9110 §15.5.2 for every 401).
 * - Other methods on these paths answer 405 with `Allow: POST`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.js';
import { CLIENT_CHALLENGE } from '../oauth/client-auth.js';
import { TOKEN_GRANT_TYPES } from '../oauth/protocol.js';
import { authenticateEndpointClient, handleTokenRequest, readForm, type EndpointRequest, type RawForm } from '../oauth/token-endpoint.js';
import type { Services } from '../services.js';
import { logError, sendJsonError, toOAuthError } from './errors.js';

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' } },
} as const;

const errorResponses = { 400: errorSchema, 401: errorSchema, 429: errorSchema, 503: errorSchema } as const;

const clientAuthProperties = {
  client_id: { type: 'string', description: 'For client_secret_post and public clients (`none`).' },
  client_secret: { type: 'string', description: 'client_secret_post only; prefer HTTP Basic.' },
} as const;

const tokenBody = {
  type: 'object',
  properties: {
    grant_type: { type: 'string', enum: [...TOKEN_GRANT_TYPES] },
    scope: { type: 'string', description: 'Space-separated scopes; default: all of the client’s registered scopes.' },
    code: { type: 'string', description: 'authorization_code' },
    redirect_uri: { type: 'string', description: 'authorization_code' },
    code_verifier: { type: 'string', description: 'authorization_code (PKCE, RFC 7636)' },
    username: { type: 'string', description: 'password' },
    password: { type: 'string', description: 'password' },
    refresh_token: { type: 'string', description: 'refresh_token' },
    ...clientAuthProperties,
  },
  required: ['grant_type'],
} as const;

const tokenResponse = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' },
    scope: { type: 'string' },
    refresh_token: { type: 'string' },
    id_token: { type: 'string' },
  },
  required: ['access_token', 'token_type', 'expires_in', 'scope'],
} as const;

const tokenParamBody = {
  type: 'object',
  properties: {
    token: { type: 'string' },
    token_type_hint: { type: 'string', enum: ['access_token', 'refresh_token'] },
    ...clientAuthProperties,
  },
  required: ['token'],
} as const;

const introspectionResponse = {
  type: 'object',
  properties: {
    active: { type: 'boolean' },
    token_type: { type: 'string', enum: ['Bearer', 'refresh_token'] },
    scope: { type: 'string' },
    client_id: { type: 'string' },
    username: { type: 'string' },
    sub: { type: 'string' },
    aud: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    iss: { type: 'string' },
    exp: { type: 'integer' },
    iat: { type: 'integer' },
    jti: { type: 'string' },
    auth_time: { type: 'integer' },
    roles: { type: 'array', items: { type: 'string' } },
  },
  required: ['active'],
} as const;

/** Marks a body that was not form-encoded: the endpoint's first check refuses it. */
const NOT_FORM: unique symbol = Symbol('not a form');

/** Form decoding; repeated names become lists so the endpoint can refuse them (RFC 6749 §3.1). */
function parseForm(body: string): RawForm {
  const form: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of new URLSearchParams(body)) {
    const seen = form[name];
    if (seen === undefined) form[name] = value;
    else if (typeof seen === 'string') form[name] = [seen, value];
    else seen.push(value);
  }
  return form;
}

function endpointRequest(request: FastifyRequest): EndpointRequest {
  const body = request.body as RawForm | typeof NOT_FORM | undefined;
  return {
    contentType: request.headers['content-type'],
    form: body === NOT_FORM || body === undefined ? undefined : body,
    authorization: request.headers.authorization,
    ip: request.ip,
  };
}

function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

/** RFC 6749 §5.2 errors; `invalid_client` is 401 with a Basic challenge. */
function oauthErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = toOAuthError(error);
  logError(request, err);
  return sendJsonError(reply, err, err.error === 'invalid_client' ? { 'www-authenticate': CLIENT_CHALLENGE } : {});
}

export const oauthEndpoints: FastifyPluginAsync<{ services: Services }> = async (app, { services }) => {
  // Only forms are parsed; anything else is handed on unread and refused by the first check.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, parseForm(body as string));
  });
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(null, NOT_FORM);
  });
  app.setErrorHandler(oauthErrorHandler);

  // The body schemas document the parameters; validation is the endpoints' own
  // named checks (in their order, with RFC error codes), so it is only attached.
  app.post(
    '/token',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        summary: `Token endpoint (RFC 6749 §3.2): ${TOKEN_GRANT_TYPES.join(', ')}`,
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenBody,
        response: { 200: tokenResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { grantType, response } = await handleTokenRequest(endpointRequest(request), services);
      services.metrics.tokenIssued(grantType);
      noStore(reply);
      return response;
    },
  );

  app.post(
    '/revoke',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        summary: 'Token revocation (RFC 7009): refresh tokens revoke their whole grant; access tokens are deny-listed',
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenParamBody,
        response: { 200: { type: 'null', description: 'Revoked, or nothing to revoke (unknown, expired or another client’s token).' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = endpointRequest(request);
      const params = readForm(input);
      const client = await authenticateEndpointClient(params, input, services, { allowPublic: true });
      if (params.token === undefined) throw new OAuthError('invalid_request', 'token is required (RFC 7009 §2.1).');
      await services.tokens.revoke(params.token, params.token_type_hint, client);
      noStore(reply);
      return reply.code(200).send();
    },
  );

  app.post(
    '/introspect',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        summary: 'Token introspection (RFC 7662), for authenticated clients',
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenParamBody,
        response: { 200: introspectionResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const input = endpointRequest(request);
      const params = readForm(input);
      const client = await authenticateEndpointClient(params, input, services, { allowPublic: false });
      if (params.token === undefined) throw new OAuthError('invalid_request', 'token is required (RFC 7662 §2.1).');
      const result = await services.tokens.introspect(params.token, params.token_type_hint, client);
      noStore(reply);
      return result;
    },
  );

  // RFC 6749 §3.2: POST only. Hidden from the docs.
  app.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: '/token',
    schema: { hide: true },
    handler: methodNotAllowed,
  });
  for (const url of ['/revoke', '/introspect']) {
    app.route({ method: ['GET', 'PUT', 'PATCH', 'DELETE'], url, schema: { hide: true }, handler: methodNotAllowed });
  }
};

async function methodNotAllowed(_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply.header('allow', 'POST');
  return sendJsonError(reply, new OAuthError('invalid_request', 'Use POST.', { status: 405 }));
}
