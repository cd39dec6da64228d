/**
 * The endpoints where a client authenticates with a form post: the token
 * endpoint (RFC 6749 §3.2) as a list of named checks, then one handler per
 * `grant_type` (`grants/`); revocation (RFC 7009), introspection
 * (RFC 7662) and device authorization (RFC 8628 §3.1), which share its form
 * and client-authentication checks.
 * Transport-neutral: the HTTP scope passes the header values and the parsed
 * form.
 */
import type { ClientService } from '../clients/service.js';
import { invalidRequest, invalidTarget, OAuthError, unauthorizedClient, unsupportedGrantType } from '../errors.js';
import type { Client } from '../storage/types.js';
import { invalidDpopProof, type DpopVerifier } from '../tokens/dpop.js';
import type { IntrospectionResponse, TokenResponse, TokenService } from '../tokens/types.js';
import { CLIENT_AUTHENTICATION_PARAMETERS, type ClientAuthenticator } from './client-auth.js';
import type { DeviceAuthorizationResponse, DeviceFlow } from './device-authorization.js';
import { DEVICE_AUTHORIZATION_PATH } from './metadata.js';
import { GRANT_PARAMETERS } from './grants/index.js';
import type { GrantHandler, GrantHandlers } from './grants/types.js';
import { DEVICE_CODE_GRANT, type TokenGrantType } from './protocol.js';

/** A parsed `application/x-www-form-urlencoded` body: each value a string, or a list when repeated. */
export type RawForm = Readonly<Record<string, string | readonly string[]>>;
export type FormParams = Readonly<Record<string, string | undefined>>;

export interface EndpointRequest {
  /** The Content-Type header as sent. */
  contentType: string | undefined;
  /** The parsed form, or undefined when there was no form body. */
  form: RawForm | undefined;
  authorization: string | undefined;
  /** The DPoP header(s) as received (RFC 9449 §4.1); only the token endpoint reads it. */
  dpop?: string | string[] | undefined;
  ip: string;
}

const FORM = 'application/x-www-form-urlencoded';

/** RFC 6749 §3.2: parameters are sent form-encoded (not JSON, not multipart), in the body of a POST. */
export function checkFormEncoded(contentType: string | undefined): void {
  const mediaType = contentType?.split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType !== FORM) throw invalidRequest(`The request body must be ${FORM} (RFC 6749 §3.2).`);
}

/** The parameters each endpoint reads; others are ignored, however often sent (RFC 6749 §3.2). */
const TOKEN_PARAMETERS: ReadonlySet<string> = new Set([
  'grant_type',
  'scope',
  'resource',
  ...CLIENT_AUTHENTICATION_PARAMETERS,
  ...Object.values(GRANT_PARAMETERS).flatMap((parameters) => Object.keys(parameters)),
]);
const TOKEN_MANAGEMENT_PARAMETERS: ReadonlySet<string> = new Set(['token', 'token_type_hint', ...CLIENT_AUTHENTICATION_PARAMETERS]);
const DEVICE_AUTHORIZATION_PARAMETERS: ReadonlySet<string> = new Set(['scope', 'resource', ...CLIENT_AUTHENTICATION_PARAMETERS]);

/**
 * RFC 6749 §3.1: a parameter of the endpoint (`known`) sent more than once
 * is `invalid_request`; an unrecognised one is ignored (§3.2), repeated or
 * not; one sent without a value is treated as omitted. `resource` may
 * repeat (RFC 8707 §2), and so may `audience` (RFC 8693 §2.1), but an
 * access token of this server has one audience, so a token request names
 * one resource: more are `invalid_target`.
 */
export function singleValued(form: RawForm | undefined, known: ReadonlySet<string>): FormParams {
  const params: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
  for (const [name, value] of Object.entries(form ?? {})) {
    if (typeof value !== 'string') {
      // RFC 8693 §2.1 `audience` names a target like `resource`: the same single audience.
      if (name === 'resource' || name === 'audience') {
        throw invalidTarget('Name one resource per token request: an access token has a single audience. Ask again for each other resource the grant covers.');
      }
      if (!known.has(name)) continue;
      throw invalidRequest(`Parameter "${name}" was sent more than once (RFC 6749 §3.1).`);
    }
    if (value !== '') params[name] = value;
  }
  return params;
}

/** Reads the form of a token, revocation, introspection or device authorization request (the first two checks of each). */
export function readForm(request: EndpointRequest, known: ReadonlySet<string>): FormParams {
  checkFormEncoded(request.contentType);
  return singleValued(request.form, known);
}

interface TokenRequestState {
  readonly request: EndpointRequest;
  params: FormParams;
  grantType: TokenGrantType;
  handler: GrantHandler;
  client: Client;
  /** The key of the verified DPoP proof, or null without one. */
  dpopJkt: string | null;
}

export interface TokenEndpointDeps {
  clientAuth: Pick<ClientAuthenticator, 'authenticate'>;
  grants: GrantHandlers;
  tokens: Pick<TokenService, 'revoke' | 'introspect'>;
  /** Told when a token was issued to a client (its last use, at most one write a day). */
  clients?: Pick<ClientService, 'recordUse'>;
  /** A failure to record that use: the tokens were issued and are answered all the same. */
  onError?: (err: unknown) => void;
  /** DPoP (RFC 9449): the proof verifier and the token endpoint's URL (the proofs' `htu`). */
  dpop: { verifier: Pick<DpopVerifier, 'verify'>; tokenEndpoint: string };
  /** The device authorization grant (RFC 8628). */
  devices?: Pick<DeviceFlow, 'authorize'>;
}

type Check = (state: TokenRequestState, deps: Pick<TokenEndpointDeps, 'clientAuth' | 'grants' | 'dpop'>) => void | Promise<void>;

/** Run in order; each either passes (possibly filling in the state) or throws the RFC 6749 §5.2 error. */
export const tokenChecks: ReadonlyArray<readonly [name: string, check: Check]> = [
  [
    'form-encoded body, each parameter once',
    (state) => {
      state.params = readForm(state.request, TOKEN_PARAMETERS);
    },
  ],
  [
    'grant_type is present and supported',
    (state, { grants }) => {
      const grantType = state.params.grant_type;
      if (grantType === undefined) throw invalidRequest('grant_type is required.');
      const handler = Object.hasOwn(grants, grantType) ? grants[grantType as TokenGrantType] : undefined;
      if (!handler) throw unsupportedGrantType(`Unsupported grant_type "${grantType.slice(0, 100)}".`);
      state.grantType = grantType as TokenGrantType;
      state.handler = handler;
    },
  ],
  [
    'client authenticated with exactly one method, its registered one',
    async (state, { clientAuth }) => {
      state.client = await clientAuth.authenticate(state.request.authorization, state.params, state.request.ip, '/token');
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
  [
    'DPoP proof valid when sent, and sent when the client registered dpop_bound_access_tokens',
    async (state, { dpop }) => {
      // RFC 9449 §5: for every grant alike; the grant binds what it issues to this key (GrantRequest.dpopJkt).
      state.dpopJkt = null;
      if (state.request.dpop === undefined) {
        // §5.2: such a client never gets a bearer token.
        if (state.client.dpopBoundAccessTokens) throw invalidDpopProof('This client must send a DPoP proof with every token request (dpop_bound_access_tokens).');
        return;
      }
      state.dpopJkt = (await dpop.verifier.verify(state.request.dpop, { method: 'POST', url: dpop.tokenEndpoint })).jkt;
    },
  ],
];

export interface TokenResult {
  grantType: TokenGrantType;
  response: TokenResponse;
}

export interface TokenEndpoints {
  /** `POST /token`: runs `tokenChecks`, then the grant's handler. Throws `OAuthError`. */
  token(request: EndpointRequest): Promise<TokenResult>;
  /**
   * `POST /revoke` (RFC 7009): a confidential client, or a public one
   * identified by `client_id` (§5: it can then revoke only its own tokens).
   */
  revoke(request: EndpointRequest): Promise<void>;
  /** `POST /introspect` (RFC 7662): only an authenticated (confidential) client may ask (§2.1). */
  introspect(request: EndpointRequest): Promise<IntrospectionResponse>;
  /**
   * `POST /device_authorization` (RFC 8628 §3.1): the client authenticates as
   * at the token endpoint (§3.1: "as described in Section 3.2.1 of RFC 6749")
   * and must be registered for the device code grant.
   */
  deviceAuthorization(request: EndpointRequest): Promise<DeviceAuthorizationResponse>;
}

export function createTokenEndpoints(deps: TokenEndpointDeps): TokenEndpoints {
  const { clientAuth, tokens } = deps;

  /** The form and client of a revocation or introspection request, and its required `token`. */
  async function tokenRequest(request: EndpointRequest, options: { allowPublic: boolean; rfc: string; path: string }) {
    const params = readForm(request, TOKEN_MANAGEMENT_PARAMETERS);
    const client = await clientAuth.authenticate(request.authorization, params, request.ip, options.path);
    if (!options.allowPublic && client.tokenEndpointAuthMethod === 'none') {
      throw new OAuthError('invalid_client', 'Introspection needs an authenticated (confidential) client.');
    }
    if (params.token === undefined) throw new OAuthError('invalid_request', `token is required (${options.rfc} §2.1).`);
    return { client, token: params.token, hint: params.token_type_hint };
  }

  return {
    async token(request) {
      const state = { request } as TokenRequestState;
      for (const [, check] of tokenChecks) {
        // Most checks are synchronous: awaited only when one returns a promise.
        const pending = check(state, deps);
        if (pending !== undefined) await pending;
      }
      const response = await state.handler({ client: state.client, params: state.params, ip: state.request.ip, dpopJkt: state.dpopJkt });
      // A grant that dropped the verified proof would hand out a bearer token the client believes is bound.
      if (state.dpopJkt !== null && response.token_type !== 'DPoP') throw new Error(`the ${state.grantType} grant ignored the DPoP proof`);
      await deps.clients?.recordUse(state.client).catch((err: unknown) => deps.onError?.(err));
      return { grantType: state.grantType, response };
    },
    async revoke(request) {
      const { client, token, hint } = await tokenRequest(request, { allowPublic: true, rfc: 'RFC 7009', path: '/revoke' });
      await tokens.revoke(token, hint, client);
    },
    async introspect(request) {
      const { client, token, hint } = await tokenRequest(request, { allowPublic: false, rfc: 'RFC 7662', path: '/introspect' });
      return tokens.introspect(token, hint, client);
    },
    async deviceAuthorization(request) {
      const params = readForm(request, DEVICE_AUTHORIZATION_PARAMETERS);
      // A client assertion may name this endpoint's URL as its audience (RFC 7523 §3).
      const client = await clientAuth.authenticate(request.authorization, params, request.ip, DEVICE_AUTHORIZATION_PATH);
      // RFC 8628 §3.2 → RFC 6749 §5.2 unauthorized_client.
      if (!client.grantTypes.includes(DEVICE_CODE_GRANT)) throw unauthorizedClient(`This client is not registered for the ${DEVICE_CODE_GRANT} grant.`);
      if (!deps.devices) throw new OAuthError('server_error', 'The device authorization grant is not available.');
      return deps.devices.authorize(client, params);
    },
  };
}
