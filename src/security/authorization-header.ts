/**
 * The two `Authorization` schemes this server reads, parsed in one place:
 * HTTP Basic (RFC 7617; clients use it per RFC 6749 §2.3.1, admins with
 * their password) and Bearer (RFC 6750 §2.1). Strict: anything that is the
 * scheme but not well-formed is `'malformed'`, never a partial value.
 */

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The two halves of Basic credentials, as sent (RFC 7617 §2: split at the first colon). */
export interface BasicPair {
  user: string;
  password: string;
}

/**
 * `Authorization: Basic <base64(user ":" password)>`: null when the header
 * uses another scheme, `'malformed'` when it is Basic but not strict base64
 * of UTF-8 text with a colon.
 */
export function parseBasic(header: string): BasicPair | 'malformed' | null {
  // `\S+`, not `\S*`: with an empty token the spaces could be split between ` +` and ` *` in
  // every way, and a long run of them before a character that fails the match took quadratic time.
  const match = /^Basic(?: +(\S+))? *$/i.exec(header);
  if (!match) return null;
  const encoded = match[1] ?? '';
  if (encoded.length === 0 || encoded.length % 4 !== 0 || !BASE64.test(encoded)) return 'malformed';
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    return 'malformed';
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** RFC 6750 §2.1: `b64token`. */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * `Authorization: Bearer <token>`: null when the header uses another scheme,
 * `'malformed'` when it is Bearer without exactly one b64token.
 */
export function parseBearer(header: string): { token: string } | 'malformed' | null {
  if (!/^Bearer(\s|$)/i.test(header)) return null;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match && B64TOKEN.test(match[1]!) ? { token: match[1]! } : 'malformed';
}

/**
 * An access token in either scheme a resource accepts: `Bearer` (RFC 6750
 * §2.1) or `DPoP` (RFC 9449 §7.1, the same token68 syntax). Null for any
 * other scheme, `'malformed'` when the scheme is one of them without
 * exactly one b64token.
 */
export function parseAccessTokenHeader(header: string): { scheme: 'Bearer' | 'DPoP'; token: string } | 'malformed' | null {
  const bearer = parseBearer(header);
  if (bearer !== null) return bearer === 'malformed' ? bearer : { scheme: 'Bearer', token: bearer.token };
  if (!/^DPoP(\s|$)/i.test(header)) return null;
  const match = /^DPoP +(\S+) *$/i.exec(header);
  return match && B64TOKEN.test(match[1]!) ? { scheme: 'DPoP', token: match[1]! } : 'malformed';
}
