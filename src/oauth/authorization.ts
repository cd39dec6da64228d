/**
 * The authorization flow behind `/authorize`, `/login` and `/consent`:
 * decides whether the person must sign in or consent (OIDC `prompt`,
 * `max_age`, `acr_values`, remembered consent), and completes a request by issuing a code
 * (RFC 6749 §4.1.2) or, for the implicit grant, an access token in the
 * fragment (RFC 6749 §4.2.2). Every response carries `iss` (RFC 9207).
 *
 * It never touches HTTP: it answers with a step for the route to render.
 */
import { userActor } from '../audit/events.js';
import type { Config } from '../config.js';
import { OAuthError, accessDenied, invalidRequest, invalidScope, protocolText } from '../errors.js';
import { constantTimeEqual } from '../security/constant-time.js';
import type { BrowserSession, SessionService } from '../sessions/service.js';
import { flowKeyOf, newConsentTicket, type PendingAuthorization, type PendingAuthorizationStore } from '../sessions/pending-authorization.js';
import type { ClientService } from '../clients/service.js';
import type { ConsentService } from '../consents/service.js';
import type { Metrics } from '../observability/metrics.js';
import type { Client, User } from '../storage/types.js';
import type { SecondFactorService } from '../users/second-factor.js';
import type { UserService } from '../users/service.js';
import type { IssuedTokens, IssueRequest } from '../tokens/types.js';
import { amrOf, needsMultiFactor } from './acr.js';
import type { AuthorizationRequest, RedirectTarget } from './authorize-request.js';
import type { CodeStore } from './codes.js';
import { buildRedirect, matchClientRedirectUri } from './redirect-uri.js';
import type { ResourceRegistry } from './resources.js';
import { adminScopeLacksSecondFactor, scopesForUser } from './scope.js';

export type FlowStep =
  /** Send the browser to the client's redirect URI, with the response or an error. */
  | { kind: 'redirect'; location: string }
  | { kind: 'login'; pending: PendingAuthorization; client: Client }
  /** The signed-in user must also give a second-factor code (`acr_values` asks for more than the session's sign-in). */
  | { kind: 'second_factor'; pending: PendingAuthorization; client: Client }
  /** `scopes`: what this user would grant (the request's, narrowed to what the user may hold). */
  | { kind: 'consent'; pending: PendingAuthorization; client: Client; user: User; scopes: string[] };

export interface AuthorizationFlowDeps {
  config: Pick<Config, 'issuer'> & Partial<Pick<Config, 'requireMfaForAdmins'>>;
  consents: Pick<ConsentService, 'find' | 'grant'>;
  users: Pick<UserService, 'findSignedIn'>;
  secondFactor: Pick<SecondFactorService, 'isEnrolled'>;
  clients: Pick<ClientService, 'find' | 'recordUse'>;
  codes: Pick<CodeStore, 'issue'>;
  pending: PendingAuthorizationStore;
  sessions: Pick<SessionService, 'save' | 'sidOf' | 'rememberClient'>;
  /** The token service (implicit grant). */
  tokens: { issue(request: IssueRequest): Promise<IssuedTokens> };
  /** The audience of the implicit grant's token. */
  resources: Pick<ResourceRegistry, 'audienceFor'>;
  metrics?: Pick<Metrics, 'tokenIssued'>;
  now?: () => number;
}

export interface AuthorizationFlow {
  /** After `/authorize` validated the request: sign in, consent, or answer at once. */
  begin(client: Client, request: AuthorizationRequest, session: BrowserSession): Promise<FlowStep>;
  /** After sign-in, or when the consent page is asked for: the next step for a pending request. */
  proceed(pending: PendingAuthorization, session: BrowserSession): Promise<FlowStep>;
  /** Mints the ticket the consent decision must carry, bound to the signed-in user. */
  showConsent(pending: PendingAuthorization, user: User): Promise<string>;
  /**
   * The consent decision. The ticket must be the one minted when this
   * request's consent page was shown to the signed-in user; the request is
   * then taken from the store, so it is answered once. `ip`: the person's
   * address, recorded with the consent in the audit trail.
   */
  decide(pending: PendingAuthorization, session: BrowserSession, ticket: unknown, allow: boolean, ip?: string): Promise<FlowStep>;
  /** The error redirect (RFC 6749 §4.1.2.1 / §4.2.2.1 with RFC 9207 `iss`). */
  errorRedirect(target: RedirectTarget, error: OAuthError): FlowStep;
}

/** Raised when a pending request can no longer be answered at its redirect URI (client changed or deleted). */
export class StaleRequestError extends OAuthError {
  constructor() {
    super('invalid_request', 'The application changed while you were signing in. Return to the application and start again.');
  }
}

export function createAuthorizationFlow(deps: AuthorizationFlowDeps): AuthorizationFlow {
  const { config, consents, users, codes, pending: store, sessions } = deps;
  const now = deps.now ?? Date.now;
  const seconds = () => Math.floor(now() / 1000);

  const errorRedirect = (target: RedirectTarget, error: OAuthError): FlowStep => ({
    kind: 'redirect',
    location: buildRedirect(
      target.redirectUri,
      { error: error.error, error_description: protocolText(error.description), state: target.state, iss: config.issuer },
      target.responseMode,
    ),
  });

  const targetOf = (request: AuthorizationRequest): RedirectTarget => ({
    redirectUri: request.redirectUri,
    responseMode: request.responseMode,
    state: request.state,
  });

  /** The signed-in, enabled user of the session, or null. */
  const sessionUser = async (session: BrowserSession): Promise<User | null> => {
    return users.findSignedIn(session);
  };

  /**
   * OIDC Core §3.1.2.1: prompt=login / select_account and max_age force a
   * fresh sign-in, once per request, and so does an `id_token_hint` naming
   * someone other than the signed-in user (or no one this server knows):
   * the positive answer is for the hinted user, "logged in or logged in by
   * the request"; with prompt=none that is login_required.
   */
  const mustSignIn = (request: AuthorizationRequest, session: BrowserSession, user: User, loginDone: boolean): boolean => {
    if (loginDone) return false;
    if (request.prompt.includes('login') || request.prompt.includes('select_account')) return true;
    if (request.idTokenHintSubject !== undefined && request.idTokenHintSubject !== user.id) return true;
    // max_age=0 is prompt=login (the OpenID Connect working group's reading): a
    // sign-in earlier in the same second does not satisfy it.
    if (request.maxAge !== undefined) return session.authTime === null || request.maxAge === 0 || seconds() - session.authTime > request.maxAge;
    return false;
  };

  /**
   * Consent is remembered per user and client (PostgreSQL), for scopes and
   * resources: a scope or a resource (RFC 8707) not yet allowed asks again,
   * and so does prompt=consent. A consent remembered before resources were
   * recorded covers the default resource.
   */
  const mustConsent = async (request: AuthorizationRequest, user: User): Promise<boolean> => {
    if (request.prompt.includes('consent')) return true;
    const remembered = await consents.find(user.id, request.clientId);
    if (!remembered || !request.scopes.every((s) => remembered.scopes.includes(s))) return true;
    const resources = remembered.resources ?? [deps.resources.audienceFor(undefined)];
    return !request.resources.every((r) => resources.includes(r));
  };

  /** The client as registered now: it may have changed since the request was made. */
  const currentClient = async (request: AuthorizationRequest): Promise<Client> => {
    const client = await deps.clients.find(request.clientId);
    if (!client || matchClientRedirectUri(client, request.redirectUri) === null || !client.responseTypes.includes(request.responseType)) {
      throw new StaleRequestError();
    }
    return client;
  };

  const complete = async (client: Client, request: AuthorizationRequest, user: User, session: BrowserSession): Promise<FlowStep> => {
    // Authorized: a use of the client (a metadata-document client gets the row its code and tokens refer to).
    await deps.clients.recordUse(client, { actor: userActor(user) });
    const base = { state: request.state, iss: config.issuer };
    // Back-Channel Logout §2.3: the session remembers the clients it signed its user in to.
    await sessions.rememberClient(session, client.clientId);
    if (request.responseType === 'code') {
      const code = await codes.issue({
        clientId: client.clientId,
        redirectUri: request.redirectUri,
        redirectUriSent: request.redirectUriSent,
        codeChallenge: request.codeChallenge!,
        userId: user.id,
        scopes: request.scopes,
        resources: request.resources,
        nonce: request.nonce,
        authTime: session.authTime,
        ...(request.dpopJkt === undefined ? {} : { dpopJkt: request.dpopJkt }),
        amr: amrOf(session.amr),
        sid: sessions.sidOf(session),
      });
      return { kind: 'redirect', location: buildRedirect(request.redirectUri, { code, ...base }, request.responseMode) };
    }
    // RFC 6749 §4.2.2: implicit never gets a refresh token. Its one resource was checked with the request. No DPoP: the token leaves by the front channel.
    const resource = deps.resources.audienceFor(undefined, request.resources);
    const issued = await deps.tokens.issue({ client, user, scopes: request.scopes, resource, refreshToken: false, authTime: session.authTime, dpopJkt: null });
    deps.metrics?.tokenIssued('implicit');
    const { access_token, token_type, expires_in, scope } = issued.response;
    return {
      kind: 'redirect',
      location: buildRedirect(request.redirectUri, { access_token, token_type, expires_in: String(expires_in), scope, ...base }, 'fragment'),
    };
  };

  /**
   * The request as this user may be granted it: the admin scope only for an
   * admin (SPEC "Admin API"); RFC 6749 §3.3 lets the server grant less than
   * asked, and the response's `scope` says so. Null when nothing is left.
   */
  const forUser = (request: AuthorizationRequest, user: User): AuthorizationRequest | null => {
    const scopes = scopesForUser(request.scopes, user);
    if (scopes.length === 0) return null;
    return scopes.length === request.scopes.length ? request : { ...request, scopes };
  };
  const nothingToGrant = (request: AuthorizationRequest) =>
    errorRedirect(targetOf(request), invalidScope('None of the requested scopes can be granted to this account.'));

  /**
   * OIDC Core §3.1.2.1 `acr_values` (`acr.ts`): a request that accepts only
   * a multi-factor sign-in, from a session signed in with a password alone,
   * sends the user through the second factor; an account without one cannot
   * meet it (OpenID Connect Unmet Authentication Requirements 1.0), and
   * `prompt=none` may show no page. Null when the session is good enough.
   * With `REQUIRE_MFA_FOR_ADMINS`, the admin scope asked for by an admin
   * needs the second factor too (the admin API's key must not come from a
   * password alone).
   */
  const stepUp = async (client: Client, request: AuthorizationRequest, user: User, session: BrowserSession, pending: PendingAuthorization | null): Promise<FlowStep | null> => {
    const adminNeedsIt = adminScopeLacksSecondFactor(request.scopes, user, session.amr, config.requireMfaForAdmins);
    if (!adminNeedsIt && !needsMultiFactor(request.acrValues, session.amr)) return null;
    if (request.prompt.includes('none')) {
      return errorRedirect(targetOf(request), new OAuthError('interaction_required', 'A second factor is needed and prompt=none forbids asking for it.'));
    }
    if (!(await deps.secondFactor.isEnrolled(user.id))) {
      if (pending) await store.take(pending.id, session);
      return errorRedirect(
        targetOf(request),
        new OAuthError('unmet_authentication_requirements', 'This request needs a second factor (an authenticator app), which the account does not have.'),
      );
    }
    return { kind: 'second_factor', pending: pending ?? (await park(request, session)), client };
  };

  const park = async (request: AuthorizationRequest, session: BrowserSession): Promise<PendingAuthorization> => {
    const created = flowKeyOf(session).created;
    const pending = await store.create(request, session);
    if (created) await sessions.save(session);
    return pending;
  };

  return {
    errorRedirect,

    async begin(client, request, session) {
      const user = await sessionUser(session);
      const signIn = user === null || mustSignIn(request, session, user, false);
      if (request.prompt.includes('none') && signIn) {
        // OIDC Core §3.1.2.6: no UI may be shown.
        return errorRedirect(targetOf(request), new OAuthError('login_required', 'The user is not signed in.'));
      }
      if (signIn) return { kind: 'login', pending: await park(request, session), client };
      const more = await stepUp(client, request, user!, session, null);
      if (more) return more;
      const granted = forUser(request, user!);
      if (!granted) return nothingToGrant(request);
      if (await mustConsent(granted, user!)) {
        if (request.prompt.includes('none')) {
          return errorRedirect(targetOf(request), new OAuthError('consent_required', 'The user has not consented to this client and scope.'));
        }
        return { kind: 'consent', pending: await park(request, session), client, user: user!, scopes: granted.scopes };
      }
      return complete(client, granted, user!, session);
    },

    async proceed(pending, session) {
      const { request } = pending;
      const client = await currentClient(request);
      const user = await sessionUser(session);
      if (user === null || mustSignIn(request, session, user, pending.loginDone)) return { kind: 'login', pending, client };
      const more = await stepUp(client, request, user, session, pending);
      if (more) return more;
      const granted = forUser(request, user);
      // A consent page already shown to this user keeps being the one to answer.
      if (granted && pending.consentTicket !== null && pending.consentUserId === user.id) return { kind: 'consent', pending, client, user, scopes: granted.scopes };
      if (granted && (await mustConsent(granted, user))) return { kind: 'consent', pending, client, user, scopes: granted.scopes };
      // Nothing left to ask: answer now, once.
      const taken = await store.take(pending.id, session);
      if (!taken) throw invalidRequest('This sign-in request was already answered or has expired. Return to the application and start again.');
      return granted ? complete(client, granted, user, session) : nothingToGrant(request);
    },

    async showConsent(pending, user) {
      const ticket = newConsentTicket();
      pending.consentTicket = ticket;
      pending.consentUserId = user.id;
      await store.save(pending);
      return ticket;
    },

    async decide(pending, session, ticket, allow, ip) {
      const { request } = pending;
      // The decision answers the exact page that was shown, to the user it was shown to.
      const user = await sessionUser(session);
      if (user === null || pending.consentTicket === null || !constantTimeEqual(ticket, pending.consentTicket) || pending.consentUserId !== user.id) {
        throw invalidRequest('This consent form is no longer valid. Return to the application and start again.');
      }
      const client = await currentClient(request);
      if (!(await store.take(pending.id, session))) {
        throw invalidRequest('This sign-in request was already answered or has expired. Return to the application and start again.');
      }
      if (!allow) return errorRedirect(targetOf(request), accessDenied('The user denied the request.'));
      const granted = forUser(request, user);
      if (!granted) return nothingToGrant(request);
      // Before the consent, which refers to the client's row (a metadata-document client's is made here).
      await deps.clients.recordUse(client, { actor: userActor(user), ip });
      await consents.grant(user.id, client.clientId, granted.scopes, granted.resources, { actor: userActor(user), ip });
      return complete(client, granted, user, session);
    },
  };
}
