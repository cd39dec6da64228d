/**
 * `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4):
 * the device polls with its device code until the person has answered at
 * `/device`. The token endpoint has already authenticated the client (or
 * identified a public one) and checked it is registered for this grant; the
 * device flow (`device-authorization.ts`) answers `authorization_pending`,
 * `slow_down`, `access_denied` or `expired_token` until then, and hands an
 * approved request to exactly one poll.
 */
import { invalidGrant, invalidRequest } from '../../errors.js';
import { acrOf } from '../acr.js';
import type { GrantDeps, GrantHandler, GrantParameters } from './types.js';

export const deviceCodeParameters: GrantParameters = {
  device_code: 'RFC 8628 §3.4: the device_code of the device authorization response',
};

export function deviceCodeGrant({ devices, tokens, users, resources }: Pick<GrantDeps, 'devices' | 'tokens' | 'users' | 'resources'>): GrantHandler {
  return async ({ client, params, dpopJkt }) => {
    const { device_code: deviceCode, resource } = params;
    if (deviceCode === undefined) throw invalidRequest('device_code is required.');
    // RFC 8707 §2: a malformed or unknown resource, or one the approved request
    // does not cover, is refused before the code is used up.
    if (resource !== undefined) resources.audienceFor(resource);
    const approved = await devices.redeem(client, deviceCode, resource === undefined ? undefined : (covered) => resources.audienceFor(resource, covered));
    const user = await users.findEnabled(approved.userId);
    if (!user) throw invalidGrant('The user who approved this device no longer exists or is disabled.');

    // RFC 8707 §2.2: one of the resources of the device authorization request, the first when none is named.
    const audience = resources.audienceFor(resource, approved.resources);
    const issued = await tokens.issue({
      client,
      user,
      scopes: approved.scopes,
      resource: audience,
      grantResources: approved.resources,
      // As for the code flow: a refresh token only for clients registered for the refresh_token grant.
      refreshToken: client.grantTypes.includes('refresh_token'),
      // OIDC Core §2: amr and acr of the sign-in that approved, as for a code (none recorded: no claim).
      idToken: approved.scopes.includes('openid')
        ? { authTime: approved.authTime, amr: approved.amr, acr: approved.amr ? acrOf(approved.amr) : undefined }
        : undefined,
      authTime: approved.authTime,
      dpopJkt,
    });
    return issued.response;
  };
}
