/**
 * Validation of an authorization request (`GET /authorize`), as a list of
 * named checks in the order the RFCs require:
 *
 * 1. `client_id` and `redirect_uri` first. Until both are known to belong
 *    together, nothing may be sent to the redirect URI (RFC 6749 §4.1.2.1,
 *    RFC 9700 §4.1.1): these errors are shown to the user, never redirected.
 * 2. Everything else is answered at the redirect URI with `error`, `state`
 *    and `iss` (RFC 6749 §4.1.2.1, RFC 9207).
 *
 * Pure apart from the client lookup it is given, so it is tested without an app.
 */
import { OAuthError, invalidRequest, unauthorizedClient, unsupportedResponseType } from '../errors.js';
import type { Client } from '../storage/types.js';
import type { ResponseType } from './protocol.js';
import { isS256Challenge } from './pkce.js';
import { matchRedirectUri, type ResponseMode } from './redirect-uri.js';
import { grantScopes, parseScopeParameter } from './scope.js';

/** OIDC Core §3.1.2.1 `prompt` values we understand. */
export type PromptValue = 'none' | 'login' | 'consent' | 'select_account';

/** A validated authorization request. */
export interface AuthorizationRequest {
  clientId: string;
  /** The redirect URI in use (the sent one, or the only registered one). */
  redirectUri: string;
  /** Whether `redirect_uri` was sent; then the token request must repeat it (RFC 6749 §4.1.3). */
  redirectUriSent: boolean;
  responseType: ResponseType;
  responseMode: ResponseMode;
  /** Granted scopes: requested ∩ registered, or all registered when none were requested. */
  scopes: string[];
  state: string | undefined;
  nonce: string | undefined;
  /** S256 challenge; always present for `code`. */
  codeChallenge: string | undefined;
  prompt: PromptValue[];
  /** Seconds (OIDC Core §3.1.2.1); undefined when not sent. */
  maxAge: number | undefined;
  loginHint: string | undefined;
}

/** Where an error may be sent once client and redirect URI are known to belong together. */
export interface RedirectTarget {
  redirectUri: string;
  responseMode: ResponseMode;
  state: string | undefined;
}

export type AuthorizationRequestResult =
  | { ok: true; client: Client; request: AuthorizationRequest }
  /** `target` null: show the error page; never redirect. */
  | { ok: false; error: OAuthError; target: RedirectTarget | null; client: Client | null };

/** Raw query: Fastify gives an array for a repeated parameter. */
export type AuthorizeQuery = Readonly<Record<string, string | string[] | undefined>>;

/** The parameters this endpoint understands; a repeat of any of them is refused (RFC 6749 §3.1). Others are ignored. */
const KNOWN = [
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'max_age',
  'login_hint',
  'request',
  'request_uri',
  'registration',
] as const;

const MAX_NONCE_LENGTH = 512;
const MAX_LOGIN_HINT_LENGTH = 256;
/** Bounded so a client cannot park large values in the code store. */
const MAX_STATE_LENGTH = 4096;
/** OIDC max_age is seconds; a year is plenty and keeps arithmetic exact. */
const MAX_MAX_AGE = 31_536_000;

const PROMPTS: readonly PromptValue[] = ['none', 'login', 'consent', 'select_account'];

function single(query: AuthorizeQuery, name: string): string | undefined | 'repeated' {
  const value = query[name];
  if (Array.isArray(value)) return value.length === 1 ? value[0] : 'repeated';
  return value;
}

function parsePrompt(raw: string | undefined): PromptValue[] {
  if (raw === undefined) return [];
  const values = raw.split(' ').filter(Boolean);
  for (const v of values) if (!(PROMPTS as readonly string[]).includes(v)) throw invalidRequest(`prompt value "${v.slice(0, 40)}" is not supported.`);
  const set = [...new Set(values)] as PromptValue[];
  // OIDC Core §3.1.2.1: "none" must not be combined with any other value.
  if (set.includes('none') && set.length > 1) throw invalidRequest('prompt=none cannot be combined with other prompt values.');
  return set;
}

function parseMaxAge(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) > MAX_MAX_AGE) throw invalidRequest('max_age must be a whole number of seconds.');
  return Number(raw);
}

/**
 * Validates an authorization request. Never throws for bad input: the result
 * says whether to proceed, redirect an error, or show the error page.
 */
export async function parseAuthorizationRequest(
  query: AuthorizeQuery,
  deps: { findClient: (clientId: string) => Promise<Client | null>; knownScopes: readonly string[] },
): Promise<AuthorizationRequestResult> {
  // 1. client_id (RFC 6749 §4.1.2.1: never redirect to an unverified URI).
  const clientId = single(query, 'client_id');
  if (clientId === undefined || clientId === '') return page(invalidRequest('The request has no client_id.'));
  if (clientId === 'repeated') return page(invalidRequest('client_id must not be repeated.'));
  // Client ids are short; anything longer cannot be registered (and is not worth a lookup).
  const client = clientId.length <= 200 ? await deps.findClient(clientId) : null;
  if (!client) return page(new OAuthError('invalid_client', 'The application that sent you here is not registered.', { status: 400 }));

  // 2. redirect_uri: exact match (RFC 9700 §4.1.3).
  const sent = single(query, 'redirect_uri');
  if (sent === 'repeated') return page(invalidRequest('redirect_uri must not be repeated.'), client);
  const redirectUri = matchRedirectUri(client.redirectUris, sent);
  if (redirectUri === null) {
    return page(
      invalidRequest(
        sent === undefined
          ? 'The request has no redirect_uri, and the application has more than one registered.'
          : 'The redirect_uri does not match any URI registered for this application.',
      ),
      client,
    );
  }

  // From here on errors go back to the client, in the response mode of the
  // request: the query for `code`, the fragment for `token` (so a `token`
  // request gets its error in the fragment), unless `response_mode` asks for
  // the fragment (OAuth 2.0 Multiple Response Type Encoding Practices §2.1;
  // never the query for tokens, §3.0).
  const rawResponseType = single(query, 'response_type');
  const rawResponseMode = single(query, 'response_mode');
  const defaultMode: ResponseMode = rawResponseType === 'token' ? 'fragment' : 'query';
  const responseMode: ResponseMode = rawResponseMode === 'fragment' ? 'fragment' : defaultMode;
  const rawState = single(query, 'state');
  const state = rawState === 'repeated' || (rawState !== undefined && rawState.length > MAX_STATE_LENGTH) ? undefined : rawState;
  const target: RedirectTarget = { redirectUri, responseMode, state };
  const fail = (error: OAuthError): AuthorizationRequestResult => ({ ok: false, error, target, client });

  try {
    // RFC 6749 §3.1: parameters must not be included more than once.
    const repeated = KNOWN.filter((name) => single(query, name) === 'repeated');
    if (repeated.length > 0) throw invalidRequest(`Parameter ${repeated[0]} must not be repeated.`);
    const get = (name: (typeof KNOWN)[number]) => single(query, name) as string | undefined;

    if (rawState !== undefined && state === undefined) throw invalidRequest(`state must be at most ${MAX_STATE_LENGTH} characters.`);
    // OIDC Core §6: request objects are not supported.
    if (get('request') !== undefined) throw new OAuthError('request_not_supported', 'Request objects are not supported.');
    if (get('request_uri') !== undefined) throw new OAuthError('request_uri_not_supported', 'request_uri is not supported.');
    if (get('registration') !== undefined) throw new OAuthError('registration_not_supported', 'The registration parameter is not supported.');

    // response_type (RFC 6749 §3.1.1, §4.1.2.1).
    const responseType = get('response_type');
    if (responseType === undefined || responseType === '') throw invalidRequest('response_type is required.');
    if (responseType !== 'code' && responseType !== 'token') {
      throw unsupportedResponseType(`response_type "${responseType.slice(0, 40)}" is not supported; use code (or token for legacy clients).`);
    }
    if (!client.responseTypes.includes(responseType)) {
      throw unauthorizedClient(`This client is not registered for response_type ${responseType}.`);
    }
    if (rawResponseMode !== undefined && rawResponseMode !== 'query' && rawResponseMode !== 'fragment') {
      throw invalidRequest(`response_mode "${rawResponseMode.slice(0, 40)}" is not supported; use query or fragment.`);
    }
    if (responseType === 'token' && rawResponseMode === 'query') throw invalidRequest('response_mode=query is not allowed for response_type=token.');

    // As at the token endpoint: requested ∩ registered, all registered when absent (RFC 6749 §3.3).
    const scopes = grantScopes(parseScopeParameter(get('scope')), client.scope.split(' ').filter(Boolean), deps.knownScopes);
    const openid = scopes.includes('openid');
    // OIDC Core §3.1.2.1: redirect_uri is required for OpenID requests. It is
    // safe to answer at the only registered URI.
    if (openid && sent === undefined) throw invalidRequest('redirect_uri is required when scope includes openid.');

    const nonce = get('nonce');
    if (nonce !== undefined && (nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH)) {
      throw invalidRequest(`nonce must be 1 to ${MAX_NONCE_LENGTH} characters.`);
    }
    // OIDC Core §3.2.2.1: the implicit flow requires a nonce.
    if (responseType === 'token' && openid && nonce === undefined) throw invalidRequest('nonce is required for response_type=token with scope openid.');

    // PKCE (RFC 7636 §4.3, RFC 9700 §2.1.1): S256, required for every code request.
    let codeChallenge: string | undefined;
    if (responseType === 'code') {
      const challenge = get('code_challenge');
      const method = get('code_challenge_method');
      if (challenge === undefined) throw invalidRequest('code_challenge is required (PKCE with S256).');
      // RFC 7636 §4.3: a missing method means "plain", which is refused.
      if (method !== 'S256') throw invalidRequest('code_challenge_method must be S256; plain is not allowed.');
      if (!isS256Challenge(challenge)) throw invalidRequest('code_challenge must be the 43-character base64url SHA-256 of the code verifier.');
      codeChallenge = challenge;
    }

    const prompt = parsePrompt(get('prompt'));
    const maxAge = parseMaxAge(get('max_age'));
    const loginHint = get('login_hint');

    return {
      ok: true,
      client,
      request: {
        clientId: client.clientId,
        redirectUri,
        redirectUriSent: sent !== undefined,
        responseType,
        responseMode,
        scopes,
        state,
        nonce,
        codeChallenge,
        prompt,
        maxAge,
        loginHint: loginHint === undefined || loginHint.length > MAX_LOGIN_HINT_LENGTH ? undefined : loginHint,
      },
    };
  } catch (err) {
    if (err instanceof OAuthError) return fail(err);
    throw err;
  }
}

function page(error: OAuthError, client: Client | null = null): AuthorizationRequestResult {
  return { ok: false, error, target: null, client };
}
