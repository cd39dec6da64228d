/**
 * Which local user an upstream sign-in is, decided in one place:
 *
 * 1. this upstream account (provider, `sub`) is linked: that user;
 * 2. else the provider says the email is verified (`email_verified: true`)
 *    and exactly one local user has that address, verified here too (the
 *    user proved it with the mailed link, or a provider verified it:
 *    `users.email_verified`, migration 0011): link
 *    to that user. An address nobody verified never links, or
 *    someone could sign up with a victim's address first and receive the
 *    victim's upstream sign-ins (pre-account takeover);
 * 3. else a new user, with no password (`NO_PASSWORD`), named after
 *    `preferred_username` or the email's local part (made unique), the
 *    email kept (verified only when the provider said so), and linked.
 *
 * A disabled user is refused in every case. Links and their removal are
 * recorded in the audit trail (`identity.linked`, `identity.unlinked`).
 */
import { randomBytes } from 'node:crypto';
import { recordChange, userActor, type AuditRecorder } from '../audit/events.js';
import { accessDenied, conflict, notFound, OAuthError } from '../errors.js';
import type { LinkedIdentity, LinkedIdentityRepo, PasskeyRepo, User } from '../storage/types.js';
import { hasPassword, isEnabled } from '../users/account.js';
import type { UserService } from '../users/service.js';
import type { IdentityProviderService } from './providers.js';
import type { UpstreamIdentity } from './relying-party.js';

/** How the user was found: an existing link, a new link by verified email, or a new account. */
export type LinkOutcome = 'linked_before' | 'linked_by_email' | 'created';

export interface LinkedProviderView {
  providerId: string;
  /** The provider's display name (its id when it was deleted meanwhile: links go with it, so rarely). */
  displayName: string;
  subject: string;
  email: string | null;
  linkedAt: Date;
}

export interface LinkedAccounts {
  /** The enabled local user of an upstream sign-in (see the file's comment); 403 `access_denied` for a disabled one. */
  resolve(identity: UpstreamIdentity, ip: string | null): Promise<{ user: User; outcome: LinkOutcome }>;
  listForUser(userId: string): Promise<LinkedProviderView[]>;
  /**
   * Removes one of the user's links; 409 `conflict` when it is the last way
   * to sign in (no password, no passkey, no other link), 404 when there is
   * no such link.
   */
  unlink(user: User, providerId: string, subject: string, ip: string | null): Promise<void>;
}

export interface LinkedAccountsDeps {
  links: LinkedIdentityRepo;
  users: Pick<UserService, 'get' | 'create' | 'findByVerifiedEmail' | 'delete'>;
  providers: Pick<IdentityProviderService, 'list'>;
  /** A passkey is another way in: with one, the last link may go. */
  passkeys: Pick<PasskeyRepo, 'listForUser'>;
  audit?: AuditRecorder;
}

const USERNAME_CHARS = /[^A-Za-z0-9._@-]/g;

/** A username in the local rule (`USERNAME_PATTERN`) from what the provider offers. */
export function usernameBase(identity: Pick<UpstreamIdentity, 'preferredUsername' | 'email' | 'provider'>): string {
  const candidates = [identity.preferredUsername, identity.email?.split('@')[0], `${identity.provider.id}-user`];
  for (const candidate of candidates) {
    const cleaned = (candidate ?? '').replace(USERNAME_CHARS, '').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50);
    if (cleaned !== '') return cleaned;
  }
  return 'user';
}

export function createLinkedAccounts(deps: LinkedAccountsDeps): LinkedAccounts {
  const { links, users, audit } = deps;

  const refuseDisabled = (user: User) => {
    if (!isEnabled(user)) throw accessDenied('This account is disabled.');
    return user;
  };

  const recordLink = (user: User, identity: UpstreamIdentity, reason: string, ip: string | null) =>
    recordChange(audit, { actor: userActor(user), ip }, { type: 'identity.linked', subject: { type: 'user', id: user.id }, details: { provider: identity.provider.id, username: user.username, reason } });

  /** A new account with no password; the username made unique by a suffix when taken. */
  async function createUser(identity: UpstreamIdentity, emailVerified: boolean, ip: string | null): Promise<User> {
    const base = usernameBase(identity);
    for (let attempt = 0; attempt < 5; attempt++) {
      const username = attempt === 0 ? base : `${base}-${randomBytes(3).toString('hex')}`;
      try {
        return await users.create(
          { username, password: null, email: identity.email, emailVerified, roles: [] },
          // Like a sign-up: the new user is the actor (`users/audit.ts`).
          { actor: { type: 'user', id: null, username }, ip },
        );
      } catch (err) {
        if (!(err instanceof OAuthError && err.error === 'conflict')) throw err;
      }
    }
    throw conflict('Could not choose a free username for the new account; try again.');
  }

  return {
    async resolve(identity, ip) {
      const existing = await links.find(identity.provider.id, identity.subject);
      if (existing) return { user: refuseDisabled(await users.get(existing.userId)), outcome: 'linked_before' };

      const link = (user: User) => links.create({ providerId: identity.provider.id, subject: identity.subject, userId: user.id, email: identity.email });
      if (identity.email !== null && identity.emailVerified) {
        const matches = await users.findByVerifiedEmail(identity.email);
        if (matches.length === 1) {
          const user = refuseDisabled(matches[0]!);
          if (await link(user)) {
            await recordLink(user, identity, 'email', ip);
            return { user, outcome: 'linked_by_email' };
          }
        }
      }

      // Several local users with the address: none is chosen, and the new account's address is not vouched for.
      const verified = identity.email !== null && identity.emailVerified && (await users.findByVerifiedEmail(identity.email)).length === 0;
      const user = await createUser(identity, verified, ip);
      if (!(await link(user))) {
        // A concurrent first sign-in of the same upstream account linked first: use that one.
        await users.delete(user.id).catch(() => {});
        const winner = await links.find(identity.provider.id, identity.subject);
        if (!winner) throw conflict('This sign-in raced another one; try again.');
        return { user: refuseDisabled(await users.get(winner.userId)), outcome: 'linked_before' };
      }
      await recordLink(user, identity, 'created', ip);
      return { user, outcome: 'created' };
    },

    async listForUser(userId) {
      const [mine, providers] = await Promise.all([links.listForUser(userId), deps.providers.list()]);
      const names = new Map(providers.map((p) => [p.id, p.displayName]));
      return mine.map((link: LinkedIdentity) => ({
        providerId: link.providerId,
        displayName: names.get(link.providerId) ?? link.providerId,
        subject: link.subject,
        email: link.email,
        linkedAt: link.linkedAt,
      }));
    },

    async unlink(user, providerId, subject, ip) {
      const mine = await links.listForUser(user.id);
      if (!mine.some((l) => l.providerId === providerId && l.subject === subject)) throw notFound('There is no such linked provider.');
      // The last way in: without a password, the account would be locked out for good.
      if (!hasPassword(user) && mine.length === 1 && (await deps.passkeys.listForUser(user.id)).length === 0) {
        throw conflict('This is the only way you can sign in: add a passkey (or link another provider) before removing it.');
      }
      if (!(await links.delete(user.id, providerId, subject))) throw notFound('There is no such linked provider.');
      await recordChange(audit, { actor: userActor(user), ip }, { type: 'identity.unlinked', subject: { type: 'user', id: user.id }, details: { provider: providerId, username: user.username } });
    },
  };
}
