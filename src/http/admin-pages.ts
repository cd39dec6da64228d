/**
 * The admin console: server-rendered HTML pages over the same services as
 * the admin JSON API (`services.clients`, `services.users`).
 *
 * Paths: `GET /admin` (dashboard) and everything else under
 * `/admin/console/…`, so nothing collides with the JSON API at
 * `/admin/clients` and `/admin/users`.
 *
 * - Sign-in with an admin account puts the user into the browser session
 *   (`sessions/service.ts`, the same cookie as the login pages; the session
 *   id is replaced at sign-in). The role is checked again on every request,
 *   so taking `admin` away or disabling the account locks the console at
 *   once. Wrong passwords are throttled per username and per IP with the
 *   same keys as the admin API.
 * - Every form carries the session's CSRF token (synchronizer pattern) and
 *   every POST is refused without it.
 * - A client secret is shown once, in the response to the POST that created
 *   it, never stored, never put in a URL; the page is `no-store`.
 * - Bad input shows the form again, the message next to its field, what was
 *   typed kept (secrets never are).
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_METHODS, GRANT_TYPES } from '../clients/metadata.js';
import { OAuthError } from '../errors.js';
import type { Services } from '../services.js';
import type { BrowserSession } from '../sessions/service.js';
import type { Client, User } from '../storage/types.js';
import { ADMIN_ROLE, throttleKeys } from './admin-auth.js';
import { logError, toOAuthError } from './errors.js';
import { contentSecurityPolicy } from './security-headers.js';
import { clearSessionCookie, ensureSession, readSession, setSessionCookie } from './session-cookie.js';

export const CONSOLE = '/admin/console';
const SIGN_IN = `${CONSOLE}/sign-in`;
const PAGE_SIZE = 50;
const FLASH_KEY = 'adminConsoleNotice';

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

// ------------------------------------------------------------------ schemas

const csrf = { type: 'string', maxLength: 200 } as const;
const stringList = { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 200 } } as const;

const signInBody = {
  type: 'object',
  properties: { username: { type: 'string', maxLength: 200 }, password: { type: 'string', maxLength: 1024 }, next: { type: 'string', maxLength: 500 }, csrf_token: csrf },
} as const;

const clientBody = {
  type: 'object',
  properties: {
    client_name: { type: 'string', maxLength: 200 },
    redirect_uris: { type: 'string', maxLength: 50_000 },
    grant_types: stringList,
    token_endpoint_auth_method: { type: 'string', maxLength: 50 },
    scope: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 200 } },
    csrf_token: csrf,
  },
} as const;

const csrfOnly = { type: 'object', properties: { csrf_token: csrf } } as const;
const rolesBody = { type: 'object', properties: { roles: { type: 'string', maxLength: 2_000 }, csrf_token: csrf } } as const;
const statusBody = { type: 'object', properties: { disabled: { type: 'string', enum: ['true', 'false'] }, csrf_token: csrf } } as const;
const pageQuery = { type: 'object', properties: { page: { type: 'integer', minimum: 1, maximum: 100_000 } } } as const;
const signInQuery = { type: 'object', properties: { next: { type: 'string', maxLength: 500 } } } as const;
const clientParams = { type: 'object', required: ['client_id'], properties: { client_id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;
const userParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;

interface SignInBody {
  username?: string;
  password?: string;
  next?: string;
  csrf_token?: string;
}

interface ClientBody {
  client_name?: string;
  redirect_uris?: string;
  grant_types?: string[];
  token_endpoint_auth_method?: string;
  scope?: string[];
  csrf_token?: string;
}

// ------------------------------------------------------------------ view models

type ClientField = 'client_name' | 'redirect_uris' | 'grant_types' | 'token_endpoint_auth_method' | 'scope' | 'form';

interface ClientFormValues {
  client_name: string;
  redirect_uris: string;
  grant_types: string[];
  token_endpoint_auth_method: string;
  scope: string[];
}

const GRANT_LABELS: Record<string, string> = {
  authorization_code: 'Authorization code (with PKCE)',
  refresh_token: 'Refresh token',
  client_credentials: 'Client credentials (machine to machine)',
  password: 'Password (legacy)',
  implicit: 'Implicit (legacy)',
};

const AUTH_LABELS: Record<string, string> = {
  client_secret_basic: 'Confidential: secret in HTTP Basic (client_secret_basic)',
  client_secret_post: 'Confidential: secret in the form body (client_secret_post)',
  none: 'Public: no secret, PKCE required (none)',
};

function valuesOf(client: Client): ClientFormValues {
  return {
    client_name: client.clientName,
    redirect_uris: client.redirectUris.join('\n'),
    grant_types: [...client.grantTypes],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    scope: client.scope.split(' ').filter(Boolean),
  };
}

function valuesFromBody(body: ClientBody): ClientFormValues {
  return {
    client_name: body.client_name ?? '',
    redirect_uris: body.redirect_uris ?? '',
    grant_types: body.grant_types ?? [],
    token_endpoint_auth_method: body.token_endpoint_auth_method ?? '',
    scope: body.scope ?? [],
  };
}

function clientRow(client: Client) {
  return {
    clientId: client.clientId,
    clientName: client.clientName,
    type: client.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential',
    grantTypes: client.grantTypes.join(', '),
    redirectUris: client.redirectUris,
    createdAt: client.createdAt.toISOString().slice(0, 10),
  };
}

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

/** Checks each field on its own, so each message can stand next to its input. */
function checkClientFields(values: ClientFormValues, knownScopes: readonly string[]): Partial<Record<ClientField, string>> {
  const errors: Partial<Record<ClientField, string>> = {};
  if (values.client_name.trim() === '') errors.client_name = 'Enter a name people will recognise on the consent page.';
  if (values.grant_types.length === 0) errors.grant_types = 'Choose at least one grant type.';
  else if (values.grant_types.some((g) => !(GRANT_TYPES as readonly string[]).includes(g))) errors.grant_types = 'Unknown grant type.';
  if (!(AUTH_METHODS as readonly string[]).includes(values.token_endpoint_auth_method)) errors.token_endpoint_auth_method = 'Choose how the client authenticates.';
  if (values.scope.length === 0) errors.scope = 'Choose at least one scope.';
  else if (values.scope.some((s) => !knownScopes.includes(s))) errors.scope = 'Unknown scope.';
  return errors;
}

/** Which field an error from client metadata validation (RFC 7591 §3.2.2) belongs to. */
function fieldOf(err: OAuthError): ClientField {
  if (err.error === 'invalid_redirect_uri') return 'redirect_uris';
  const text = err.description;
  if (/client_name/.test(text)) return 'client_name';
  if (/scope/.test(text) && !/grant/.test(text)) return 'scope';
  if (/token_endpoint_auth_method|confidential client/.test(text)) return 'token_endpoint_auth_method';
  if (/grant|response type/.test(text)) return 'grant_types';
  return 'form';
}

function splitLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** Roles typed as a space- or comma-separated list. */
function splitRoles(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

/** Only a path inside the console may be a post-sign-in destination (no open redirect). */
function safeNext(next: string | undefined): string {
  if (typeof next !== 'string') return '/admin';
  if (next === '/admin' || (next.startsWith(`${CONSOLE}/`) && !next.includes('//') && !next.includes('\\'))) return next;
  return '/admin';
}

// ------------------------------------------------------------------ the scope

export interface AdminPagesOptions {
  services: Services;
}

export const adminPages: FastifyPluginAsync<AdminPagesOptions> = async (app, { services }) => {
  const { config } = services;
  const scopes = config.scopes;

  app.decorateRequest('consoleAdmin', null);

  // The copy button's script: a file, so the secret page's CSP can stay `script-src 'self'`.
  const script = await readFile(new URL('../../public/admin.js', import.meta.url));
  const scriptEtag = `"${createHash('sha256').update(script).digest('base64url').slice(0, 16)}"`;
  app.get('/assets/admin.js', async (request, reply) => {
    reply.header('cache-control', 'public, max-age=3600').header('etag', scriptEtag);
    if (request.headers['if-none-match'] === scriptEtag) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(script);
  });

  const render = (reply: FastifyReply, status: number, view: string, data: Record<string, unknown>) =>
    reply
      .code(status)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .view(`admin/${view}`, { serviceName: 'Admin console', ...data });

  const message = (reply: FastifyReply, status: number, title: string, text: string, admin: ConsoleAdmin | null) =>
    render(reply, status, 'message', { title, message: text, admin: admin ? navModel(admin) : null });

  const navModel = (admin: ConsoleAdmin) => ({ username: admin.user.username, csrfToken: admin.session.csrfToken });

  async function takeNotice(admin: ConsoleAdmin): Promise<string | null> {
    const notice = admin.session.data[FLASH_KEY];
    if (typeof notice !== 'string') return null;
    delete admin.session.data[FLASH_KEY];
    await services.sessions.save(admin.session);
    return notice;
  }

  async function setNotice(admin: ConsoleAdmin, text: string): Promise<void> {
    admin.session.data[FLASH_KEY] = text;
    await services.sessions.save(admin.session);
  }

  // Errors of this scope (validation, 404, 429, 503) as an HTML page.
  app.setErrorHandler(async (error, request, reply) => {
    const err = toOAuthError(error);
    logError(request, err);
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    const title = err.status === 404 ? 'Not found' : err.status >= 500 ? 'Something went wrong' : 'Cannot do that';
    return message(reply, err.status, title, err.description, request.consoleAdmin);
  });
  // Unknown console pages (only under the console's own prefix: the root 404 stays JSON).
  await app.register(
    async (scope) => {
      scope.setNotFoundHandler(async (_request, reply) => message(reply, 404, 'Not found', 'There is no such page in the admin console.', null));
    },
    { prefix: CONSOLE },
  );

  /**
   * The guard of every page but sign-in: a signed-in, enabled admin, and on
   * POST the session's CSRF token.
   */
  async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const session = await readSession(request, services.sessions, config);
    const user = session?.userId ? await services.users.get(session.userId).catch(() => null) : null;
    if (!session || !user || user.disabled || !user.roles.includes(ADMIN_ROLE)) {
      if (request.method === 'GET') {
        const next = request.url.split('?')[0]!;
        return reply.code(303).header('cache-control', 'no-store').redirect(`${SIGN_IN}?next=${encodeURIComponent(next)}`);
      }
      return message(reply, 401, 'Signed out', 'Your admin session has ended. Sign in again.', null);
    }
    const admin = { session, user };
    if (request.method === 'POST') {
      const token = (request.body as { csrf_token?: unknown } | undefined)?.csrf_token;
      if (!services.sessions.verifyCsrf(session, token)) {
        return message(reply, 403, 'Form expired', 'This form is out of date or was not sent from this console. Go back, reload the page and try again.', admin);
      }
    }
    request.consoleAdmin = admin;
    return undefined;
  }

  const admin = (request: FastifyRequest): ConsoleAdmin => request.consoleAdmin!;
  const guarded = { preHandler: requireAdmin };

  // ---------------------------------------------------------------- sign-in

  const signInPage = (reply: FastifyReply, status: number, data: { csrfToken: string; username?: string; next: string; error?: string | null; notice?: string | null }) =>
    render(reply, status, 'sign-in', { title: 'Admin sign-in', username: '', error: null, notice: null, ...data });

  app.get<{ Querystring: { next?: string } }>(`${SIGN_IN}`, { schema: { querystring: signInQuery } }, async (request, reply) => {
    const session = await ensureSession(request, reply, services.sessions, config);
    let notice: string | null = null;
    if (session.userId) {
      const user = await services.users.get(session.userId).catch(() => null);
      if (user && !user.disabled && user.roles.includes(ADMIN_ROLE)) return reply.code(303).redirect(safeNext(request.query.next));
      if (user) notice = `You are signed in as ${user.username}, who is not an administrator. Sign in with an admin account.`;
    }
    return signInPage(reply, 200, { csrfToken: session.csrfToken, next: safeNext(request.query.next), notice });
  });

  app.post<{ Body: SignInBody }>(`${SIGN_IN}`, { schema: { body: signInBody } }, async (request, reply) => {
    const body = request.body ?? {};
    const username = body.username ?? '';
    const next = safeNext(body.next);
    const session = await readSession(request, services.sessions, config);
    if (!session || !services.sessions.verifyCsrf(session, body.csrf_token)) {
      // Login CSRF: a sign-in not started from this form is refused.
      const fresh = await ensureSession(request, reply, services.sessions, config);
      return signInPage(reply, 403, { csrfToken: fresh.csrfToken, username, next, error: 'This form has expired. Sign in again.' });
    }
    if (username === '' || !body.password) {
      return signInPage(reply, 400, { csrfToken: session.csrfToken, username, next, error: 'Enter your username and password.' });
    }
    const keys = [throttleKeys.user(username), throttleKeys.ip(request.ip)];
    try {
      for (const key of keys) await services.throttle.check(key);
    } catch (err) {
      const e = toOAuthError(err);
      if (e.retryAfter !== undefined) reply.header('retry-after', String(e.retryAfter));
      return signInPage(reply, e.status, { csrfToken: session.csrfToken, username, next, error: e.description });
    }
    const user = await services.users.authenticate(username, body.password);
    if (!user) {
      await services.throttle.fail(...keys);
      services.metrics.loginFailed('admin_console');
      return signInPage(reply, 401, { csrfToken: session.csrfToken, username, next, error: 'Wrong username or password.' });
    }
    await services.throttle.reset(keys[0]!);
    if (!user.roles.includes(ADMIN_ROLE)) {
      return signInPage(reply, 403, { csrfToken: session.csrfToken, username, next, error: 'Only administrators can sign in to the admin console.' });
    }
    const signedIn = await services.sessions.signIn(session, user.id);
    setSessionCookie(reply, signedIn, config);
    request.log.info({ userId: user.id }, 'admin console sign-in');
    return reply.code(303).header('cache-control', 'no-store').redirect(next);
  });

  app.post(`${CONSOLE}/sign-out`, { ...guarded, schema: { body: csrfOnly } }, async (request, reply) => {
    await services.sessions.destroy(admin(request).session);
    clearSessionCookie(reply, config);
    return reply.code(303).header('cache-control', 'no-store').redirect(SIGN_IN);
  });

  // ---------------------------------------------------------------- dashboard

  app.get('/admin', guarded, async (request, reply) => {
    const a = admin(request);
    const [clients, users] = await Promise.all([services.clients.list({ limit: 1, offset: 0 }), services.users.list({ limit: 1, offset: 0 })]);
    return render(reply, 200, 'dashboard', {
      title: 'Dashboard',
      admin: navModel(a),
      notice: await takeNotice(a),
      clientCount: clients.total,
      userCount: users.total,
      issuer: config.issuer,
      metricsOnMainPort: config.metricsPort === undefined,
    });
  });
  app.get(`${CONSOLE}`, async (_request, reply) => reply.code(303).redirect('/admin'));

  // ---------------------------------------------------------------- clients

  app.get<{ Querystring: { page?: number } }>(`${CONSOLE}/clients`, { ...guarded, schema: { querystring: pageQuery } }, async (request, reply) => {
    const a = admin(request);
    const page = request.query.page ?? 1;
    const { clients, total } = await services.clients.list({ limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE });
    return render(reply, 200, 'clients', {
      title: 'Clients',
      admin: navModel(a),
      notice: await takeNotice(a),
      clients: clients.map(clientRow),
      pager: pager(`${CONSOLE}/clients`, page, total),
    });
  });

  const clientForm = (
    reply: FastifyReply,
    status: number,
    a: ConsoleAdmin,
    data: { client: Client | null; values: ClientFormValues; errors?: Partial<Record<ClientField, string>>; notice?: string | null },
  ) =>
    render(reply, status, 'client-form', {
      title: data.client ? `Client ${data.client.clientName}` : 'Register a client',
      admin: navModel(a),
      client: data.client ? clientRow(data.client) : null,
      values: data.values,
      errors: data.errors ?? {},
      notice: data.notice ?? null,
      grantOptions: GRANT_TYPES.map((g) => ({ value: g, label: GRANT_LABELS[g] ?? g })),
      authOptions: AUTH_METHODS.map((m) => ({ value: m, label: AUTH_LABELS[m] ?? m })),
      scopeOptions: scopes,
    });

  const secretPage = (reply: FastifyReply, status: number, a: ConsoleAdmin, client: Client, clientSecret: string | null, heading: string) => {
    // The copy button's script is the only script in the console, and only here.
    reply.header('content-security-policy', contentSecurityPolicy(config, { 'script-src': ["'self'"] }));
    return render(reply, status, 'client-secret', { title: heading, admin: navModel(a), client: clientRow(client), clientSecret });
  };

  app.get(`${CONSOLE}/clients/new`, guarded, async (request, reply) =>
    clientForm(reply, 200, admin(request), {
      client: null,
      values: { client_name: '', redirect_uris: '', grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic', scope: [...scopes] },
    }),
  );

  app.post<{ Body: ClientBody }>(`${CONSOLE}/clients`, { ...guarded, schema: { body: clientBody } }, async (request, reply) => {
    const a = admin(request);
    const values = valuesFromBody(request.body ?? {});
    const errors = checkClientFields(values, scopes);
    if (Object.keys(errors).length > 0) return clientForm(reply, 400, a, { client: null, values, errors });
    try {
      const { client, clientSecret } = await services.clients.register({
        client_name: values.client_name.trim(),
        redirect_uris: splitLines(values.redirect_uris),
        grant_types: values.grant_types,
        token_endpoint_auth_method: values.token_endpoint_auth_method,
        scope: values.scope.join(' '),
      });
      request.log.info({ clientId: client.clientId, by: a.user.id }, 'client registered in the admin console');
      return secretPage(reply, 201, a, client, clientSecret, 'Client registered');
    } catch (err) {
      if (err instanceof OAuthError && err.status === 400) return clientForm(reply, 400, a, { client: null, values, errors: { [fieldOf(err)]: err.description } });
      throw err;
    }
  });

  app.get<{ Params: { client_id: string } }>(`${CONSOLE}/clients/:client_id`, { ...guarded, schema: { params: clientParams } }, async (request, reply) => {
    const a = admin(request);
    const client = await services.clients.get(request.params.client_id);
    return clientForm(reply, 200, a, { client, values: valuesOf(client), notice: await takeNotice(a) });
  });

  app.post<{ Params: { client_id: string }; Body: ClientBody }>(
    `${CONSOLE}/clients/:client_id`,
    { ...guarded, schema: { params: clientParams, body: clientBody } },
    async (request, reply) => {
      const a = admin(request);
      const client = await services.clients.get(request.params.client_id);
      const values = valuesFromBody(request.body ?? {});
      const errors = checkClientFields(values, scopes);
      if (Object.keys(errors).length > 0) return clientForm(reply, 400, a, { client, values, errors });
      try {
        const updated = await services.clients.update(client.clientId, {
          client_name: values.client_name.trim(),
          redirect_uris: splitLines(values.redirect_uris),
          grant_types: values.grant_types,
          token_endpoint_auth_method: values.token_endpoint_auth_method,
          scope: values.scope.join(' '),
        });
        request.log.info({ clientId: client.clientId, by: a.user.id }, 'client changed in the admin console');
        // Turning a public client confidential creates its first secret: show it now, once.
        if (updated.clientSecret) return secretPage(reply, 200, a, updated.client, updated.clientSecret, 'Client is now confidential');
        await setNotice(a, 'Changes saved.');
        return reply.code(303).redirect(`${CONSOLE}/clients/${encodeURIComponent(client.clientId)}`);
      } catch (err) {
        if (err instanceof OAuthError && err.status === 400) return clientForm(reply, 400, a, { client, values, errors: { [fieldOf(err)]: err.description } });
        throw err;
      }
    },
  );

  app.post<{ Params: { client_id: string } }>(
    `${CONSOLE}/clients/:client_id/secret`,
    { ...guarded, schema: { params: clientParams, body: csrfOnly } },
    async (request, reply) => {
      const a = admin(request);
      const { client, clientSecret } = await services.clients.rotateSecret(request.params.client_id);
      request.log.info({ clientId: client.clientId, by: a.user.id }, 'client secret rotated in the admin console');
      return secretPage(reply, 200, a, client, clientSecret, 'New client secret');
    },
  );

  app.get<{ Params: { client_id: string } }>(`${CONSOLE}/clients/:client_id/delete`, { ...guarded, schema: { params: clientParams } }, async (request, reply) => {
    const client = await services.clients.get(request.params.client_id);
    return render(reply, 200, 'client-delete', { title: `Delete ${client.clientName}?`, admin: navModel(admin(request)), client: clientRow(client) });
  });

  app.post<{ Params: { client_id: string } }>(
    `${CONSOLE}/clients/:client_id/delete`,
    { ...guarded, schema: { params: clientParams, body: csrfOnly } },
    async (request, reply) => {
      const a = admin(request);
      const client = await services.clients.get(request.params.client_id);
      await services.clients.delete(client.clientId);
      request.log.info({ clientId: client.clientId, by: a.user.id }, 'client deleted in the admin console');
      await setNotice(a, `Client "${client.clientName}" (${client.clientId}) was deleted.`);
      return reply.code(303).redirect(`${CONSOLE}/clients`);
    },
  );

  // ---------------------------------------------------------------- users

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

  const userPage = (
    reply: FastifyReply,
    status: number,
    a: ConsoleAdmin,
    user: User,
    extra: { roles?: string; error?: string | null; statusError?: string | null; notice?: string | null } = {},
  ) =>
    render(reply, status, 'user', {
      title: `User ${user.username}`,
      admin: navModel(a),
      user: userRow(user),
      self: user.id === a.user.id,
      roles: extra.roles ?? user.roles.join(' '),
      error: extra.error ?? null,
      statusError: extra.statusError ?? null,
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
        await services.users.update(user.id, { roles });
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
      await services.users.update(user.id, { disabled });
      request.log.info({ userId: user.id, by: a.user.id, disabled }, 'user status changed in the admin console');
      await setNotice(a, disabled ? 'Account disabled: the user can no longer sign in, and every token they held was revoked.' : 'Account enabled.');
      return reply.code(303).redirect(`${CONSOLE}/users/${encodeURIComponent(user.id)}`);
    },
  );
};

function pager(base: string, page: number, total: number) {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  return {
    page,
    pages,
    total,
    prev: page > 1 ? `${base}?page=${page - 1}` : null,
    next: page < pages ? `${base}?page=${page + 1}` : null,
  };
}

