/**
 * "Forgot password" (SPEC "Signing in"): a mailed, single-use link under the
 * issuer that expires in 30 minutes and lets the owner of the address set a
 * new password.
 *
 * - The answer to a request is the same whether or not the address belongs
 *   to an account: the lookup is made either way and the mail goes out after
 *   the answer (`mail.ts`), so neither the page nor its timing tells.
 * - Requests are counted per client address (429 past `MAX_FAILED_ATTEMPTS`
 *   in the window) and per address typed (past `MAILS_PER_EMAIL` an hour no
 *   further mail goes out, silently).
 * - A link is void once used, after 30 minutes, once the password has
 *   changed since it was sent (any other link of the account with it), and
 *   once the account's address is no longer the one it was mailed to.
 * - Using it sets the password like any change of credentials (password rule,
 *   refresh tokens revoked, sessions over, `user.password_changed` recorded),
 *   and ends every session of the user at once.
 */
import { userActor } from '../audit/events.js';
import type { SessionService } from '../sessions/service.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { User } from '../storage/types.js';
import { isEnabled } from './account.js';
import type { MailQueue } from './mail.js';
import type { MailedLink, MailedLinks } from './mailed-links.js';
import type { UserService } from './service.js';

/** SPEC: the link expires in 30 minutes. */
export const PASSWORD_RESET_TTL_SECONDS = 1_800;
/** Mails per email address per hour at most (`emailThrottle`). */
export const MAILS_PER_EMAIL = { limit: 5, windowSeconds: 3_600 } as const;

export interface PasswordResetDeps {
  users: Pick<UserService, 'findByEmail' | 'findEnabled' | 'update' | 'checkNewPassword'>;
  sessions: Pick<SessionService, 'endAllForUser'>;
  links: MailedLinks;
  mail: MailQueue;
  /** Requests per client address (the shared failed-attempt limits). */
  throttle: Throttle;
  /** Mails per address typed (`MAILS_PER_EMAIL`). */
  emailThrottle: Throttle;
  issuer: string;
}

export type PasswordResetResult = { ok: true; user: User } | { ok: false };

export interface PasswordReset {
  /**
   * Sends a reset link to every enabled account with this address (none:
   * nothing is sent, and the caller answers the same). Throws 429
   * `too_many_requests` when the client address asked too often.
   */
  request(email: string, ip: string): Promise<void>;
  /** The account a link would reset, or null when it is unknown, used, out of date or void. */
  check(token: string): Promise<User | null>;
  /**
   * Sets the new password and uses the link up (once, across instances).
   * Throws `PasswordPolicyError` for a password the rule refuses (the link
   * stays usable). `{ ok: false }` when the link is not (or no longer) valid.
   */
  complete(token: string, password: string, ip: string): Promise<PasswordResetResult>;
}

function resetMail(user: User, issuer: string, token: string) {
  const link = `${issuer}/reset-password?token=${token}`;
  return {
    to: user.email!,
    subject: 'Reset your password',
    text: [
      `Someone, hopefully you, asked to reset the password of the account "${user.username}" at ${new URL(issuer).host}.`,
      '',
      'To choose a new password, open this link within 30 minutes (it works once):',
      '',
      link,
      '',
      'If it was not you, ignore this mail: your password stays as it is.',
    ].join('\n'),
  };
}

export function createPasswordReset(deps: PasswordResetDeps): PasswordReset {
  const { users, links } = deps;

  /**
   * The account of a link, if the link still stands: a password changed
   * since it was sent voids it, and so does a new address (the link belongs
   * to whoever reads the old one's mail; a link from before the address was
   * kept with it is judged on the password alone).
   */
  const accountOf = async (link: MailedLink | null): Promise<User | null> => {
    if (!link) return null;
    const user = await users.findEnabled(link.userId);
    if (!isEnabled(user)) return null;
    if (link.detail !== undefined && user.email?.toLowerCase() !== link.detail) return null;
    const changed = user.credentialsChangedAt?.getTime();
    return changed !== undefined && changed > link.issuedAt ? null : user;
  };

  return {
    async request(email, ip) {
      await deps.throttle.reserve(throttleKeys.passwordResetIp(ip));
      const accounts = await users.findByEmail(email.trim());
      try {
        await deps.emailThrottle.reserve(throttleKeys.passwordResetEmail(email.trim()));
      } catch {
        return; // This address has had its mails for the hour; the answer stays the same.
      }
      for (const user of accounts) {
        const token = await links.issue(user.id, user.email!.toLowerCase());
        deps.mail.enqueue(resetMail(user, deps.issuer, token));
      }
    },
    async check(token) {
      return accountOf(await links.peek(token));
    },
    async complete(token, password, ip) {
      const user = await accountOf(await links.peek(token));
      if (!user) return { ok: false };
      // The rule first, so a refused password leaves the link usable for another try.
      users.checkNewPassword(password, { username: user.username, email: user.email });
      // Then the link is used up, atomically: of two tabs posting at once, one wins.
      const taken = await accountOf(await links.take(token));
      if (!taken || taken.id !== user.id) return { ok: false };
      const updated = await users.update(user.id, { password }, { actor: userActor(user), ip });
      await deps.sessions.endAllForUser(user.id);
      return { ok: true, user: updated };
    },
  };
}
