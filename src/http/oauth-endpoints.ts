/**
 * `POST /token` (RFC 6749 §3.2), `POST /revoke` (RFC 7009),
 * `POST /introspect` (RFC 7662) and `POST /device_authorization` (RFC 8628
 * §3.1): one encapsulated scope with its own body parsing and error dialect.
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
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseQueryString } from 'fast-querystring';
import { OAuthError } from '../errors.js';
import { CLIENT_CHALLENGE } from '../oauth/client-auth.js';
import { GRANT_PARAMETERS } from '../oauth/grants/index.js';
import { DEVICE_AUTHORIZATION_PATH } from '../oauth/metadata.js';
import { JWT_BEARER_ASSERTION_TYPE, TOKEN_GRANT_TYPES } from '../oauth/protocol.js';
import type { EndpointRequest, RawForm } from '../oauth/token-endpoint.js';
import type { Services } from '../services.js';
import { dpopNonceHook } from './dpop.js';
import { logError, sendProtocolError, toOAuthError } from './errors.js';
import { errorResponses, SECURITY } from './schemas.js';

const errors = errorResponses(400, 401, 429, 503);

/**
 * Route policy of these endpoints: called by machines at high rates (their
 * request lines log at debug, their JSON answers carry the API headers);
 * token and revocation also by browser-based apps from `CORS_ORIGINS`
 * (introspection is for resource servers only).
 */
const FOR_APPS = { cors: 'app', accessLog: 'debug', securityHeaders: 'api' } as const;
const FOR_SERVERS = { accessLog: 'debug', securityHeaders: 'api' } as const;

const clientAuthProperties = {
  client_id: { type: 'string', description: 'For client_secret_post and public clients (`none`); optional with a client assertion (then it must be its `sub`).' },
  client_secret: { type: 'string', description: 'client_secret_post only; prefer HTTP Basic.' },
  // No `enum`: Swagger UI would render a select and send its value with every request, which is then a second
  // client authentication method beside Basic.
  client_assertion_type: { type: 'string', description: `private_key_jwt (RFC 7523 §2.2): ${JWT_BEARER_ASSERTION_TYPE}.` },
  client_assertion: {
    type: 'string',
    description:
      'private_key_jwt: a JWT signed with a key of the client\'s jwks / jwks_uri; iss = sub = client_id, aud = the issuer or this endpoint\'s URL, exp at most 5 minutes ahead, a jti used once.',
  },
} as const;

/** Each grant's own parameters, named after the grants that read them (`oauth/grants/index.ts`). */
function grantParameterProperties(): Record<string, { type: 'string'; description: string }> {
  const properties: Record<string, { type: 'string'; description: string }> = {};
  for (const grant of TOKEN_GRANT_TYPES) {
    for (const [name, what] of Object.entries(GRANT_PARAMETERS[grant])) {
      const known = properties[name];
      properties[name] = { type: 'string', description: known ? `${known.description}; ${grant}: ${what}` : `${grant}: ${what}` };
    }
  }
  return properties;
}

const tokenBody = {
  type: 'object',
  properties: {
    grant_type: { type: 'string', enum: [...TOKEN_GRANT_TYPES] },
    scope: { type: 'string', description: 'Space-separated scopes; default: all of the client’s registered scopes.' },
    resource: {
      type: 'string',
      description:
        'RFC 8707: the resource the access token is for (its aud), one of RESOURCES; with a code or refresh token, one of those the authorization request named. Default: the first resource authorized, or the default resource. Once per request.',
    },
    ...grantParameterProperties(),
    ...clientAuthProperties,
  },
  required: ['grant_type'],
} as const;

const tokenResponse = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer', 'DPoP'], description: 'DPoP when the request carried a DPoP proof (RFC 9449 §5): present the token with that key.' },
    expires_in: { type: 'integer' },
    scope: { type: 'string' },
    refresh_token: { type: 'string' },
    id_token: { type: 'string' },
    issued_token_type: { type: 'string', description: 'Token exchange (RFC 8693 §2.2.1): urn:ietf:params:oauth:token-type:access_token' },
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
    token_type: { type: 'string', enum: ['Bearer', 'DPoP', 'refresh_token'] },
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
    cnf: {
      type: 'object',
      properties: { jkt: { type: 'string' } },
      required: ['jkt'],
      description: 'RFC 9449 §6.2: the thumbprint of the DPoP key the access token is bound to.',
    },
    act: {
      type: 'object',
      properties: { sub: { type: 'string' } },
      required: ['sub'],
      additionalProperties: true,
      description: 'RFC 8693 §4.1: for a token from token exchange, the client acting for the user (sub), the earlier actors nested in act.',
    },
  },
  required: ['active'],
} as const;

const deviceAuthorizationBody = {
  type: 'object',
  properties: {
    scope: { type: 'string', description: 'Space-separated scopes; default: all of the client’s registered scopes.' },
    resource: { type: 'string', description: 'RFC 8707: the resource the tokens are for, one of RESOURCES; default: the default resource.' },
    ...clientAuthProperties,
  },
} as const;

const deviceAuthorizationResponse = {
  type: 'object',
  properties: {
    device_code: { type: 'string', description: 'For the token request (grant_type urn:ietf:params:oauth:grant-type:device_code).' },
    user_code: { type: 'string', description: 'For the person to type at verification_uri (XXXX-XXXX; case and dash do not matter).' },
    verification_uri: { type: 'string' },
    verification_uri_complete: { type: 'string', description: 'verification_uri with the user code filled in (for a QR code).' },
    expires_in: { type: 'integer' },
    interval: { type: 'integer', description: 'Seconds to wait between polls of the token endpoint.' },
  },
  required: ['device_code', 'user_code', 'verification_uri', 'verification_uri_complete', 'expires_in', 'interval'],
} as const;

/** Marks a body that was not form-encoded: the endpoint's first check refuses it. */
const NOT_FORM: unique symbol = Symbol('not a form');

/**
 * Form decoding (fast-querystring, the parser of Fastify's router and of
 * @fastify/formbody): a repeated name becomes a list, so the endpoint can
 * refuse it (RFC 6749 §3.1); the result has no prototype to pollute.
 */
function parseForm(body: string): RawForm {
  return parseQueryString(body) as RawForm;
}

/** The transport-neutral form of a request to one of these endpoints (or `/par`). */
export function endpointRequest(request: FastifyRequest): EndpointRequest {
  const body = request.body as RawForm | typeof NOT_FORM | undefined;
  return {
    contentType: request.headers['content-type'],
    form: body === NOT_FORM || body === undefined ? undefined : body,
    authorization: request.headers.authorization,
    dpop: request.headers.dpop,
    ip: request.ip,
  };
}

export function noStore(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

/** RFC 6749 §5.2 errors; `invalid_client` is 401 with a Basic challenge. */
function oauthErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = toOAuthError(error);
  logError(request, err);
  return sendProtocolError(reply, err, err.error === 'invalid_client' ? { 'www-authenticate': CLIENT_CHALLENGE } : {});
}

/**
 * The body parsing and error dialect of an endpoint where a client
 * authenticates with a form post (these three, and `/par`): only forms are
 * parsed, anything else is handed on unread and refused by the endpoint's
 * first check; errors are RFC 6749 §5.2 JSON.
 */
export function useClientFormDialect(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, parseForm(body as string));
  });
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(null, NOT_FORM);
  });
  app.setErrorHandler(oauthErrorHandler);
}

export const oauthEndpoints: FastifyPluginAsync<{ services: Pick<Services, 'tokenEndpoints' | 'metrics' | 'dpop'> }> = async (app, { services }) => {
  const endpoints = services.tokenEndpoints;
  const sendNonce = dpopNonceHook(services.dpop.nonces);
  useClientFormDialect(app);

  // The body schemas document the parameters; validation is the endpoints' own
  // named checks (in their order, with RFC error codes), so it is only attached.
  app.post(
    '/token',
    {
      attachValidation: true,
      config: FOR_APPS,
      preHandler: sendNonce,
      schema: {
        tags: ['oauth'],
        security: SECURITY.client,
        summary: `Token endpoint (RFC 6749 §3.2): ${TOKEN_GRANT_TYPES.join(', ')}`,
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenBody,
        response: { 200: tokenResponse, ...errors },
      },
    },
    async (request, reply) => {
      const { grantType, response } = await endpoints.token(endpointRequest(request));
      services.metrics.tokenIssued(grantType);
      noStore(reply);
      return response;
    },
  );

  app.post(
    '/revoke',
    {
      attachValidation: true,
      config: FOR_APPS,
      schema: {
        tags: ['oauth'],
        security: SECURITY.client,
        summary: 'Token revocation (RFC 7009): refresh tokens revoke their whole grant; access tokens are deny-listed',
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenParamBody,
        response: { 200: { type: 'null', description: 'Revoked, or nothing to revoke (unknown, expired or another client’s token).' }, ...errors },
      },
    },
    async (request, reply) => {
      await endpoints.revoke(endpointRequest(request));
      noStore(reply);
      return reply.code(200).send();
    },
  );

  app.post(
    '/introspect',
    {
      attachValidation: true,
      config: FOR_SERVERS,
      schema: {
        tags: ['oauth'],
        security: SECURITY.client,
        summary: 'Token introspection (RFC 7662), for authenticated clients',
        consumes: ['application/x-www-form-urlencoded'],
        body: tokenParamBody,
        response: { 200: introspectionResponse, ...errors },
      },
    },
    async (request, reply) => {
      const result = await endpoints.introspect(endpointRequest(request));
      noStore(reply);
      return result;
    },
  );

  app.post(
    DEVICE_AUTHORIZATION_PATH,
    {
      attachValidation: true,
      config: FOR_SERVERS,
      schema: {
        tags: ['oauth'],
        security: SECURITY.client,
        summary: 'Device authorization (RFC 8628 §3.1): codes for a device without a browser; the person approves at /device',
        consumes: ['application/x-www-form-urlencoded'],
        body: deviceAuthorizationBody,
        response: { 200: deviceAuthorizationResponse, ...errors },
      },
    },
    async (request, reply) => {
      const result = await endpoints.deviceAuthorization(endpointRequest(request));
      noStore(reply);
      return result;
    },
  );

  // RFC 6749 §3.2: POST only. Hidden from the docs.
  for (const [url, config] of [
    ['/token', FOR_APPS],
    ['/revoke', FOR_APPS],
    ['/introspect', FOR_SERVERS],
    [DEVICE_AUTHORIZATION_PATH, FOR_SERVERS],
  ] as const) {
    app.route({ method: ['GET', 'PUT', 'PATCH', 'DELETE'], url, config, schema: { hide: true }, handler: methodNotAllowed });
  }
};

/** Answers another method than POST: 405 with `Allow: POST`. */
export async function methodNotAllowed(_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply.header('allow', 'POST');
  return sendProtocolError(reply, new OAuthError('invalid_request', 'Use POST.', { status: 405 }));
}
