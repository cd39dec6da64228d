/**
 * The token endpoint's grant registry: `grant_type` → handler, and the
 * parameters each grant reads (for the OpenAPI document), one entry per
 * grant type that `protocol.ts` says the token endpoint serves (the types
 * make a missing one a compile error). Each grant lives in its own file in
 * this folder and is added here with one line in each map.
 */
import { authorizationCodeGrant, authorizationCodeParameters } from './authorization-code.js';
import { clientCredentialsGrant, clientCredentialsParameters } from './client-credentials.js';
import { deviceCodeGrant, deviceCodeParameters } from './device-code.js';
import { passwordGrant, passwordParameters } from './password.js';
import { refreshTokenGrant, refreshTokenParameters } from './refresh-token.js';
import { tokenExchangeGrant, tokenExchangeParameters } from './token-exchange.js';
import type { GrantDeps, GrantHandlers, GrantParameters } from './types.js';
import type { TokenGrantType } from '../protocol.js';

export function createGrantHandlers(deps: GrantDeps): GrantHandlers {
  return {
    authorization_code: authorizationCodeGrant(deps),
    password: passwordGrant(deps),
    client_credentials: clientCredentialsGrant(deps),
    refresh_token: refreshTokenGrant(deps),
    'urn:ietf:params:oauth:grant-type:device_code': deviceCodeGrant(deps),
    'urn:ietf:params:oauth:grant-type:token-exchange': tokenExchangeGrant(deps),
  };
}

export const GRANT_PARAMETERS: Readonly<Record<TokenGrantType, GrantParameters>> = {
  authorization_code: authorizationCodeParameters,
  password: passwordParameters,
  client_credentials: clientCredentialsParameters,
  refresh_token: refreshTokenParameters,
  'urn:ietf:params:oauth:grant-type:device_code': deviceCodeParameters,
  'urn:ietf:params:oauth:grant-type:token-exchange': tokenExchangeParameters,
};
