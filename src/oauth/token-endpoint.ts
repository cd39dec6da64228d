/**
 * The token endpoint (RFC 6749 §3.2) as a list of named checks, then one
 * handler per `grant_type` (`grants/`). Also the form checks shared with the
 * revocation and introspection endpoints. Transport-neutral: the HTTP scope
 * passes the header values and the parsed form.
 */
import { invalidRequest, OAuthError, unauthorizedClient, unsupportedGrantType } from '../errors.js';
import type { Services } from '../services.js';
import type { Client } from '../storage/types.js';
import type { TokenResponse } from '../tokens/types.js';
import { grantHandlers as defaultHandlers } from './grants/index.js';
import type { GrantHandler, GrantHandlers } from './grants/types.js';
import type { TokenGrantType } from './protocol.js';

/** A parsed `application/x-www-form-urlencoded` body: each value a string, or a list when repeated. */
export type RawForm = Readonly<Record<string, string | readonly string[]>>;
export type FormParams = Readonly<Record<string, string | undefined>>;

export interface EndpointRequest {
  /** The Content-Type header as sent. */
  contentType: string | undefined;
  /** The parsed form, or undefined when there was no form body. */
  form: RawForm | undefined;
  authorization: string | undefined;
  ip: string;
}

const FORM = 'application/x-www-form-urlencoded';

/** RFC 6749 §3.2: parameters are sent form-encoded (not JSON, not multipart), in the body of a POST. */
export function checkFormEncoded(contentType: string | undefined): void {
  const mediaType = contentType?.split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType !== FORM) throw invalidRequest(`The request body must be ${FORM} (RFC 6749 §3.2).`);
}

/**
 * RFC 6749 §3.1: a parameter sent more than once is `invalid_request`; one
 * sent without a value is treated as omitted.
 */
export function singleValued(form: RawForm | undefined): FormParams {
  const params: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
  for (const [name, value] of Object.entries(form ?? {})) {
    if (typeof value !== 'string') throw invalidRequest(`Parameter "${name.slice(0, 64)}" was sent more than once (RFC 6749 §3.1).`);
    if (value !== '') params[name] = value;
  }
  return params;
}

/** Reads the form of a token, revocation or introspection request (the first two checks of each). */
export function readForm(request: EndpointRequest): FormParams {
  checkFormEncoded(request.contentType);
  return singleValued(request.form);
}

interface TokenRequestState {
  readonly request: EndpointRequest;
  params: FormParams;
  grantType: TokenGrantType;
  handler: GrantHandler;
  client: Client;
}

type Check = (state: TokenRequestState, services: Services, handlers: GrantHandlers) => void | Promise<void>;

/** Run in order; each either passes (possibly filling in the state) or throws the RFC 6749 §5.2 error. */
export const tokenChecks: ReadonlyArray<readonly [name: string, check: Check]> = [
  [
    'form-encoded body, each parameter once',
    (state) => {
      state.params = readForm(state.request);
    },
  ],
  [
    'grant_type is present and supported',
    (state, _services, handlers) => {
      const grantType = state.params.grant_type;
      if (grantType === undefined) throw invalidRequest('grant_type is required.');
      const handler = Object.hasOwn(handlers, grantType) ? handlers[grantType as TokenGrantType] : undefined;
      if (!handler) throw unsupportedGrantType(`Unsupported grant_type "${grantType.slice(0, 100)}".`);
      state.grantType = grantType as TokenGrantType;
      state.handler = handler;
    },
  ],
  [
    'client authenticated with exactly one method, its registered one',
    async (state, services) => {
      state.client = await services.clientAuth.authenticate(state.request.authorization, state.params, state.request.ip);
    },
  ],
  [
    'client registered for the grant',
    (state) => {
      // RFC 6749 §5.2 unauthorized_client; RFC 7591 §2 grant_types.
      if (!state.client.grantTypes.includes(state.grantType)) {
        throw unauthorizedClient(`This client is not registered for the ${state.grantType} grant.`);
      }
    },
  ],
];

export interface TokenResult {
  grantType: TokenGrantType;
  response: TokenResponse;
}

/** Runs the checks, then the grant's handler. Throws `OAuthError`. */
export async function handleTokenRequest(request: EndpointRequest, services: Services, handlers: GrantHandlers = defaultHandlers): Promise<TokenResult> {
  const state = { request } as TokenRequestState;
  for (const [, check] of tokenChecks) await check(state, services, handlers);
  const response = await state.handler({ client: state.client, params: state.params, services, ip: state.request.ip });
  return { grantType: state.grantType, response };
}

/**
 * The client of a revocation or introspection request. Introspection needs
 * a confidential client (RFC 7662 §2.1: the caller must be authorized);
 * revocation also accepts a public client identified by `client_id`
 * (RFC 7009 §5: it can then revoke only its own tokens).
 */
export async function authenticateEndpointClient(
  params: FormParams,
  request: EndpointRequest,
  services: Services,
  options: { allowPublic: boolean },
): Promise<Client> {
  const client = await services.clientAuth.authenticate(request.authorization, params, request.ip);
  if (!options.allowPublic && client.tokenEndpointAuthMethod === 'none') {
    throw new OAuthError('invalid_client', 'Introspection needs an authenticated (confidential) client.');
  }
  return client;
}
