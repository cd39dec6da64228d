/**
 * What the admin console's pages share: paths, the signed-in admin on the
 * request, the render helpers and the guard, handed from the console's scope
 * (`../admin-pages.ts`) to the page groups (`clients.ts`, `users.ts`).
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { userActor, type ChangeContext } from '../../audit/events.js';
import type { Services } from '../../services.js';
import type { BrowserSession } from '../../sessions/service.js';
import type { User } from '../../storage/types.js';

export const CONSOLE = '/admin/console';
export const SIGN_IN = `${CONSOLE}/sign-in`;
export const PAGE_SIZE = 50;

export interface ConsoleAdmin {
  session: BrowserSession;
  user: User;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in admin of the console; set by the console scope's guard, null elsewhere. */
    consoleAdmin: ConsoleAdmin | null;
  }
}

export const csrf = { type: 'string', maxLength: 200 } as const;
export const csrfOnly = { type: 'object', properties: { csrf_token: csrf } } as const;
export const pageQuery = { type: 'object', properties: { page: { type: 'integer', minimum: 1, maximum: 100_000 } } } as const;

/** The nav bar's view model: who is signed in, and the token of the sign-out form. */
export interface NavModel {
  username: string;
  csrfToken: string;
}

/** What the console's pages use. */
export type ConsoleServices = Pick<Services, 'config' | 'now' | 'clients' | 'users' | 'secondFactor' | 'consoleSessions' | 'audit' | 'metrics' | 'identityProviders'>;

export interface ConsoleContext {
  services: ConsoleServices;
  /** Renders `views/admin/<view>.eta`, `no-store`. */
  render(reply: FastifyReply, status: number, view: string, data: Record<string, unknown>): FastifyReply | Promise<FastifyReply>;
  navModel(admin: ConsoleAdmin): NavModel;
  /** Reads and clears the one-time notice ("Changes saved.") kept in the session. */
  takeNotice(admin: ConsoleAdmin): Promise<string | null>;
  setNotice(admin: ConsoleAdmin, text: string): Promise<void>;
  /** Route options that require a signed-in admin (and the CSRF token on POST). */
  guarded: { preHandler: preHandlerAsyncHookHandler };
  /** The signed-in admin of a guarded request. */
  admin(request: FastifyRequest): ConsoleAdmin;
}

/** Who changes something in the console, and from where (the audit trail's actor and address). */
export function changeContextOf(request: FastifyRequest): ChangeContext {
  return { actor: userActor(request.consoleAdmin!.user), ip: request.ip };
}

/** Links to the neighbouring pages of a list; `query` (a list's filters) is kept in them. */
export function pager(base: string, page: number, total: number, query: Readonly<Record<string, string>> = {}) {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (n: number) => `${base}?${new URLSearchParams({ ...query, page: String(n) }).toString()}`;
  return {
    page,
    pages,
    total,
    prev: page > 1 ? link(page - 1) : null,
    next: page < pages ? link(page + 1) : null,
  };
}
