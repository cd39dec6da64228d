/**
 * Email verification (`REQUIRE_EMAIL_VERIFICATION=true`, with SMTP): a new
 * account's address gets a mailed single-use link (`mailed-links.ts`) that
 * marks it verified, so UserInfo can report `email_verified` truthfully. The
 * link names the address it was sent to: once the account's address has
 * changed, it verifies nothing. Opening the link only shows the address
 * (`check`); a person's click on the page's button uses it (`verify`), so a
 * mail scanner that fetches every link in a message verifies nothing: a
 * verified address links an upstream sign-in to the account
 * (`identity-providers/accounts.ts`), so it must be the owner's act.
 */
import type { User, UserRepo } from '../storage/types.js';
import type { MailQueue } from './mail.js';
import type { MailedLinks } from './mailed-links.js';

/** A verification link works for a day. */
export const EMAIL_VERIFICATION_TTL_SECONDS = 86_400;

export interface EmailVerification {
  /** Mails a verification link to the user's address (nothing when there is none). */
  send(user: Pick<User, 'id' | 'username' | 'email'>): Promise<void>;
  /** The address a link would verify, leaving it usable; null when it is unknown, used, out of date or the account has another address now. */
  check(token: string): Promise<string | null>;
  /** Uses a link up; the address it verified, or null when the link is unknown, used, out of date or the address changed. */
  verify(token: string): Promise<string | null>;
}

export function createEmailVerification(deps: {
  repo: Pick<UserRepo, 'markEmailVerified' | 'findById'>;
  links: MailedLinks;
  mail: MailQueue;
  issuer: string;
}): EmailVerification {
  const { links, issuer } = deps;
  return {
    async send(user) {
      if (user.email === null) return;
      const token = await links.issue(user.id, user.email);
      deps.mail.enqueue({
        to: user.email,
        subject: 'Verify your email address',
        text: [
          `The account "${user.username}" at ${new URL(issuer).host} was created with this address.`,
          '',
          'To confirm that it is yours, open this link within a day and press the button on the page (it works once):',
          '',
          `${issuer}/verify-email?token=${token}`,
          '',
          'If you did not create it, ignore this mail.',
        ].join('\n'),
      });
    },
    async check(token) {
      const link = await links.peek(token);
      if (!link || link.detail === undefined) return null;
      const user = await deps.repo.findById(link.userId);
      return user !== null && user.email === link.detail ? link.detail : null;
    },
    async verify(token) {
      const link = await links.take(token);
      if (!link || link.detail === undefined) return null;
      return (await deps.repo.markEmailVerified(link.userId, link.detail)) ? link.detail : null;
    },
  };
}
