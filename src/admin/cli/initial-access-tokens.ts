/** `initial-access-tokens …`: the tokens that let someone register clients when DYNAMIC_REGISTRATION=token (RFC 7591 §3). */
import { CLI_ACTOR } from '../../audit/events.js';
import { MAX_EXPIRES_IN_SECONDS } from '../../clients/initial-access-tokens.js';
import type { InitialAccessToken } from '../../storage/types.js';
import { initialAccessTokenToWire } from '../wire.js';
import { describe, pageArgs, pageOptions, stringValue, table } from './format.js';
import { UsageError, type Command, type CommandGroup, type ParsedArgs } from './types.js';

const iso = (date: Date | null) => (date === null ? '-' : date.toISOString());

function wholeNumber(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const raw = stringValue(args, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
  return Number(raw);
}

function lines(token: InitialAccessToken): Array<[string, unknown]> {
  return [
    ['id', token.id],
    ['description', token.description],
    ['created_at', iso(token.createdAt)],
    ['expires_at', token.expiresAt === null ? 'never' : iso(token.expiresAt)],
    ['max_uses', token.maxUses ?? 'any'],
    ['uses', token.uses],
  ];
}

const create: Command = {
  name: 'create',
  summary: 'Create an initial access token; prints it once (send it as Authorization: Bearer to POST /oauth/register)',
  options: {
    description: { type: 'string', valueName: 'TEXT', description: 'Who or what it is for' },
    'expires-in': { type: 'string', valueName: 'SECONDS', description: `Lifetime in seconds, 60 to ${MAX_EXPIRES_IN_SECONDS} (default: never expires)` },
    'max-uses': { type: 'string', valueName: 'N', description: 'Registrations it allows (default: any number)' },
  },
  examples: ['initial-access-tokens create --description "VS Code at ACME" --expires-in 86400 --max-uses 1'],
  async run(services, args) {
    const description = stringValue(args, 'description');
    const expiresInSeconds = wholeNumber(args, 'expires-in', 60, MAX_EXPIRES_IN_SECONDS);
    const maxUses = wholeNumber(args, 'max-uses', 1, 1_000_000);
    const { token, value } = await services.initialAccessTokens.create(
      {
        ...(description === undefined ? {} : { description }),
        ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }),
        ...(maxUses === undefined ? {} : { maxUses }),
      },
      { actor: CLI_ACTOR },
    );
    const text = `${describe(lines(token))}\n\ntoken: ${value}\n(shown once: it is stored only as a hash; keep it now)`;
    return { data: initialAccessTokenToWire(token, value), text };
  },
};

const list: Command = {
  name: 'list',
  summary: 'List initial access tokens (never their values)',
  options: pageOptions,
  async run(services, args) {
    const page = pageArgs(args);
    const { tokens, total } = await services.initialAccessTokens.list(page);
    const rows = tokens.map((t) => [t.id, t.expiresAt === null ? 'never' : iso(t.expiresAt), `${t.uses}/${t.maxUses ?? 'any'}`, t.description]);
    return {
      data: { items: tokens.map((t) => initialAccessTokenToWire(t)), total, ...page },
      text: tokens.length === 0 ? `No initial access tokens (${total} in total).` : `${table(['ID', 'EXPIRES', 'USES', 'DESCRIPTION'], rows)}\n\n${tokens.length} of ${total} token(s)`,
    };
  },
};

const revoke: Command = {
  name: 'revoke',
  summary: 'Revoke an initial access token (clients registered with it stay)',
  positionals: ['ID'],
  async run(services, args) {
    const id = args.positionals[0]!;
    await services.initialAccessTokens.revoke(id, { actor: CLI_ACTOR });
    return { data: { revoked: true, id }, text: `Revoked initial access token ${id}.` };
  },
};

export const initialAccessTokenCommands: CommandGroup = {
  name: 'initial-access-tokens',
  summary: 'Tokens that allow registering clients when DYNAMIC_REGISTRATION=token (RFC 7591 §3)',
  commands: [create, list, revoke],
};
