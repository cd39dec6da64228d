/**
 * `grant_type=refresh_token` (RFC 6749 §6): rotation, reuse detection and
 * the grace window live in the token service (`tokens/refresh.ts`).
 */
import { invalidRequest } from '../../errors.js';
import type { GrantDeps, GrantHandler, GrantParameters } from './types.js';

export const refreshTokenParameters: GrantParameters = {
  refresh_token: 'The refresh token (used up: the answer carries its successor)',
};

export function refreshTokenGrant({ tokens }: Pick<GrantDeps, 'tokens'>): GrantHandler {
  return async ({ client, params, ip, dpopJkt }) => {
    if (params.refresh_token === undefined) throw invalidRequest('refresh_token is required.');
    return tokens.refresh({ client, refreshToken: params.refresh_token, scope: params.scope, resource: params.resource, ip, dpopJkt });
  };
}
