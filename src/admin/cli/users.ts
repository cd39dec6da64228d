/**
 * `users …`: create, list, show, update and delete users, and reset the
 * second factor of one who lost their authenticator app (also an admin
 * locked out of the console and the admin API by that loss).
 */
import { randomBytes } from 'node:crypto';
import { CLI_ACTOR } from '../../audit/events.js';
import { OAuthError } from '../../errors.js';
import type { Services } from '../../services.js';
import type { User } from '../../storage/types.js';
import type { UserPatchInput } from '../../users/service.js';
import { userToWire } from '../wire.js';
import { describe, flag, listValue, pageArgs, pageOptions, requireString, stringValue, table } from './format.js';
import { UsageError, type CliIo, type Command, type CommandGroup, type CommandResult, type ParsedArgs } from './types.js';

const passwordOptions = {
  password: { type: 'string', valueName: 'PASSWORD', description: 'The password (visible in the process list: prefer --password-stdin)' },
  'password-stdin': { type: 'boolean', description: 'Read the password from standard input (first line); in a terminal, asks for it' },
} as const;

/** Reads `--password-stdin` here, in the CLI process, and passes the password on as `--password`. */
async function readPassword(args: ParsedArgs, io: CliIo): Promise<ParsedArgs> {
  if (args.values['password-stdin'] !== true) return args;
  if (args.values.password !== undefined) throw new UsageError('give either --password or --password-stdin, not both');
  const password = (await io.readStdin()).split(/\r?\n/)[0] ?? '';
  if (password === '') throw new UsageError('--password-stdin: standard input was empty');
  const values: ParsedArgs['values'] = { ...args.values, password };
  delete values['password-stdin'];
  return { ...args, values };
}

/** A user by id, or else by username (ids win: they are UUIDs). */
async function findUser(services: Services, idOrUsername: string): Promise<User> {
  try {
    return await services.users.get(idOrUsername);
  } catch (err) {
    if (!(err instanceof OAuthError) || err.error !== 'not_found') throw err;
    const byName = await services.users.findByUsername(idOrUsername);
    if (byName) return byName;
    throw new OAuthError('not_found', `no user with id or username "${idOrUsername}"`);
  }
}

/** One user; `secondFactor` (whether they have an authenticator app) when it was looked up. */
function show(user: User, extra: { generatedPassword?: string; secondFactor?: boolean } = {}): CommandResult {
  const { generatedPassword, secondFactor } = extra;
  let text = describe([
    ['id', user.id],
    ['username', user.username],
    ['email', user.email],
    ['roles', user.roles],
    ['disabled', user.disabled ? 'yes' : 'no'],
    ...(secondFactor === undefined ? [] : [['second_factor', secondFactor ? 'authenticator app' : 'none'] as [string, string]]),
    ['created_at', user.createdAt.toISOString()],
    ['updated_at', user.updatedAt.toISOString()],
  ]);
  if (generatedPassword !== undefined) text += `\n\npassword: ${generatedPassword}\n(generated and shown once; the user should change it)`;
  const data = userToWire(user, secondFactor);
  return { data: generatedPassword === undefined ? data : { ...data, generated_password: generatedPassword }, text };
}

/** `show` with whether the user has an authenticator app. */
async function showWithSecondFactor(services: Services, user: User): Promise<CommandResult> {
  return show(user, { secondFactor: await services.secondFactor.isEnrolled(user.id) });
}

const create: Command = {
  name: 'create',
  summary: 'Create a user (without a password option, one is generated and printed once)',
  options: {
    username: { type: 'string', valueName: 'NAME', description: 'Unique (case-insensitively): letters, digits and . _ @ -' },
    ...passwordOptions,
    email: { type: 'string', valueName: 'EMAIL', description: 'Email address (optional)' },
    role: { type: 'string', multiple: true, valueName: 'ROLE', description: 'A role, e.g. admin (repeat for several)' },
  },
  examples: ['users create --username alice --role admin', "printf '%s\\n' 'a long passphrase' | npm run cli -- users create --username bob --password-stdin --email bob@example.com"],
  prepare: readPassword,
  async run(services, args) {
    const username = requireString(args, 'username');
    const given = stringValue(args, 'password');
    const password = given ?? randomBytes(18).toString('base64url');
    const user = await services.users.create({ username, password, email: stringValue(args, 'email') ?? null, roles: listValue(args, 'role') ?? [] }, { actor: CLI_ACTOR });
    return show(user, given === undefined ? { generatedPassword: password } : {});
  },
};

const list: Command = {
  name: 'list',
  summary: 'List users',
  options: pageOptions,
  async run(services, args) {
    const page = pageArgs(args);
    const { users, total } = await services.users.list(page);
    const rows = users.map((u) => [u.id, u.username, u.roles.join(',') || '-', u.disabled ? 'disabled' : 'enabled', u.email ?? '-']);
    const footer = `${users.length} of ${total} user(s)${page.offset > 0 ? ` from offset ${page.offset}` : ''}`;
    return {
      data: { items: users.map((user) => userToWire(user)), total, ...page },
      text: users.length === 0 ? `No users (${total} in total).` : `${table(['ID', 'USERNAME', 'ROLES', 'STATUS', 'EMAIL'], rows)}\n\n${footer}`,
    };
  },
};

const showCommand: Command = {
  name: 'show',
  summary: 'Show one user',
  positionals: ['ID_OR_USERNAME'],
  async run(services, args) {
    return showWithSecondFactor(services, await findUser(services, args.positionals[0]!));
  },
};

const update: Command = {
  name: 'update',
  summary: 'Change a user: password, email, roles, enabled/disabled',
  positionals: ['ID_OR_USERNAME'],
  options: {
    ...passwordOptions,
    email: { type: 'string', valueName: 'EMAIL', description: 'New email address ("" clears it)' },
    role: { type: 'string', multiple: true, valueName: 'ROLE', description: 'A role (repeat; replaces all roles)' },
    'no-roles': { type: 'boolean', description: 'Remove every role' },
    disable: { type: 'boolean', description: 'Disable the account (revokes what it holds)' },
    enable: { type: 'boolean', description: 'Enable the account again' },
  },
  examples: ['users update alice --role admin --role auditor', 'users update alice --disable', 'users update alice --password-stdin < new-password.txt'],
  prepare: readPassword,
  async run(services, args) {
    const patch: UserPatchInput = {};
    const password = stringValue(args, 'password');
    if (password !== undefined) patch.password = password;
    const email = stringValue(args, 'email');
    if (email !== undefined) patch.email = email === '' ? null : email;
    const roles = listValue(args, 'role');
    if (roles !== undefined && flag(args, 'no-roles')) throw new UsageError('give either --role or --no-roles, not both');
    if (roles !== undefined) patch.roles = roles;
    if (flag(args, 'no-roles')) patch.roles = [];
    if (flag(args, 'disable') && flag(args, 'enable')) throw new UsageError('give either --disable or --enable, not both');
    if (flag(args, 'disable')) patch.disabled = true;
    if (flag(args, 'enable')) patch.disabled = false;
    if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give at least one option');
    const user = await findUser(services, args.positionals[0]!);
    return showWithSecondFactor(services, await services.users.update(user.id, patch, { actor: CLI_ACTOR }));
  },
};

const remove: Command = {
  name: 'delete',
  summary: 'Delete a user (their refresh tokens and consents go with them)',
  positionals: ['ID_OR_USERNAME'],
  async run(services, args) {
    const user = await findUser(services, args.positionals[0]!);
    await services.users.delete(user.id, { actor: CLI_ACTOR });
    return { data: { deleted: true, id: user.id, username: user.username }, text: `Deleted user ${user.username} (${user.id}).` };
  },
};

const resetSecondFactor: Command = {
  name: 'reset-second-factor',
  summary: "Remove a user's authenticator app and recovery codes (a lost device); their sessions and tokens end",
  positionals: ['ID_OR_USERNAME'],
  examples: [
    'users reset-second-factor alice',
    'users reset-second-factor root   # an admin who lost theirs: sign in to the console with the password, then set up a new app',
  ],
  async run(services, args) {
    const user = await findUser(services, args.positionals[0]!);
    await services.secondFactor.reset(user, { actor: CLI_ACTOR });
    return {
      data: { reset: true, id: user.id, username: user.username },
      text: `Removed the authenticator app and recovery codes of ${user.username} (${user.id}). They sign in without it now (and can set up a new one); every session and token they held has ended.`,
    };
  },
};

export const userCommands: CommandGroup = {
  name: 'users',
  summary: 'Users and their roles',
  commands: [create, list, showCommand, update, remove, resetSecondFactor],
};
