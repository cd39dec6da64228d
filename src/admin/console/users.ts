/**
 * The admin console's user pages: list users, change a user's roles,
 * disable or enable an account, reset the second factor of a user who lost
 * their authenticator app (`secondFactor.reset`: their sessions and tokens
 * end). An admin cannot take their own admin role or disable themselves (no
 * lock-out by accident), nor reset their own app here: that is the account
 * page's, with a code or the password.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { OAuthError } from '../../errors.js';
import type { User } from '../../storage/types.js';
import { ADMIN_ROLE } from '../../users/account.js';
import { changeContextOf, CONSOLE, csrf, csrfOnly, PAGE_SIZE, pageQuery, pager, type ConsoleAdmin, type ConsoleContext } from './context.js';

const rolesBody = { type: 'object', properties: { roles: { type: 'string', maxLength: 2_000 }, csrf_token: csrf } } as const;
const statusBody = { type: 'object', properties: { disabled: { type: 'string', enum: ['true', 'false'] }, csrf_token: csrf } } as const;
const userParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;

function userRow(user: User) {
  return {
    id: user.id,
    username: user.username,
    email: user.email ?? '',
    roles: user.roles.join(' '),
    disabled: user.disabled,
    createdAt: user.createdAt.toISOString().slice(0, 10),
  };
}


/** Roles typed as a space- or comma-separated list. */
function splitRoles(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

/** Registers the user pages on the console's scope. */
export function registerUserPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { services, render, navModel, takeNotice, setNotice, guarded, admin } = ctx;

  app.get<{ Querystring: { page?: number } }>(`${CONSOLE}/users`, { ...guarded, schema: { querystring: pageQuery } }, async (request, reply) => {
    const a = admin(request);
    const page = request.query.page ?? 1;
    const { users, total } = await services.users.list({ limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE });
    return render(reply, 200, 'users', {
      title: 'Users',
      admin: navModel(a),
      notice: await takeNotice(a),
      users: users.map(userRow),
      pager: pager(`${CONSOLE}/users`, page, total),
    });
  });

  const userPage = async (
    reply: FastifyReply,
    status: number,
    a: ConsoleAdmin,
    user: User,
    extra: { roles?: string; error?: string | null; statusError?: string | null; secondFactorError?: string | null; notice?: string | null } = {},
  ) =>
    render(reply, status, 'user', {
      title: `User ${user.username}`,
      admin: navModel(a),
      user: userRow(user),
      self: user.id === a.user.id,
      roles: extra.roles ?? user.roles.join(' '),
      secondFactor: await services.secondFactor.status(user.id),
      error: extra.error ?? null,
      statusError: extra.statusError ?? null,
      secondFactorError: extra.secondFactorError ?? null,
      notice: extra.notice ?? null,
    });

  app.get<{ Params: { id: string } }>(`${CONSOLE}/users/:id`, { ...guarded, schema: { params: userParams } }, async (request, reply) => {
    const a = admin(request);
    const user = await services.users.get(request.params.id);
    return userPage(reply, 200, a, user, { notice: await takeNotice(a) });
  });

  app.post<{ Params: { id: string }; Body: { roles?: string } }>(
    `${CONSOLE}/users/:id/roles`,
    { ...guarded, schema: { params: userParams, body: rolesBody } },
    async (request, reply) => {
      const a = admin(request);
      const user = await services.users.get(request.params.id);
      const typed = request.body?.roles ?? '';
      const roles = splitRoles(typed);
      if (user.id === a.user.id && !roles.includes(ADMIN_ROLE)) {
        return userPage(reply, 400, a, user, { roles: typed, error: `You cannot remove your own "${ADMIN_ROLE}" role; ask another admin.` });
      }
      try {
        await services.users.update(user.id, { roles }, changeContextOf(request));
      } catch (err) {
        if (err instanceof OAuthError && err.status === 400) return userPage(reply, 400, a, user, { roles: typed, error: err.description });
        throw err;
      }
      request.log.info({ userId: user.id, by: a.user.id }, 'user roles changed in the admin console');
      await setNotice(a, 'Roles saved.');
      return reply.code(303).redirect(`${CONSOLE}/users/${encodeURIComponent(user.id)}`);
    },
  );

  app.post<{ Params: { id: string }; Body: { disabled?: 'true' | 'false' } }>(
    `${CONSOLE}/users/:id/status`,
    { ...guarded, schema: { params: userParams, body: statusBody } },
    async (request, reply) => {
      const a = admin(request);
      const user = await services.users.get(request.params.id);
      const disabled = request.body?.disabled === 'true';
      if (disabled && user.id === a.user.id) return userPage(reply, 400, a, user, { statusError: 'You cannot disable your own account.' });
      await services.users.update(user.id, { disabled }, changeContextOf(request));
      request.log.info({ userId: user.id, by: a.user.id, disabled }, 'user status changed in the admin console');
      await setNotice(a, disabled ? 'Account disabled: the user can no longer sign in, and every token they held was revoked.' : 'Account enabled.');
      return reply.code(303).redirect(`${CONSOLE}/users/${encodeURIComponent(user.id)}`);
    },
  );

  app.post<{ Params: { id: string } }>(
    `${CONSOLE}/users/:id/second-factor/reset`,
    { ...guarded, schema: { params: userParams, body: csrfOnly } },
    async (request, reply) => {
      const a = admin(request);
      const user = await services.users.get(request.params.id);
      if (user.id === a.user.id) {
        return userPage(reply, 400, a, user, { secondFactorError: 'Remove your own authenticator app on your account page (/account), with a code or your password.' });
      }
      // 404 (the error page) when the user has none: another admin was first.
      await services.secondFactor.reset(user, changeContextOf(request));
      request.log.info({ userId: user.id, by: a.user.id }, 'second factor reset in the admin console');
      await setNotice(a, 'Authenticator app removed: the user signs in without it now, and every session and token they held has ended.');
      return reply.code(303).redirect(`${CONSOLE}/users/${encodeURIComponent(user.id)}`);
    },
  );
}
