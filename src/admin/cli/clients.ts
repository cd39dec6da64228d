/** `clients …`: register, list, show, update, delete OAuth clients and rotate their secrets. */
import { CLI_ACTOR } from '../../audit/events.js';
import type { ClientMetadataInput } from '../../clients/metadata.js';
import { DEVICE_AUTHORIZATION_PATH } from '../../oauth/metadata.js';
import { AUTH_METHOD_NAMES, DEVICE_CODE_GRANT, JWT_BEARER_ASSERTION_TYPE, REGISTRABLE_GRANT_TYPES, RESPONSE_TYPE_NAMES, type TokenEndpointAuthMethod } from '../../oauth/protocol.js';
import type { Client } from '../../storage/types.js';
import { clientToWire } from '../wire.js';
import { describe, listValue, pageArgs, pageOptions, requireString, stringValue, table } from './format.js';
import { UsageError, type Command, type CommandGroup, type CommandResult, type OptionSpec, type ParsedArgs } from './types.js';

const metadataOptions: Record<string, OptionSpec> = {
  name: { type: 'string', valueName: 'NAME', description: 'client_name, shown on the consent page' },
  'redirect-uri': { type: 'string', multiple: true, valueName: 'URL', description: 'A redirect URI (repeat for several; replaces the list)' },
  'post-logout-redirect-uri': {
    type: 'string',
    multiple: true,
    valueName: 'URL',
    description: 'Where /end-session may send the browser after signing out (OpenID Connect RP-Initiated Logout; repeat for several; replaces the list)',
  },
  'no-post-logout-redirect-uris': { type: 'boolean', description: 'Remove every post-logout redirect URI' },
  'backchannel-logout-uri': {
    type: 'string',
    valueName: 'URL',
    description: 'Where a logout token is posted when a browser session that signed a user in to it ends (OpenID Connect Back-Channel Logout; https or http)',
  },
  'no-backchannel-logout-uri': { type: 'boolean', description: 'No back-channel logout (the default)' },
  'backchannel-logout-session-required': { type: 'boolean', description: 'backchannel_logout_session_required: it needs sid in logout tokens (always sent here)' },
  'no-backchannel-logout-session-required': { type: 'boolean', description: 'It does not (the default)' },
  grant: { type: 'string', multiple: true, valueName: 'GRANT', description: `A grant type (repeat): ${REGISTRABLE_GRANT_TYPES.join(', ')}` },
  'response-type': { type: 'string', multiple: true, valueName: 'TYPE', description: `A response type (repeat): ${RESPONSE_TYPE_NAMES.join(', ')} (default: from the grants)` },
  'auth-method': { type: 'string', valueName: 'METHOD', description: `token_endpoint_auth_method: ${AUTH_METHOD_NAMES.join(', ')}` },
  jwks: { type: 'string', valueName: 'JSON', description: 'private_key_jwt: the public keys, a JWK Set as JSON (e.g. --jwks "$(cat jwks.json)"); replaces the registered keys' },
  'jwks-uri': { type: 'string', valueName: 'URL', description: 'private_key_jwt: https URL of the JWK Set instead; replaces the registered keys' },
  scope: { type: 'string', valueName: '"A B"', description: 'Space-separated scopes the client may get (default: all the server knows but "admin")' },
  'resource-server': { type: 'boolean', description: "A resource server: may introspect other clients' access tokens" },
  'no-resource-server': { type: 'boolean', description: 'Not a resource server (the default)' },
  'dpop-bound': { type: 'boolean', description: 'dpop_bound_access_tokens (RFC 9449 §5.2): every token request must carry a DPoP proof' },
  'no-dpop-bound': { type: 'boolean', description: 'DPoP optional (the default)' },
  'require-par': { type: 'boolean', description: 'Its authorization requests must be pushed (RFC 9126, POST /par)' },
  'no-require-par': { type: 'boolean', description: 'Authorization requests may also go to /authorize directly (the default, unless REQUIRE_PAR=true)' },
};

function metadataFrom(args: ParsedArgs): ClientMetadataInput {
  const input: ClientMetadataInput = {};
  const name = stringValue(args, 'name');
  if (name !== undefined) input.client_name = name;
  const redirectUris = listValue(args, 'redirect-uri');
  if (redirectUris !== undefined) input.redirect_uris = redirectUris;
  const postLogoutRedirectUris = listValue(args, 'post-logout-redirect-uri');
  if (postLogoutRedirectUris !== undefined && args.values['no-post-logout-redirect-uris'] === true) {
    throw new UsageError('give either --post-logout-redirect-uri or --no-post-logout-redirect-uris, not both');
  }
  if (postLogoutRedirectUris !== undefined) input.post_logout_redirect_uris = postLogoutRedirectUris;
  if (args.values['no-post-logout-redirect-uris'] === true) input.post_logout_redirect_uris = [];
  const backchannelLogoutUri = stringValue(args, 'backchannel-logout-uri');
  if (backchannelLogoutUri !== undefined && args.values['no-backchannel-logout-uri'] === true) {
    throw new UsageError('give either --backchannel-logout-uri or --no-backchannel-logout-uri, not both');
  }
  if (backchannelLogoutUri !== undefined) input.backchannel_logout_uri = backchannelLogoutUri;
  if (args.values['no-backchannel-logout-uri'] === true) input.backchannel_logout_uri = null;
  if (args.values['backchannel-logout-session-required'] === true && args.values['no-backchannel-logout-session-required'] === true) {
    throw new UsageError('give either --backchannel-logout-session-required or --no-backchannel-logout-session-required, not both');
  }
  if (args.values['backchannel-logout-session-required'] === true) input.backchannel_logout_session_required = true;
  if (args.values['no-backchannel-logout-session-required'] === true) input.backchannel_logout_session_required = false;
  const grants = listValue(args, 'grant');
  if (grants !== undefined) input.grant_types = grants;
  const responseTypes = listValue(args, 'response-type');
  if (responseTypes !== undefined) input.response_types = responseTypes;
  const method = stringValue(args, 'auth-method');
  if (method !== undefined) input.token_endpoint_auth_method = method;
  const scope = stringValue(args, 'scope');
  if (scope !== undefined) input.scope = scope;
  const jwks = stringValue(args, 'jwks');
  if (jwks !== undefined) {
    try {
      input.jwks = JSON.parse(jwks) as unknown;
    } catch {
      throw new UsageError('--jwks must be a JWK Set in JSON: {"keys": [ … ]}');
    }
  }
  const jwksUri = stringValue(args, 'jwks-uri');
  if (jwksUri !== undefined) input.jwks_uri = jwksUri;
  if (args.values['resource-server'] === true && args.values['no-resource-server'] === true) {
    throw new UsageError('give either --resource-server or --no-resource-server, not both');
  }
  if (args.values['resource-server'] === true) input.resource_server = true;
  if (args.values['no-resource-server'] === true) input.resource_server = false;
  if (args.values['dpop-bound'] === true && args.values['no-dpop-bound'] === true) throw new UsageError('give either --dpop-bound or --no-dpop-bound, not both');
  if (args.values['dpop-bound'] === true) input.dpop_bound_access_tokens = true;
  if (args.values['no-dpop-bound'] === true) input.dpop_bound_access_tokens = false;
  if (args.values['require-par'] === true && args.values['no-require-par'] === true) {
    throw new UsageError('give either --require-par or --no-require-par, not both');
  }
  if (args.values['require-par'] === true) input.require_pushed_authorization_requests = true;
  if (args.values['no-require-par'] === true) input.require_pushed_authorization_requests = false;
  return input;
}

/**
 * How a device client starts the device flow (RFC 8628): the endpoint and a
 * curl example, for the person setting the device up.
 */
function deviceSetup(client: Client, issuer: string): string {
  // Client authentication as at the token endpoint: curl arguments per method.
  const auth: Record<TokenEndpointAuthMethod, string> = {
    client_secret_basic: ` -u '${client.clientId}:SECRET'`,
    client_secret_post: ` -d client_id=${client.clientId} -d client_secret=SECRET`,
    private_key_jwt: ` -d client_assertion_type=${JWT_BEARER_ASSERTION_TYPE} -d client_assertion=SIGNED_JWT`,
    none: ` -d client_id=${client.clientId}`,
  };
  const as = auth[client.tokenEndpointAuthMethod];
  return [
    'Device flow (RFC 8628):',
    `  device_authorization_endpoint: ${issuer}${DEVICE_AUTHORIZATION_PATH}`,
    `  token_endpoint: ${issuer}/token (grant_type=${DEVICE_CODE_GRANT}, poll every "interval" seconds)`,
    `  curl -s ${issuer}${DEVICE_AUTHORIZATION_PATH}${as} -d 'scope=${client.scope}'`,
    '  then open verification_uri_complete, sign in and allow, and poll:',
    `  curl -s ${issuer}/token${as} -d grant_type=${DEVICE_CODE_GRANT} -d device_code=DEVICE_CODE`,
  ].join('\n');
}

function show(client: Client, secret: string | null = null, issuer?: string): CommandResult {
  const lines: Array<[string, unknown]> = [
    ['client_id', client.clientId],
    ['client_name', client.clientName],
    ['redirect_uris', client.redirectUris],
    ['post_logout_redirect_uris', client.postLogoutRedirectUris],
    ['backchannel_logout_uri', client.backchannelLogoutUri ?? '(none)'],
    ['backchannel_logout_session_required', client.backchannelLogoutSessionRequired ? 'yes' : 'no'],
    ['grant_types', client.grantTypes],
    ['response_types', client.responseTypes],
    ['token_endpoint_auth_method', client.tokenEndpointAuthMethod],
    ['scope', client.scope],
    ['resource_server', client.resourceServer ? 'yes' : 'no'],
    ...(client.jwks === null ? [] : ([['jwks', client.jwks.keys.map((k) => `${String(k.kty)}${typeof k.kid === 'string' ? ` kid=${k.kid}` : ''}`)]] as Array<[string, unknown]>)),
    ...(client.jwksUri === null ? [] : ([['jwks_uri', client.jwksUri]] as Array<[string, unknown]>)),
    ['dpop_bound_access_tokens', client.dpopBoundAccessTokens ? 'yes' : 'no'],
    ['require_pushed_authorization_requests', client.requirePushedAuthorizationRequests ? 'yes' : 'no'],
    ['origin', client.origin],
    ['last_used_at', client.lastUsedAt?.toISOString() ?? 'never'],
    ['created_at', client.createdAt.toISOString()],
    ['updated_at', client.updatedAt.toISOString()],
  ];
  let text = describe(lines);
  if (secret !== null) text += `\n\nclient_secret: ${secret}\n(shown once: it is stored only as a hash; keep it now)`;
  if (issuer !== undefined && client.grantTypes.includes(DEVICE_CODE_GRANT)) text += `\n\n${deviceSetup(client, issuer)}`;
  return { data: clientToWire(client, secret), text };
}

const create: Command = {
  name: 'create',
  summary: 'Register a client; prints its client_id and (for confidential clients) its secret, once',
  options: metadataOptions,
  examples: [
    'clients create --name Demo --redirect-uri http://localhost:8080/cb --grant authorization_code --grant refresh_token --auth-method client_secret_basic --scope "openid profile api:read"',
    'clients create --name "Batch job" --grant client_credentials --scope api:read',
    'clients create --name SPA --redirect-uri https://app.example.com/cb --post-logout-redirect-uri https://app.example.com/signed-out --auth-method none',
    'clients create --name "Signed job" --grant client_credentials --auth-method private_key_jwt --jwks-uri https://job.example.com/jwks.json',
    `clients create --name "TV app" --grant ${DEVICE_CODE_GRANT} --grant refresh_token --auth-method none --scope "openid api:read"`,
  ],
  async run(services, args) {
    requireString(args, 'name');
    const { client, clientSecret } = await services.clients.register(metadataFrom(args), { actor: CLI_ACTOR });
    return show(client, clientSecret, services.config.issuer);
  },
};

const list: Command = {
  name: 'list',
  summary: 'List clients',
  options: pageOptions,
  async run(services, args) {
    const page = pageArgs(args);
    const { clients, total } = await services.clients.list(page);
    const rows = clients.map((c) => [c.clientId, c.origin, c.tokenEndpointAuthMethod, c.grantTypes.join(','), c.clientName]);
    const footer = `${clients.length} of ${total} client(s)${page.offset > 0 ? ` from offset ${page.offset}` : ''}`;
    return {
      data: { items: clients.map((c) => clientToWire(c)), total, ...page },
      text: clients.length === 0 ? `No clients (${total} in total).` : `${table(['CLIENT_ID', 'ORIGIN', 'AUTH_METHOD', 'GRANTS', 'NAME'], rows)}\n\n${footer}`,
    };
  },
};

const showCommand: Command = {
  name: 'show',
  summary: 'Show one client',
  positionals: ['CLIENT_ID'],
  async run(services, args) {
    return show(await services.clients.get(args.positionals[0]!), null, services.config.issuer);
  },
};

const update: Command = {
  name: 'update',
  summary: 'Change a client (given options only; lists replace the old lists)',
  positionals: ['CLIENT_ID'],
  options: metadataOptions,
  examples: [
    'clients update CLIENT_ID --redirect-uri https://app.example.com/cb --redirect-uri http://localhost:8080/cb',
    'clients update CLIENT_ID --scope "openid api:read"',
    'clients update CLIENT_ID --backchannel-logout-uri https://app.example.com/backchannel-logout --backchannel-logout-session-required',
  ],
  async run(services, args) {
    const patch = metadataFrom(args);
    if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give at least one option');
    const { client, clientSecret } = await services.clients.update(args.positionals[0]!, patch, { actor: CLI_ACTOR });
    return show(client, clientSecret);
  },
};

const remove: Command = {
  name: 'delete',
  summary: 'Delete a client (its refresh tokens and consents go with it)',
  positionals: ['CLIENT_ID'],
  async run(services, args) {
    const clientId = args.positionals[0]!;
    await services.clients.delete(clientId, { actor: CLI_ACTOR });
    return { data: { deleted: true, client_id: clientId }, text: `Deleted client ${clientId}.` };
  },
};

const rotateSecret: Command = {
  name: 'rotate-secret',
  summary: 'Issue a new client secret; the old one stops working at once',
  positionals: ['CLIENT_ID'],
  async run(services, args) {
    const { client, clientSecret } = await services.clients.rotateSecret(args.positionals[0]!, { actor: CLI_ACTOR });
    return show(client, clientSecret);
  },
};

export const clientCommands: CommandGroup = {
  name: 'clients',
  summary: 'OAuth clients (RFC 7591 metadata)',
  commands: [create, list, showCommand, update, remove, rotateSecret],
};
