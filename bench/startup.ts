/**
 * Start → ready, and memory at rest: `npm run bench -- --startup` (or
 * `node --import tsx bench/startup.ts`, same flags). Starts the built server
 * as `npm start` does (`node dist/main.js`), times spawn → first 200 from
 * `/readyz` (polled every 10 ms), reads its resident memory (VmRSS) 2 s
 * after ready and again at rest, 20 s after ready, and stops it. Each round starts it twice on one backend:
 *
 *   first   a fresh DATA_DIR (embedded: PGlite creates its cluster) or a
 *           freshly created PostgreSQL database (migrations run)
 *   later   the same DATA_DIR or database again (already set up)
 *
 * On the embedded default always; on PostgreSQL + Redis too when
 * DATABASE_URL and REDIS_URL (or --database-url / --redis-url) are given
 * and --embedded is not. The backends alternate within a round so drift of
 * a shared machine spreads over both; the table gives median and range.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, USAGE, type BenchArgs } from './lib/args.js';
import { prepareBackend } from './lib/backend.js';
import { freePort, serverEnv, startServer } from './lib/processes.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** How often `/readyz` is asked while the server starts. */
const POLL_MS = 10;
/** Rest after ready before memory is read: what a freshly started, unused instance holds. */
const IDLE_MS = 2_000;
/**
 * Then memory at rest: by then V8's memory reducer, which runs full
 * collections a few seconds into an idle period, has returned what the start
 * left behind (its young generation, grown to 32 MiB while starting, among
 * it). The goals are judged on this reading: what an instance holds idle.
 */
const AT_REST_MS = 20_000;

type Start = 'first' | 'later';
type BackendName = 'embedded' | 'postgres';

/** Goals of issue 15: seconds to ready and idle RSS (MiB). */
const GOALS: Record<BackendName, Record<Start, { seconds: number; rssMiB: number }>> = {
  postgres: { first: { seconds: 1, rssMiB: 100 }, later: { seconds: 1, rssMiB: 100 } },
  embedded: { first: { seconds: 4, rssMiB: 200 }, later: { seconds: 1.5, rssMiB: 200 } },
};

const LABELS: Record<BackendName, Record<Start, string>> = {
  postgres: { first: 'PostgreSQL + Redis, fresh database', later: 'PostgreSQL + Redis, migrated database' },
  embedded: { first: 'embedded, fresh DATA_DIR', later: 'embedded, same DATA_DIR again' },
};

interface Sample {
  backend: BackendName;
  start: Start;
  round: number;
  readyMs: number;
  /** CPU seconds (user + system) the process used up to the moment it was seen ready. */
  cpuSecondsToReady: number | null;
  rssBytes: number | null;
  /** VmRSS at rest (`AT_REST_MS` after ready). */
  restingRssBytes: number | null;
}

const log = (line = '') => process.stdout.write(`${line}\n`);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const mib = (bytes: number) => (bytes / 1048576).toFixed(0);

async function startOnce(args: BenchArgs, env: Record<string, string>, adminPassword: string, logFile: string): Promise<Omit<Sample, 'backend' | 'start' | 'round'>> {
  const port = await freePort();
  const server = await startServer({
    name: 'our server',
    args: [args.server],
    env: serverEnv({
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ADMIN_USERNAME: 'bench-admin',
      ADMIN_PASSWORD: adminPassword,
      ...args.env,
    }),
    port,
    readyPath: '/readyz',
    logFile,
    cwd: ROOT,
    pollMs: POLL_MS,
  });
  try {
    const cpuSecondsToReady = server.cpuSeconds();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const rssBytes = server.rssBytes();
    await new Promise((r) => setTimeout(r, AT_REST_MS - IDLE_MS));
    return { readyMs: server.readyMs, cpuSecondsToReady, rssBytes, restingRssBytes: server.rssBytes() };
  } finally {
    await server.stop();
  }
}

/** One backend's pair of starts (first, later) on a backend prepared for it alone. */
async function round(args: BenchArgs, backendName: BackendName, n: number, logDir: string): Promise<Sample[]> {
  const backend = await prepareBackend({ embedded: backendName === 'embedded', databaseUrl: args.databaseUrl, redisUrl: args.redisUrl });
  // One configuration for both starts, as a deployment restarts with the same settings: the
  // first start creates the admin, the later one finds it with this password already set.
  const adminPassword = randomBytes(18).toString('base64url');
  try {
    const samples: Sample[] = [];
    for (const start of ['first', 'later'] as const) {
      const sample = await startOnce(args, backend.env, adminPassword, join(logDir, `${backendName}-${start}-${n}.log`));
      samples.push({ backend: backendName, start, round: n, ...sample });
      log(
        `   round ${n}  ${LABELS[backendName][start].padEnd(38)} ready ${seconds(sample.readyMs)} s` +
          `  (CPU ${sample.cpuSecondsToReady?.toFixed(2) ?? 'n/a'} s)  RSS ${sample.rssBytes === null ? 'n/a' : `${mib(sample.rssBytes)} MiB`}` +
          `, at rest ${sample.restingRssBytes === null ? 'n/a' : `${mib(sample.restingRssBytes)} MiB`}`,
      );
    }
    return samples;
  } finally {
    await backend.cleanup();
  }
}

export async function runStartup(args: BenchArgs): Promise<void> {
  if (!existsSync(resolve(ROOT, args.server))) throw new Error(`${args.server} is missing: run \`npm run build\` (npm run bench does)`);
  const backends: BackendName[] = !args.embedded && args.databaseUrl && args.redisUrl ? ['postgres', 'embedded'] : ['embedded'];
  const date = new Date().toISOString();
  log(`# oauth-server start → ready, ${date}`);
  log(`node ${process.version}, ${args.server}, ${args.repeat} round(s), /readyz polled every ${POLL_MS} ms, RSS read ${IDLE_MS / 1000} s and ${AT_REST_MS / 1000} s (at rest) after ready`);
  if (loadavg()[0]! >= 1.5) log(`! load average ${loadavg()[0]!.toFixed(2)} ≥ 1.5: something else is running; numbers taken now are not comparable`);
  if (backends.length === 1 && !args.embedded) log('! no DATABASE_URL / REDIS_URL: the embedded default only');
  const stamp = date.replace(/[:.]/g, '-');
  const logDir = resolve(ROOT, 'bench/results', `logs-startup-${stamp}`);
  mkdirSync(logDir, { recursive: true });

  const samples: Sample[] = [];
  for (let n = 1; n <= args.repeat; n++) for (const b of backends) samples.push(...(await round(args, b, n, logDir)));

  log();
  log('| start | ready, s: median (min–max) | CPU to ready, s | RSS 2 s after ready, MiB | RSS at rest, MiB: median (min–max) | goal | met |');
  log('|---|---:|---:|---:|---:|---|:-:|');
  const summary = [];
  for (const b of backends) {
    for (const start of ['first', 'later'] as const) {
      const these = samples.filter((s) => s.backend === b && s.start === start);
      const ready = these.map((s) => s.readyMs);
      const early = these.map((s) => s.rssBytes).filter((r): r is number => r !== null);
      const rss = these.map((s) => s.restingRssBytes).filter((r): r is number => r !== null);
      const cpu = these.map((s) => s.cpuSecondsToReady).filter((c): c is number => c !== null);
      const goal = GOALS[b][start];
      const met = median(ready) < goal.seconds * 1000 && rss.length > 0 && median(rss) < goal.rssMiB * 1048576;
      const cell = (values: number[]) => (values.length ? `${mib(median(values))} (${mib(Math.min(...values))}–${mib(Math.max(...values))})` : 'n/a');
      log(
        `| ${LABELS[b][start]} | ${seconds(median(ready))} (${seconds(Math.min(...ready))}–${seconds(Math.max(...ready))}) | ${cpu.length ? median(cpu).toFixed(2) : 'n/a'} | ${cell(early)} | ${cell(rss)} | < ${goal.seconds} s, < ${goal.rssMiB} MiB | ${met ? 'yes' : 'no'} |`,
      );
      summary.push({
        backend: b,
        start,
        readyMsMedian: median(ready),
        rssBytesMedian: early.length ? median(early) : null,
        restingRssBytesMedian: rss.length ? median(rss) : null,
        goal,
        met,
      });
    }
  }
  const out = args.json ?? join(ROOT, 'bench/results', `startup-${stamp}.json`);
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(resolve(out), `${JSON.stringify({ date, node: process.version, server: args.server, repeat: args.repeat, samples, summary }, null, 2)}\n`);
  log();
  log(`results   ${out}, server logs ${logDir}`);
}

// Run directly: `node --import tsx bench/startup.ts [flags]`.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  let args: BenchArgs;
  try {
    args = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  if (args.help) log(USAGE);
  else {
    runStartup(args).catch((err: unknown) => {
      process.stderr.write(`startup bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
  }
}
