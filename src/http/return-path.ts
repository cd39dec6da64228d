/**
 * Where the sign-in form may send a browser back to after signing in when no
 * authorization request is pending (`/login?next=…`). Only this server's own
 * pages that ask for a signed-in user are allowed, named by path: anything
 * else (another host, `//host`, a backslash, a scheme) is ignored, so the
 * parameter can never become an open redirect (RFC 9700 §4.11).
 */
const RETURN_PATHS = /^\/(account|device)(\/[A-Za-z0-9/_-]*)?(\?[A-Za-z0-9=&_%.~-]*)?$/;

/** `next` if it is one of the pages above, else null. */
export function safeReturnPath(next: string | undefined): string | null {
  if (next === undefined || next.length > 300) return null;
  return RETURN_PATHS.test(next) ? next : null;
}

/** The sign-in page that comes back to `path` afterwards. */
export function loginThenReturnTo(path: string): string {
  return `/login?next=${encodeURIComponent(path)}`;
}
