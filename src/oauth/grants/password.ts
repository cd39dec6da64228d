/**
 * `grant_type=password` (RFC 6749 §4.3), for legacy clients an admin
 * registered for it explicitly. The password is checked by the server's one
 * sign-in path (`users.signIn`), so it shares the failed-attempt budget of
 * the login page and the admin API, and past the limit the grant answers 429
 * with `Retry-After` before checking any password. Wrong credentials, and a
 * disabled account, are `invalid_grant` with one message whether or not the
 * user exists.
 *
 * A user with an authenticator app (or an admin when `REQUIRE_MFA_FOR_ADMINS`
 * is set) is refused with `invalid_grant`: this grant has no way to ask for
 * the second factor, and a password alone must not sign them in.
 */
import { invalidGrant, invalidRequest, invalidScope } from '../../errors.js';
import { isAdmin } from '../../users/account.js';
import { acrOf } from '../acr.js';
import { grantScopes, parseScopeParameter, scopesForUser } from '../scope.js';
import type { GrantDeps, GrantHandler, GrantParameters } from './types.js';

export const passwordParameters: GrantParameters = {
  username: "The resource owner's username",
  password: "The resource owner's password",
};

export const SECOND_FACTOR_REQUIRED =
  'This account signs in with a second factor (an authenticator app), which the password grant cannot ask for. Use the authorization code flow.';

/** RFC 8176: a password and nothing else (this grant refuses users with a second factor). */
const PASSWORD_AMR = ['pwd'] as const;
const PASSWORD_ACR = acrOf(PASSWORD_AMR);

export function passwordGrant({
  config,
  now,
  tokens,
  users,
  secondFactor,
  resources,
}: Pick<GrantDeps, 'config' | 'now' | 'tokens' | 'users' | 'secondFactor' | 'resources'>): GrantHandler {
  return async ({ client, params, ip, dpopJkt }) => {
    const { username, password } = params;
    if (username === undefined) throw invalidRequest('username is required.');
    if (password === undefined) throw invalidRequest('password is required.');
    // Scope and resource errors first: they need no password check (and cost no attempt).
    const scopes = grantScopes(parseScopeParameter(params.scope), client.scope.split(' '), config.scopes);
    // RFC 8707 §2: any resource of this server, the default when none is named.
    const resource = resources.audienceFor(params.resource);

    const signedIn = await users.signIn(username, password, { ip, source: 'password_grant', clientId: client.clientId });
    if (!signedIn.ok) throw invalidGrant('Invalid username or password.');
    // Only after the password was right: who has a second factor is not told to a guesser.
    if ((config.requireMfaForAdmins && isAdmin(signedIn.user)) || (await secondFactor.isEnrolled(signedIn.user.id))) {
      throw invalidGrant(SECOND_FACTOR_REQUIRED);
    }
    const granted = scopesForUser(scopes, signedIn.user);
    if (granted.length === 0) throw invalidScope('None of the requested scopes can be granted to this account.');

    const issued = await tokens.issue({
      client,
      user: signedIn.user,
      scopes: granted,
      resource,
      // A refresh token only for clients registered for the refresh_token grant.
      refreshToken: client.grantTypes.includes('refresh_token'),
      authTime: Math.floor(now() / 1000),
      // Kept with the refresh token: an ID token of a refresh (scope openid) says how the user signed in.
      amr: PASSWORD_AMR,
      acr: PASSWORD_ACR,
      dpopJkt,
    });
    return issued.response;
  };
}
