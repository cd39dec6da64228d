/**
 * `grant_type=refresh_token` (RFC 6749 §6): rotation, reuse detection and
 * the grace window live in the token service (`tokens/service.ts`).
 */
import { invalidRequest } from '../../errors.js';
import type { GrantHandler } from './types.js';

export const refreshTokenGrant: GrantHandler = async ({ client, params, services }) => {
  if (params.refresh_token === undefined) throw invalidRequest('refresh_token is required.');
  return services.tokens.refresh({ client, refreshToken: params.refresh_token, scope: params.scope });
};
