/**
 * `grant_type=password` (RFC 6749 §4.3), for legacy clients an admin
 * registered for it explicitly. Wrong credentials are `invalid_grant` with one
 * message whether or not the user exists, at the same argon2 cost
 * (`users.authenticate`). Failures are counted per username and per client
 * IP in the shared failed-attempt store, with the same keys as the login
 * form and the admin API, so one budget protects an account everywhere;
 * past the limit the grant answers 429 with `Retry-After` before checking
 * any password.
 */
import { invalidGrant, invalidRequest } from '../../errors.js';
import { throttleKeys } from '../../security/throttle.js';
import { grantScopes, parseScopeParameter } from '../scope.js';
import type { GrantHandler } from './types.js';

export const passwordGrant: GrantHandler = async ({ client, params, services, ip }) => {
  const { username, password } = params;
  if (username === undefined) throw invalidRequest('username is required.');
  if (password === undefined) throw invalidRequest('password is required.');
  // Scope errors first: they need no password check (and cost no attempt).
  const scopes = grantScopes(parseScopeParameter(params.scope), client.scope.split(' '), services.config.scopes);

  const keys = [throttleKeys.user(username), throttleKeys.ip(ip)];
  for (const key of keys) await services.throttle.check(key);
  const user = await services.users.authenticate(username, password);
  if (!user) {
    services.metrics.loginFailed('password_grant');
    await services.throttle.fail(...keys);
    throw invalidGrant('Invalid username or password.');
  }
  await services.throttle.reset(keys[0]!);

  const issued = await services.tokens.issue({
    client,
    user,
    scopes,
    // A refresh token only for clients registered for the refresh_token grant.
    refreshToken: client.grantTypes.includes('refresh_token'),
    authTime: Math.floor(services.now() / 1000),
  });
  return issued.response;
};
