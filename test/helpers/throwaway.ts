/**
 * Throwaway PostgreSQL and Redis servers for fault tests, and an nginx in
 * front of server processes: each on a free loopback port with its files in
 * a temp dir of its own, so a test can stop, pause and restart them without
 * touching anyone else's services.
 *
 * Cleanup happens in `t.teardown` (normal end and failure alike) and, as a
 * safety net for an aborted test process, in a process `exit` hook and on
 * SIGINT/SIGTERM/SIGHUP: every process group started here is SIGKILLed and
 * every temp dir removed. PostgreSQL is started by `pg_ctl`; its postmaster
 * and every child of it (each backend runs in a session of its own, so a
 * process group does not cover them) are signalled by pid. Redis servers are
 * spawned detached (their own process group), and so is nginx (one process).
 *
 * As root, PostgreSQL refuses to run: its commands run as the `postgres` OS
 * user (`runuser -u postgres --`) on a temp dir that user owns.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './server-process.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

// ---------------------------------------------------------------- safety net

/** Process groups (Redis), postmasters (PostgreSQL) and temp dirs still alive, for the exit hook. */
const livePgids = new Set<number>();
const livePostmasters = new Set<number>();
const liveDirs = new Set<string>();
let hooked = false;

function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

/** The pids of `pid`'s children (Linux /proc), e.g. a postmaster's backends. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

/** Signals a postmaster and all its children (backends and workers). */
function signalPostgres(postmaster: number, signal: NodeJS.Signals): void {
  for (const pid of [postmaster, ...childrenOf(postmaster)]) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Synchronous, so it can run in `exit`: kill everything, remove everything. */
function emergencyCleanup(): void {
  for (const pgid of livePgids) killGroup(pgid);
  livePgids.clear();
  for (const postmaster of livePostmasters) signalPostgres(postmaster, 'SIGKILL');
  livePostmasters.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function installHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', emergencyCleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      emergencyCleanup();
      // Only ours listening: restore the default action and re-raise, so the
      // process still dies of the signal (as it would without this hook).
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

function tempDir(prefix: string): string {
  installHooks();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  liveDirs.add(dir);
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

// ---------------------------------------------------------------- availability

function newestPgBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'pg_ctl')) && existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(base, versions[0]!, 'bin') : null;
}

function onPath(command: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : null;
}

const isRoot = process.getuid?.() === 0;

/** Where PostgreSQL's binaries are, or why throwaway PostgreSQL servers cannot run here. */
export function postgresAvailability(): { bin: string } | { reason: string } {
  const bin = newestPgBin();
  if (!bin) return { reason: 'no PostgreSQL binaries under /usr/lib/postgresql/*/bin (install postgresql)' };
  if (isRoot) {
    if (spawnSync('id', ['-u', 'postgres']).status !== 0) return { reason: 'running as root and there is no "postgres" OS user to run PostgreSQL as' };
    if (!onPath('runuser')) return { reason: 'running as root and runuser is missing' };
  }
  return { bin };
}

/** Whether `redis-server` (and `redis-cli`, for clusters) can be found. */
export function redisAvailability(): { server: string; cli: string | null } | { reason: string } {
  const server = onPath('redis-server');
  if (!server) return { reason: 'redis-server is not on PATH (install redis-server)' };
  return { server, cli: onPath('redis-cli') };
}

/**
 * Whether the fault tests run in this pass. They start their own servers and
 * take a while, and CI runs the suite twice (with services, then embedded):
 * they run in the with-services pass, and in any run outside CI.
 */
export function faultTestsSkipReason(): string | null {
  if (process.env.CI && !process.env.DATABASE_URL) {
    return 'fault tests start their own PostgreSQL/Redis and run once in CI, in the pass with DATABASE_URL/REDIS_URL set';
  }
  return null;
}

// ---------------------------------------------------------------- PostgreSQL

export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication, loopback only). */
  readonly url: string;
  readonly port: number;
  /** Whether the server is meant to be accepting connections right now. */
  readonly running: boolean;
  /** Stops the server (`pg_ctl stop`; `immediate` is a crash, `fast` a clean shutdown). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT the whole server: a database that hangs instead of refusing. */
  pause(): void;
  resume(): void;
  /** The server log so far (for failure messages). */
  log(): string;
}

/**
 * `initdb` into a temp dir and `pg_ctl start` on a free port, with the unix
 * socket in the temp dir. Stopped and removed in `t.teardown`.
 */
export async function startThrowawayPostgres(t: Tap): Promise<ThrowawayPostgres> {
  const available = postgresAvailability();
  if ('reason' in available) throw new Error(available.reason);
  const { bin } = available;
  const dir = tempDir('oauth-pg-');
  if (isRoot) {
    const { uid, gid } = userInfoOf('postgres');
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const port = await freePort();
  const as = (command: string, args: string[]) => (isRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] as const : [command, args] as const);
  const run = (command: string, args: string[]) => {
    const [cmd, argv] = as(join(bin, command), args);
    const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
    if (result.status !== 0) throw new Error(`${command} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout}\n${readLog()}`);
  };
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);

  let postmaster: number | null = null;
  let running = false;
  const options = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'].join(' ');

  const start = async () => {
    run('pg_ctl', ['-D', data, '-o', options, '-l', logFile, '-w', '-t', '60', 'start']);
    postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    livePostmasters.add(postmaster);
    running = true;
  };
  const forget = () => {
    if (postmaster !== null) livePostmasters.delete(postmaster);
    postmaster = null;
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return;
    running = false;
    // A paused server cannot stop itself: let it run again first.
    if (postmaster !== null) signalPostgres(postmaster, 'SIGCONT');
    run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    forget();
  };

  await start();
  t.teardown(async () => {
    try {
      await stop('immediate');
    } catch {
      if (postmaster !== null) signalPostgres(postmaster, 'SIGKILL');
    } finally {
      forget();
      removeDir(dir);
    }
  });

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    get running() {
      return running;
    },
    stop,
    start,
    pause() {
      if (postmaster !== null) signalPostgres(postmaster, 'SIGSTOP');
    },
    resume() {
      if (postmaster !== null) signalPostgres(postmaster, 'SIGCONT');
    },
    log: readLog,
  };
}

function userInfoOf(name: string): { uid: number; gid: number } {
  if (userInfo().username === name) return { uid: userInfo().uid, gid: userInfo().gid };
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

// ---------------------------------------------------------------- Redis

export interface ThrowawayRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** Kills the server (SIGKILL: like a crash; nothing is persisted). */
  stop(): Promise<void>;
  /** Starts a fresh, empty server on the same port. */
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  log(): string;
}

interface RedisProcess {
  child: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

/** Spawns `redis-server` detached (its own process group) and waits until it accepts connections. */
async function spawnRedis(server: string, port: number, dir: string, extra: string[] = []): Promise<RedisProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', ...extra];
  const child = spawn(server, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  livePgids.add(child.pid!);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => livePgids.delete(child.pid!));
  const deadline = Date.now() + 15_000;
  while (!/Ready to accept connections/i.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server on port ${port} exited:\n${out}`);
    if (Date.now() > deadline) {
      killGroup(child.pid!);
      throw new Error(`redis-server on port ${port} did not start:\n${out}`);
    }
    await sleep(20);
  }
  return { child, exited, output: () => out };
}

async function killRedis(proc: RedisProcess): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) {
    killGroup(proc.child.pid!, 'SIGCONT');
    killGroup(proc.child.pid!);
    await proc.exited;
  }
  livePgids.delete(proc.child.pid!);
}

/** A `redis-server` on a free port, no persistence. Killed and removed in `t.teardown`. */
export async function startThrowawayRedis(t: Tap): Promise<ThrowawayRedis> {
  const available = redisAvailability();
  if ('reason' in available) throw new Error(available.reason);
  const dir = tempDir('oauth-redis-');
  const port = await freePort();
  let proc: RedisProcess | null = null;
  let logs = '';
  const start = async () => {
    if (proc) return;
    proc = await spawnRedis(available.server, port, dir);
  };
  const stop = async () => {
    if (!proc) return;
    const stopping = proc;
    proc = null;
    await killRedis(stopping);
    logs += stopping.output();
  };
  await start();
  t.teardown(async () => {
    await stop();
    removeDir(dir);
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return proc !== null;
    },
    stop,
    start,
    pause() {
      if (proc) killGroup(proc.child.pid!, 'SIGSTOP');
    },
    resume() {
      if (proc) killGroup(proc.child.pid!, 'SIGCONT');
    },
    log: () => logs + (proc?.output() ?? ''),
  };
}

export interface ThrowawayCluster {
  /** `127.0.0.1:<port>` of every master, as `REDIS_CLUSTER_NODES` takes them. */
  readonly nodes: readonly string[];
}

/**
 * A Redis Cluster of `size` masters (no replicas) on loopback: one
 * `redis-server --cluster-enabled yes` per node, joined by
 * `redis-cli --cluster create`, returned once every node reports
 * `cluster_state:ok`. Killed and removed in `t.teardown`.
 */
export async function startRedisCluster(t: Tap, size = 3): Promise<ThrowawayCluster> {
  const available = redisAvailability();
  if ('reason' in available) throw new Error(available.reason);
  if (!available.cli) throw new Error('redis-cli is not on PATH');
  const cli = available.cli;
  const dir = tempDir('oauth-redis-cluster-');
  const procs: RedisProcess[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => killRedis(p)));
    removeDir(dir);
  });
  const ports: number[] = [];
  for (let i = 0; i < size; i++) {
    // Cluster nodes also listen on port + 10000 (the cluster bus): pick ports whose bus port is free too.
    let port = await freePort();
    while (port + 10_000 > 65_535 || !(await portIsFree(port + 10_000))) port = await freePort();
    ports.push(port);
    procs.push(
      await spawnRedis(available.server, port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000']),
    );
  }
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  const created = spawnSync(cli, ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`);
  const deadline = Date.now() + 30_000;
  for (const port of ports) {
    for (;;) {
      const info = spawnSync(cli, ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info'], { encoding: 'utf8' });
      const slots = spawnSync(cli, ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'slots'], { encoding: 'utf8' });
      if (/cluster_state:ok/.test(info.stdout) && /cluster_slots_ok:16384/.test(info.stdout) && slots.stdout.trim() !== '') break;
      if (Date.now() > deadline) throw new Error(`cluster did not become ready on ${port}: ${info.stdout}`);
      await sleep(100);
    }
  }
  return { nodes };
}

async function portIsFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------- nginx

/** Where nginx is, or why a throwaway nginx cannot run here. */
export function nginxAvailability(): { bin: string } | { reason: string } {
  const bin = onPath('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null);
  if (!bin) return { reason: 'nginx is not installed (Debian: apt-get install nginx-light)' };
  return { bin };
}

export interface NginxOptions {
  /** `host:port` of each upstream server, balanced round robin. */
  upstreams: readonly string[];
  /** nginx's `client_max_body_size`, bytes. */
  clientMaxBodySize: number;
}

export interface ThrowawayNginx {
  /**
   * `http://127.0.0.1:<port>`: nginx as usually deployed. It reads the whole
   * request body first (a chunked one too) and sends it upstream with a
   * Content-Length, over HTTP/1.0 (`Connection: close`).
   */
  readonly url: string;
  /**
   * `http://127.0.0.1:<port>`: the same upstreams with
   * `proxy_request_buffering off` over HTTP/1.1: a body is relayed as it
   * arrives, a chunked one still chunked.
   */
  readonly streamingUrl: string;
  /** nginx's error log so far. */
  log(): string;
}

/**
 * nginx in front of `upstreams` on two free loopback ports, configured like a
 * production reverse proxy (`X-Forwarded-For`, `-Proto`, the client's `Host`),
 * plus `X-Upstream` on every response, naming the upstream that answered.
 * One process (`master_process off`, `daemon off`), its config, logs, pid and
 * temp files in a temp dir of its own; stopped and removed in `t.teardown`.
 * `max_fails=0`: an upstream error never takes a server out of the rotation,
 * so balancing stays strictly round robin.
 */
export async function startThrowawayNginx(t: Tap, options: NginxOptions): Promise<ThrowawayNginx> {
  const available = nginxAvailability();
  if ('reason' in available) throw new Error(available.reason);
  const dir = tempDir('oauth-nginx-');
  const [port, streamingPort] = [await freePort(), await freePort()];
  const errorLog = join(dir, 'error.log');
  const proxied = [
    'proxy_pass http://instances;',
    'proxy_set_header Host $http_host;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'add_header X-Upstream $upstream_addr always;',
  ];
  const config = [
    'daemon off;',
    'master_process off;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${errorLog} info;`,
    'events { worker_connections 512; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(dir, kind)};`),
    `  client_max_body_size ${options.clientMaxBodySize};`,
    `  upstream instances { ${options.upstreams.map((u) => `server ${u} max_fails=0;`).join(' ')} }`,
    `  server { listen 127.0.0.1:${port}; location / { ${proxied.join(' ')} } }`,
    `  server { listen 127.0.0.1:${streamingPort}; location / { ${proxied.join(' ')} proxy_http_version 1.1; proxy_set_header Connection ""; proxy_request_buffering off; } }`,
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), config);

  // -e: the error log from the start (else nginx first opens its compiled-in /var/log/nginx/error.log).
  const child = spawn(available.bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', errorLog], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  livePgids.add(child.pid!);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => livePgids.delete(child.pid!));
  const log = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child.pid!, 'SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!stopped) {
        killGroup(child.pid!);
        await exited;
      }
    }
    livePgids.delete(child.pid!);
    removeDir(dir);
  });

  const deadline = Date.now() + 15_000;
  for (const p of [port, streamingPort]) {
    while (!(await accepts(p))) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nginx exited:\n${out}\n${log()}`);
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${p}:\n${out}\n${log()}`);
      await sleep(20);
    }
  }
  return { url: `http://127.0.0.1:${port}`, streamingUrl: `http://127.0.0.1:${streamingPort}`, log };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (without binding the port, as `portIsFree` does). */
async function accepts(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
