/**
 * Authentication context classes (OIDC Core §2 `acr`, §3.1.2.1 `acr_values`)
 * and the methods behind them (RFC 8176 `amr`).
 *
 * Two classes, named by URN (OIDC Core §2: absolute URIs, so they cannot
 * collide with another party's short names):
 *
 * - `ACR_PASSWORD`: signed in with a password (or any single factor);
 * - `ACR_MFA`: signed in with a second factor too (`otp`; a passkey, `hwk`/`swk`,
 *   counts as possession plus the device's own check).
 *
 * A request's `acr_values` is read as the classes the client accepts: one that
 * names only `ACR_MFA` makes a password-only session go through the second
 * factor again; naming `ACR_PASSWORD` accepts either. Unknown values are
 * ignored (OIDC Core §3.1.2.1: they are voluntary).
 */

export const ACR_PASSWORD = 'urn:oauth-server:acr:pwd';
export const ACR_MFA = 'urn:oauth-server:acr:mfa';
export const ACR_VALUES_SUPPORTED = [ACR_PASSWORD, ACR_MFA] as const;

/** The methods that make a sign-in multi-factor (RFC 8176 §2). */
const MULTI_FACTOR_METHODS = new Set(['otp', 'hwk', 'swk', 'mfa']);

/** The amr of a sign-in recorded before amr existed: a password. */
export function amrOf(amr: readonly string[] | undefined): string[] {
  return amr && amr.length > 0 ? [...amr] : ['pwd'];
}

/** Whether a sign-in with these methods was multi-factor. */
export function isMultiFactor(amr: readonly string[] | undefined): boolean {
  return amrOf(amr).some((m) => MULTI_FACTOR_METHODS.has(m));
}

/** The class a sign-in with these methods achieved. */
export function acrOf(amr: readonly string[] | undefined): string {
  return isMultiFactor(amr) ? ACR_MFA : ACR_PASSWORD;
}

/** Whether the request's `acr_values` ask for more than a sign-in with these methods achieved. */
export function needsMultiFactor(acrValues: readonly string[], amr: readonly string[] | undefined): boolean {
  const known = acrValues.filter((v) => (ACR_VALUES_SUPPORTED as readonly string[]).includes(v));
  if (known.length === 0 || known.includes(ACR_PASSWORD)) return false;
  return !isMultiFactor(amr);
}
