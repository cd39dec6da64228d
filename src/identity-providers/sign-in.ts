/**
 * An upstream sign-in from start to the local user: the relying party's
 * checks (`relying-party.ts`), then the account it stands for
 * (`accounts.ts`), each attempt recorded in the audit trail as a sign-in
 * (`source: upstream`, the provider, and on failure the reason).
 *
 * The session it produces has `amr: ['fed']`. RFC 8176 has no value for "a
 * federated provider authenticated the user"; OIDC Core §2 lets parties
 * agree on other values, and this server names what it observed rather
 * than copying the provider's own `amr`, which it cannot vouch for. No local
 * second factor is asked after an upstream sign-in: the provider
 * authenticates the user, with whatever factors it requires.
 */
import type { AuditRecorder } from '../audit/events.js';
import { isOAuthError } from '../errors.js';
import type { BrowserSession } from '../sessions/service.js';
import type { User } from '../storage/types.js';
import type { LinkedAccounts, LinkOutcome } from './accounts.js';
import { UpstreamSignInError, type RelyingParty, type ReturnTo } from './relying-party.js';

/** The `amr` of a session signed in through an upstream provider (see above). */
export const UPSTREAM_AMR: readonly string[] = ['fed'];

export interface UpstreamSignIn {
  /** The provider's authorization URL; the caller saves the session when `sessionChanged`. */
  begin(providerId: string, session: BrowserSession, returnTo: ReturnTo): Promise<{ authorizationUrl: string; sessionChanged: boolean }>;
  /** The local user of a callback, or an `OAuthError` safe to show (recorded as a failed sign-in). */
  complete(providerId: string, session: BrowserSession, callbackUrl: URL, ip: string | null): Promise<{ user: User; outcome: LinkOutcome; returnTo: ReturnTo; amr: readonly string[] }>;
}

export function createUpstreamSignIn(deps: { relyingParty: RelyingParty; accounts: LinkedAccounts; audit?: AuditRecorder }): UpstreamSignIn {
  const { relyingParty, accounts, audit } = deps;

  return {
    begin: (providerId, session, returnTo) => relyingParty.begin(providerId, session, returnTo),
    async complete(providerId, session, callbackUrl, ip) {
      try {
        const identity = await relyingParty.complete(providerId, session, callbackUrl);
        const { user, outcome } = await accounts.resolve(identity, ip);
        void audit?.record({ type: 'sign_in.succeeded', actor: { type: 'user', id: user.id, username: user.username }, subject: { type: 'user', id: user.id }, ip, details: { source: 'upstream', provider: providerId } });
        return { user, outcome, returnTo: identity.returnTo, amr: UPSTREAM_AMR };
      } catch (err) {
        if (err instanceof UpstreamSignInError || (isOAuthError(err) && err.status < 500)) {
          const reason = err instanceof UpstreamSignInError ? err.reason : err.error === 'access_denied' ? 'disabled' : err.error;
          void audit?.record({ type: 'sign_in.failed', outcome: 'failure', actor: { type: 'anonymous' }, ip, details: { source: 'upstream', provider: providerId.slice(0, 63), reason } });
        }
        throw err;
      }
    },
  };
}
