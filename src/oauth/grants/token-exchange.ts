/**
 * `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693),
 * for delegation: a confidential client registered for this grant (an
 * agent) presents a user's access token issued by this server and gets an
 * access token for one of `RESOURCES` that says who acts for the user
 * (RFC 8693 §4.1 `act`). The token endpoint has already authenticated the
 * client and checked it is registered for the grant.
 *
 * - The acting party is the authenticated client: `actor_token` is not
 *   accepted (its proof would add nothing the client's authentication does
 *   not already give).
 * - The subject token must be active by the rules of introspection (the
 *   database, not a cached copy: a token revoked on any instance, a user
 *   cut off or disabled, counts at once), and a user's: a client's own
 *   token has nobody to act for.
 * - The new token never carries more than the subject token (`scope` a
 *   subset, else `invalid_scope`), nor more than the acting client is
 *   registered for; its `aud` is one resource of `RESOURCES`
 *   (`invalid_target` otherwise).
 * - `act` names the acting client; when the subject token was itself
 *   delegated, its `act` is nested inside (§4.1: the chain, most recent
 *   actor outermost). No refresh token: the agent exchanges again.
 * - Nor does it outlive the subject token: its `exp` is at most the subject
 *   token's, so re-exchanging its own results cannot keep a delegation
 *   alive beyond the user's token it started from.
 */
import { ANONYMOUS_ACTOR } from '../../audit/events.js';
import { invalidRequest, invalidScope, invalidTarget } from '../../errors.js';
import type { ActorClaim } from '../../tokens/types.js';
import { isActorClaim } from '../../tokens/jwt.js';
import { constantTimeEqual } from '../../security/constant-time.js';
import { narrowScopes, parseScopeParameter, scopesForUser } from '../scope.js';
import type { GrantDeps, GrantHandler, GrantParameters } from './types.js';

/** RFC 8693 §3: the one token type this grant accepts and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export const tokenExchangeParameters: GrantParameters = {
  subject_token: 'A user’s access token issued by this server (the party the new token is for)',
  subject_token_type: `Must be ${ACCESS_TOKEN_TYPE}`,
  audience: 'RFC 8693: a resource of RESOURCES the new token is for (like resource; both must name the same one). Default: the subject token’s audience',
  requested_token_type: `Optional; only ${ACCESS_TOKEN_TYPE}`,
};

/** Checks the token-type parameters (RFC 8693 §2.1): only access tokens in, only access tokens out. */
function checkTokenTypes(params: Readonly<Record<string, string | undefined>>): string {
  const { subject_token: subjectToken, subject_token_type: subjectType, requested_token_type: requested } = params;
  if (subjectToken === undefined) throw invalidRequest('subject_token is required (RFC 8693 §2.1).');
  if (subjectType === undefined) throw invalidRequest('subject_token_type is required (RFC 8693 §2.1).');
  if (subjectType !== ACCESS_TOKEN_TYPE) {
    throw invalidRequest(`subject_token_type "${subjectType.slice(0, 100)}" is not supported: only ${ACCESS_TOKEN_TYPE} (an access token of this server).`);
  }
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    throw invalidRequest('actor_token is not supported: the acting party is the authenticated client.');
  }
  if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
    throw invalidRequest(`requested_token_type "${requested.slice(0, 100)}" is not supported: only ${ACCESS_TOKEN_TYPE}.`);
  }
  return subjectToken;
}

/** The earlier actors of a chain, most recent first (for the audit trail). */
function actorsOf(act: ActorClaim | undefined): string[] {
  const actors: string[] = [];
  for (let a = act; a !== undefined && actors.length < 20; a = a.act) actors.push(a.sub);
  return actors;
}

export function tokenExchangeGrant({ tokens, users, resources, audit }: Pick<GrantDeps, 'tokens' | 'users' | 'resources' | 'audit'>): GrantHandler {
  /**
   * The new token's audience: `resource` (RFC 8707) and/or `audience`
   * (RFC 8693 §2.1), each naming one of `RESOURCES`, the same one when both
   * are sent; else the subject token's own audience, when it is one of them.
   */
  function targetOf(resource: string | undefined, audience: string | undefined, subjectAudience: unknown): string {
    const fromResource = resource === undefined ? undefined : resources.audienceFor(resource);
    let fromAudience: string | undefined;
    if (audience !== undefined) {
      fromAudience = resources.find(audience) ?? undefined;
      if (fromAudience === undefined) throw invalidTarget(`audience ${audience.slice(0, 100)} is not a resource this server issues tokens for.`);
    }
    if (fromResource !== undefined && fromAudience !== undefined && fromResource !== fromAudience) {
      throw invalidTarget('resource and audience name different resources: an access token has a single audience.');
    }
    const named = fromResource ?? fromAudience;
    if (named !== undefined) return named;
    const own = typeof subjectAudience === 'string' ? resources.find(subjectAudience) : null;
    return own ?? resources.audienceFor(undefined);
  }

  return async ({ client, params, ip, dpopJkt }) => {
    const subjectToken = checkTokenTypes(params);
    const requested = parseScopeParameter(params.scope);
    // RFC 8707 §2 / RFC 8693 §2.2.2: an unknown target is refused before the subject token is looked at.
    if (params.resource !== undefined) resources.audienceFor(params.resource);

    const active = await tokens.activeAccessToken(subjectToken);
    if (!active) throw invalidRequest('The subject_token is not an active access token of this server (expired, revoked, or its user is disabled).');
    const { claims, userId } = active;
    // RFC 9449 §6, §7: a bound token is used only with a proof by its key, here too; the new token is bound to it as well.
    if (claims.cnf !== undefined && (dpopJkt === null || !constantTimeEqual(dpopJkt, claims.cnf.jkt))) {
      throw invalidRequest('The subject_token is DPoP-bound: exchange it with a DPoP proof signed by its key.');
    }
    if (userId === null) throw invalidRequest('The subject_token must be a user’s access token: a client’s own token has nobody to act for.');
    // The user as they are now (their roles decide what may be delegated).
    const user = await users.findEnabled(userId);
    if (!user) throw invalidRequest('The subject_token is not an active access token of this server (expired, revoked, or its user is disabled).');

    const subjectScopes = claims.scope.split(' ').filter(Boolean);
    const wider = (requested ?? []).filter((s) => !subjectScopes.includes(s));
    if (wider.length > 0) throw invalidScope(`The requested scope is wider than the subject token’s: ${wider.join(' ')}.`);
    // Within the subject token's scope, only what the acting client is registered for (and admin only for admins).
    const scopes = scopesForUser(narrowScopes(requested, subjectScopes, client.scope.split(' ')), user);
    if (scopes.length === 0) throw invalidScope('None of the requested scopes can be delegated to this client.');

    const resource = targetOf(params.resource, params.audience, claims.aud);
    const earlier = isActorClaim(claims.act) ? claims.act : undefined;
    const act: ActorClaim = earlier ? { sub: client.clientId, act: earlier } : { sub: client.clientId };
    const issued = await tokens.issue({ client, user, scopes, resource, refreshToken: false, act, authTime: claims.auth_time ?? null, dpopJkt, notAfter: claims.exp });
    // A delegation is recorded: the client (over HTTP, no user) acting for the user.
    await audit?.record({
      type: 'token.exchanged',
      actor: ANONYMOUS_ACTOR,
      subject: { type: 'user', id: user.id },
      clientId: client.clientId,
      ip,
      details: { scope: scopes.join(' '), resource, actors: actorsOf(earlier) },
    });
    return { ...issued.response, issued_token_type: ACCESS_TOKEN_TYPE };
  };
}
