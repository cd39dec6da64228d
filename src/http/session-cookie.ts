/**
 * The session cookies: one per kind of session (`sessions/service.ts`), so
 * the admin console's sign-in is never opened by the single sign-on cookie
 * of the login pages. `__Host-` prefixed when the issuer is https (which
 * forces Secure, Path=/ and no Domain), HttpOnly.
 *
 * - `browser` (`sid`): SameSite=Lax, so the session survives the top-level
 *   redirect back from a client but is not sent on cross-site POSTs.
 * - `console` (`admin`): SameSite=Strict: nothing that starts on another
 *   site, not even a link, arrives signed in to the console.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { BrowserSession, SessionDevice, SessionService } from '../sessions/service.js';

type CookieConfig = Pick<Config, 'secureCookies'>;

const NAMES = { browser: 'sid', console: 'admin' } as const;
const SAME_SITE = { browser: 'lax', console: 'strict' } as const;

export function sessionCookieName(sessions: Pick<SessionService, 'kind'>, config: CookieConfig): string {
  return config.secureCookies ? `__Host-${NAMES[sessions.kind]}` : NAMES[sessions.kind];
}

/** The session named by the request's cookie of this kind, or null. */
export function readSession(request: FastifyRequest, sessions: SessionService, config: CookieConfig): Promise<BrowserSession | null> {
  // Parsed here, where a session is wanted: the cookie plugin does not parse every request (`app.ts`).
  const header = request.headers.cookie;
  return sessions.load(header === undefined ? undefined : request.server.parseCookie(header)[sessionCookieName(sessions, config)]);
}

export function setSessionCookie(reply: FastifyReply, sessions: SessionService, session: BrowserSession, config: CookieConfig): void {
  reply.setCookie(sessionCookieName(sessions, config), session.id, {
    path: '/',
    httpOnly: true,
    sameSite: SAME_SITE[sessions.kind],
    secure: config.secureCookies,
    maxAge: sessions.ttlSeconds,
  });
}

export function clearSessionCookie(reply: FastifyReply, sessions: SessionService, config: CookieConfig): void {
  reply.clearCookie(sessionCookieName(sessions, config), { path: '/', httpOnly: true, sameSite: SAME_SITE[sessions.kind], secure: config.secureCookies });
}

/** The browser a request comes from, as the account page's list of sessions shows it. */
export function deviceOf(request: FastifyRequest): SessionDevice {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof agent === 'string' ? agent : '' };
}

/** The request's session of this kind, or a new anonymous one (cookie set on the reply). */
export async function ensureSession(request: FastifyRequest, reply: FastifyReply, sessions: SessionService, config: CookieConfig): Promise<BrowserSession> {
  const existing = await readSession(request, sessions, config);
  if (existing) return existing;
  const session = await sessions.create(deviceOf(request));
  setSessionCookie(reply, sessions, session, config);
  return session;
}
