/**
 * The admin JSON API (SPEC "Admin API"): clients (RFC 7591 field names),
 * users, users' remembered consents and second factor (an admin's reset of
 * a lost authenticator app), and `GET /metrics` on the main port (unless
 * `METRICS_PORT` serves it elsewhere). A plain encapsulated plugin: its
 * authentication hook and content-type rules apply to these routes only.
 *
 * Conventions: 201 + the resource on create, 204 on delete, 404 for an
 * unknown id, 409 for a taken username; lists are `{items, total, limit,
 * offset}`; errors are `{error, error_description}`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ClientMetadataInput } from '../clients/metadata.js';
import { isOAuthError } from '../errors.js';
import { SECURITY } from '../http/schemas.js';
import { changeContextOf, createAdminAuth } from './auth.js';
import { registerIdentityProviderRoutes } from './identity-providers-api.js';
import type { Services } from '../services.js';
import type { Page, User } from '../storage/types.js';
import {
  ADMIN_TAG,
  clientCreateBody,
  clientIdParams,
  clientListResponse,
  clientPatchBody,
  clientResponse,
  consentListResponse,
  adminErrorResponses,
  eventListResponse,
  eventQuery,
  initialAccessTokenCreateBody,
  initialAccessTokenIdParams,
  initialAccessTokenListResponse,
  initialAccessTokenResponse,
  pageQuery,
  userConsentParams,
  userCreateBody,
  userIdParams,
  userListResponse,
  userPatchBody,
  userResponse,
} from './api-schemas.js';
import { auditEventToWire, clientToWire, consentToWire, initialAccessTokenToWire, userToWire } from './wire.js';
import type { AuditFilterInput } from '../audit/filter.js';

export type AdminApiServices = Pick<
  Services,
  'config' | 'clients' | 'initialAccessTokens' | 'users' | 'secondFactor' | 'consents' | 'tokens' | 'metrics' | 'audit' | 'identityProviders'
>;

interface IdParams {
  id: string;
}
interface ClientIdParams {
  client_id: string;
}
interface NewUserBody {
  username: string;
  password: string;
  email?: string | null;
  roles?: string[];
}
interface UserPatchBody {
  password?: string;
  email?: string | null;
  roles?: string[];
  disabled?: boolean;
}

const doc = (summary: string, extra: Record<string, unknown> = {}) => ({ tags: [ADMIN_TAG], summary, security: SECURITY.admin, ...extra });

export const adminApi: FastifyPluginAsync<{ services: AdminApiServices }> = async (app, { services }) => {
  app.decorateRequest('adminPrincipal', null);
  app.addHook('onRequest', createAdminAuth(services));
  app.addHook('onSend', async (_request, reply) => {
    // Admin answers carry secrets (client_secret) and personal data.
    reply.header('cache-control', 'no-store');
  });
  // JSON only. A form or text/plain body could be sent cross-site by a
  // browser that remembers Basic credentials (CSRF); JSON needs a CORS
  // preflight, which this API never grants. Anything else is 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: services.config.bodyLimitBytes }, app.getDefaultJsonParser('error', 'error'));

  // ------------------------------------------------------------ clients

  app.post<{ Body: ClientMetadataInput }>(
    '/admin/clients',
    { schema: doc('Register a client', { body: clientCreateBody, response: { 201: clientResponse, ...adminErrorResponses(400, 413, 415) } }) },
    async (request, reply) => {
      const { client, clientSecret } = await services.clients.register(request.body, changeContextOf(request));
      return reply.code(201).header('location', `/admin/clients/${encodeURIComponent(client.clientId)}`).send(clientToWire(client, clientSecret));
    },
  );

  app.get<{ Querystring: Page }>(
    '/admin/clients',
    { schema: doc('List clients', { querystring: pageQuery, response: { 200: clientListResponse, ...adminErrorResponses(400) } }) },
    async (request) => {
      const { clients, total } = await services.clients.list(request.query);
      return { items: clients.map((c) => clientToWire(c)), total, limit: request.query.limit, offset: request.query.offset };
    },
  );

  app.get<{ Params: ClientIdParams }>(
    '/admin/clients/:client_id',
    { schema: doc('Read a client', { params: clientIdParams, response: { 200: clientResponse, ...adminErrorResponses(404) } }) },
    async (request) => clientToWire(await services.clients.get(request.params.client_id)),
  );

  app.patch<{ Params: ClientIdParams; Body: ClientMetadataInput }>(
    '/admin/clients/:client_id',
    {
      schema: doc('Change a client', {
        description: 'Changing token_endpoint_auth_method from none to a secret method issues a client_secret (in this answer only); to none removes it.',
        params: clientIdParams,
        body: clientPatchBody,
        response: { 200: clientResponse, ...adminErrorResponses(400, 404, 413, 415) },
      }),
    },
    async (request) => {
      const { client, clientSecret } = await services.clients.update(request.params.client_id, request.body, changeContextOf(request));
      return clientToWire(client, clientSecret);
    },
  );

  app.delete<{ Params: ClientIdParams }>(
    '/admin/clients/:client_id',
    { schema: doc('Delete a client (its tokens and consents go with it)', { params: clientIdParams, response: { 204: { type: 'null' }, ...adminErrorResponses(404) } }) },
    async (request, reply) => {
      await services.clients.delete(request.params.client_id, changeContextOf(request));
      return reply.code(204).send();
    },
  );

  app.post<{ Params: ClientIdParams }>(
    '/admin/clients/:client_id/secret',
    {
      schema: doc('Rotate a client secret', {
        description: 'Issues a new client_secret (shown only in this answer); the old one stops working at once. 409 for public clients.',
        params: clientIdParams,
        response: { 200: clientResponse, ...adminErrorResponses(404, 409) },
      }),
    },
    async (request) => {
      const { client, clientSecret } = await services.clients.rotateSecret(request.params.client_id, changeContextOf(request));
      return clientToWire(client, clientSecret);
    },
  );

  // ------------------------------------------------------------ initial access tokens (RFC 7591 §3)

  app.post<{ Body: { description?: string; expires_in?: number; max_uses?: number } }>(
    '/admin/initial-access-tokens',
    {
      schema: doc('Create an initial access token for client registration', {
        description: 'With DYNAMIC_REGISTRATION=token, registering a client needs one (Authorization: Bearer). The token is shown only in this answer.',
        body: initialAccessTokenCreateBody,
        response: { 201: initialAccessTokenResponse, ...adminErrorResponses(400, 413, 415) },
      }),
    },
    async (request, reply) => {
      const { description, expires_in: expiresInSeconds, max_uses: maxUses } = request.body ?? {};
      const { token, value } = await services.initialAccessTokens.create(
        {
          ...(description === undefined ? {} : { description }),
          ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }),
          ...(maxUses === undefined ? {} : { maxUses }),
        },
        changeContextOf(request),
      );
      return reply.code(201).send(initialAccessTokenToWire(token, value));
    },
  );

  app.get<{ Querystring: Page }>(
    '/admin/initial-access-tokens',
    { schema: doc('List initial access tokens (never their values)', { querystring: pageQuery, response: { 200: initialAccessTokenListResponse, ...adminErrorResponses(400) } }) },
    async (request) => {
      const { tokens, total } = await services.initialAccessTokens.list(request.query);
      return { items: tokens.map((token) => initialAccessTokenToWire(token)), total, limit: request.query.limit, offset: request.query.offset };
    },
  );

  app.delete<{ Params: IdParams }>(
    '/admin/initial-access-tokens/:id',
    {
      schema: doc('Revoke an initial access token (clients registered with it stay)', {
        params: initialAccessTokenIdParams,
        response: { 204: { type: 'null' }, ...adminErrorResponses(404) },
      }),
    },
    async (request, reply) => {
      await services.initialAccessTokens.revoke(request.params.id, changeContextOf(request));
      return reply.code(204).send();
    },
  );

  // ------------------------------------------------------------ upstream identity providers

  registerIdentityProviderRoutes(app, services);

  // ------------------------------------------------------------ users

  app.post<{ Body: NewUserBody }>(
    '/admin/users',
    { schema: doc('Create a user', { body: userCreateBody, response: { 201: userResponse, ...adminErrorResponses(400, 409, 413, 415) } }) },
    async (request, reply) => {
      const user = await services.users.create(request.body, changeContextOf(request));
      return reply.code(201).header('location', `/admin/users/${encodeURIComponent(user.id)}`).send(userToWire(user));
    },
  );

  app.get<{ Querystring: Page }>(
    '/admin/users',
    { schema: doc('List users', { querystring: pageQuery, response: { 200: userListResponse, ...adminErrorResponses(400) } }) },
    async (request) => {
      const { users, total } = await services.users.list(request.query);
      return { items: users.map((user) => userToWire(user)), total, limit: request.query.limit, offset: request.query.offset };
    },
  );

  /** A user's wire form with whether they have an authenticator app: the answers about one user. */
  const oneUser = async (user: User) => userToWire(user, await services.secondFactor.isEnrolled(user.id));

  app.get<{ Params: IdParams }>(
    '/admin/users/:id',
    { schema: doc('Read a user', { params: userIdParams, response: { 200: userResponse, ...adminErrorResponses(404) } }) },
    async (request) => oneUser(await services.users.get(request.params.id)),
  );

  app.patch<{ Params: IdParams; Body: UserPatchBody }>(
    '/admin/users/:id',
    {
      schema: doc('Change a user (roles, password, email, disabled)', {
        description: 'A new password or disabling the user revokes the tokens they hold. The last enabled admin cannot be disabled or lose the admin role (409).',
        params: userIdParams,
        body: userPatchBody,
        response: { 200: userResponse, ...adminErrorResponses(400, 404, 409, 413, 415) },
      }),
    },
    async (request) => oneUser(await services.users.update(request.params.id, request.body, changeContextOf(request))),
  );

  app.delete<{ Params: IdParams }>(
    '/admin/users/:id',
    {
      schema: doc('Delete a user (their tokens and consents go with them)', {
        description: 'The last enabled admin cannot be deleted (409).',
        params: userIdParams,
        response: { 204: { type: 'null' }, ...adminErrorResponses(404, 409) },
      }),
    },
    async (request, reply) => {
      await services.users.delete(request.params.id, changeContextOf(request));
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: IdParams }>(
    '/admin/users/:id/second-factor',
    {
      schema: doc("Reset a user's second factor (a lost authenticator app)", {
        description:
          'Removes the authenticator app and the recovery codes: the user signs in without them and may set up a new app. ' +
          'Like a new password, it ends every session and token the user holds. 404 for an unknown user or one without an app.',
        params: userIdParams,
        response: { 204: { type: 'null' }, ...adminErrorResponses(404) },
      }),
    },
    async (request, reply) => {
      const user = await services.users.get(request.params.id);
      await services.secondFactor.reset(user, changeContextOf(request));
      return reply.code(204).send();
    },
  );

  app.get<{ Params: IdParams }>(
    '/admin/users/:id/consents',
    { schema: doc("List a user's remembered consents", { params: userIdParams, response: { 200: consentListResponse, ...adminErrorResponses(404) } }) },
    async (request) => {
      const user = await services.users.get(request.params.id);
      const consents = await services.consents.listForUser(user.id);
      // The stored clients (a metadata-document client's row, not its document: no fetch from here).
      const nameOf = (clientId: string) =>
        services.clients.get(clientId).then(
          (client) => client.clientName,
          (err: unknown) => {
            if (isOAuthError(err) && err.error === 'not_found') return null;
            throw err;
          },
        );
      const items = await Promise.all(consents.map(async (c) => consentToWire(c, await nameOf(c.clientId))));
      return { items, total: items.length };
    },
  );

  app.delete<{ Params: IdParams & ClientIdParams }>(
    '/admin/users/:id/consents/:client_id',
    {
      schema: doc("Revoke a user's remembered consent for a client", {
        description: 'The next authorization asks the user again; refresh tokens the user holds for that client are revoked.',
        params: userConsentParams,
        response: { 204: { type: 'null' }, ...adminErrorResponses(404) },
      }),
    },
    async (request, reply) => {
      const user = await services.users.get(request.params.id);
      await services.consents.revoke(user.id, request.params.client_id, changeContextOf(request));
      return reply.code(204).send();
    },
  );

  // ------------------------------------------------------------ audit trail

  app.get<{ Querystring: Page & AuditFilterInput }>(
    '/admin/events',
    {
      schema: doc('List audit events (newest first)', {
        description:
          'Security events: sign-ins and their failures, throttling, refresh-token reuse, consent, changes to clients, users, second factors and signing keys. ' +
          'Filters combine (AND); kept for AUDIT_RETENTION_DAYS.',
        querystring: eventQuery,
        response: { 200: eventListResponse, ...adminErrorResponses(400) },
      }),
    },
    async (request) => {
      const { limit, offset, ...filter } = request.query;
      const { events, total } = await services.audit.list(filter, { limit, offset });
      return { items: events.map(auditEventToWire), total, limit, offset };
    },
  );

  // ------------------------------------------------------------ metrics

  if (services.config.metricsPort === undefined) {
    app.get(
      '/metrics',
      {
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics (admin only; on METRICS_PORT instead when that is set)',
          security: SECURITY.admin,
          response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      async (_request, reply) => {
        const { contentType, body } = await services.metrics.render();
        return reply.type(contentType).send(body);
      },
    );
  }
};
