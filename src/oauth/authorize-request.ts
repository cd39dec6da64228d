/**
 * Validation of an authorization request, as a list of named checks in the
 * order the RFCs require:
 *
 * 1. `client_id` and `redirect_uri` first. Until both are known to belong
 *    together, nothing may be sent to the redirect URI (RFC 6749 §4.1.2.1,
 *    RFC 9700 §4.1.1): these errors are shown to the user, never redirected.
 * 2. Everything else may be answered at the redirect URI with `error`,
 *    `state` and `iss` (RFC 6749 §4.1.2.1, RFC 9207).
 *
 * The checks only judge; where an error goes is the caller's choice. `GET
 * /authorize` (`parseAuthorizationRequest`) redirects the errors whose check
 * allows it. A pushed authorization request (RFC 9126 §2.3) answers every
 * error as JSON (`validateAuthorizationRequest`), never at the redirect URI.
 *
 * Pure apart from the client lookup it is given, so it is tested without an app.
 */
import { OAuthError, UnavailableError, invalidRequest, invalidTarget, unauthorizedClient, unsupportedResponseType } from '../errors.js';
import type { Client } from '../storage/types.js';
import { looksLikeJwt } from '../tokens/jwt.js';
import { GRANT_TYPES, PKCE_METHODS, RESPONSE_TYPES, RESPONSE_TYPE_NAMES, isResponseType, type ResponseType } from './protocol.js';
import { isS256Challenge } from './pkce.js';
import { matchClientRedirectUri, type ResponseMode } from './redirect-uri.js';
import type { ResourceRegistry } from './resources.js';
import { OFFLINE_ACCESS_SCOPE, grantScopes, parseScopeParameter } from './scope.js';

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
  /**
   * The resources the grant covers (RFC 8707 §2), as configured, in the
   * order asked; the default resource when none was named. Never empty.
   */
  resources: string[];
  state: string | undefined;
  nonce: string | undefined;
  /** S256 challenge; always present for `code`. */
  codeChallenge: string | undefined;
  prompt: PromptValue[];
  /** Seconds (OIDC Core §3.1.2.1); undefined when not sent. */
  maxAge: number | undefined;
  loginHint: string | undefined;
  /** RFC 9449 §10: the thumbprint of the DPoP key the code must be redeemed with; undefined when not sent. */
  dpopJkt?: string | undefined;
  /** OIDC Core §3.1.2.1 `acr_values`, in the order sent (`oauth/acr.ts` reads them); empty when not sent. */
  acrValues: string[];
  /**
   * OIDC Core §3.1.2.1 `id_token_hint`: the `sub` of the ID token sent, the
   * user the client expects; null when the hint is not an ID token of this
   * server (it names no one who could be signed in); undefined when not sent.
   */
  idTokenHintSubject?: string | null | undefined;
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

/** Raw parameters (a query, or a form body): Fastify gives an array for a repeated parameter. */
export type AuthorizeQuery = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface AuthorizationRequestDeps {
  /** The registered client, or null when unknown. Throws only when the store fails (`UnavailableError`). */
  findClient: (clientId: string) => Promise<Client | null>;
  knownScopes: readonly string[];
  resources: Pick<ResourceRegistry, 'requested'>;
  /** The `sub` of `TokenService.idTokenHint`: whom an ID token this server issued names, or null. */
  idTokenHintSubject: (token: string) => Promise<string | null>;
}

/**
 * The parameters this endpoint understands; a repeat of any of them is
 * refused (RFC 6749 §3.1). Others are ignored, except `resource`, which may
 * repeat (RFC 8707 §2) and has a check of its own.
 */
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
  'dpop_jkt',
  'acr_values',
  'id_token_hint',
  'request',
  'request_uri',
  'registration',
] as const;

type KnownParameter = (typeof KNOWN)[number];

const MAX_NONCE_LENGTH = 512;
/** Also the bound of `/end-session`'s `logout_hint`. */
export const MAX_LOGIN_HINT_LENGTH = 256;
const MAX_ACR_VALUES_LENGTH = 512;
/** Bounded so a client cannot park large values in the code store; `/end-session` holds its `state` to it too. */
export const MAX_STATE_LENGTH = 4096;
/** OIDC max_age is seconds; a year is plenty and keeps arithmetic exact. */
const MAX_MAX_AGE = 31_536_000;

const PROMPTS: readonly PromptValue[] = ['none', 'login', 'consent', 'select_account'];

/** Every response mode some response type allows, in table order. */
const RESPONSE_MODES: readonly ResponseMode[] = [...new Set(RESPONSE_TYPE_NAMES.flatMap((r) => RESPONSE_TYPES[r].responseModes))];

/**
 * An unrecognised (missing, repeated, unsupported) `response_type` has no
 * response mode of its own: its error goes in the query, as RFC 6749
 * §4.1.2.1 sends `unsupported_response_type`, unless `response_mode` names
 * another supported mode.
 */
const UNRECOGNISED_RESPONSE_TYPE_MODE: ResponseMode = 'query';

/**
 * How each PKCE method's challenge must look. Keyed by the methods of the
 * protocol table, so a new method does not compile until its shape is known.
 */
const CHALLENGE_SHAPES: Record<(typeof PKCE_METHODS)[number], (challenge: string) => boolean> = {
  S256: isS256Challenge, // RFC 7636 §4.2
};

const isResponseMode = (value: string): value is ResponseMode => (RESPONSE_MODES as readonly string[]).includes(value);
const isPkceMethod = (value: string | undefined): value is (typeof PKCE_METHODS)[number] =>
  value !== undefined && (PKCE_METHODS as readonly string[]).includes(value);

/** A parameter sent more than once: a symbol, so no value a client sends can be mistaken for it. */
const REPEATED: unique symbol = Symbol('repeated');

/** A parameter's one value; RFC 6749 §3.1: one "sent without a value" is treated as omitted. */
function single(query: AuthorizeQuery, name: string): string | undefined | typeof REPEATED {
  const raw = query[name];
  const value = Array.isArray(raw) ? (raw.length === 1 ? (raw[0] as string) : REPEATED) : (raw as string | undefined);
  return value === '' ? undefined : value;
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
 * The response mode of a request, from its raw parameters: the requested
 * one when the response type allows it, else the type's default (OAuth 2.0
 * Multiple Response Type Encoding Practices §2.1; never the query for
 * tokens, ibid. §3.0). Read from the raw values because an error about
 * `response_type` or `response_mode` must itself go somewhere: a `token`
 * request gets its error in the fragment.
 */
function responseModeOf(responseType: string | undefined | typeof REPEATED, responseMode: string | undefined | typeof REPEATED): ResponseMode {
  const known = typeof responseType === 'string' && isResponseType(responseType) ? RESPONSE_TYPES[responseType] : undefined;
  const allowed: readonly ResponseMode[] = known?.responseModes ?? RESPONSE_MODES;
  const requested = allowed.find((mode) => mode === responseMode);
  return requested ?? known?.defaultResponseMode ?? UNRECOGNISED_RESPONSE_TYPE_MODE;
}

/**
 * Where a redirectable error goes. `state` is echoed unless it is ambiguous
 * (repeated) or oversized, which are themselves the errors then sent.
 */
function redirectTargetOf(params: AuthorizeQuery, redirectUri: string): RedirectTarget {
  const rawState = single(params, 'state');
  const state = rawState === REPEATED || (rawState !== undefined && rawState.length > MAX_STATE_LENGTH) ? undefined : rawState;
  return { redirectUri, responseMode: responseModeOf(single(params, 'response_type'), single(params, 'response_mode')), state };
}

/**
 * What the checks learn, filled in as they pass (not called "state", which
 * is an OAuth parameter here). A field is set once the check that owns it
 * has passed.
 */
interface AuthorizationDraft {
  readonly params: AuthorizeQuery;
  client: Client;
  redirectUri: string;
  redirectUriSent: boolean;
  /** The known parameters, each known to be sent at most once. */
  values: Readonly<Partial<Record<KnownParameter, string>>>;
  state: string | undefined;
  responseType: ResponseType;
  responseMode: ResponseMode;
  scopes: string[];
  resources: string[];
  nonce: string | undefined;
  codeChallenge: string | undefined;
  prompt: PromptValue[];
  maxAge: number | undefined;
  loginHint: string | undefined;
  dpopJkt: string | undefined;
  acrValues: string[];
  idTokenHintSubject: string | null | undefined;
}

type AuthorizationCheck = (draft: AuthorizationDraft, deps: AuthorizationRequestDeps) => void | Promise<void>;

interface AuthorizationCheckOptions {
  /**
   * Whether this check's error may be sent to the client's redirect URI.
   * Only once `client_id` and `redirect_uri` are known to belong together
   * (RFC 6749 §4.1.2.1, RFC 9700 §4.1.1): else the error page.
   */
  readonly redirectable: boolean;
}

const shown: AuthorizationCheckOptions = { redirectable: false };
const redirected: AuthorizationCheckOptions = { redirectable: true };

/** Run in order; each either passes (possibly filling in the draft) or throws the `OAuthError` to answer. */
export const authorizationChecks: ReadonlyArray<readonly [name: string, check: AuthorizationCheck, options: AuthorizationCheckOptions]> = [
  [
    'client_id is present, sent once and registered',
    async (draft, deps) => {
      const clientId = single(draft.params, 'client_id');
      if (clientId === undefined || clientId === '') throw invalidRequest('The request has no client_id.');
      if (clientId === REPEATED) throw invalidRequest('client_id must not be repeated.');
      // Client ids are short; anything longer cannot be registered (and is not worth a lookup).
      const client = clientId.length <= 200 ? await deps.findClient(clientId) : null;
      if (!client) throw new OAuthError('invalid_client', 'The application that sent you here is not registered.', { status: 400 });
      draft.client = client;
    },
    shown,
  ],
  [
    'redirect_uri is sent once and registered for the client, exactly',
    (draft) => {
      // RFC 9700 §4.1.3: exact match (RFC 8252 §7.3: any loopback port for a public client).
      const sent = single(draft.params, 'redirect_uri');
      if (sent === REPEATED) throw invalidRequest('redirect_uri must not be repeated.');
      const redirectUri = matchClientRedirectUri(draft.client, sent);
      if (redirectUri === null) {
        throw invalidRequest(
          sent === undefined
            ? 'The request has no redirect_uri, and the application has more than one registered.'
            : 'The redirect_uri does not match any URI registered for this application.',
        );
      }
      draft.redirectUri = redirectUri;
      draft.redirectUriSent = sent !== undefined;
    },
    shown,
  ],
  [
    'each known parameter is sent at most once',
    (draft) => {
      // RFC 6749 §3.1: parameters must not be included more than once.
      const values: Partial<Record<KnownParameter, string>> = {};
      for (const name of KNOWN) {
        const value = single(draft.params, name);
        if (value === REPEATED) throw invalidRequest(`Parameter ${name} must not be repeated.`);
        if (value !== undefined) values[name] = value;
      }
      draft.values = values;
    },
    redirected,
  ],
  [
    'state is bounded',
    (draft) => {
      const { state } = draft.values;
      if (state !== undefined && state.length > MAX_STATE_LENGTH) throw invalidRequest(`state must be at most ${MAX_STATE_LENGTH} characters.`);
      draft.state = state;
    },
    redirected,
  ],
  [
    'no request object, request_uri or registration',
    (draft) => {
      // OIDC Core §6: request objects are not supported.
      if (draft.values.request !== undefined) throw new OAuthError('request_not_supported', 'Request objects are not supported.');
      // A pushed request's request_uri (RFC 9126) is resolved before these checks run; any other is not supported.
      if (draft.values.request_uri !== undefined) throw new OAuthError('request_uri_not_supported', 'request_uri is supported only as the answer of the pushed authorization request endpoint.');
      if (draft.values.registration !== undefined) throw new OAuthError('registration_not_supported', 'The registration parameter is not supported.');
    },
    redirected,
  ],
  [
    'response_type is present, supported and registered for the client',
    (draft) => {
      // RFC 6749 §3.1.1, §4.1.2.1.
      const responseType = draft.values.response_type;
      if (responseType === undefined || responseType === '') throw invalidRequest('response_type is required.');
      if (!isResponseType(responseType)) {
        throw unsupportedResponseType(`response_type "${responseType.slice(0, 40)}" is not supported; use code (or token for legacy clients).`);
      }
      if (!draft.client.responseTypes.includes(responseType)) {
        throw unauthorizedClient(`This client is not registered for response_type ${responseType}.`);
      }
      draft.responseType = responseType;
    },
    redirected,
  ],
  [
    'response_mode is supported and allowed for the response type',
    (draft) => {
      const responseMode = draft.values.response_mode;
      if (responseMode !== undefined && !isResponseMode(responseMode)) {
        throw invalidRequest(`response_mode "${responseMode.slice(0, 40)}" is not supported; use ${RESPONSE_MODES.join(' or ')}.`);
      }
      // Never tokens in the query (Multiple Response Type Encoding Practices §3.0).
      const { responseModes, defaultResponseMode } = RESPONSE_TYPES[draft.responseType];
      if (responseMode !== undefined && !(responseModes as readonly string[]).includes(responseMode)) {
        throw invalidRequest(`response_mode=${responseMode} is not allowed for response_type=${draft.responseType}.`);
      }
      draft.responseMode = responseMode ?? defaultResponseMode;
    },
    redirected,
  ],
  [
    'scope is known and registered for the client',
    (draft, deps) => {
      // As at the token endpoint: requested ∩ registered, all registered when absent (RFC 6749 §3.3).
      // OIDC Core §11: offline_access is ignored unless the response type returns a code (the
      // implicit grant never issues the refresh token it asks for).
      const refreshable = GRANT_TYPES[RESPONSE_TYPES[draft.responseType].grantType].issuesRefreshTokens;
      const registered = draft.client.scope.split(' ').filter(Boolean);
      draft.scopes = grantScopes(parseScopeParameter(draft.values.scope), registered, deps.knownScopes, (s) => refreshable || s !== OFFLINE_ACCESS_SCOPE);
    },
    redirected,
  ],
  [
    'resource names resources this server issues tokens for, one for response_type=token',
    (draft, deps) => {
      // RFC 8707 §2: absolute URIs without fragment, each one this server issues tokens for.
      draft.resources = deps.resources.requested(draft.params.resource);
      // An access token has one audience: the implicit grant issues it here, so one resource only.
      if (RESPONSE_TYPES[draft.responseType].grantType === 'implicit' && draft.resources.length > 1) {
        throw invalidTarget(`response_type=${draft.responseType} issues one access token for one resource: name a single resource.`);
      }
    },
    redirected,
  ],
  [
    'redirect_uri is sent for an OpenID request',
    (draft) => {
      // OIDC Core §3.1.2.1: redirect_uri is required for OpenID requests, those
      // whose scope parameter names openid. Any other request may leave it out
      // when one URI is registered (RFC 6749 §3.1.2.3), even when the client's
      // default scopes include openid.
      if (!draft.redirectUriSent && parseScopeParameter(draft.values.scope)?.includes('openid') === true) {
        throw invalidRequest('redirect_uri is required when scope includes openid.');
      }
    },
    redirected,
  ],
  [
    'nonce is bounded',
    (draft) => {
      const { nonce } = draft.values;
      if (nonce !== undefined && nonce.length > MAX_NONCE_LENGTH) {
        throw invalidRequest(`nonce must be at most ${MAX_NONCE_LENGTH} characters.`);
      }
      draft.nonce = nonce;
    },
    redirected,
  ],
  [
    'PKCE code challenge for a code request',
    (draft) => {
      // RFC 7636 §4.3, RFC 9700 §2.1.1: required for every request that issues a code.
      draft.codeChallenge = undefined;
      if (RESPONSE_TYPES[draft.responseType].grantType !== 'authorization_code') return;
      const challenge = draft.values.code_challenge;
      const method = draft.values.code_challenge_method;
      const methods = PKCE_METHODS.join(' or ');
      if (challenge === undefined) throw invalidRequest(`code_challenge is required (PKCE with ${methods}).`);
      // RFC 7636 §4.3: a missing method means "plain", which is refused.
      if (!isPkceMethod(method)) throw invalidRequest(`code_challenge_method must be ${methods}; plain is not allowed.`);
      if (!CHALLENGE_SHAPES[method](challenge)) throw invalidRequest('code_challenge must be the 43-character base64url SHA-256 of the code verifier.');
      draft.codeChallenge = challenge;
    },
    redirected,
  ],
  [
    'prompt values are understood and consistent',
    (draft) => {
      draft.prompt = parsePrompt(draft.values.prompt);
    },
    redirected,
  ],
  [
    'acr_values is bounded',
    (draft) => {
      const raw = draft.values.acr_values;
      if (raw !== undefined && raw.length > MAX_ACR_VALUES_LENGTH) throw invalidRequest(`acr_values must be at most ${MAX_ACR_VALUES_LENGTH} characters.`);
      draft.acrValues = raw === undefined ? [] : raw.split(' ').filter((v) => v !== '');
    },
    redirected,
  ],
  [
    'max_age is whole seconds',
    (draft) => {
      draft.maxAge = parseMaxAge(draft.values.max_age);
    },
    redirected,
  ],
  [
    'dpop_jkt is a SHA-256 JWK thumbprint',
    (draft) => {
      // RFC 9449 §10: binds the code to a DPoP key; an RFC 7638 SHA-256 thumbprint is 43 base64url characters.
      const jkt = draft.values.dpop_jkt;
      if (jkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(jkt)) throw invalidRequest('dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP key.');
      draft.dpopJkt = jkt;
    },
    redirected,
  ],
  [
    'id_token_hint is an ID token, and names whom',
    async (draft, deps) => {
      // OIDC Core §3.1.2.1: an ID token this server issued, expired or not. One that is not
      // even a JWT is a client's mistake; one that does not verify names no user of ours
      // (the flow then asks for a sign-in: a hint can only ever narrow who is accepted).
      const hint = draft.values.id_token_hint;
      if (hint !== undefined && !looksLikeJwt(hint)) throw invalidRequest('id_token_hint must be an ID token issued by this server.');
      draft.idTokenHintSubject = hint === undefined ? undefined : await deps.idTokenHintSubject(hint);
    },
    redirected,
  ],
  [
    'login_hint is kept only when short',
    (draft) => {
      // A hint only prefills the form: an oversized one is dropped, not refused.
      const loginHint = draft.values.login_hint;
      draft.loginHint = loginHint === undefined || loginHint.length > MAX_LOGIN_HINT_LENGTH ? undefined : loginHint;
    },
    redirected,
  ],
];

/** The validated request, or the failed check's name, its error and where that error may go. */
export type AuthorizationCheckResult =
  | { ok: true; client: Client; request: AuthorizationRequest }
  | { ok: false; check: string; error: OAuthError; redirectable: false; target: null; client: Client | null }
  | { ok: false; check: string; error: OAuthError; redirectable: true; target: RedirectTarget; client: Client };

/**
 * Runs the checks in order and stops at the first error. Never throws for
 * bad input; rethrows a store outage (`UnavailableError`), which says
 * nothing about the request, and anything that is not an `OAuthError`.
 *
 * An error is redirectable only when its check says so and the redirect URI
 * is verified by then: a check misplaced before that one still cannot send
 * anything to an unverified URI. `checks` is for tests and for endpoints that
 * add checks of their own; the request is complete only after every default
 * check has passed.
 */
export async function runAuthorizationChecks(
  params: AuthorizeQuery,
  deps: AuthorizationRequestDeps,
  checks: typeof authorizationChecks = authorizationChecks,
): Promise<AuthorizationCheckResult> {
  const draft = { params } as AuthorizationDraft;
  for (const [name, check, { redirectable }] of checks) {
    try {
      await check(draft, deps);
    } catch (err) {
      if (!(err instanceof OAuthError) || err instanceof UnavailableError) throw err;
      if (redirectable && draft.redirectUri !== undefined) {
        return { ok: false, check: name, error: err, redirectable: true, target: redirectTargetOf(params, draft.redirectUri), client: draft.client };
      }
      return { ok: false, check: name, error: err, redirectable: false, target: null, client: draft.client ?? null };
    }
  }
  return {
    ok: true,
    client: draft.client,
    request: {
      clientId: draft.client.clientId,
      redirectUri: draft.redirectUri,
      redirectUriSent: draft.redirectUriSent,
      responseType: draft.responseType,
      responseMode: draft.responseMode,
      scopes: draft.scopes,
      resources: draft.resources,
      state: draft.state,
      nonce: draft.nonce,
      codeChallenge: draft.codeChallenge,
      prompt: draft.prompt,
      maxAge: draft.maxAge,
      loginHint: draft.loginHint,
      ...(draft.dpopJkt === undefined ? {} : { dpopJkt: draft.dpopJkt }),
      acrValues: draft.acrValues,
      ...(draft.idTokenHintSubject === undefined ? {} : { idTokenHintSubject: draft.idTokenHintSubject }),
    },
  };
}

/** How a request reached `/authorize` (RFC 9126). */
export interface AuthorizeEndpointOptions {
  /** The parameters are those of a pushed request (`request_uri`), validated when pushed and again now. */
  pushed: boolean;
  /** `REQUIRE_PAR`: every client must push its requests (RFC 9126 §5). */
  pushRequiredByServer: boolean;
}

const PUSHED_REQUIRED = 'Pushed authorization requests are required: send this request to the pushed authorization request endpoint (/par) and use its request_uri (RFC 9126).';

/**
 * The checks of a request sent to `/authorize` directly: the default ones,
 * and, once client and redirect URI are known, that neither the server nor
 * the client requires the request to be pushed (RFC 9126 §5, §6). Its
 * error may go to the redirect URI: both are verified by then.
 */
function directRequestChecks(pushRequiredByServer: boolean): typeof authorizationChecks {
  const at = authorizationChecks.findIndex(([name]) => name.startsWith('redirect_uri is sent once')) + 1;
  const check: AuthorizationCheck = (draft) => {
    if (pushRequiredByServer || draft.client.requirePushedAuthorizationRequests) throw invalidRequest(PUSHED_REQUIRED);
  };
  return [...authorizationChecks.slice(0, at), ['the request was pushed, if the server or the client requires it', check, redirected], ...authorizationChecks.slice(at)];
}

/** Built once: with and without `REQUIRE_PAR`. */
const DIRECT_CHECKS = { required: directRequestChecks(true), optional: directRequestChecks(false) };

/**
 * Validates an authorization request sent to `/authorize`. Never throws for
 * bad input: the result says whether to proceed, redirect an error
 * (`target`), or show the error page (`target` null).
 */
export async function parseAuthorizationRequest(
  query: AuthorizeQuery,
  deps: AuthorizationRequestDeps,
  options: AuthorizeEndpointOptions = { pushed: false, pushRequiredByServer: false },
): Promise<AuthorizationRequestResult> {
  const result = await runAuthorizationChecks(query, deps, options.pushed ? authorizationChecks : options.pushRequiredByServer ? DIRECT_CHECKS.required : DIRECT_CHECKS.optional);
  if (result.ok) return result;
  return { ok: false, error: result.error, target: result.target, client: result.client };
}

/**
 * The same checks for a request that is answered directly, never at the
 * redirect URI: a pushed authorization request (RFC 9126 §2.3 answers every
 * error as JSON, as RFC 6749 §5.2).
 */
export async function validateAuthorizationRequest(
  params: AuthorizeQuery,
  deps: AuthorizationRequestDeps,
): Promise<{ ok: true; client: Client; request: AuthorizationRequest } | { ok: false; error: OAuthError }> {
  const result = await runAuthorizationChecks(params, deps);
  return result.ok ? result : { ok: false, error: result.error };
}
