/**
 * Scope handling (RFC 6749 §3.3): parsing the `scope` parameter and deciding
 * what is granted.
 */
import { SCOPE_TOKEN } from '../config.js';
import { invalidScope } from '../errors.js';
import type { User } from '../storage/types.js';
import { isAdmin } from '../users/account.js';
import { isMultiFactor } from './acr.js';

/**
 * The scope that opens the admin API (SPEC "Admin API"). Built in, whatever
 * `SCOPES` says, and held to three rules: granted only when requested by
 * name (never part of the default, "all registered scopes"), only to clients
 * an operator registered for it, and only to users with role admin.
 */
export const ADMIN_SCOPE = 'admin';

/**
 * OIDC Core §11: asks for a refresh token that works while the user is away;
 * ignored where the response type brings no code (so no refresh token).
 */
export const OFFLINE_ACCESS_SCOPE = 'offline_access';

/** Granted only when requested by name, never as part of the default. */
const EXPLICIT_ONLY: ReadonlySet<string> = new Set([ADMIN_SCOPE]);

/**
 * Scopes that only make sense for a person (OIDC Core §5.4, §11, and the
 * admin scope, which speaks for an admin user): never granted to a client
 * acting on its own behalf (client credentials).
 */
export const USER_ONLY_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'address', 'phone', OFFLINE_ACCESS_SCOPE, ADMIN_SCOPE]);

/** Every scope a client may be registered for: the configured `SCOPES` and the built-in admin scope. */
export function registrableScopes(configured: readonly string[]): string[] {
  return configured.includes(ADMIN_SCOPE) ? [...configured] : [...configured, ADMIN_SCOPE];
}

/** Of the granted scopes, those this user may hold: the admin scope only for an enabled admin. */
export function scopesForUser(scopes: readonly string[], user: Pick<User, 'disabled' | 'roles'>): string[] {
  return scopes.filter((s) => s !== ADMIN_SCOPE || isAdmin(user));
}

/**
 * With `REQUIRE_MFA_FOR_ADMINS`, whether granting `scopes` to `user`, signed
 * in with `amr`, wants a second factor first: the admin scope for an admin
 * signed in with a password alone (the admin API's key must not come from
 * one). At /authorize the user is sent through the second factor; where no
 * step-up exists (the device page) the scope is left out.
 */
export function adminScopeLacksSecondFactor(
  scopes: readonly string[],
  user: Pick<User, 'disabled' | 'roles'>,
  amr: readonly string[] | undefined,
  requireMfaForAdmins: boolean | undefined,
): boolean {
  return requireMfaForAdmins === true && scopes.includes(ADMIN_SCOPE) && isAdmin(user) && !isMultiFactor(amr);
}

/**
 * Parses a `scope` parameter: scope-tokens separated by spaces (RFC 6749
 * §3.3). Undefined or blank → undefined ("not requested"); duplicates are
 * dropped, order kept. Throws `invalid_scope` on a malformed token.
 */
export function parseScopeParameter(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const tokens = raw.split(' ').filter((s) => s.length > 0);
  if (tokens.length === 0) return undefined;
  for (const token of tokens) {
    if (!SCOPE_TOKEN.test(token)) throw invalidScope('The scope parameter is malformed (RFC 6749 §3.3: space-separated scope tokens).');
  }
  return [...new Set(tokens)];
}

/**
 * The scopes to grant: the requested ones the client is registered for
 * (RFC 6749 §3.3: the server may grant less than requested, and says so in
 * the response's `scope`), or, when none were requested, all of the client's
 * registered scopes (the documented default) except those granted only by
 * name (`admin`). Scopes this server does not know are an error
 * (`invalid_scope`), and so is an empty result.
 *
 * @param requested parsed `scope` parameter (undefined: not sent)
 * @param registered the client's registered scopes
 * @param known the scopes this server knows (config `SCOPES`)
 * @param allowed optional further filter (e.g. no user-only scopes for client credentials)
 */
export function grantScopes(
  requested: readonly string[] | undefined,
  registered: readonly string[],
  known: readonly string[],
  allowed: (scope: string) => boolean = () => true,
): string[] {
  const isKnown = (s: string) => known.includes(s) || s === ADMIN_SCOPE;
  if (requested !== undefined) {
    const unknown = requested.filter((s) => !isKnown(s));
    if (unknown.length > 0) throw invalidScope(`Unknown scope: ${unknown.join(' ')}.`);
  }
  const base = requested ?? registered.filter((s) => !EXPLICIT_ONLY.has(s));
  const granted = base.filter((s) => registered.includes(s) && isKnown(s) && allowed(s));
  if (granted.length === 0) {
    throw invalidScope(requested === undefined ? 'The client is not registered for any scope usable with this grant.' : 'None of the requested scopes is allowed for this client.');
  }
  return granted;
}

/**
 * Scope of a refreshed access token (RFC 6749 §6): the requested scopes,
 * which must all have been granted originally (else `invalid_scope`), or the
 * original scope; in both cases only what the client is still registered for.
 */
export function narrowScopes(requested: readonly string[] | undefined, original: readonly string[], registered: readonly string[]): string[] {
  if (requested !== undefined) {
    const wider = requested.filter((s) => !original.includes(s));
    if (wider.length > 0) throw invalidScope(`A refresh cannot add scopes that were not granted originally: ${wider.join(' ')}.`);
  }
  const granted = (requested ?? original).filter((s) => registered.includes(s));
  if (granted.length === 0) throw invalidScope('None of the scopes of this grant is still allowed for this client.');
  return granted;
}
