/**
 * `POST /oauth/register` (RFC 7591 dynamic client registration) and
 * `GET/PUT/DELETE /oauth/register/:client_id` (RFC 7592 client
 * configuration, with `Authorization: Bearer <registration_access_token>`).
 * Not `/register`, which is people's self-registration.
 *
 * JSON in, JSON out, never cached. Errors are RFC 7591 §3.2.2 JSON
 * (`invalid_redirect_uri`, `invalid_client_metadata`), 401 `invalid_token`
 * with a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3) for a missing or
 * wrong initial or registration access token, 403 when registration is
 * off, 429 with `Retry-After` beyond the per-address limit. Registration is
 * readable cross-origin (an MCP client may run in a browser); the
 * configuration endpoint is not.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { RegistrationTokenError, type Caller } from '../clients/registration.js';
import type { Config } from '../config.js';
import { REGISTRATION_ENDPOINT_PATH } from '../oauth/metadata.js';
import { AUTH_METHOD_NAMES } from '../oauth/protocol.js';
import { parseBearer } from '../security/authorization-header.js';
import type { Services } from '../services.js';
import type { Client } from '../storage/types.js';
import { ID_TOKEN_ALG } from '../tokens/keys.js';
import { logError, sendProtocolError, toOAuthError } from './errors.js';
import { errorResponses, SECURITY } from './schemas.js';

const TAG = 'registration';

const strings = { type: 'array', items: { type: 'string' } } as const;

/**
 * Documentation of the request body only. The domain reads it field by
 * field (unknown fields ignored, RFC 7591 §2; a wrong type is
 * `invalid_client_metadata`), so the properties carry no `type`: the
 * validator would otherwise coerce a string into a list before the domain
 * could refuse it.
 */
const metadataBody = {
  type: 'object',
  additionalProperties: true,
  description:
    'RFC 7591 §2 client metadata (JSON). Fields this server does not use are ignored. Only authorization_code and refresh_token (the default: both), ' +
    'response type code, https or loopback redirect URIs, never the admin scope.',
  properties: {
    redirect_uris: { description: 'Required, a list: https, or http on 127.0.0.1, [::1] or localhost (any port for 127.0.0.1 and [::1]).' },
    post_logout_redirect_uris: {
      description: 'OpenID Connect RP-Initiated Logout §3.1, a list: where /end-session may send the browser after signing out; the rules of redirect_uris. Default: none.',
    },
    backchannel_logout_uri: {
      description: 'OpenID Connect Back-Channel Logout §2.2: an https URI where a logout token is posted when a browser session that signed a user in to the client ends. Default: none.',
    },
    backchannel_logout_session_required: { description: 'Back-Channel Logout §2.2: true when the client needs sid in logout tokens (always sent here). Default false.' },
    client_name: { description: 'A string, shown on the consent page with a notice that no administrator registered the client.' },
    grant_types: { description: 'A list: authorization_code and/or refresh_token. Default: both.' },
    response_types: { description: 'A list: code. Default: code.' },
    token_endpoint_auth_method: {
      description: `One of ${AUTH_METHOD_NAMES.join(', ')}. DYNAMIC_REGISTRATION=open: none only (the default). token: default client_secret_basic.`,
    },
    scope: { description: 'Space-separated; default: every scope the server knows. Never "admin".' },
    dpop_bound_access_tokens: { description: 'RFC 9449 §5.2: true obliges the client to send a DPoP proof with every token request. Default false.' },
    id_token_signed_response_alg: { description: 'OpenID Connect Registration §2: RS256, the default and the only one (another value is invalid_client_metadata).' },
    client_id: { description: 'RFC 7592 update only: this client’s id.' },
    client_secret: { description: 'RFC 7592 update only, optional: the current secret.' },
  },
} as const;

/** RFC 7591 §3.2.1 / RFC 7592 §3. Only these fields are ever serialised. */
const registrationResponse = {
  type: 'object',
  required: ['client_id', 'client_id_issued_at', 'registration_access_token', 'registration_client_uri', 'redirect_uris', 'grant_types', 'token_endpoint_auth_method'],
  properties: {
    client_id: { type: 'string' },
    client_id_issued_at: { type: 'integer' },
    client_secret: { type: 'string', description: 'Confidential clients, in the answer that creates it only; stored hashed.' },
    client_secret_expires_at: { type: 'integer', description: '0: does not expire.' },
    registration_access_token: { type: 'string', description: 'For the client configuration endpoint (RFC 7592); stored hashed.' },
    registration_client_uri: { type: 'string' },
    client_name: { type: 'string' },
    redirect_uris: strings,
    post_logout_redirect_uris: strings,
    backchannel_logout_uri: { type: ['string', 'null'] },
    backchannel_logout_session_required: { type: 'boolean' },
    grant_types: strings,
    response_types: strings,
    token_endpoint_auth_method: { type: 'string' },
    scope: { type: 'string' },
    dpop_bound_access_tokens: { type: 'boolean' },
    id_token_signed_response_alg: { type: 'string', description: 'OpenID Connect Registration §2: how its ID tokens are signed (always RS256 here).' },
  },
} as const;

const clientIdParams = { type: 'object', required: ['client_id'], properties: { client_id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;

function registrationClientUri(config: Pick<Config, 'issuer'>, clientId: string): string {
  return `${config.issuer}${REGISTRATION_ENDPOINT_PATH}/${encodeURIComponent(clientId)}`;
}

/** The RFC 7591 §3.2.1 answer. The registration access token is the one just issued, or the one the caller proved. */
function toResponse(config: Pick<Config, 'issuer'>, client: Client, registrationAccessToken: string, clientSecret: string | null = null) {
  return {
    client_id: client.clientId,
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
    ...(clientSecret === null ? {} : { client_secret: clientSecret, client_secret_expires_at: 0 }),
    registration_access_token: registrationAccessToken,
    registration_client_uri: registrationClientUri(config, client.clientId),
    client_name: client.clientName,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri,
    backchannel_logout_session_required: client.backchannelLogoutSessionRequired,
    grant_types: client.grantTypes,
    response_types: client.responseTypes,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    scope: client.scope,
    dpop_bound_access_tokens: client.dpopBoundAccessTokens,
    // OIDC Registration §2: provisioned by the server, the one algorithm its ID tokens are signed with.
    id_token_signed_response_alg: ID_TOKEN_ALG,
  };
}

function callerOf(request: FastifyRequest): Caller {
  const header = request.headers.authorization;
  const bearer = header === undefined ? null : parseBearer(header);
  // A malformed or non-Bearer header is a token that is not valid, never "no token".
  const token = bearer === null ? (header === undefined ? undefined : '') : bearer === 'malformed' ? '' : bearer.token;
  return { ip: request.ip, bearer: token };
}

/** RFC 6750 §3: the challenge; an error code only when a token was sent. */
function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = toOAuthError(error);
  logError(request, err);
  if (err instanceof RegistrationTokenError) {
    return sendProtocolError(reply, err, { 'www-authenticate': err.tokenSent ? 'Bearer error="invalid_token"' : 'Bearer' });
  }
  return sendProtocolError(reply, err);
}

interface Params {
  client_id: string;
}

export const clientRegistrationRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'clientRegistration'> }> = async (app, { services }) => {
  const { config, clientRegistration } = services;
  app.setErrorHandler(errorHandler);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.bodyLimitBytes }, app.getDefaultJsonParser('error', 'error'));
  app.addHook('onSend', async (_request, reply) => {
    // Answers carry registration access tokens and secrets.
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  });

  app.post(
    REGISTRATION_ENDPOINT_PATH,
    {
      attachValidation: true,
      config: { cors: 'public' },
      schema: {
        tags: [TAG],
        summary: 'Dynamic client registration (RFC 7591)',
        description:
          'DYNAMIC_REGISTRATION=open: anyone may register a public client; token: an initial access token (Authorization: Bearer) is required; off: 403. ' +
          'Registrations per address are limited (429 with Retry-After).',
        security: SECURITY.registration,
        consumes: ['application/json'],
        body: metadataBody,
        response: { 201: registrationResponse, ...errorResponses(400, 401, 403, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const { client, clientSecret, registrationAccessToken } = await clientRegistration.register(request.body, callerOf(request));
      return reply
        .code(201)
        .header('location', registrationClientUri(config, client.clientId))
        .send(toResponse(config, client, registrationAccessToken, clientSecret));
    },
  );

  const configuration = (summary: string, extra: Record<string, unknown> = {}) => ({
    tags: [TAG],
    summary,
    security: SECURITY.registrationAccessToken,
    params: clientIdParams,
    ...extra,
  });

  app.get<{ Params: Params }>(
    `${REGISTRATION_ENDPOINT_PATH}/:client_id`,
    { schema: configuration('Read a client’s registration (RFC 7592 §2.1)', { response: { 200: registrationResponse, ...errorResponses(401, 503) } }) },
    async (request) => {
      const caller = callerOf(request);
      const client = await clientRegistration.read(request.params.client_id, caller);
      return toResponse(config, client, caller.bearer!);
    },
  );

  app.put<{ Params: Params }>(
    `${REGISTRATION_ENDPOINT_PATH}/:client_id`,
    {
      attachValidation: true,
      schema: configuration('Replace a client’s metadata (RFC 7592 §2.2)', {
        description: 'The body is the whole metadata, with client_id; omitted fields take their defaults. Same rules as registration.',
        consumes: ['application/json'],
        body: metadataBody,
        response: { 200: registrationResponse, ...errorResponses(400, 401, 413, 415, 503) },
      }),
    },
    async (request) => {
      const caller = callerOf(request);
      const { client, clientSecret } = await clientRegistration.update(request.params.client_id, request.body, caller);
      return toResponse(config, client, caller.bearer!, clientSecret);
    },
  );

  app.delete<{ Params: Params }>(
    `${REGISTRATION_ENDPOINT_PATH}/:client_id`,
    { schema: configuration('Delete a client (RFC 7592 §2.3); its tokens end with it', { response: { 204: { type: 'null' }, ...errorResponses(401, 503) } }) },
    async (request, reply) => {
      await clientRegistration.delete(request.params.client_id, callerOf(request));
      return reply.code(204).send();
    },
  );
};
