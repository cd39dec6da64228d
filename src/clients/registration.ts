/**
 * Dynamic client registration (RFC 7591) and the client configuration
 * endpoint (RFC 7592), transport-neutral: the HTTP scope hands over the
 * caller's address, the bearer token it sent and the JSON body.
 *
 * - `DYNAMIC_REGISTRATION=off`: registration is refused (403); clients
 *   registered earlier can still read, update and delete themselves.
 * - `open`: anyone may register a public client; `token`: an initial access
 *   token an admin created is required (RFC 7591 §3; 401 without a usable
 *   one), and a confidential client may be registered.
 * - Every registration attempt counts against the caller's address
 *   (`DYNAMIC_REGISTRATION_LIMIT` per `DYNAMIC_REGISTRATION_WINDOW`, in the
 *   shared throttle store, before anything else is checked): 429 with
 *   `Retry-After` beyond it.
 * - What may be registered is `validateDynamicClientMetadata`'s rule.
 *   Unknown fields of the body are ignored (RFC 7591 §2); known ones of the
 *   wrong type are `invalid_client_metadata` / `invalid_redirect_uri`.
 * - RFC 7592: the registration access token is compared in constant time
 *   against its stored hash; a wrong one, or a client that does not exist or
 *   was not registered here, is 401 alike (§2.1: no telling which).
 */
import { ANONYMOUS_ACTOR, type ChangeContext } from '../audit/events.js';
import type { Config } from '../config.js';
import { invalidClientMetadata, invalidRedirectUri, isOAuthError, OAuthError, tooManyRequests, type ClientMetadataField } from '../errors.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { Client } from '../storage/types.js';
import type { InitialAccessTokenService } from './initial-access-tokens.js';
import {
  MAX_REDIRECT_URI_LENGTH,
  MAX_REDIRECT_URIS,
  unsupportedResponseMetadata,
  validateDynamicClientMetadata,
  type ClientMetadataInput,
  type DynamicClientPolicy,
} from './metadata.js';
import { verifyClientSecret } from './secret.js';
import type { ClientService, DynamicallyRegisteredClient, RegisteredClient } from './service.js';

/** A client metadata request as RFC 7591 §2 / RFC 7592 §2.2 send it, read field by field. */
export interface RegistrationRequest {
  metadata: ClientMetadataInput;
  /** RFC 7592 §2.2: an update names the client it updates. */
  clientId?: string;
  /** RFC 7592 §2.2: if sent, it must be the current secret. */
  clientSecret?: string;
}

const MAX_NAME_LENGTH = 200;
const MAX_SCOPE_LENGTH = 2_000;
const MAX_LIST = 10;

/**
 * Reads the fields this server uses from a JSON body; every other field is
 * ignored (RFC 7591 §2: "MUST ignore any client metadata … it does not
 * understand"). Throws `invalid_client_metadata` / `invalid_redirect_uri`.
 */
export function readRegistrationRequest(body: unknown): RegistrationRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new OAuthError('invalid_client_metadata', 'The body must be a JSON object of client metadata (RFC 7591 §2).');
  }
  const fields = body as Record<string, unknown>;
  const string = (name: ClientMetadataField | 'client_id' | 'client_secret', max: number): string | undefined => {
    const value = fields[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value.length > max) {
      throw name === 'client_id' || name === 'client_secret'
        ? new OAuthError('invalid_client_metadata', `${name} must be a string`)
        : invalidClientMetadata(name, `${name} must be a string of at most ${max} characters`);
    }
    return value;
  };
  const list = (name: 'redirect_uris' | 'post_logout_redirect_uris' | 'grant_types' | 'response_types', maxItems: number, maxLength: number): string[] | undefined => {
    const value = fields[name];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || value.length > maxItems || !value.every((v) => typeof v === 'string' && v.length <= maxLength)) {
      const message = `${name} must be a list of at most ${maxItems} strings`;
      throw name === 'redirect_uris' ? invalidRedirectUri(message) : invalidClientMetadata(name, message);
    }
    return value as string[];
  };
  const metadata: ClientMetadataInput = {};
  const name = string('client_name', MAX_NAME_LENGTH);
  if (name !== undefined) metadata.client_name = name;
  const redirectUris = list('redirect_uris', MAX_REDIRECT_URIS, MAX_REDIRECT_URI_LENGTH);
  if (redirectUris !== undefined) metadata.redirect_uris = redirectUris;
  const postLogoutRedirectUris = list('post_logout_redirect_uris', MAX_REDIRECT_URIS, MAX_REDIRECT_URI_LENGTH);
  if (postLogoutRedirectUris !== undefined) metadata.post_logout_redirect_uris = postLogoutRedirectUris;
  const grants = list('grant_types', MAX_LIST, 100);
  if (grants !== undefined) metadata.grant_types = grants;
  const responses = list('response_types', MAX_LIST, 100);
  if (responses !== undefined) metadata.response_types = responses;
  const method = string('token_endpoint_auth_method', 100);
  if (method !== undefined) metadata.token_endpoint_auth_method = method;
  const scope = string('scope', MAX_SCOPE_LENGTH);
  if (scope !== undefined) metadata.scope = scope;
  // RFC 9449 §5.2: a client may oblige itself to use DPoP.
  // OpenID Connect Back-Channel Logout 1.0 §2.2.
  const backchannelLogoutUri = string('backchannel_logout_uri', MAX_REDIRECT_URI_LENGTH);
  if (backchannelLogoutUri !== undefined) metadata.backchannel_logout_uri = backchannelLogoutUri;
  const sessionRequired = fields.backchannel_logout_session_required;
  if (sessionRequired !== undefined && sessionRequired !== null) {
    if (typeof sessionRequired !== 'boolean') throw new OAuthError('invalid_client_metadata', 'backchannel_logout_session_required must be true or false');
    metadata.backchannel_logout_session_required = sessionRequired;
  }
  const dpopBound = fields.dpop_bound_access_tokens;
  if (dpopBound !== undefined && dpopBound !== null) {
    if (typeof dpopBound !== 'boolean') throw new OAuthError('invalid_client_metadata', 'dpop_bound_access_tokens must be true or false');
    metadata.dpop_bound_access_tokens = dpopBound;
  }
  const unsupported = unsupportedResponseMetadata(fields);
  if (unsupported !== null) throw new OAuthError('invalid_client_metadata', unsupported);
  const request: RegistrationRequest = { metadata };
  const clientId = string('client_id', 1_000);
  if (clientId !== undefined) request.clientId = clientId;
  const clientSecret = string('client_secret', 1_000);
  if (clientSecret !== undefined) request.clientSecret = clientSecret;
  return request;
}

/** The caller of the registration or configuration endpoint. */
export interface Caller {
  ip: string;
  /** The bearer token sent (`Authorization: Bearer …`): an initial or a registration access token; undefined when none. */
  bearer: string | undefined;
}

export interface ClientRegistrationDeps {
  clients: Pick<ClientService, 'registerDynamic' | 'update' | 'delete' | 'verifyRegistrationAccessToken'>;
  initialAccessTokens: Pick<InitialAccessTokenService, 'use'>;
  /** Counts registrations per address (its limit and window are the registration ones). */
  throttle: Pick<Throttle, 'reserve'>;
  config: Pick<Config, 'dynamicRegistration' | 'scopes' | 'clientMetadataAllowPrivateNetworks'>;
}

export interface ClientRegistration {
  /** RFC 7591 §3: registers a client; the answer carries the registration access token. */
  register(body: unknown, caller: Caller): Promise<DynamicallyRegisteredClient>;
  /** RFC 7592 §2.1. */
  read(clientId: string, caller: Caller): Promise<Client>;
  /** RFC 7592 §2.2: replaces the client's metadata. */
  update(clientId: string, body: unknown, caller: Caller): Promise<RegisteredClient>;
  /** RFC 7592 §2.3: deletes the client; its tokens end with it. */
  delete(clientId: string, caller: Caller): Promise<void>;
}

/** 401 `invalid_token` (RFC 6750 §3.1), for a missing, unknown or unusable bearer token. */
export class RegistrationTokenError extends OAuthError {
  constructor(
    description: string,
    /** Whether a token was sent: RFC 6750 §3.1 names no error when none was. */
    readonly tokenSent: boolean,
  ) {
    super('invalid_token', description);
    this.name = 'RegistrationTokenError';
  }
}

export function createClientRegistration(deps: ClientRegistrationDeps): ClientRegistration {
  const { clients, config } = deps;
  const context = (caller: Caller): ChangeContext => ({ actor: ANONYMOUS_ACTOR, ip: caller.ip });

  /** RFC 7592 §2.1: the client the registration access token belongs to, else 401. */
  const authenticate = async (clientId: string, caller: Caller): Promise<Client> => {
    if (caller.bearer === undefined) throw new RegistrationTokenError('The registration access token is required (Authorization: Bearer …).', false);
    const client = await clients.verifyRegistrationAccessToken(clientId, caller.bearer);
    if (!client) throw new RegistrationTokenError('The registration access token is not valid for this client.', true);
    return client;
  };

  return {
    async register(body, caller) {
      if (config.dynamicRegistration === 'off') {
        throw new OAuthError('access_denied', 'Dynamic client registration is turned off on this server (DYNAMIC_REGISTRATION=off); ask an administrator to register the client.');
      }
      try {
        await deps.throttle.reserve(throttleKeys.clientRegistration(caller.ip));
      } catch (err) {
        if (isOAuthError(err) && err.error === 'too_many_requests') {
          throw tooManyRequests(err.retryAfter ?? 1, `Too many client registrations from this address; try again in ${err.retryAfter ?? 1} seconds.`);
        }
        throw err;
      }
      const tokenRequired = config.dynamicRegistration === 'token';
      if (tokenRequired && caller.bearer === undefined) {
        throw new RegistrationTokenError('An initial access token is required to register a client here (Authorization: Bearer …).', false);
      }
      const request = readRegistrationRequest(body);
      const policy: DynamicClientPolicy = { allowConfidential: tokenRequired, allowPrivateNetworks: config.clientMetadataAllowPrivateNetworks };
      // Refused metadata does not use up a registration the token allows: checked first.
      validateDynamicClientMetadata(request.metadata, config.scopes, policy);
      if (tokenRequired && !(await deps.initialAccessTokens.use(caller.bearer!))) {
        throw new RegistrationTokenError('The initial access token is not valid (unknown, revoked, expired or used up).', true);
      }
      return clients.registerDynamic(request.metadata, policy, context(caller));
    },
    read: authenticate,
    async update(clientId, body, caller) {
      const current = await authenticate(clientId, caller);
      const request = readRegistrationRequest(body);
      if (request.clientId !== clientId) throw new OAuthError('invalid_client_metadata', 'client_id must be sent, and be this client\'s (RFC 7592 §2.2).');
      if (request.clientSecret !== undefined && (current.clientSecretHash === null || !verifyClientSecret(request.clientSecret, current.clientSecretHash))) {
        throw new OAuthError('invalid_client_metadata', 'client_secret, when sent, must be the current one; a client cannot choose its secret (RFC 7592 §2.2).');
      }
      // A confidential client stays allowed to be one, whatever the registration mode is now.
      const policy: DynamicClientPolicy = {
        allowConfidential: config.dynamicRegistration === 'token' || current.tokenEndpointAuthMethod !== 'none',
        allowPrivateNetworks: config.clientMetadataAllowPrivateNetworks,
      };
      return clients.update(clientId, request.metadata, context(caller), policy);
    },
    async delete(clientId, caller) {
      await authenticate(clientId, caller);
      await clients.delete(clientId, context(caller));
    },
  };
}
