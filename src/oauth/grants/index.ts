/**
 * The token endpoint's grant registry: `grant_type` → handler. Each grant
 * lives in its own file in this folder and is added here with one line.
 */
import { authorizationCodeGrant } from './authorization-code.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { passwordGrant } from './password.js';
import { refreshTokenGrant } from './refresh-token.js';
import type { GrantHandlers } from './types.js';

export const grantHandlers: GrantHandlers = {
  authorization_code: authorizationCodeGrant,
  client_credentials: clientCredentialsGrant,
  password: passwordGrant,
  refresh_token: refreshTokenGrant,
};
