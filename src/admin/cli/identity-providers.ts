/** `identity-providers …`: the upstream OpenID Connect providers of "Sign in with …" (list, show, create, update, delete). */
import { CLI_ACTOR } from '../../audit/events.js';
import { DEFAULT_UPSTREAM_SCOPES, type IdentityProvider, type IdentityProviderInput } from '../../identity-providers/providers.js';
import { identityProviderToWire } from '../identity-providers-api.js';
import { describe, flag, requireString, stringValue, table } from './format.js';
import { UsageError, type CliIo, type Command, type CommandGroup, type CommandResult, type OptionSpec, type ParsedArgs } from './types.js';

const fieldOptions: Record<string, OptionSpec> = {
  issuer: { type: 'string', valueName: 'URL', description: "The provider's issuer (https; http only on a loopback host)" },
  'client-id': { type: 'string', valueName: 'ID', description: "This server's client_id at the provider" },
  'client-secret': { type: 'string', valueName: 'SECRET', description: 'The client secret (visible in the process list: prefer --client-secret-stdin)' },
  'client-secret-stdin': { type: 'boolean', description: 'Read the client secret from standard input (first line)' },
  name: { type: 'string', valueName: 'NAME', description: 'display_name: the login page shows "Sign in with NAME"' },
  scopes: { type: 'string', valueName: '"A B"', description: `Space-separated, with openid (default "${DEFAULT_UPSTREAM_SCOPES}")` },
  disable: { type: 'boolean', description: 'Switch it off: no button, sign-ins refused' },
  enable: { type: 'boolean', description: 'Switch it on' },
};

/** Reads `--client-secret-stdin` here, in the CLI process, and passes the secret on as `--client-secret`. */
async function readSecret(args: ParsedArgs, io: CliIo): Promise<ParsedArgs> {
  if (args.values['client-secret-stdin'] !== true) return args;
  if (args.values['client-secret'] !== undefined) throw new UsageError('give either --client-secret or --client-secret-stdin, not both');
  const secret = ((await io.readStdin()).split(/\r?\n/)[0] ?? '').trim();
  if (secret === '') throw new UsageError('--client-secret-stdin: standard input was empty');
  const values: ParsedArgs['values'] = { ...args.values, 'client-secret': secret };
  delete values['client-secret-stdin'];
  return { ...args, values };
}

function inputFrom(args: ParsedArgs): IdentityProviderInput {
  if (flag(args, 'disable') && flag(args, 'enable')) throw new UsageError('give either --disable or --enable, not both');
  return {
    issuer: stringValue(args, 'issuer'),
    clientId: stringValue(args, 'client-id'),
    clientSecret: stringValue(args, 'client-secret'),
    displayName: stringValue(args, 'name'),
    scopes: stringValue(args, 'scopes'),
    enabled: flag(args, 'disable') ? false : flag(args, 'enable') ? true : undefined,
  };
}

function show(provider: IdentityProvider): CommandResult {
  const text = describe([
    ['id', provider.id],
    ['display_name', provider.displayName],
    ['issuer', provider.issuer],
    ['client_id', provider.clientId],
    ['client_secret', '(set; never shown)'],
    ['scopes', provider.scopes],
    ['enabled', provider.enabled ? 'yes' : 'no'],
    ['redirect_uri', provider.redirectUri],
    ['created_at', provider.createdAt.toISOString()],
    ['updated_at', provider.updatedAt.toISOString()],
  ]);
  return { data: identityProviderToWire(provider), text: `${text}\n\nRegister redirect_uri at the provider.` };
}

const list: Command = {
  name: 'list',
  summary: 'List the upstream identity providers (never their secrets)',
  async run(services) {
    const providers = await services.identityProviders.list();
    const rows = providers.map((p) => [p.id, p.enabled ? 'yes' : 'no', p.displayName, p.issuer, p.redirectUri]);
    return {
      data: { items: providers.map(identityProviderToWire) },
      text: providers.length === 0 ? 'No identity providers.' : table(['ID', 'ENABLED', 'NAME', 'ISSUER', 'REDIRECT URI'], rows),
    };
  },
};

const showCommand: Command = {
  name: 'show',
  summary: 'Show an identity provider and the redirect URI to register there',
  positionals: ['ID'],
  run: async (services, args) => show(await services.identityProviders.get(args.positionals[0]!)),
};

const create: Command = {
  name: 'create',
  summary: 'Add an upstream OpenID Connect provider; prints the redirect URI to register there',
  positionals: ['ID'],
  options: fieldOptions,
  examples: ["printf '%s\\n' \"$SECRET\" | npm run cli -- identity-providers create corp --issuer https://login.example.com --client-id auth-server --client-secret-stdin --name \"Example Corp\""],
  prepare: readSecret,
  async run(services, args) {
    requireString(args, 'issuer');
    requireString(args, 'client-id');
    requireString(args, 'client-secret');
    requireString(args, 'name');
    return show(await services.identityProviders.create({ ...inputFrom(args), id: args.positionals[0]! }, { actor: CLI_ACTOR }));
  },
};

const update: Command = {
  name: 'update',
  summary: 'Change an identity provider (only the options given)',
  positionals: ['ID'],
  options: fieldOptions,
  prepare: readSecret,
  async run(services, args) {
    const input = inputFrom(args);
    if (Object.values(input).every((v) => v === undefined)) throw new UsageError('nothing to change: give at least one option');
    return show(await services.identityProviders.update(args.positionals[0]!, input, { actor: CLI_ACTOR }));
  },
};

const remove: Command = {
  name: 'delete',
  summary: 'Delete an identity provider (its links go; the users stay)',
  positionals: ['ID'],
  async run(services, args) {
    const id = args.positionals[0]!;
    await services.identityProviders.delete(id, { actor: CLI_ACTOR });
    return { data: { deleted: true, id }, text: `Deleted identity provider ${id}.` };
  },
};

export const identityProviderCommands: CommandGroup = {
  name: 'identity-providers',
  summary: 'Upstream OpenID Connect providers for "Sign in with …"',
  commands: [list, showCommand, create, update, remove],
};
