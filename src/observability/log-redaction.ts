/**
 * What the request log may say about a request and an error, so that no
 * credential ever reaches it (STYLE.md: "Log through request.log, redacting
 * credentials, cookies, codes and tokens"):
 *
 * - URLs keep their path and the names of their query parameters, but the
 *   values only of parameters known to be harmless. An allowlist, not a
 *   denylist: a parameter this server does not know, or a known one spelled
 *   with percent-escapes in its name (`acc%65ss_token`), is redacted too.
 * - Errors keep an allowlist of fields (type, message, stack, code, status
 *   and their causes). Other enumerable fields are dropped: Node's
 *   `clientError` carries `rawPacket`, the raw request bytes with their
 *   `Authorization` and `Cookie` headers, and client libraries attach
 *   request bodies or configs to their errors.
 */

/** Query parameters whose values are safe to log: no credential, code, token or CSRF value. */
const SAFE_QUERY_PARAMS = new Set([
  'response_type',
  'response_mode',
  'client_id',
  'redirect_uri',
  'post_logout_redirect_uri',
  'scope',
  'prompt',
  'max_age',
  'display',
  'ui_locales',
  'code_challenge_method',
  'login_hint',
  'error',
  'error_description',
  'page',
  'limit',
  'offset',
  'next',
  'signed_out',
  'rid',
]);

export const REDACTED = '[redacted]';

/** The URL with the value of every query parameter not known to be harmless replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      if (eq === -1) return name.length > 64 ? REDACTED : name;
      // Only a plainly spelled name counts as safe: an escaped one could decode to anything.
      return SAFE_QUERY_PARAMS.has(name) ? pair : `${name.length > 64 ? REDACTED : name}=${REDACTED}`;
    })
    .join('&');
  return `${url.slice(0, q)}?${redacted}`;
}

const ERROR_FIELDS = ['code', 'statusCode', 'status', 'error', 'errno', 'syscall', 'validationContext'] as const;
const MAX_CAUSE_DEPTH = 5;

export interface SerializedError {
  type: string;
  message: string;
  stack: string;
  [field: string]: unknown;
}

/** A log-safe view of an error: type, message, stack, a few well-known fields, and its causes. */
export function serializeError(err: Error): SerializedError {
  return serialize(err, 0) as SerializedError;
}

function serialize(err: unknown, depth: number): unknown {
  if (!(err instanceof Error)) return typeof err === 'object' && err !== null ? { type: 'non-error', value: Object.prototype.toString.call(err) } : err;
  const out: SerializedError = { type: err.name, message: err.message, stack: err.stack ?? '' };
  const fields = err as unknown as Record<string, unknown>;
  for (const key of ERROR_FIELDS) {
    const value = fields[key];
    if (typeof value === 'string' || typeof value === 'number') out[key] = value;
  }
  if (depth < MAX_CAUSE_DEPTH) {
    if (err.cause !== undefined) out.cause = serialize(err.cause, depth + 1);
    if (err instanceof AggregateError) out.errors = err.errors.slice(0, 10).map((e: unknown) => serialize(e, depth + 1));
  }
  return out;
}
