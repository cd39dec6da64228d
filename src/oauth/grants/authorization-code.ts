/**
 * `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5, OIDC Core
 * §3.1.3). The token endpoint has already authenticated the client (or
 * identified a public one) and checked it is registered for this grant.
 *
 * The code is taken from the store first, atomically: whatever happens next,
 * it can never be redeemed again, so a wrong verifier or redirect URI cannot
 * be retried against the same code. A code that is gone is answered
 * `invalid_grant` and, if it had been redeemed and is replayed by the client it was
 * issued to, everything the first redemption issued is revoked (RFC 6749
 * §4.1.2, RFC 9700 §4.5).
 */
import { acrOf } from '../acr.js';
import { invalidGrant, invalidRequest } from '../../errors.js';
import { constantTimeEqual } from '../../security/constant-time.js';
import { verifyS256 } from '../pkce.js';
import type { GrantDeps, GrantHandler, GrantParameters } from './types.js';

export const authorizationCodeParameters: GrantParameters = {
  code: 'The authorization code',
  redirect_uri: 'Required, and identical, when the authorization request had it (RFC 6749 §4.1.3)',
  code_verifier: 'PKCE (RFC 7636): the verifier whose S256 hash was the code_challenge',
};

/** One message for every reason a code is refused, so a caller learns nothing about codes it does not hold. */
const REFUSED = 'The authorization code is invalid, expired, already used, or was issued to another client or redirect URI.';

export function authorizationCodeGrant({ codes, tokens, users, resources }: Pick<GrantDeps, 'codes' | 'tokens' | 'users' | 'resources'>): GrantHandler {
  return async ({ client, params, dpopJkt }) => {
    const { code, redirect_uri: redirectUri, code_verifier: verifier, resource } = params;
    if (code === undefined || code === '') throw invalidRequest('code is required.');
    if (verifier === undefined || verifier === '') throw invalidRequest('code_verifier is required (PKCE).');
    if (resource !== undefined) {
      // RFC 8707 §2: a malformed or unknown resource, or one the code does not
      // cover (for the client it was issued to), is refused before the code is
      // used up: the client may ask again for one it covers.
      resources.audienceFor(resource);
      const peeked = await codes.peek(code);
      if (peeked !== null && peeked.clientId === client.clientId) resources.audienceFor(resource, peeked.resources);
    }

    const grant = await codes.take(code);
    if (!grant) {
      // What the first redemption issued, if this client is the one it was issued to.
      const issued = await codes.recordReplay(code, client.clientId);
      if (issued) {
        await tokens.revokeIssued({
          familyId: issued.familyId,
          accessTokenJti: issued.accessTokenJti,
          accessTokenExpiresAt: new Date(issued.accessTokenExpiresAt),
        });
      }
      throw invalidGrant(REFUSED);
    }

    // RFC 6749 §4.1.3: the code was issued to this client…
    if (grant.clientId !== client.clientId) throw invalidGrant(REFUSED);
    // …for this redirect URI: required and identical when the authorization request had one.
    if (grant.redirectUriSent ? redirectUri !== grant.redirectUri : redirectUri !== undefined && redirectUri !== grant.redirectUri) {
      throw invalidGrant(REFUSED);
    }
    // RFC 7636 §4.6: the verifier must hash to the challenge (constant-time compare).
    if (!verifyS256(verifier, grant.codeChallenge)) throw invalidGrant('PKCE verification failed: code_verifier does not match the code_challenge.');
    // RFC 9449 §10: a code requested with dpop_jkt is redeemed only with a proof by that key.
    if (grant.dpopJkt !== undefined && (dpopJkt === null || !constantTimeEqual(dpopJkt, grant.dpopJkt))) {
      throw invalidGrant('This code was requested with dpop_jkt: redeem it with a DPoP proof signed by that key.');
    }

    const user = await users.findEnabled(grant.userId);
    if (!user) throw invalidGrant('The user who authorized this code no longer exists or is disabled.');

    // RFC 8707 §2.2: one of the resources authorized (narrowing), the first of them when none is named.
    const audience = resources.audienceFor(resource, grant.resources);
    const openid = grant.scopes.includes('openid');
    const issued = await tokens.issue({
      client,
      user,
      scopes: grant.scopes,
      resource: audience,
      // The refresh token covers everything authorized (a code from before resources were bound: the default).
      grantResources: grant.resources.length > 0 ? grant.resources : [audience],
      // A refresh token only for clients registered for the refresh_token grant.
      refreshToken: client.grantTypes.includes('refresh_token'),
      // OIDC Core §2: amr and acr of the sign-in the code came from (none recorded: a code from before, no claim).
      idToken: openid ? { nonce: grant.nonce, authTime: grant.authTime, amr: grant.amr, acr: grant.amr ? acrOf(grant.amr) : undefined, sid: grant.sid } : undefined,
      authTime: grant.authTime,
      dpopJkt,
    });

    const replayed = await codes.recordRedemption(code, {
      clientId: client.clientId,
      familyId: issued.familyId,
      accessTokenJti: issued.accessTokenJti,
      accessTokenExpiresAt: issued.accessTokenExpiresAt.getTime(),
    });
    // A replay raced this redemption: what was just issued is revoked too.
    if (replayed) await tokens.revokeIssued(issued);
    return issued.response;
  };
}
