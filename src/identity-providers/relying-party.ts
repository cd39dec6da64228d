/**
 * This server as an OpenID Connect relying party of an upstream provider
 * (OIDC Core §3.1, the authorization code flow), with oauth4webapi doing
 * every protocol check:
 *
 * - `begin`: discovery (lazy, cached per issuer with a bound and an age, so
 *   the server starts while a provider is down), then a fresh `state`,
 *   `nonce` and PKCE verifier (RFC 7636, S256). They are kept in the TTL
 *   store for ten minutes under the hash of `state`, bound to the browser
 *   session's flow key (the one pending authorizations use), with where to
 *   go afterwards (a pending `rid`, or `next`).
 * - `complete`: the start is taken atomically (single use; another
 *   session's state is refused without destroying it), then the callback is
 *   validated (`iss` per RFC 9207 when present or announced, `state`, an
 *   `error` from the provider), the code exchanged with the client secret
 *   (Basic, or post when the provider supports only that) and the PKCE
 *   verifier, and the ID token validated: `iss`, `aud`, `azp`, `exp`, `iat`,
 *   `nonce`, and its signature against the provider's JWKS. Claims the ID
 *   token lacks (`email`, many providers keep them for UserInfo) are read
 *   from UserInfo, whose `sub` must be the ID token's.
 *
 * Errors are `OAuthError`s safe to show, with a `reason` for the audit
 * trail; oauth4webapi's are classified by their class and code, never by
 * message.
 */
import { createHash } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { OAuthError } from '../errors.js';
import { constantTimeEqual } from '../security/constant-time.js';
import { flowKeyOf } from '../sessions/pending-authorization.js';
import type { BrowserSession } from '../sessions/service.js';
import type { KvStore } from '../storage/types.js';
import type { IdentityProvider, IdentityProviderService } from './providers.js';

/** How long a started sign-in may take at the provider. */
export const UPSTREAM_START_TTL_SECONDS = 600;
const DISCOVERY_TTL_MS = 3_600_000;
const MAX_CACHED_ISSUERS = 100;
const DEFAULT_TIMEOUT_MS = 5_000;

/** Why an upstream sign-in was refused (the audit trail's `reason`). */
export type UpstreamFailure = 'unknown_provider' | 'unavailable' | 'state' | 'provider_error' | 'response' | 'id_token' | 'disabled';

export class UpstreamSignInError extends OAuthError {
  constructor(
    readonly reason: UpstreamFailure,
    error: 'invalid_request' | 'access_denied' | 'not_found' | 'temporarily_unavailable',
    description: string,
    cause?: unknown,
  ) {
    super(error, description, { cause, ...(error === 'temporarily_unavailable' ? { retryAfter: 30 } : {}) });
    this.name = 'UpstreamSignInError';
  }
}

/** Where the browser goes once signed in: the pending authorization, or a page of this server. */
export interface ReturnTo {
  rid: string | null;
  next: string | null;
}

interface StoredStart {
  providerId: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  binding: string;
  returnTo: ReturnTo;
}

/** What the provider vouches for, from its validated ID token. */
export interface UpstreamIdentity {
  provider: IdentityProvider;
  subject: string;
  email: string | null;
  /** The provider's `email_verified`: true only when it says exactly true. */
  emailVerified: boolean;
  preferredUsername: string | null;
  returnTo: ReturnTo;
}

export interface RelyingParty {
  /** The provider's authorization URL for a new sign-in. Save the session afterwards when `sessionChanged`. */
  begin(providerId: string, session: BrowserSession, returnTo: ReturnTo): Promise<{ authorizationUrl: string; sessionChanged: boolean }>;
  /** Validates the callback (`callbackUrl`: as received, with its query) and returns who the provider says signed in. */
  complete(providerId: string, session: BrowserSession, callbackUrl: URL): Promise<UpstreamIdentity>;
}

export interface RelyingPartyDeps {
  providers: Pick<IdentityProviderService, 'credentials'>;
  kv: KvStore;
  now?: () => number;
  /** Each request to a provider (discovery, token, JWKS), ms. */
  timeoutMs?: number;
}

const startKey = (state: string) => `upstream-signin:${createHash('sha256').update(state).digest('base64url')}`;

function unknownProvider(): UpstreamSignInError {
  return new UpstreamSignInError('unknown_provider', 'not_found', 'There is no such sign-in provider, or it is switched off.');
}

function unavailable(provider: IdentityProvider, cause: unknown): UpstreamSignInError {
  return new UpstreamSignInError(
    'unavailable',
    'temporarily_unavailable',
    `Signing in with ${provider.displayName} is not possible right now: ${provider.displayName} could not be reached. Try again later, or sign in another way.`,
    cause,
  );
}

/** A provider's answer that oauth4webapi refused (a wrong `iss`, `nonce`, signature, …) or an error the provider sent. */
function isProtocolError(err: unknown): boolean {
  return (
    err instanceof oauth.OperationProcessingError ||
    err instanceof oauth.ResponseBodyError ||
    err instanceof oauth.AuthorizationResponseError ||
    err instanceof oauth.WWWAuthenticateChallengeError ||
    err instanceof oauth.UnsupportedOperationError
  );
}

export function createRelyingParty(deps: RelyingPartyDeps): RelyingParty {
  const { kv } = deps;
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  /** Discovered metadata per issuer (the promise, so concurrent first uses share one request). */
  const discovered = new Map<string, { metadata: Promise<oauth.AuthorizationServer>; expiresAt: number }>();
  const jwksCaches = new Map<string, oauth.JWKSCacheInput>();

  /** Plain http is allowed only where the issuer's rule allows it (a loopback host: `upstreamIssuerProblem`). */
  const requestOptions = (issuer: string) => ({ signal: AbortSignal.timeout(timeoutMs), ...(issuer.startsWith('http:') ? { [oauth.allowInsecureRequests]: true } : {}) });

  async function discover(provider: IdentityProvider): Promise<oauth.AuthorizationServer> {
    const cached = discovered.get(provider.issuer);
    if (cached && cached.expiresAt > now()) return cached.metadata;
    const issuer = new URL(provider.issuer);
    const metadata = (async () => oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...requestOptions(provider.issuer) })))();
    // Bounded: the oldest entry goes first (insertion order).
    discovered.delete(provider.issuer);
    if (discovered.size >= MAX_CACHED_ISSUERS) discovered.delete(discovered.keys().next().value!);
    discovered.set(provider.issuer, { metadata, expiresAt: now() + DISCOVERY_TTL_MS });
    try {
      return await metadata;
    } catch (err) {
      // A failure is not remembered: the next sign-in tries again.
      discovered.delete(provider.issuer);
      // Metadata that does not name the configured issuer (OIDC Discovery §4.3) is refused like an unreachable provider.
      throw unavailable(provider, err);
    }
  }

  /** Client authentication the provider supports: Basic by default (OIDC Discovery §3), post when only that is offered. */
  function clientAuthFor(as: oauth.AuthorizationServer, secret: string): oauth.ClientAuth {
    const supported = as.token_endpoint_auth_methods_supported;
    if (supported && !supported.includes('client_secret_basic') && supported.includes('client_secret_post')) return oauth.ClientSecretPost(secret);
    return oauth.ClientSecretBasic(secret);
  }

  /** The UserInfo claims for `sub` (OIDC Core §5.3.2: its `sub` must be the ID token's), or none when the provider has no endpoint. */
  async function userInfo(as: oauth.AuthorizationServer, client: oauth.Client, provider: IdentityProvider, accessToken: string, sub: string): Promise<Record<string, unknown>> {
    if (!as.userinfo_endpoint) return {};
    try {
      const response = await oauth.userInfoRequest(as, client, accessToken, requestOptions(provider.issuer));
      return { ...(await oauth.processUserInfoResponse(as, client, sub, response)) };
    } catch (err) {
      if (isProtocolError(err)) {
        throw new UpstreamSignInError('response', 'invalid_request', `The answer from ${provider.displayName} could not be verified, so you are not signed in. Start again from the sign-in page.`, err);
      }
      throw unavailable(provider, err);
    }
  }

  async function credentialsOrFail(providerId: string) {
    const credentials = await deps.providers.credentials(providerId);
    if (!credentials) throw unknownProvider();
    return credentials;
  }

  return {
    async begin(providerId, session, returnTo) {
      const { provider } = await credentialsOrFail(providerId);
      const as = await discover(provider);
      if (!as.authorization_endpoint) throw unavailable(provider, new Error('no authorization_endpoint in the metadata'));
      const { key: binding, created } = flowKeyOf(session);
      const start: StoredStart = {
        providerId,
        state: oauth.generateRandomState(),
        nonce: oauth.generateRandomNonce(),
        codeVerifier: oauth.generateRandomCodeVerifier(),
        binding,
        returnTo,
      };
      await kv.set(startKey(start.state), JSON.stringify(start), UPSTREAM_START_TTL_SECONDS);
      const url = new URL(as.authorization_endpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', provider.clientId);
      url.searchParams.set('redirect_uri', provider.redirectUri);
      url.searchParams.set('scope', provider.scopes);
      url.searchParams.set('state', start.state);
      url.searchParams.set('nonce', start.nonce);
      url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(start.codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
      return { authorizationUrl: url.href, sessionChanged: created };
    },

    async complete(providerId, session, callbackUrl) {
      const state = callbackUrl.searchParams.get('state');
      const expired = new UpstreamSignInError('state', 'invalid_request', 'This sign-in has expired or was not started in this browser. Start again from the sign-in page.');
      if (state === null || state.length > 200) throw expired;
      // Checked before it is taken, so a state seen elsewhere cannot be used to cancel this browser's sign-in.
      const parse = (raw: string | null) => {
        if (raw === null) return null;
        const start = JSON.parse(raw) as StoredStart;
        return constantTimeEqual(session.data.flowKey, start.binding) && start.providerId === providerId ? start : null;
      };
      if (!parse(await kv.get(startKey(state)))) throw expired;
      const start = parse(await kv.take(startKey(state)));
      if (!start) throw expired;

      const { provider, clientSecret } = await credentialsOrFail(providerId);
      const as = await discover(provider);
      const client: oauth.Client = { client_id: provider.clientId };
      const refused = (reason: UpstreamFailure, cause: unknown) =>
        new UpstreamSignInError(reason, 'invalid_request', `The answer from ${provider.displayName} could not be verified, so you are not signed in. Start again from the sign-in page.`, cause);

      let params: URLSearchParams;
      try {
        // RFC 9207: an `iss` naming another issuer is refused (a mix-up attack); so is a missing one when the provider announced it.
        params = oauth.validateAuthResponse(as, client, callbackUrl, start.state);
      } catch (err) {
        if (err instanceof oauth.AuthorizationResponseError) {
          throw new UpstreamSignInError('provider_error', 'access_denied', `${provider.displayName} did not sign you in (${err.error}). Start again, or sign in another way.`, err);
        }
        if (isProtocolError(err)) throw refused('response', err);
        throw err;
      }

      let tokens: oauth.TokenEndpointResponse;
      try {
        const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuthFor(as, clientSecret), params, provider.redirectUri, start.codeVerifier, requestOptions(provider.issuer));
        tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: start.nonce, requireIdToken: true });
        // Over TLS the signature is not required (OIDC Core §3.1.3.7 point 6), but it costs one cached JWKS fetch and also covers plain http on loopback.
        const jwksCache = jwksCaches.get(provider.issuer) ?? {};
        jwksCaches.set(provider.issuer, jwksCache);
        await oauth.validateApplicationLevelSignature(as, response, { [oauth.jwksCache]: jwksCache, ...requestOptions(provider.issuer) });
      } catch (err) {
        if (isProtocolError(err)) throw refused('id_token', err);
        // The provider went away between the redirect and the callback.
        throw unavailable(provider, err);
      }
      const idToken = oauth.getValidatedIdTokenClaims(tokens)!;
      if (idToken.sub.length > 255) throw refused('id_token', new Error('sub longer than 255 characters (OIDC Core §2)'));
      // Many providers put the scopes' claims (email, …) only in UserInfo for the code flow (OIDC Core §5.4).
      const claims: Record<string, unknown> = idToken.email === undefined ? { ...(await userInfo(as, client, provider, tokens.access_token, idToken.sub)), ...idToken } : idToken;
      const text = (value: unknown, max: number) => (typeof value === 'string' && value !== '' && value.length <= max ? value : null);
      return {
        provider,
        subject: idToken.sub,
        email: text(claims.email, 254),
        emailVerified: claims.email_verified === true,
        preferredUsername: text(claims.preferred_username, 200),
        returnTo: start.returnTo,
      };
    },
  };
}
