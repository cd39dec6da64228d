/**
 * `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client gets
 * an access token for itself (`sub` = its client_id, RFC 9068 §2.2). No
 * refresh token (§4.4.3), and none of the scopes that only mean something
 * for a person (openid, profile, email, offline_access).
 */
import { grantScopes, parseScopeParameter, USER_ONLY_SCOPES } from '../scope.js';
import type { GrantHandler } from './types.js';

const forClient = (scope: string) => !USER_ONLY_SCOPES.has(scope);

export const clientCredentialsGrant: GrantHandler = async ({ client, params, services }) => {
  const scopes = grantScopes(parseScopeParameter(params.scope), client.scope.split(' '), services.config.scopes, forClient);
  const issued = await services.tokens.issue({ client, user: null, scopes, refreshToken: false });
  return issued.response;
};
