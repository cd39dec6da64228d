/**
 * Pushed authorization requests (RFC 9126): a client sends its
 * authorization request to `POST /par` first, authenticated the way it
 * authenticates at the token endpoint (public clients by `client_id`), and
 * gets a `request_uri` to send the browser to `/authorize` with.
 *
 * - The pushed parameters are judged by the same named checks as
 *   `/authorize` (`validateAuthorizationRequest`); every error is answered
 *   to the client as JSON (§2.3), none at the redirect URI.
 * - The `request_uri` is `urn:ietf:params:oauth:request_uri:` and 256
 *   random bits, valid for 60 seconds (§2.2), kept in the TTL store under
 *   the hash of the client_id and the URI: only the client that pushed it
 *   can use it (§4), and `/authorize` takes it with an atomic get-and-delete
 *   (as authorization codes are taken), so of any number of uses on any
 *   number of instances exactly one gets the request (§4: one-time use).
 * - The expiry is also checked against the server's clock, not only the
 *   store's TTL, so every instance and the tests agree on it.
 * - The stored parameters never include client credentials.
 * - A DPoP proof sent with the push (RFC 9449 §10.1) is verified, and binds
 *   the code as `dpop_jkt` would (which, if also sent, must name its key).
 */
import { createHash, randomBytes } from 'node:crypto';
import { invalidRequest, OAuthError } from '../errors.js';
import type { KvStore } from '../storage/types.js';
import type { DpopVerifier } from '../tokens/dpop.js';
import { validateAuthorizationRequest, type AuthorizationRequestDeps, type AuthorizeQuery } from './authorize-request.js';
import { CLIENT_AUTHENTICATION_PARAMETERS, type ClientAuthenticator } from './client-auth.js';
import { checkFormEncoded, type EndpointRequest } from './token-endpoint.js';

export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';

/** RFC 9126 §2.2: short-lived; long enough to send the browser on its way. */
export const PUSHED_REQUEST_TTL_SECONDS = 60;

/** Used to authenticate the push; never stored with the request. */

/** One message for every reason a request_uri is refused, so a caller learns nothing about URIs it does not hold. */
const REFUSED = `This sign-in link has expired or was already used (request_uri is single-use and valid for ${PUSHED_REQUEST_TTL_SECONDS} seconds). Start again from the application.`;

/** RFC 9126 §2.2 success response (201). */
export interface PushedAuthorizationResponse {
  request_uri: string;
  expires_in: number;
}

/** The parameters `/authorize` works with: those sent, or the pushed ones when a `request_uri` was sent. */
export interface AuthorizationParameters {
  params: AuthorizeQuery;
  /** Whether they came from a pushed request (RFC 9126 §4). */
  pushed: boolean;
}

export interface PushedRequests {
  /**
   * `POST /par`: authenticates the client, validates the request as
   * `/authorize` would, stores it. Throws `OAuthError` (JSON to the client).
   */
  push(request: EndpointRequest): Promise<PushedAuthorizationResponse>;
  /**
   * The parameters of an authorization request at `/authorize`: as sent, or,
   * with `request_uri`, the ones the client pushed (taken: never again),
   * ignoring every other parameter but `client_id` (RFC 9126 §4). Throws
   * `OAuthError` when the `request_uri` is unknown, expired, used, or pushed
   * by another client: nothing is known then about where to send an error.
   */
  authorizationParameters(query: AuthorizeQuery): Promise<AuthorizationParameters>;
}

export interface PushedRequestDeps {
  clientAuth: Pick<ClientAuthenticator, 'authenticate'>;
  kv: KvStore;
  now: () => number;
  /** What the authorization request's checks need. */
  checks: AuthorizationRequestDeps;
  /** DPoP (RFC 9449 §10.1): the proof verifier and this endpoint's URL (the proofs' `htu`). */
  dpop: { verifier: Pick<DpopVerifier, 'verify'>; endpoint: string };
}

interface StoredRequest {
  params: Record<string, string | string[]>;
  /** Epoch ms, by the server's clock. */
  expiresAtMs: number;
}

/** The key of a pushed request: bound to the client that pushed it. */
function storeKey(clientId: string, requestUri: string): string {
  return `par:${createHash('sha256').update(JSON.stringify([clientId, requestUri])).digest('base64url')}`;
}

/** A parameter that must be sent at most once: undefined when absent; `invalid_request` when repeated. */
function once(form: AuthorizeQuery, name: string): string | undefined {
  const value = form[name];
  if (value === undefined || typeof value === 'string') return value === '' ? undefined : value;
  if (value.length === 1) return value[0];
  throw invalidRequest(`Parameter ${name} must not be repeated (RFC 6749 §3.1).`);
}

export function createPushedRequests(deps: PushedRequestDeps): PushedRequests {
  const { clientAuth, kv, now } = deps;

  return {
    async push(request) {
      checkFormEncoded(request.contentType);
      const form: AuthorizeQuery = request.form ?? {};
      const credentials: Record<string, string | undefined> = {};
      for (const name of CLIENT_AUTHENTICATION_PARAMETERS) credentials[name] = once(form, name);
      // RFC 9126 §2: the one client-authentication path of the token endpoint (a
      // private_key_jwt assertion may name this endpoint as its audience).
      const client = await clientAuth.authenticate(request.authorization, credentials, request.ip, '/par');

      // RFC 9126 §2.1: a pushed request cannot point at another one.
      if (form.request_uri !== undefined) throw invalidRequest('request_uri must not be sent to the pushed authorization request endpoint (RFC 9126 §2.1).');
      const params: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(form)) {
        if (value !== undefined && !(CLIENT_AUTHENTICATION_PARAMETERS as readonly string[]).includes(name)) params[name] = typeof value === 'string' ? value : [...value];
      }
      // With HTTP Basic the body need not name the client: the request is the authenticated client's.
      params.client_id = client.clientId;
      // RFC 9449 §10.1: a proof with the push binds the code to its key, as dpop_jkt does.
      if (request.dpop !== undefined) {
        const { jkt } = await deps.dpop.verifier.verify(request.dpop, { method: 'POST', url: deps.dpop.endpoint });
        if (params.dpop_jkt !== undefined && params.dpop_jkt !== jkt) throw invalidRequest('dpop_jkt must be the thumbprint of the key of the DPoP proof sent with it (RFC 9449 §10.1).');
        params.dpop_jkt = jkt;
      }

      const result = await validateAuthorizationRequest(params, deps.checks);
      if (!result.ok) throw result.error;

      const requestUri = `${REQUEST_URI_PREFIX}${randomBytes(32).toString('base64url')}`;
      const stored: StoredRequest = { params, expiresAtMs: now() + PUSHED_REQUEST_TTL_SECONDS * 1000 };
      await kv.set(storeKey(client.clientId, requestUri), JSON.stringify(stored), PUSHED_REQUEST_TTL_SECONDS);
      return { request_uri: requestUri, expires_in: PUSHED_REQUEST_TTL_SECONDS };
    },

    async authorizationParameters(query) {
      const requestUri = once(query, 'request_uri');
      if (requestUri === undefined) return { params: query, pushed: false };
      // RFC 9126 §4: client_id is sent with the request_uri, and must be the client that pushed it.
      const clientId = once(query, 'client_id');
      if (clientId === undefined) throw invalidRequest('The request has a request_uri but no client_id.');
      if (!requestUri.startsWith(REQUEST_URI_PREFIX) || requestUri.length > 200 || clientId.length > 200) {
        throw new OAuthError('invalid_request', 'The request_uri was not issued by this server (RFC 9126).');
      }
      const raw = await kv.take(storeKey(clientId, requestUri));
      if (raw === null) throw invalidRequest(REFUSED);
      const stored = JSON.parse(raw) as StoredRequest;
      if (stored.expiresAtMs <= now()) throw invalidRequest(REFUSED);
      return { params: stored.params, pushed: true };
    },
  };
}
