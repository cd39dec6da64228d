/**
 * Remembered consent: which scopes a user has allowed a client, for which
 * resources (RFC 8707: an API, an MCP server). The consent
 * page (browser flows) reads and records it; an admin can list and revoke it.
 *
 * Revoking consent also ends what that consent produced: every refresh-token
 * family of the user at that client is revoked and the access tokens issued
 * with them are deny-listed (RFC 7009 §2.1 asks the same of revoking a grant),
 * so the client has to ask the person again. The token service does that, in
 * one transaction, through its one revocation path.
 */
import { recordChange, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import { notFound } from '../errors.js';
import type { Consent, ConsentRepo } from '../storage/types.js';
import type { TokenService } from '../tokens/types.js';

export interface ConsentServiceDeps {
  repo: ConsentRepo;
  tokens: Pick<TokenService, 'revokeUserAtClient'>;
  /** Where consent granted and revoked is recorded. */
  audit?: AuditRecorder;
}

export interface ConsentService {
  /** The remembered consent, or null. */
  find(userId: string, clientId: string): Promise<Consent | null>;
  /**
   * Remembers `scopes` for tokens for `resources` (both added to any already
   * granted). `context`: the person deciding, and from where (audit trail).
   */
  grant(userId: string, clientId: string, scopes: string[], resources: string[], context?: ChangeContext): Promise<Consent>;
  listForUser(userId: string): Promise<Consent[]>;
  /** Forgets the consent and revokes the tokens issued under it; 404 `not_found` when there was none. `context`: who asks (audit trail). */
  revoke(userId: string, clientId: string, context?: ChangeContext): Promise<void>;
}

export function createConsentService(deps: ConsentServiceDeps): ConsentService {
  const { repo, tokens, audit } = deps;
  const subject = (userId: string) => ({ type: 'user' as const, id: userId });
  return {
    find: (userId, clientId) => repo.find(userId, clientId),
    async grant(userId, clientId, scopes, resources, context) {
      const consent = await repo.grant(userId, clientId, scopes, resources);
      await recordChange(audit, context, { type: 'consent.granted', subject: subject(userId), clientId, details: { scopes, resources } });
      return consent;
    },
    listForUser: (userId) => repo.listForUser(userId),
    async revoke(userId, clientId, context) {
      const existed = await repo.revoke(userId, clientId);
      // Even without a remembered consent (tokens from the password grant, or
      // a retry after a failed revocation), the pair's tokens are revoked.
      await tokens.revokeUserAtClient(userId, clientId);
      if (!existed) throw notFound(`user "${userId}" has no remembered consent for client "${clientId}"`);
      await recordChange(audit, context, { type: 'consent.revoked', subject: subject(userId), clientId });
    },
  };
}
