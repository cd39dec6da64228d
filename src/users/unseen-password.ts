/**
 * Is the bootstrap admin's generated password perhaps known to nobody?
 *
 * Without `ADMIN_USERNAME`/`ADMIN_PASSWORD`, the first start creates `admin`
 * with a random password and prints it once. That output can be lost: a first
 * start that failed right after (the port taken), a terminal closed, a second
 * `npm start` read instead of the first. Each later start asks this, and when
 * the answer is yes prints how to set a new password.
 *
 * Yes when the user `admin` exists, is an enabled admin, was created by the
 * server itself (its `user.created` event has the system as actor: not a
 * person's choice through the CLI, the API or the console), still has that
 * password (`credentialsChangedAt` is null), and has never signed in (no
 * `sign_in.succeeded` event for it). Once it signs in anywhere or gets a new
 * password, the answer is no for good.
 *
 * A bootstrap admin named `admin-xxxxxx` (created when a non-admin `admin`
 * existed) is not looked for; nor one whose creation event is older than
 * `AUDIT_RETENTION_DAYS`: no answer is then "no", never a false alarm.
 */
import type { AuditTrail } from '../audit/service.js';
import type { User } from '../storage/types.js';
import { isAdmin } from './account.js';

/** The username the bootstrap gives the admin it creates with a generated password. */
export const BOOTSTRAP_ADMIN_USERNAME = 'admin';

export interface UnseenPasswordDeps {
  findByUsername(username: string): Promise<User | null>;
  audit: Pick<AuditTrail, 'list'>;
}

/** The bootstrap admin when its generated password may never have been seen, else null. */
export async function bootstrapAdminWithUnseenPassword(deps: UnseenPasswordDeps): Promise<User | null> {
  const user = await deps.findByUsername(BOOTSTRAP_ADMIN_USERNAME);
  if (!user || !isAdmin(user) || user.credentialsChangedAt !== null) return null;
  const page = { limit: 1, offset: 0 };
  const [created, signedIn] = await Promise.all([
    deps.audit.list({ type: 'user.created', subject: user.id }, page),
    deps.audit.list({ type: 'sign_in.succeeded', subject: user.id }, page),
  ]);
  const byTheServer = created.events.length > 0 && created.events.every((e) => e.actor.type === 'system');
  return byTheServer && signedIn.total === 0 ? user : null;
}
