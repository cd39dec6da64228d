/**
 * The real server as a child process (what `npm start` runs: `node dist/main.js`,
 * or src/main.ts under tsx when dist/ is out of date), on a free port, with its own
 * embedded database in a temp DATA_DIR, or, when `DATABASE_URL` is set, its
 * own empty PostgreSQL database (and the test Redis when `REDIS_URL` is).
 * Stopped and cleaned up in `t.teardown`, even when the test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entryPoint } from './entry-point.js';
import { ROOT } from './root.js';
import { deleteRedisPrefix, openTestDb, REDIS_URL, uniqueName } from './backend.js';

/** A TCP port free right now on 127.0.0.1 (for a server whose ISSUER must name its port up front). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface ServerProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The environment the server runs with (DATA_DIR, DATABASE_URL, … as given to it). */
  env: Record<string, string>;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout matches `pattern` (checked on every chunk). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Port to listen on; default: a free one picked by the OS (PORT=0). */
  port?: number;
  /** Run on the stores of an earlier server process (its DATA_DIR, database and Redis prefix): a restart. */
  storesOf?: Pick<ServerProcess, 'env'>;
}

/** Starts the server and waits until it listens. */
export async function startServer(t: Tap, options: StartOptions = {}): Promise<ServerProcess> {
  const server = await spawnServer(t, options);
  const listening = await server.waitForOutput(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/);
  const port = Number(listening[1]);
  // The banner comes after listen(); wait for it so its content can be read.
  await server.waitForOutput(/OAuth 2\.0 authorization server listening at/);
  return { ...server, url: `http://127.0.0.1:${port}`, port };
}

/** Starts the server process without waiting for it to listen (`url` and `port` are unknown: empty and 0). */
export async function spawnServer(t: Tap, options: StartOptions = {}): Promise<ServerProcess> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|REDIS_URL|REDIS_CLUSTER_NODES|ADMIN_USERNAME|ADMIN_PASSWORD|ISSUER|PORT|HOST|TAP.*|NODE_OPTIONS)$/.test(k)) env[k] = v;
  }
  const shared = options.storesOf?.env;
  if (shared) {
    for (const key of ['DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'REDIS_KEY_PREFIX']) if (shared[key] !== undefined) env[key] = shared[key];
  } else {
    await newStores(t, env);
  }
  Object.assign(env, { HOST: '127.0.0.1', PORT: String(options.port ?? 0), LOG_LEVEL: 'info' }, options.env);
  return spawnMain(t, env);
}

/** A DATA_DIR of its own and, when the tests run on PostgreSQL and Redis, a database and a key prefix of its own. */
async function newStores(t: Tap, env: Record<string, string>): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'oauth-server-proc-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  env.DATA_DIR = dataDir;
  if (process.env.DATABASE_URL) {
    const db = await openTestDb({ migrated: false });
    t.teardown(() => db.close());
    // The server opens its own pool; ours only exists to drop the database afterwards.
    env.DATABASE_URL = db.url!;
  }
  if (REDIS_URL) {
    // A key prefix of its own, so servers of different test files never share
    // throttle counters or pub/sub channels (a test may still pass one to share).
    env.REDIS_URL = REDIS_URL;
    const prefix = `${uniqueName('proc')}:`;
    env.REDIS_KEY_PREFIX = prefix;
    t.teardown(() => deleteRedisPrefix(prefix));
  }
}

function spawnMain(t: Tap, env: Record<string, string>): ServerProcess {
  const child = spawn(process.execPath, entryPoint('main'), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
      for (const w of waiters) w();
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  t.teardown(async () => {
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  });

  const waitForOutput = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(out);
        if (m) {
          cleanup();
          resolve(m);
        } else if (done) {
          cleanup();
          reject(new Error(`server exited before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return { child, url: '', port: 0, env, stdout: () => out, stderr: () => err, waitForOutput, exited };
}
