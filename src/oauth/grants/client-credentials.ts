/**
 * `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client gets
 * an access token for itself (`sub` = its client_id, RFC 9068 §2.2). No
 * refresh token (§4.4.3), and none of the scopes that only mean something
 * for a person (openid, profile, email, offline_access).
 */
import { grantScopes, parseScopeParameter, USER_ONLY_SCOPES } from '../scope.js';
import type { GrantDeps, GrantHandler, GrantParameters } from './types.js';

const forClient = (scope: string) => !USER_ONLY_SCOPES.has(scope);

/** Nothing besides `scope` and the client's own authentication. */
export const clientCredentialsParameters: GrantParameters = {};

export function clientCredentialsGrant({ config, tokens, resources }: Pick<GrantDeps, 'config' | 'tokens' | 'resources'>): GrantHandler {
  return async ({ client, params, dpopJkt }) => {
    const scopes = grantScopes(parseScopeParameter(params.scope), client.scope.split(' '), config.scopes, forClient);
    // RFC 8707 §2: any resource of this server, the default when none is named.
    const resource = resources.audienceFor(params.resource);
    const issued = await tokens.issue({ client, user: null, scopes, resource, refreshToken: false, dpopJkt });
    return issued.response;
  };
}
