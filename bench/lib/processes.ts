/**
 * The servers under test as child processes: started with their output going
 * to a log file (as a production server's would go to a file or journald,
 * not back into the load generator), polled until they answer, measured
 * (resident memory), and stopped (SIGTERM, then SIGKILL) even when the
 * benchmark fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface ServerChild {
  name: string;
  pid: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  logFile: string;
  /** Milliseconds from spawning the process to its first 2xx answer on `readyPath`. */
  readyMs: number;
  /** Resident set size in bytes (Linux `/proc`), or null where unavailable. */
  rssBytes(): number | null;
  /** CPU time used so far (user + system, all threads), seconds; null where unavailable. */
  cpuSeconds(): number | null;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

// Children must not outlive the benchmark, whatever ends it.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(130);
  });
}

/** A TCP port free right now on 127.0.0.1 (the issuer must name its port before the server starts). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function rssOf(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ): 100 on every Linux Node supports. */
const USER_HZ = 100;

export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th of the line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return null;
  }
}

export interface StartOptions {
  name: string;
  /** Arguments to `node`. */
  args: string[];
  env: Record<string, string>;
  port: number;
  /** Path that answers 200 once the server is ready. */
  readyPath: string;
  logFile: string;
  cwd: string;
  timeoutMs?: number;
  /** Milliseconds between readiness polls (default 100; the startup bench polls faster to time the start). */
  pollMs?: number;
}

/**
 * The parent's environment without the variables that configure a server
 * under test (so it gets exactly what the benchmark gives it), plus `extra`.
 */
export function serverEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(DATABASE_URL|REDIS_URL|REDIS_CLUSTER_NODES|DATA_DIR|PORT|HOST|ISSUER|ADMIN_USERNAME|ADMIN_PASSWORD|LOG_LEVEL|ACCESS_TOKEN_ALG|NODE_OPTIONS|PEER_.*|FLOOR_.*)$/.test(k)) {
      env[k] = v;
    }
  }
  return { ...env, ...extra };
}

export async function startServer(options: StartOptions): Promise<ServerChild> {
  const fd = openSync(options.logFile, 'a');
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(child);
  let exitCode: number | string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal ?? 'unknown';
      running.delete(child);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let readyMs = 0;
  for (;;) {
    if (exitCode !== null) throw new Error(`${options.name} exited (${String(exitCode)}) before it was ready; see ${options.logFile}`);
    try {
      const res = await fetch(url + options.readyPath);
      await res.arrayBuffer();
      if (res.ok) {
        readyMs = performance.now() - spawnedAt;
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} was not ready within ${options.timeoutMs ?? 60_000} ms; see ${options.logFile}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 100));
  }
  return {
    name: options.name,
    pid: child.pid!,
    url,
    port: options.port,
    logFile: options.logFile,
    readyMs,
    rssBytes: () => rssOf(child.pid!),
    cpuSeconds: () => cpuSecondsOf(child.pid!),
    async stop() {
      if (exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
