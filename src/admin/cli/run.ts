/**
 * The CLI front end: parses `group command [args]` with `node:util`
 * parseArgs, prints help, and runs the command where the database is:
 *
 * - `DATABASE_URL` set: over its own storage (PostgreSQL is multi-process).
 * - Embedded database free: opens it itself (holding the data-dir lock).
 * - Embedded database held by a running server: sends the command over the
 *   server's control socket (`admin/control.ts`) and prints its answer.
 *
 * Exit codes: 0 done, 1 the command failed, 2 it was called wrongly.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../../config.js';
import { OAuthError } from '../../errors.js';
import { createServices, type Services } from '../../services.js';
import { createStorage, DataDirLockedError, describePostgresUrl } from '../../storage/index.js';
import { ControlUnavailableError, sendControlRequest } from '../control.js';
import { commandGroups, findGroup } from './registry.js';
import { UsageError, type CliIo, type Command, type CommandGroup, type CommandResult, type OptionSpec, type ParsedArgs } from './types.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CliStreams extends CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface RunCliOptions {
  /** Environment for `loadConfig` (default: none). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Run against these services instead of opening storage (tests). */
  services?: Services;
  /** How long to wait for a busy embedded database (another CLI run) to free up, ms. */
  waitMs?: number;
}

const PROGRAM = 'npm run cli --';

const globalOptions: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'Machine-readable JSON output' },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
};

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const entries = Object.entries(options).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '';
    const value = spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
    return [`${short}--${name}${value}`, `${spec.description}${spec.multiple ? ' (repeatable)' : ''}`] as const;
  });
  const width = Math.max(...entries.map(([flagText]) => flagText.length));
  return entries.map(([flagText, text]) => `  ${flagText.padEnd(width)}  ${text}`);
}

export function topHelp(): string {
  const width = Math.max(...commandGroups.map((g) => g.name.length));
  return [
    `Usage: ${PROGRAM} <group> <command> [options]`,
    '',
    'Manage this OAuth server from its own machine. Uses the same configuration as the',
    'server (DATABASE_URL, DATA_DIR, REDIS_URL, SCOPES, ...). While the server runs on the',
    'embedded database, commands are carried out by the running server.',
    '',
    'Groups:',
    ...commandGroups.map((g) => `  ${g.name.padEnd(width)}  ${g.summary}`),
    '',
    'Options everywhere:',
    ...optionLines(globalOptions),
    '',
    `Run "${PROGRAM} <group> --help" for a group's commands.`,
    'Exit codes: 0 done, 1 failed, 2 wrong usage.',
  ].join('\n');
}

export function groupHelp(group: CommandGroup): string {
  const width = Math.max(...group.commands.map((c) => c.name.length));
  return [
    `Usage: ${PROGRAM} ${group.name} <command> [options]`,
    '',
    `${group.summary}.`,
    '',
    'Commands:',
    ...group.commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run "${PROGRAM} ${group.name} <command> --help" for its options.`,
  ].join('\n');
}

export function commandHelp(group: CommandGroup, command: Command): string {
  const positionals = (command.positionals ?? []).map((p) => ` ${p}`).join('');
  const lines = [`Usage: ${PROGRAM} ${group.name} ${command.name}${positionals} [options]`, '', `${command.summary}.`, '', 'Options:'];
  lines.push(...optionLines({ ...(command.options ?? {}), ...globalOptions }));
  if (command.examples && command.examples.length > 0) {
    lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e.startsWith('printf') ? e : `${PROGRAM} ${e}`}`));
  }
  return lines.join('\n');
}

/** Parses a command's own arguments; throws `UsageError`. */
export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs & { json: boolean; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries({ ...(command.options ?? {}), ...globalOptions })) {
    options[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    // parseArgs' messages name the option and what is wrong with it.
    throw new UsageError(err instanceof Error ? err.message.split('. To specify')[0]! : String(err));
  }
  const { json, help, ...values } = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const result = { values, positionals: parsed.positionals, json: json === true, help: help === true };
  if (result.help) return result;
  const expected = command.positionals ?? [];
  if (parsed.positionals.length < expected.length) throw new UsageError(`missing ${expected.slice(parsed.positionals.length).join(' ')}`);
  if (parsed.positionals.length > expected.length) throw new UsageError(`unexpected argument "${parsed.positionals[expected.length]}"`);
  return result;
}

type Outcome = { ok: true; result: CommandResult } | { ok: false; usage: boolean; error: string; description: string };

async function runLocally(services: Services, command: Command, args: ParsedArgs): Promise<Outcome> {
  try {
    return { ok: true, result: await command.run(services, args) };
  } catch (err) {
    if (err instanceof UsageError) return { ok: false, usage: true, error: 'usage', description: err.message };
    if (err instanceof OAuthError) return { ok: false, usage: false, error: err.error, description: err.description };
    throw err;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the command over this process's own storage, or through the server holding the embedded database. */
async function runWhereTheDataIs(config: Config, group: CommandGroup, command: Command, args: ParsedArgs, waitMs: number, warn: (text: string) => void): Promise<Outcome> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let storage;
    try {
      storage = await createStorage(config);
    } catch (err) {
      if (!(err instanceof DataDirLockedError)) throw err;
      try {
        const response = await sendControlRequest(config.dataDir, err.owner, group.name, command.name, args);
        warn(`(the embedded database in ${config.dataDir}, through the server that holds it)\n`);
        if (response.ok) return response;
        return { ok: false, usage: response.usage, error: response.error, description: response.error_description };
      } catch (sendError) {
        // The holder is not (yet) listening: a server still starting, or another CLI run. Wait a little.
        if (!(sendError instanceof ControlUnavailableError)) throw sendError;
        if (Date.now() >= deadline) {
          throw new Error(`${err.message} It does not accept CLI commands (another CLI run, or a server still starting?); try again.`);
        }
        await sleep(200);
        continue;
      }
    }
    // Which data this is: without DATABASE_URL the CLI opens the embedded database, which may not be the one meant.
    warn(
      config.databaseUrl
        ? `(PostgreSQL at ${describePostgresUrl(config.databaseUrl)}, from DATABASE_URL)\n`
        : `(the embedded database in ${config.dataDir}: DATABASE_URL is not set)\n`,
    );
    const services = createServices(config, storage, {
      onAuditError: (err, what) => warn(`warning: ${what} failed: ${err instanceof Error ? err.message : String(err)}\n`),
    });
    try {
      await services.start();
      return await runLocally(services, command, args);
    } finally {
      await services.close();
    }
  }
}

/** Runs the CLI; returns the exit code. Never calls `process.exit`. */
export async function runCli(argv: readonly string[], io: CliStreams, options: RunCliOptions = {}): Promise<number> {
  const [groupName, commandName, ...rest] = argv;
  const usage = (message: string, hint: string) => {
    io.stderr(`error: ${message}\n${hint}\n`);
    return EXIT_USAGE;
  };

  if (groupName === undefined) {
    io.stderr(`${topHelp()}\n`);
    return EXIT_USAGE;
  }
  if (groupName === '--help' || groupName === '-h' || groupName === 'help') {
    io.stdout(`${topHelp()}\n`);
    return EXIT_OK;
  }
  const group = findGroup(groupName);
  if (!group) return usage(`unknown command group "${groupName}"`, `Run "${PROGRAM} --help" to see the groups.`);
  if (commandName === undefined) {
    io.stderr(`${groupHelp(group)}\n`);
    return EXIT_USAGE;
  }
  if (commandName === '--help' || commandName === '-h' || commandName === 'help') {
    io.stdout(`${groupHelp(group)}\n`);
    return EXIT_OK;
  }
  const command = group.commands.find((c) => c.name === commandName);
  if (!command) return usage(`unknown command "${group.name} ${commandName}"`, `Run "${PROGRAM} ${group.name} --help" to see its commands.`);

  const hint = `Run "${PROGRAM} ${group.name} ${command.name} --help" for usage.`;
  let parsed: ReturnType<typeof parseCommandArgs>;
  let args: ParsedArgs;
  try {
    parsed = parseCommandArgs(command, [...rest]);
    if (parsed.help) {
      io.stdout(`${commandHelp(group, command)}\n`);
      return EXIT_OK;
    }
    args = { values: parsed.values, positionals: parsed.positionals };
    if (command.prepare) args = await command.prepare(args, io);
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message, hint);
    throw err;
  }

  let outcome: Outcome;
  try {
    if (options.services) {
      outcome = await runLocally(options.services, command, args);
    } else {
      let config: Config;
      try {
        config = loadConfig(options.env ?? {});
      } catch (err) {
        if (err instanceof ConfigError) return usage(`configuration: ${err.message}`, 'Fix the environment variable and try again.');
        throw err;
      }
      outcome = await runWhereTheDataIs(config, group, command, args, options.waitMs ?? 10_000, io.stderr);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (parsed.json) io.stderr(`${JSON.stringify({ error: 'server_error', error_description: message })}\n`);
    else io.stderr(`error: ${message}\n`);
    return EXIT_FAILURE;
  }

  if (outcome.ok) {
    io.stdout(parsed.json ? `${JSON.stringify(outcome.result.data, null, 2)}\n` : `${outcome.result.text}\n`);
    return EXIT_OK;
  }
  if (outcome.usage) return usage(outcome.description, hint);
  if (parsed.json) io.stderr(`${JSON.stringify({ error: outcome.error, error_description: outcome.description })}\n`);
  else io.stderr(`error: ${outcome.description}\n`);
  return EXIT_FAILURE;
}
