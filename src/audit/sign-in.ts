/**
 * A sign-in attempt (`users/sign-in.ts` reports every one, wherever it was
 * made) as an audit event: `sign_in.succeeded`, `sign_in.failed` (a wrong
 * password or unknown user, or the right password of a disabled account) or
 * `sign_in.throttled` (refused before any check). A check the slow-down
 * delayed says by how much in `slowed_ms`.
 */
import type { SignInAttempt } from '../users/sign-in.js';
import type { AuditEventInput } from './events.js';

export function signInEvent(attempt: SignInAttempt): AuditEventInput {
  // The username as typed (cut to length by the trail); the id only once the password proved it.
  const actor = { type: 'user' as const, id: attempt.userId, username: attempt.username };
  const details: NonNullable<AuditEventInput['details']> = { source: attempt.source };
  if (attempt.slowedMs > 0) details.slowed_ms = attempt.slowedMs;
  const base = { actor, ip: attempt.ip, clientId: attempt.clientId, subject: attempt.userId === null ? null : { type: 'user' as const, id: attempt.userId }, details };
  switch (attempt.outcome) {
    case 'signed_in':
      return { ...base, type: 'sign_in.succeeded' };
    case 'throttled':
      return { ...base, type: 'sign_in.throttled', outcome: 'failure' };
    default:
      return { ...base, type: 'sign_in.failed', outcome: 'failure', details: { ...details, reason: attempt.outcome } };
  }
}
