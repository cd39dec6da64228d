/**
 * The logout request of OpenID Connect RP-Initiated Logout 1.0 §2 (`GET` or
 * `POST /end-session`), judged. What it may do, in order:
 *
 * - Each parameter is one string of bounded length (a repeat, or a longer
 *   value, is `invalid_request`); an empty one counts as omitted.
 * - `id_token_hint` must be an ID token this server signed (§2: "the OP
 *   MUST validate that it was the issuer"), expired or not (§4: the OP
 *   "SHOULD accept ID Tokens when the RP identified by the ID Token's aud
 *   claim … has a current session or had a recent session"): verified by
 *   the token service's one check (`TokenService.idTokenHint`). Anything
 *   else, a forgery or another issuer's token, is refused.
 * - The client is `client_id`, or the hint's `aud`; given both, they must
 *   agree (§2).
 * - `post_logout_redirect_uri` must equal, character for character, one the
 *   client registered (§3.1, like `redirect_uri`: no prefix, no loopback
 *   port exception); without a client, none is accepted. A refusal is shown,
 *   never redirected to (§3: no open redirector).
 * - `logout_hint` and `ui_locales` are accepted and not used; `state` goes
 *   back with the redirect (§3), and nowhere else.
 *
 * The checks judge only: the web layer asks the person to confirm and ends
 * the session (`http/end-session.ts`). Pure apart from the two lookups it is
 * given, so it is tested without an app.
 */
import { MAX_CLIENT_ID_LENGTH } from '../clients/service.js';
import { MAX_REDIRECT_URI_LENGTH } from '../clients/metadata.js';
import { invalidRequest, OAuthError, UnavailableError } from '../errors.js';
import type { Client } from '../storage/types.js';
import { looksLikeJwt, MAX_JWT_LENGTH } from '../tokens/jwt.js';
import type { IdTokenHint } from '../tokens/types.js';
import { MAX_LOGIN_HINT_LENGTH, MAX_STATE_LENGTH } from './authorize-request.js';
import { buildRedirect } from './redirect-uri.js';

/** The end-session endpoint (`end_session_endpoint`, RP-Initiated Logout §2.1). */
export const END_SESSION_PATH = '/end-session';

/** The parameters of §2 and their longest accepted values; others are ignored. */
export const END_SESSION_PARAMETERS = {
  id_token_hint: MAX_JWT_LENGTH,
  client_id: MAX_CLIENT_ID_LENGTH,
  post_logout_redirect_uri: MAX_REDIRECT_URI_LENGTH,
  state: MAX_STATE_LENGTH,
  logout_hint: MAX_LOGIN_HINT_LENGTH,
  ui_locales: 256,
} as const;

type EndSessionParameter = keyof typeof END_SESSION_PARAMETERS;

/** What a confirmation form posts back to be judged again: the parameters that decide anything. */
export type EndSessionParameters = Partial<Record<'id_token_hint' | 'client_id' | 'post_logout_redirect_uri' | 'state', string>>;

/** A logout request that passed every check. */
export interface EndSessionRequest {
  /** The client that sent it (`client_id`, or the hint's `aud`), when known and still registered. */
  client: Client | null;
  /** The user the `id_token_hint` names (maybe not the one signed in); null without a hint. */
  hintSubject: string | null;
  /** Where the browser goes after signing out (a registered URI with `state` added); null: the signed-out page. */
  location: string | null;
  /** The parameters as sent (the ones that decide anything), for the confirmation form. */
  params: EndSessionParameters;
}

export interface EndSessionDeps {
  /** The client, or null when unknown. Throws `invalid_client` for a metadata document that cannot be used, and when the store fails. */
  findClient: (clientId: string) => Promise<Client | null>;
  /** `TokenService.idTokenHint`. */
  idTokenHint: (token: string) => Promise<IdTokenHint | null>;
}

/** Each parameter's one value, or undefined; a list (a repeat) or an oversized value is refused. */
function readParameters(raw: unknown): Partial<Record<EndSessionParameter, string>> {
  const fields = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const values: Partial<Record<EndSessionParameter, string>> = {};
  for (const [name, max] of Object.entries(END_SESSION_PARAMETERS) as Array<[EndSessionParameter, number]>) {
    const value = fields[name];
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string') throw invalidRequest(`${name} must be sent once.`);
    if (value.length > max) throw invalidRequest(`${name} is too long (at most ${max} characters).`);
    values[name] = value;
  }
  return values;
}

/** The client named by `client_id`; an unusable metadata document is this request's error, a store outage stays one. */
async function namedClient(clientId: string, deps: EndSessionDeps): Promise<Client | null> {
  try {
    return await deps.findClient(clientId);
  } catch (err) {
    if (err instanceof OAuthError && !(err instanceof UnavailableError)) throw invalidRequest(err.description);
    throw err;
  }
}

/**
 * Judges a logout request (a query, or a form body). Throws
 * `invalid_request` saying what is wrong: the caller shows it, and sends
 * the browser nowhere.
 */
export async function validateEndSessionRequest(raw: unknown, deps: EndSessionDeps): Promise<EndSessionRequest> {
  const values = readParameters(raw);

  let hint: IdTokenHint | null = null;
  if (values.id_token_hint !== undefined) {
    if (looksLikeJwt(values.id_token_hint)) hint = await deps.idTokenHint(values.id_token_hint);
    if (hint === null) throw invalidRequest('id_token_hint is not an ID token issued by this server.');
  }

  let client: Client | null = null;
  if (values.client_id !== undefined) {
    // §2: "the OP MUST verify that the Client Identifier matches the one used when issuing the ID Token".
    if (hint !== null && !hint.aud.includes(values.client_id)) throw invalidRequest('client_id is not the client the id_token_hint was issued to.');
    client = await namedClient(values.client_id, deps);
    if (client === null) throw invalidRequest('client_id names no client of this server.');
  } else if (hint !== null && hint.aud.length === 1) {
    // A client deleted since is no one to send the browser back to.
    client = await namedClient(hint.aud[0]!, deps);
  }

  let location: string | null = null;
  const uri = values.post_logout_redirect_uri;
  if (uri !== undefined) {
    if (client === null) throw invalidRequest('post_logout_redirect_uri needs client_id or id_token_hint to name the client it is registered for.');
    // §3.1: exact match, as for redirect_uri (RFC 9700 §4.1.3).
    if (!client.postLogoutRedirectUris.includes(uri)) throw invalidRequest('post_logout_redirect_uri is not one this client registered.');
    location = buildRedirect(uri, { state: values.state }, 'query');
  }

  const params: EndSessionParameters = {};
  for (const name of ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state'] as const) {
    if (values[name] !== undefined) params[name] = values[name];
  }
  return { client, hintSubject: hint?.sub ?? null, location, params };
}
