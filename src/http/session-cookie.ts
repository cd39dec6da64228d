/**
 * The browser-session cookie. `__Host-` prefixed when the issuer is https
 * (which forces Secure, Path=/ and no Domain), HttpOnly, SameSite=Lax so the
 * session survives the top-level redirect back from a client but is not sent
 * on cross-site POSTs.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { BrowserSession, SessionService } from '../sessions/service.js';

export function sessionCookieName(config: Pick<Config, 'secureCookies'>): string {
  return config.secureCookies ? '__Host-sid' : 'sid';
}

/** The session named by the request's cookie, or null. */
export function readSession(request: FastifyRequest, sessions: SessionService, config: Pick<Config, 'secureCookies'>): Promise<BrowserSession | null> {
  return sessions.load(request.cookies[sessionCookieName(config)]);
}

export function setSessionCookie(
  reply: FastifyReply,
  session: BrowserSession,
  config: Pick<Config, 'secureCookies' | 'sessionTtlSeconds'>,
): void {
  reply.setCookie(sessionCookieName(config), session.id, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: config.secureCookies,
    maxAge: config.sessionTtlSeconds,
  });
}

export function clearSessionCookie(reply: FastifyReply, config: Pick<Config, 'secureCookies'>): void {
  reply.clearCookie(sessionCookieName(config), { path: '/', httpOnly: true, sameSite: 'lax', secure: config.secureCookies });
}

/** The request's session, or a new anonymous one (cookie set on the reply). */
export async function ensureSession(
  request: FastifyRequest,
  reply: FastifyReply,
  sessions: SessionService,
  config: Pick<Config, 'secureCookies' | 'sessionTtlSeconds'>,
): Promise<BrowserSession> {
  const existing = await readSession(request, sessions, config);
  if (existing) return existing;
  const session = await sessions.create();
  setSessionCookie(reply, session, config);
  return session;
}
