/**
 * The shape of a CLI command. A command group (`clients`, `users`, `keys`) is
 * one file exporting a `CommandGroup`, listed once in `registry.ts`.
 *
 * `run` receives already-parsed, JSON-serialisable arguments and the domain
 * services, and returns its result instead of printing it. That is what lets
 * the same command run either in the CLI process (over its own storage) or,
 * when a server holds the embedded database, inside that server (sent over
 * the control socket, see `admin/control.ts`).
 */
import type { Services } from '../../services.js';

/** One option of a command, for `node:util` parseArgs and for `--help`. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** Placeholder in help, e.g. `URL`. */
  valueName?: string;
  description: string;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface CommandResult {
  /** Machine output for `--json`. */
  data: unknown;
  /** Human output (ends without a newline). */
  text: string;
}

/** Where the command's input and output go; only the CLI front end touches the process. */
export interface CliIo {
  readStdin(): Promise<string>;
}

export interface Command {
  name: string;
  summary: string;
  /** Positional arguments, in order (all required). */
  positionals?: readonly string[];
  options?: Readonly<Record<string, OptionSpec>>;
  /** Extra lines for `--help`. */
  examples?: readonly string[];
  /**
   * Runs in the CLI process before `run`, for local input (stdin). Returns
   * the arguments to send on; throws `UsageError` for bad combinations.
   */
  prepare?(args: ParsedArgs, io: CliIo): Promise<ParsedArgs>;
  /** Does the work where the database is. Throws `OAuthError` (exit 1) or `UsageError` (exit 2). */
  run(services: Services, args: ParsedArgs): Promise<CommandResult>;
}

export interface CommandGroup {
  name: string;
  summary: string;
  commands: readonly Command[];
}

/** A mistake in how the command was called: exit code 2 and a pointer to `--help`. */
export class UsageError extends Error {
  override name = 'UsageError';
}
