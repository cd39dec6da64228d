/**
 * Prometheus metrics (prom-client). Each app instance gets its own Registry,
 * never prom-client's global one, so two apps in one process (tests, or a
 * second instance in a benchmark) never share or clash on counters.
 *
 * The flows report through this small interface (`services.metrics`); every
 * method is a constant-time counter update, cheap enough for the hot path.
 * Label values come from closed sets (route patterns, known grant types, a
 * few sources), so the number of series cannot grow with traffic.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isGrantType } from '../oauth/protocol.js';
import type { SigningWorkerStats } from '../tokens/types.js';

/** Where a failed sign-in happened. */
export type LoginFailureSource = 'login_form' | 'password_grant' | 'client_auth' | 'admin_api' | 'admin_console' | 'account_page';

export interface Metrics {
  readonly registry: Registry;
  /**
   * One HTTP request answered. `route` is the route pattern
   * (`/admin/clients/:client_id`), never the raw URL; unmatched requests
   * are reported as route `unmatched`.
   */
  observeRequest(method: string, route: string | undefined, statusCode: number, seconds: number): void;
  /** One token response issued, by grant type (`implicit` for the authorization endpoint's token response). */
  tokenIssued(grantType: string): void;
  /** One wrong password or client secret (not counted: throttled requests that were never checked). */
  loginFailed(source: LoginFailureSource): void;
  /** A used refresh token was presented again and its family revoked (RFC 9700 §4.14.2). */
  refreshReuseDetected(): void;
  /**
   * Reports what the signing worker did (`tokens/signing-worker.ts`), read at
   * each scrape: nothing is counted on the token path.
   */
  observeSigning(stats: () => SigningWorkerStats | null): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
  /** Adds process metrics (CPU, memory, event-loop lag, GC). Once per process: `main.ts` only. */
  collectProcessMetrics(): void;
}

/** The labels of the two request metrics. */
type RequestLabels = Record<'route' | 'method' | 'status_code', string>;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function createMetrics(): Metrics {
  const registry = new Registry();

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [],
  });
  const COUNT = 'http_request_duration_seconds_count';
  // Registered first, so the exposition keeps its order (count, then latency).
  new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status_code'] as const,
    registers: [registry],
    // Read off the latency histogram at each scrape (its _count of each series): a request
    // is one prom-client update, not two (each hashes its labels again, on every call).
    async collect() {
      const { values } = await duration.get();
      this.reset();
      for (const value of values) if (value.metricName === COUNT) this.inc(value.labels as RequestLabels, value.value);
    },
  });
  registry.registerMetric(duration);
  const tokens = new Counter({
    name: 'oauth_tokens_issued_total',
    help: 'Token responses issued, by grant type.',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  });
  const loginFailures = new Counter({
    name: 'oauth_login_failures_total',
    help: 'Failed sign-ins (wrong password or client secret), by where they happened.',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  const refreshReuse = new Counter({
    name: 'oauth_refresh_token_reuse_total',
    help: 'Refresh tokens presented again after use; each revoked its whole family.',
    registers: [registry],
  });
  let signingStats: () => SigningWorkerStats | null = () => null;
  new Counter({
    name: 'oauth_tokens_signed_total',
    help: 'JWTs signed (access and ID tokens), by where: the signing worker, or the event loop (quiet server, or the worker could not).',
    labelNames: ['signer'] as const,
    registers: [registry],
    collect() {
      const stats = signingStats();
      this.reset();
      if (!stats) return;
      this.inc({ signer: 'worker' }, stats.signedInWorker);
      this.inc({ signer: 'event_loop' }, stats.signedHere);
    },
  });
  new Gauge({
    name: 'oauth_signing_worker_running',
    help: '1 while the signing worker runs (it starts under load and stops when idle), else 0.',
    registers: [registry],
    collect() {
      this.set(signingStats()?.running ? 1 : 0);
    },
  });
  new Counter({
    name: 'oauth_signing_worker_starts_total',
    help: 'Signing workers started (a start after a stop for idleness, or after one died).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(signingStats()?.starts ?? 0);
    },
  });
  let processMetrics = false;
  /**
   * Per route pattern (never a raw URL), method (seven, or `other`) and status
   * code: as bounded as the series themselves.
   */
  const requestSeries = new Map<string, RequestLabels>();

  return {
    registry,
    observeRequest(method, route, statusCode, seconds) {
      const m = METHODS.has(method) ? method : 'other';
      const r = route ?? 'unmatched';
      // The labels of one route, method and status, made once, not an object per request.
      const key = `${m} ${statusCode} ${r}`;
      let labels = requestSeries.get(key);
      if (labels === undefined) {
        labels = { route: r, method: m, status_code: String(statusCode) };
        requestSeries.set(key, labels);
      }
      duration.observe(labels, seconds);
    },
    tokenIssued(grantType) {
      tokens.inc({ grant_type: isGrantType(grantType) ? grantType : 'other' });
    },
    loginFailed(source) {
      loginFailures.inc({ source });
    },
    refreshReuseDetected() {
      refreshReuse.inc();
    },
    observeSigning(stats) {
      signingStats = stats;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    collectProcessMetrics() {
      if (processMetrics) return;
      processMetrics = true;
      collectDefaultMetrics({ register: registry });
    },
  };
}
