/**
 * The token endpoint's grant registry: `grant_type` → handler, one entry per
 * grant type that `protocol.ts` says the token endpoint serves (the type
 * makes a missing one a compile error). Each grant lives in its own file in
 * this folder and is added here with one line.
 */
import { authorizationCodeGrant } from './authorization-code.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { passwordGrant } from './password.js';
import { refreshTokenGrant } from './refresh-token.js';
import type { GrantDeps, GrantHandlers } from './types.js';

export function createGrantHandlers(deps: GrantDeps): GrantHandlers {
  return {
    authorization_code: authorizationCodeGrant(deps),
    password: passwordGrant(deps),
    client_credentials: clientCredentialsGrant(deps),
    refresh_token: refreshTokenGrant(deps),
  };
}
