/**
 * What an account may do, decided in one place: whether it may be used at
 * all, and whether it may administer this server.
 */
import type { User } from '../storage/types.js';
import { NO_PASSWORD } from './password.js';

/** The role that opens the admin API, the console and `/api/admin/hello`. */
export const ADMIN_ROLE = 'admin';

/** True when the user exists and is not disabled: only such a user signs in, redeems a grant or holds a valid token. */
export function isEnabled(user: User | null | undefined): user is User {
  return user !== null && user !== undefined && !user.disabled;
}

/** True when the user is enabled and has the admin role (checked again on every admin request). */
export function isAdmin(user: Pick<User, 'disabled' | 'roles'> | null | undefined): boolean {
  return user !== null && user !== undefined && !user.disabled && user.roles.includes(ADMIN_ROLE);
}

/** False for an account created at an upstream sign-in that never set a password: it signs in only upstream (or with a passkey). */
export function hasPassword(user: Pick<User, 'passwordHash'>): boolean {
  return user.passwordHash !== NO_PASSWORD;
}
