/**
 * The half-signed-in state of `/login` → `/login/second-factor`, shared by
 * both routes (`second-factor.ts` has the rules).
 */
import type { PendingAuthorization } from '../sessions/pending-authorization.js';
import type { BrowserSession } from '../sessions/service.js';

export const SECOND_FACTOR_PATH = '/login/second-factor';
/** How long a right password waits for its code. */
const SECOND_FACTOR_TTL_MS = 5 * 60_000;
/** Where the half-signed-in user is kept in the session's data. */
export const SECOND_FACTOR_KEY = 'secondFactor';

export interface HalfSignedIn {
  userId: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms of the first step; absent on entries from before it was kept (then `expiresAt` tells). */
  at?: number;
  /** How the first step was made (RFC 8176): `pwd`, or `fed` for an upstream provider. Absent: `pwd`. */
  amr?: string[];
}

/**
 * Records in `session` (saved by the caller's `sessions.save`) that this
 * user passed the first step (`amr`: the password by default, or an
 * upstream provider's sign-in).
 */
export function awaitSecondFactor(session: BrowserSession, userId: string, now: number, amr: readonly string[] = ['pwd']): void {
  session.data[SECOND_FACTOR_KEY] = halfSignedIn(userId, now, amr);
}

/** The entry of a user who passed the first step (`amr`) at `now`, waiting for the code (also the admin console's, under its own key). */
export function halfSignedIn(userId: string, now: number, amr: readonly string[] = ['pwd']): HalfSignedIn {
  return { userId, expiresAt: now + SECOND_FACTOR_TTL_MS, at: now, amr: [...amr] };
}

/**
 * The first step as a sign-in for `users.findSignedIn`: a password change,
 * disable or delete after it voids the wait for the code, as it ends the
 * sessions already signed in.
 */
export function firstStepOf(entry: HalfSignedIn): { userId: string; signedInAt: number } {
  return { userId: entry.userId, signedInAt: entry.at ?? entry.expiresAt - SECOND_FACTOR_TTL_MS };
}

/** The page that asks for the code, carrying `rid` or `next`. */
export function secondFactorLocation(pending: PendingAuthorization | null, next: string | null): string {
  if (pending) return `${SECOND_FACTOR_PATH}?rid=${encodeURIComponent(pending.id)}`;
  return next ? `${SECOND_FACTOR_PATH}?next=${encodeURIComponent(next)}` : SECOND_FACTOR_PATH;
}
