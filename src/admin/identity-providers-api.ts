/**
 * `/admin/identity-providers`: the upstream OpenID Connect providers of
 * "Sign in with …" (list, create, read, change, delete). Registered inside
 * the admin API's scope (`api.ts`), so its authentication and JSON-only
 * rules apply. `client_secret` is write-only: accepted on create and
 * change, stored sealed (`identity-providers/secret.ts`) and absent from
 * every response schema, so it cannot be serialised by mistake.
 */
import type { FastifyInstance } from 'fastify';
import { DEFAULT_UPSTREAM_SCOPES, type IdentityProvider, type IdentityProviderInput } from '../identity-providers/providers.js';
import { SECURITY } from '../http/schemas.js';
import type { Services } from '../services.js';
import { ADMIN_TAG, adminErrorResponses } from './api-schemas.js';
import { changeContextOf } from './auth.js';

interface ProviderBody {
  id?: string;
  issuer?: string;
  client_id?: string;
  client_secret?: string;
  scopes?: string;
  display_name?: string;
  enabled?: boolean;
}

const fields = {
  issuer: { type: 'string', minLength: 1, maxLength: 500, description: 'The provider\'s issuer identifier: https (http only on a loopback host); its discovery document must name exactly it' },
  client_id: { type: 'string', minLength: 1, maxLength: 255, description: 'This server\'s client_id at the provider' },
  client_secret: { type: 'string', minLength: 1, maxLength: 1000, description: 'Write-only: stored encrypted under SIGNING_KEY_ENCRYPTION_KEY when set, never returned' },
  scopes: { type: 'string', minLength: 1, maxLength: 2000, description: `Space-separated, must include openid (default "${DEFAULT_UPSTREAM_SCOPES}")` },
  display_name: { type: 'string', minLength: 1, maxLength: 100, description: 'Shown on the login page as "Sign in with <display_name>"' },
  enabled: { type: 'boolean', description: 'Default true; a disabled provider has no button and its sign-ins are refused' },
} as const;

const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'issuer', 'client_id', 'client_secret', 'display_name'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 63, description: 'Slug (lowercase letters, digits, -): appears in the redirect URI' }, ...fields },
} as const;

const patchBody = { type: 'object', additionalProperties: false, minProperties: 1, properties: fields } as const;

const params = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 63 } } } as const;

const providerResponse = {
  type: 'object',
  required: ['id', 'issuer', 'client_id', 'scopes', 'display_name', 'enabled', 'redirect_uri'],
  properties: {
    id: { type: 'string' },
    issuer: { type: 'string' },
    client_id: { type: 'string' },
    scopes: { type: 'string' },
    display_name: { type: 'string' },
    enabled: { type: 'boolean' },
    redirect_uri: { type: 'string', description: 'Register this redirect URI at the provider' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const listResponse = { type: 'object', required: ['items'], properties: { items: { type: 'array', items: providerResponse } } } as const;

/** Wire form: RFC-style snake_case, never the secret. */
export function identityProviderToWire(provider: IdentityProvider): Record<string, unknown> {
  return {
    id: provider.id,
    issuer: provider.issuer,
    client_id: provider.clientId,
    scopes: provider.scopes,
    display_name: provider.displayName,
    enabled: provider.enabled,
    redirect_uri: provider.redirectUri,
    created_at: provider.createdAt.toISOString(),
    updated_at: provider.updatedAt.toISOString(),
  };
}

export function identityProviderInputOf(body: ProviderBody): IdentityProviderInput {
  return {
    id: body.id,
    issuer: body.issuer,
    clientId: body.client_id,
    clientSecret: body.client_secret,
    scopes: body.scopes,
    displayName: body.display_name,
    enabled: body.enabled,
  };
}

const doc = (summary: string, extra: Record<string, unknown> = {}) => ({ tags: [ADMIN_TAG], summary, security: SECURITY.admin, ...extra });

export function registerIdentityProviderRoutes(app: FastifyInstance, services: Pick<Services, 'identityProviders'>): void {
  const { identityProviders } = services;

  app.post<{ Body: ProviderBody }>(
    '/admin/identity-providers',
    {
      schema: doc('Add an upstream OpenID Connect provider ("Sign in with …")', {
        description: 'Register redirect_uri (in the answer) at the provider. The provider is contacted only at the first sign-in (discovery).',
        body: createBody,
        response: { 201: providerResponse, ...adminErrorResponses(400, 409, 413, 415) },
      }),
    },
    async (request, reply) => {
      const provider = await identityProviders.create(identityProviderInputOf(request.body), changeContextOf(request));
      return reply.code(201).header('location', `/admin/identity-providers/${provider.id}`).send(identityProviderToWire(provider));
    },
  );

  app.get('/admin/identity-providers', { schema: doc('List upstream identity providers (never their secrets)', { response: { 200: listResponse, ...adminErrorResponses() } }) }, async () => ({
    items: (await identityProviders.list()).map(identityProviderToWire),
  }));

  app.get<{ Params: { id: string } }>(
    '/admin/identity-providers/:id',
    { schema: doc('Read an upstream identity provider', { params, response: { 200: providerResponse, ...adminErrorResponses(404) } }) },
    async (request) => identityProviderToWire(await identityProviders.get(request.params.id)),
  );

  app.patch<{ Params: { id: string }; Body: ProviderBody }>(
    '/admin/identity-providers/:id',
    { schema: doc('Change an upstream identity provider', { params, body: patchBody, response: { 200: providerResponse, ...adminErrorResponses(400, 404, 413, 415) } }) },
    async (request) => identityProviderToWire(await identityProviders.update(request.params.id, identityProviderInputOf(request.body), changeContextOf(request))),
  );

  app.delete<{ Params: { id: string } }>(
    '/admin/identity-providers/:id',
    { schema: doc('Delete an upstream identity provider (its links go; the users stay)', { params, response: { 204: { type: 'null' }, ...adminErrorResponses(404) } }) },
    async (request, reply) => {
      await identityProviders.delete(request.params.id, changeContextOf(request));
      return reply.code(204).send();
    },
  );
}
