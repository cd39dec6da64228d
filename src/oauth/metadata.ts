/**
 * Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata
 * (OIDC Discovery §3): everything this server actually supports, no more.
 * Built once from the config; the HTTP scope serves the serialised result.
 */
import type { Config } from '../config.js';
import { DPOP_ALGORITHMS } from '../tokens/dpop.js';
import { ID_TOKEN_ALG } from '../tokens/keys.js';
import { ACR_VALUES_SUPPORTED } from './acr.js';
import { END_SESSION_PATH } from './end-session.js';
import {
  AUTH_METHOD_NAMES,
  CLIENT_ASSERTION_ALGS,
  CONFIDENTIAL_AUTH_METHODS,
  GRANT_TYPE_NAMES,
  KEY_AUTH_METHODS,
  PKCE_METHODS,
  RESPONSE_TYPE_NAMES,
  RESPONSE_TYPES,
} from './protocol.js';

/** The claims this server can put in ID tokens, UserInfo and access tokens. */
export const CLAIMS_SUPPORTED = [
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'auth_time',
  'nonce',
  'acr',
  'amr',
  'at_hash',
  'azp',
  'preferred_username',
  'name',
  'updated_at',
  'email',
  'email_verified',
] as const;

/**
 * Where RFC 7591 registration and the RFC 7592 client configuration
 * endpoints (`<path>/<client_id>`) live. Not `/register`, which is the
 * self-registration of people (SPEC).
 */
export const REGISTRATION_ENDPOINT_PATH = '/oauth/register';

/** The device authorization endpoint (RFC 8628 §3.1). */
export const DEVICE_AUTHORIZATION_PATH = '/device_authorization';

export function buildServerMetadata(
  config: Pick<Config, 'issuer' | 'scopes' | 'accessTokenAlg' | 'dynamicRegistration' | 'requirePushedAuthorizationRequests'>,
): Record<string, unknown> {
  const base = config.issuer;
  return {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks.json`,
    userinfo_endpoint: `${base}/userinfo`,
    // OpenID Connect RP-Initiated Logout 1.0 §2.1.
    end_session_endpoint: `${base}${END_SESSION_PATH}`,
    // OpenID Connect Back-Channel Logout 1.0 §2.1: logout tokens are posted, and carry sid (as ID tokens of a browser session do).
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    revocation_endpoint: `${base}/revoke`,
    introspection_endpoint: `${base}/introspect`,
    // RFC 8628 §4.
    device_authorization_endpoint: `${base}${DEVICE_AUTHORIZATION_PATH}`,
    // RFC 9126 §5.
    pushed_authorization_request_endpoint: `${base}/par`,
    require_pushed_authorization_requests: config.requirePushedAuthorizationRequests,
    // RFC 8414 §2: only when registration is possible.
    ...(config.dynamicRegistration === 'off' ? {} : { registration_endpoint: `${base}${REGISTRATION_ENDPOINT_PATH}` }),
    scopes_supported: [...config.scopes],
    response_types_supported: [...RESPONSE_TYPE_NAMES],
    response_modes_supported: [...new Set(RESPONSE_TYPE_NAMES.flatMap((r) => RESPONSE_TYPES[r].responseModes))],
    grant_types_supported: [...GRANT_TYPE_NAMES],
    // `none` must be among them for clients to choose a metadata document (below).
    token_endpoint_auth_methods_supported: [...AUTH_METHOD_NAMES],
    // RFC 7009 §2.1: public clients may revoke their own tokens by client_id.
    revocation_endpoint_auth_methods_supported: [...AUTH_METHOD_NAMES],
    // RFC 7662 §2.1: the caller must authenticate, so no "none".
    introspection_endpoint_auth_methods_supported: [...CONFIDENTIAL_AUTH_METHODS],
    // RFC 8414 §2: required when a method that signs a JWT (private_key_jwt) is listed; the same at every endpoint (one client-authentication path).
    ...(KEY_AUTH_METHODS.length === 0
      ? {}
      : {
          token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
          revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
          introspection_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
        }),
    code_challenge_methods_supported: [...PKCE_METHODS],
    // RFC 9449 §5.1: DPoP proofs are accepted at the token endpoint (and the resource routes) with these algorithms.
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [ID_TOKEN_ALG],
    // Not registered by RFC 8414/9068 (§2 allows extensions): tells resource
    // servers which algorithm to expect on RFC 9068 access tokens. Each JWK in
    // jwks_uri also carries its "alg".
    access_token_signing_alg_values_supported: [config.accessTokenAlg],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    // OIDC Discovery §3: the authentication context classes `acr_values` may ask for (oauth/acr.ts).
    acr_values_supported: [...ACR_VALUES_SUPPORTED],
    claims_supported: [...CLAIMS_SUPPORTED],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    // OIDC Discovery §3 defaults this one to true: say it is not supported. (It is
    // about request objects by reference; the request_uri of a pushed request,
    // RFC 9126, is announced by pushed_authorization_request_endpoint.)
    request_uri_parameter_supported: false,
    authorization_response_iss_parameter_supported: true,
    // draft-ietf-oauth-client-id-metadata-document: an https client_id names the client's metadata document.
    client_id_metadata_document_supported: true,
    service_documentation: `${base}/docs`,
  };
}
