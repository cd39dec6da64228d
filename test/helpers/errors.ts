/** Test helpers for domain code that throws `OAuthError`s. */

/**
 * The `error` code `fn` throws (`invalid_scope`, `invalid_client`, ...),
 * `undefined` for a thrown value without one, `null` when it does not throw.
 */
export function errorCode(fn: () => unknown): string | null | undefined {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as { error?: string }).error;
  }
}
