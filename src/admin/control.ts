/**
 * The control socket: how `npm run cli` works while a server holds the
 * embedded database.
 *
 * PGlite lives inside one process and must never be opened by two (see
 * `storage/lock.ts`). So the process holding it (the server) listens on a
 * local socket next to the data (`DATA_DIR/control.sock`, owner-only), and a
 * CLI that finds the data directory locked sends its already-parsed command
 * there instead of opening the files. The server runs the very same command
 * (`cli/registry.ts`) over its own services and sends the result back. The
 * database is only ever touched by its one owner, through PGlite's own
 * serialisation; no SQL crosses the socket.
 *
 * A request must carry the random token from the lock file, which only users
 * who may read `DATA_DIR` (and could therefore open the database themselves)
 * can see. One JSON line in, one JSON line out, then the connection closes.
 */
import { chmod, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { OAuthError } from '../errors.js';
import { constantTimeEqual } from '../security/constant-time.js';
import type { Services } from '../services.js';
import { controlSocketPath, readLockOwner, type LockOwner } from '../storage/lock.js';
import { findCommand } from './cli/registry.js';
import { UsageError, type CommandResult, type ParsedArgs } from './cli/types.js';

/** Largest request accepted on the socket. */
const MAX_REQUEST_BYTES = 1 << 20;
/** How long one command may run before the CLI gives up waiting. */
const COMMAND_TIMEOUT_MS = 60_000;

export interface ControlRequest {
  token: string;
  group: string;
  command: string;
  args: ParsedArgs;
}

export type ControlResponse =
  | { ok: true; result: CommandResult }
  | { ok: false; usage: boolean; error: string; error_description: string };

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

function isParsedArgs(value: unknown): value is ParsedArgs {
  if (typeof value !== 'object' || value === null) return false;
  const { values, positionals } = value as Partial<ParsedArgs>;
  return typeof values === 'object' && values !== null && Array.isArray(positionals) && positionals.every((p) => typeof p === 'string');
}

/** Runs one request against `services`; never throws. */
export async function handleControlRequest(services: Services, token: string, raw: string): Promise<ControlResponse> {
  let request: Partial<ControlRequest>;
  try {
    request = JSON.parse(raw) as Partial<ControlRequest>;
  } catch {
    return { ok: false, usage: false, error: 'invalid_request', error_description: 'malformed control request' };
  }
  if (!constantTimeEqual(request.token, token)) {
    return { ok: false, usage: false, error: 'unauthorized', error_description: 'wrong control token (is DATA_DIR shared by two servers?)' };
  }
  const command = typeof request.group === 'string' && typeof request.command === 'string' ? findCommand(request.group, request.command) : undefined;
  if (!command || !isParsedArgs(request.args)) {
    return { ok: false, usage: true, error: 'invalid_request', error_description: `the server does not know "${String(request.group)} ${String(request.command)}" (is it an older version?)` };
  }
  try {
    return { ok: true, result: await command.run(services, request.args) };
  } catch (err) {
    if (err instanceof UsageError) return { ok: false, usage: true, error: 'usage', error_description: err.message };
    if (err instanceof OAuthError) return { ok: false, usage: false, error: err.error, error_description: err.description };
    return { ok: false, usage: false, error: 'server_error', error_description: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Starts the control socket of the process holding the embedded database in
 * `dataDir`. Throws when this process does not hold the lock.
 */
export async function startControlServer(services: Services, dataDir: string, log?: { warn(obj: unknown, msg: string): void }): Promise<ControlServer> {
  const owner = await readLockOwner(dataDir);
  if (!owner || owner.pid !== process.pid) throw new Error(`this process does not hold the lock on ${dataDir}`);
  const path = controlSocketPath(dataDir);
  // We hold the data-dir lock, so a socket file left here is a dead server's.
  if (process.platform !== 'win32') await unlink(path).catch(() => {});

  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    let buffer = '';
    let handled = false;
    socket.on('data', (chunk: string) => {
      if (handled) return;
      buffer += chunk;
      if (buffer.length > MAX_REQUEST_BYTES) {
        handled = true;
        socket.end(`${JSON.stringify({ ok: false, usage: false, error: 'invalid_request', error_description: 'request too large' })}\n`);
        return;
      }
      const newline = buffer.indexOf('\n');
      if (newline === -1) return;
      handled = true;
      handleControlRequest(services, owner.token, buffer.slice(0, newline)).then(
        (response) => socket.end(`${JSON.stringify(response)}\n`),
        (err: unknown) => {
          log?.warn({ err }, 'control request failed');
          socket.destroy();
        },
      );
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (process.platform !== 'win32') await chmod(path, 0o600);
  server.on('error', (err) => log?.warn({ err }, 'control socket error'));

  return {
    path,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      if (process.platform !== 'win32') await unlink(path).catch(() => {});
    },
  };
}

/** The control socket could not be reached (no server listening yet, or the holder is not a server). */
export class ControlUnavailableError extends Error {
  override name = 'ControlUnavailableError';
}

/** Sends one command to the holder of `dataDir`'s lock. */
export function sendControlRequest(dataDir: string, owner: LockOwner, group: string, command: string, args: ParsedArgs): Promise<ControlResponse> {
  const request: ControlRequest = { token: owner.token, group, command, args };
  return new Promise((resolve, reject) => {
    const socket = connect(controlSocketPath(dataDir));
    let buffer = '';
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server (pid ${owner.pid}) did not answer within ${COMMAND_TIMEOUT_MS / 1000} s`));
    }, COMMAND_TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected) reject(new ControlUnavailableError(err.code ?? err.message));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const line = buffer.split('\n')[0] ?? '';
      try {
        resolve(JSON.parse(line) as ControlResponse);
      } catch {
        if (connected) reject(new Error('the server closed the control connection without an answer'));
      }
    });
  });
}
