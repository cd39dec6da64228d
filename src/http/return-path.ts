/**
 * Where a sign-in form may send a browser back to afterwards (`next`): the
 * login pages (`/login?next=…`, when no authorization request is pending)
 * and the admin console's own sign-in. One rule for both: a path of this
 * server under one of the allowed prefixes, in a few plain characters.
 * Anything else (another host, `//host`, a backslash, a scheme, a dot
 * segment) is ignored, so the parameter can never become an open redirect
 * (RFC 9700 §4.11); and nothing a `Location` header cannot carry (a control
 * character, raw non-ASCII, which Node refuses with a 500) gets through.
 */
const PLAIN_PATH = /^\/[A-Za-z0-9/_-]*(\?[A-Za-z0-9=&_%.~-]*)?$/;
const MAX_LENGTH = 300;

/** The pages of the login pages' users: the account pages and the device flow. */
const RETURN_PREFIXES = ['/account', '/device'] as const;

/**
 * `next` if it is `prefix` itself or a page below it (`prefix/…`, `prefix?…`)
 * for one of `prefixes`, written in the plain characters above; else null.
 */
function safePathUnder(next: string | undefined, prefixes: readonly string[]): string | null {
  if (next === undefined || next.length > MAX_LENGTH || !PLAIN_PATH.test(next)) return null;
  return prefixes.some((prefix) => next === prefix || next.startsWith(`${prefix}/`) || next.startsWith(`${prefix}?`)) ? next : null;
}

/** `next` if it is one of the login pages' return targets (account, device flow), else null. */
export function safeReturnPath(next: string | undefined): string | null {
  return safePathUnder(next, RETURN_PREFIXES);
}

/**
 * `next` if it is a page of the admin console, its dashboard (`/admin`) or one
 * under `/admin/console`, else null: where the console's sign-in goes on to,
 * and where setting up an authenticator app for the console leads back to.
 */
export function safeConsolePath(next: string | undefined): string | null {
  return next === '/admin' ? next : safePathUnder(next, ['/admin/console']);
}

/** The sign-in page that comes back to `path` afterwards. */
export function loginThenReturnTo(path: string): string {
  return `/login?next=${encodeURIComponent(path)}`;
}
