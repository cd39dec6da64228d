/**
 * Load generation with autocannon: an unmeasured warm-up, then the measured
 * run, summarised as req/s, p50/p99 latency and the answers that were not
 * 2xx. Also how busy the box was just before (CPU not spent by us: numbers
 * taken next to a foreign load are wrong).
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  connections: number;
  /** At most this many req/s in all (autocannon's `overallRate`); undefined: as fast as answered. */
  rate?: number | undefined;
  requests: autocannon.Request[];
}

export interface LoadResult {
  /** Completed requests per second over the measured run. */
  rps: number;
  p50: number;
  p99: number;
  avg: number;
  max: number;
  total: number;
  non2xx: number;
  /** Socket errors and timeouts. */
  errors: number;
  statusCodes: Record<string, number>;
  seconds: number;
  /**
   * CPU time the server process spent per answered request, µs (all its
   * threads: crypto and argon2 run on libuv's pool). Unlike req/s it hardly
   * depends on what else the machine is doing, so it is what before/after
   * comparisons of a change should look at. Null when not measured.
   */
  cpuUsPerRequest: number | null;
  /**
   * The measured run on the monotonic clock, µs (`process.hrtime`, the clock
   * of V8 CPU profiles' timestamps), so `bench/profile-summary.ts` can keep
   * only a case's samples out of a `--cpu-prof` profile.
   */
  window: { startUs: number; endUs: number } | null;
}

export function summarize(result: autocannon.Result): LoadResult {
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    rps: total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    avg: result.latency.average,
    max: result.latency.max,
    total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    statusCodes,
    seconds: result.duration,
    cpuUsPerRequest: null,
    window: null,
  };
}

/** Runs `spec` for `warmup` seconds (discarded), then for `duration` seconds. `cpuSeconds` reads the server's CPU time. */
export async function measure(spec: LoadSpec, duration: number, warmup: number, cpuSeconds?: () => number | null): Promise<LoadResult> {
  const options = { url: spec.url, connections: spec.connections, pipelining: 1, timeout: 10, requests: spec.requests, ...(spec.rate === undefined ? {} : { overallRate: spec.rate }) };
  if (warmup > 0) {
    await autocannon({ ...options, duration: warmup });
    // autocannon drops its sockets when the time is up, but the server still
    // finishes what they had asked for (a queue of argon2 hashes, say): let it
    // drain so the measured run starts on an idle server.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const cpuBefore = cpuSeconds?.() ?? null;
  const startUs = monotonicUs();
  const result = summarize(await autocannon({ ...options, duration }));
  result.window = { startUs, endUs: monotonicUs() };
  const cpuAfter = cpuSeconds?.() ?? null;
  if (cpuBefore !== null && cpuAfter !== null && result.total > 0) result.cpuUsPerRequest = ((cpuAfter - cpuBefore) * 1e6) / result.total;
  return result;
}

export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle + iowait
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Share of the whole machine's CPU (0–100 %) that was busy during `ms`
 * while the benchmark itself was idle: someone else's load. Null where
 * `/proc/stat` is unavailable.
 */
export async function foreignCpuPercent(ms = 1000): Promise<number | null> {
  try {
    const a = cpuTimes();
    await new Promise((resolve) => setTimeout(resolve, ms));
    const b = cpuTimes();
    return b.total === a.total ? 0 : (100 * (b.busy - a.busy)) / (b.total - a.total);
  } catch {
    return null;
  }
}
