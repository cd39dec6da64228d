/**
 * The admin console's client pages: list, register (the secret is shown
 * once, in the response to the POST that created it), edit redirect URIs
 * (and post-logout redirect URIs, the back-channel logout URI),
 * grants, authentication and scopes, rotate the secret, delete after a
 * confirmation page.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AUTH_METHOD_NAMES, GRANT_TYPES, isAuthMethod, isGrantType, REGISTRABLE_GRANT_TYPES, TOKEN_ENDPOINT_AUTH_METHODS, usesSecret } from '../../oauth/protocol.js';
import { MAX_REDIRECT_URI_LENGTH, type ClientMetadataInput } from '../../clients/metadata.js';
import { MAX_JWKS_BYTES, MAX_JWKS_URI_LENGTH } from '../../clients/jwks.js';
import { ClientMetadataError, OAuthError } from '../../errors.js';
import { registrableScopes } from '../../oauth/scope.js';
import type { Client } from '../../storage/types.js';
import { contentSecurityPolicy } from '../../http/security-headers.js';
import { changeContextOf, CONSOLE, csrf, csrfOnly, PAGE_SIZE, pageQuery, pager, type ConsoleAdmin, type ConsoleContext } from './context.js';

const stringList = { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 200 } } as const;
const clientBody = {
  type: 'object',
  properties: {
    client_name: { type: 'string', maxLength: 200 },
    redirect_uris: { type: 'string', maxLength: 50_000 },
    post_logout_redirect_uris: { type: 'string', maxLength: 50_000 },
    backchannel_logout_uri: { type: 'string', maxLength: MAX_REDIRECT_URI_LENGTH + 100 },
    backchannel_logout_session_required: { type: 'string', maxLength: 10 },
    grant_types: stringList,
    token_endpoint_auth_method: { type: 'string', maxLength: 50 },
    jwks: { type: 'string', maxLength: MAX_JWKS_BYTES * 2 },
    jwks_uri: { type: 'string', maxLength: MAX_JWKS_URI_LENGTH },
    scope: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 200 } },
    dpop_bound_access_tokens: { type: 'string', maxLength: 10 },
    require_pushed_authorization_requests: { type: 'string', maxLength: 10 },
    csrf_token: csrf,
  },
} as const;

const clientParams = { type: 'object', required: ['client_id'], properties: { client_id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;

interface ClientBody {
  client_name?: string;
  redirect_uris?: string;
  post_logout_redirect_uris?: string;
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: string;
  grant_types?: string[];
  token_endpoint_auth_method?: string;
  jwks?: string;
  jwks_uri?: string;
  scope?: string[];
  /** The checkbox: "true" when ticked, absent otherwise. */
  dpop_bound_access_tokens?: string;
  /** A checkbox: present ("yes") when checked. */
  require_pushed_authorization_requests?: string;
  csrf_token?: string;
}

type ClientField =
  | 'client_name'
  | 'redirect_uris'
  | 'post_logout_redirect_uris'
  | 'backchannel_logout_uri'
  | 'grant_types'
  | 'token_endpoint_auth_method'
  | 'jwks'
  | 'jwks_uri'
  | 'scope'
  | 'form';

interface ClientFormValues {
  client_name: string;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  backchannel_logout_uri: string;
  backchannel_logout_session_required: boolean;
  grant_types: string[];
  token_endpoint_auth_method: string;
  /** private_key_jwt: the JWK Set as JSON text, or the URL (one of the two). */
  jwks: string;
  jwks_uri: string;
  scope: string[];
  dpop_bound_access_tokens: boolean;
  require_pushed_authorization_requests: boolean;
}

function valuesOf(client: Client): ClientFormValues {
  return {
    client_name: client.clientName,
    redirect_uris: client.redirectUris.join('\n'),
    post_logout_redirect_uris: client.postLogoutRedirectUris.join('\n'),
    backchannel_logout_uri: client.backchannelLogoutUri ?? '',
    backchannel_logout_session_required: client.backchannelLogoutSessionRequired,
    grant_types: [...client.grantTypes],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    jwks: client.jwks === null ? '' : JSON.stringify(client.jwks, null, 2),
    jwks_uri: client.jwksUri ?? '',
    scope: client.scope.split(' ').filter(Boolean),
    dpop_bound_access_tokens: client.dpopBoundAccessTokens,
    require_pushed_authorization_requests: client.requirePushedAuthorizationRequests,
  };
}

function valuesFromBody(body: ClientBody): ClientFormValues {
  return {
    client_name: body.client_name ?? '',
    redirect_uris: body.redirect_uris ?? '',
    post_logout_redirect_uris: body.post_logout_redirect_uris ?? '',
    backchannel_logout_uri: body.backchannel_logout_uri ?? '',
    backchannel_logout_session_required: body.backchannel_logout_session_required !== undefined,
    grant_types: body.grant_types ?? [],
    token_endpoint_auth_method: body.token_endpoint_auth_method ?? '',
    jwks: body.jwks ?? '',
    jwks_uri: body.jwks_uri ?? '',
    scope: body.scope ?? [],
    dpop_bound_access_tokens: body.dpop_bound_access_tokens === 'true',
    require_pushed_authorization_requests: body.require_pushed_authorization_requests !== undefined,
  };
}

function clientRow(client: Client) {
  return {
    clientId: client.clientId,
    clientName: client.clientName,
    type: client.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential',
    /** Whether it has a secret to rotate (private_key_jwt clients have keys instead). */
    hasSecret: usesSecret(client.tokenEndpointAuthMethod),
    grantTypes: client.grantTypes.join(', '),
    redirectUris: client.redirectUris,
    createdAt: client.createdAt.toISOString().slice(0, 10),
  };
}

/** Checks each field on its own, so each message can stand next to its input. */
function checkClientFields(values: ClientFormValues, knownScopes: readonly string[]): Partial<Record<ClientField, string>> {
  const errors: Partial<Record<ClientField, string>> = {};
  if (values.client_name.trim() === '') errors.client_name = 'Enter a name people will recognise on the consent page.';
  if (values.grant_types.length === 0) errors.grant_types = 'Choose at least one grant type.';
  else if (values.grant_types.some((g) => !isGrantType(g) || !GRANT_TYPES[g].registrable)) errors.grant_types = 'Unknown grant type.';
  if (!isAuthMethod(values.token_endpoint_auth_method)) errors.token_endpoint_auth_method = 'Choose how the client authenticates.';
  if (keysOf(values) === 'invalid') errors.jwks = 'Paste the JWK Set as JSON: {"keys": [ … ]}.';
  if (values.scope.length === 0) errors.scope = 'Choose at least one scope.';
  else if (values.scope.some((s) => !knownScopes.includes(s))) errors.scope = 'Unknown scope.';
  return errors;
}

/**
 * The keys the form gives a private_key_jwt client (the JWK Set parsed from
 * its JSON text, or the URL); none for other methods, whose keys are then
 * dropped. `invalid` when the text is not JSON.
 */
function keysOf(values: ClientFormValues): Pick<ClientMetadataInput, 'jwks' | 'jwks_uri'> | 'invalid' {
  if (values.token_endpoint_auth_method !== 'private_key_jwt') return {};
  const text = values.jwks.trim();
  const uri = values.jwks_uri.trim();
  let jwks: unknown = null;
  if (text !== '') {
    try {
      jwks = JSON.parse(text);
    } catch {
      return 'invalid';
    }
  }
  return { jwks, jwks_uri: uri === '' ? null : uri };
}

/** The metadata the form submits. */
function metadataOf(values: ClientFormValues): ClientMetadataInput {
  const keys = keysOf(values);
  return {
    client_name: values.client_name.trim(),
    redirect_uris: splitLines(values.redirect_uris),
    post_logout_redirect_uris: splitLines(values.post_logout_redirect_uris),
    backchannel_logout_uri: values.backchannel_logout_uri.trim() === '' ? null : values.backchannel_logout_uri.trim(),
    backchannel_logout_session_required: values.backchannel_logout_session_required,
    grant_types: values.grant_types,
    token_endpoint_auth_method: values.token_endpoint_auth_method,
    scope: values.scope.join(' '),
    dpop_bound_access_tokens: values.dpop_bound_access_tokens,
    require_pushed_authorization_requests: values.require_pushed_authorization_requests,
    ...(keys === 'invalid' ? {} : keys),
  };
}

/** Which field of the form an error from client metadata validation (RFC 7591 §3.2.2) belongs to. */
function fieldOf(err: OAuthError): ClientField {
  if (!(err instanceof ClientMetadataError)) return 'form';
  // The form chooses grants; response types follow from them.
  return err.field === 'response_types' ? 'grant_types' : err.field;
}

function splitLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}


/** Registers the client pages on the console's scope. */
export function registerClientPages(app: FastifyInstance, ctx: ConsoleContext): void {
  const { services, render, navModel, takeNotice, setNotice, guarded, admin } = ctx;
  const { config } = services;
  const scopes = registrableScopes(config.scopes);

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
      grantOptions: REGISTRABLE_GRANT_TYPES.map((g) => ({ value: g, label: GRANT_TYPES[g].label })),
      authOptions: AUTH_METHOD_NAMES.map((m) => ({ value: m, label: TOKEN_ENDPOINT_AUTH_METHODS[m].label })),
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
      values: { client_name: '', redirect_uris: '', post_logout_redirect_uris: '', backchannel_logout_uri: '', backchannel_logout_session_required: false, grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'client_secret_basic', jwks: '', jwks_uri: '', scope: [...config.scopes], dpop_bound_access_tokens: false, require_pushed_authorization_requests: false },
    }),
  );

  app.post<{ Body: ClientBody }>(`${CONSOLE}/clients`, { ...guarded, schema: { body: clientBody } }, async (request, reply) => {
    const a = admin(request);
    const values = valuesFromBody(request.body ?? {});
    const errors = checkClientFields(values, scopes);
    if (Object.keys(errors).length > 0) return clientForm(reply, 400, a, { client: null, values, errors });
    let registered;
    try {
      registered = await services.clients.register(metadataOf(values), changeContextOf(request));
    } catch (err) {
      if (err instanceof OAuthError && err.status === 400) return clientForm(reply, 400, a, { client: null, values, errors: { [fieldOf(err)]: err.description } });
      throw err;
    }
    const { client, clientSecret } = registered;
    request.log.info({ clientId: client.clientId, by: a.user.id }, 'client registered in the admin console');
    return secretPage(reply, 201, a, client, clientSecret, 'Client registered');
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
      let updated;
      try {
        updated = await services.clients.update(client.clientId, metadataOf(values), changeContextOf(request));
      } catch (err) {
        if (err instanceof OAuthError && err.status === 400) return clientForm(reply, 400, a, { client, values, errors: { [fieldOf(err)]: err.description } });
        throw err;
      }
      request.log.info({ clientId: client.clientId, by: a.user.id }, 'client changed in the admin console');
      // Turning a public client confidential creates its first secret: show it now, once.
      if (updated.clientSecret) return secretPage(reply, 200, a, updated.client, updated.clientSecret, 'Client is now confidential');
      await setNotice(a, 'Changes saved.');
      return reply.code(303).redirect(`${CONSOLE}/clients/${encodeURIComponent(client.clientId)}`);
    },
  );

  app.post<{ Params: { client_id: string } }>(
    `${CONSOLE}/clients/:client_id/secret`,
    { ...guarded, schema: { params: clientParams, body: csrfOnly } },
    async (request, reply) => {
      const a = admin(request);
      const { client, clientSecret } = await services.clients.rotateSecret(request.params.client_id, changeContextOf(request));
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
      await services.clients.delete(client.clientId, changeContextOf(request));
      request.log.info({ clientId: client.clientId, by: a.user.id }, 'client deleted in the admin console');
      await setNotice(a, `Client "${client.clientName}" (${client.clientId}) was deleted.`);
      return reply.code(303).redirect(`${CONSOLE}/clients`);
    },
  );

}
