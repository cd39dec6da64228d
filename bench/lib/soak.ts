/**
 * The mixed workload of `--soak` (issue 6 item 4): every connection loops
 * through a machine client's token, two calls of the sample API, a refresh
 * rotation, and a whole browser authorization: GET /authorize with a signed-in
 * session cookie → 303 to the consent page → GET it (CSRF token, request id,
 * consent ticket) → POST the decision → 303 to the client with the code →
 * the code (+ PKCE verifier) exchanged at /token.
 *
 * Each step states the status it expects; any other answer, a socket error
 * or a timeout is a failure. The 303s are the redirects the browser steps
 * are made of, not errors.
 */
import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';
import { authorizePath, basicAuth, form, hiddenFields, pkcePair, type Seed } from './seed.js';

export interface StepStats {
  name: string;
  expected: number;
  ok: number;
  /** Answers with another status. */
  unexpected: number;
  statusCodes: Record<string, number>;
  /** ms, from the request being written to its response. */
  latencies: number[];
  samples: string[];
}

export interface MixedWorkload {
  requests: autocannon.Request[];
  steps: StepStats[];
  /** Clears the per-step statistics (after the warm-up). */
  reset(): void;
}

const FORM = 'application/x-www-form-urlencoded';

/** A ring of valid access tokens for the API calls, refilled from every token response. */
class TokenRing {
  private next = 0;
  private write = 0;
  constructor(private readonly tokens: string[]) {}
  take(): string {
    return this.tokens[this.next++ % this.tokens.length]!;
  }
  put(token: string): void {
    this.tokens[this.write++ % this.tokens.length] = token;
  }
}

export function mixedWorkload(seed: Seed, sessions: readonly string[]): MixedWorkload {
  const ring = new TokenRing([...seed.accessTokens]);
  const refreshQueue = [...seed.refreshTokens];
  const maxQueue = refreshQueue.length * 2;
  const machineAuth = basicAuth(seed.machine);
  const appAuth = basicAuth(seed.app);
  const ccBody = form({ grant_type: 'client_credentials', scope: 'api:read' });
  let sessionIndex = 0;
  const steps: StepStats[] = [];

  const step = (
    name: string,
    expected: number,
    setup: (request: autocannon.Request, context: Record<string, unknown>) => autocannon.Request | null,
    onOk: (body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void = () => {},
  ): autocannon.Request => {
    const stats: StepStats = { name, expected, ok: 0, unexpected: 0, statusCodes: {}, latencies: [], samples: [] };
    steps.push(stats);
    return {
      setupRequest(request, context) {
        const built = setup(request, context);
        context.sentAt = performance.now();
        return built;
      },
      onResponse(status, body, context, headers) {
        if (typeof context.sentAt === 'number') stats.latencies.push(performance.now() - context.sentAt);
        stats.statusCodes[status] = (stats.statusCodes[status] ?? 0) + 1;
        if (status !== expected) {
          stats.unexpected++;
          if (stats.samples.length < 5) stats.samples.push(`${status} ${body.slice(0, 200)}`);
          return;
        }
        stats.ok++;
        try {
          onOk(body, context, headers);
        } catch (err) {
          stats.unexpected++;
          if (stats.samples.length < 5) stats.samples.push(`unparsable answer: ${(err as Error).message}`);
        }
      },
    };
  };

  const tokenFrom = (body: string) => JSON.parse(body) as { access_token: string; refresh_token?: string };
  const header = (headers: Record<string, string | string[]>, name: string) => {
    const value = headers[name] ?? headers[name.toLowerCase()] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
    return Array.isArray(value) ? value[0] : value;
  };

  const hello = (name: string) =>
    step(name, 200, (request) => ({ ...request, method: 'GET', path: '/api/hello', headers: { ...request.headers, authorization: `Bearer ${ring.take()}` } }));

  const requests: autocannon.Request[] = [
    step(
      'POST /token client_credentials',
      200,
      (request) => ({ ...request, method: 'POST', path: '/token', headers: { ...request.headers, authorization: machineAuth, 'content-type': FORM }, body: ccBody }),
      (body) => ring.put(tokenFrom(body).access_token),
    ),
    hello('GET /api/hello'),
    hello('GET /api/hello (again)'),
    step(
      'POST /token refresh_token',
      200,
      (request) => {
        const token = refreshQueue.shift() ?? seed.refreshTokens[0]!;
        return {
          ...request,
          method: 'POST',
          path: '/token',
          headers: { ...request.headers, authorization: appAuth, 'content-type': FORM },
          body: form({ grant_type: 'refresh_token', refresh_token: token }),
        };
      },
      (body) => {
        const answer = tokenFrom(body);
        refreshQueue.push(answer.refresh_token!);
        ring.put(answer.access_token);
      },
    ),
    step(
      'GET /authorize (signed in)',
      303,
      (request, context) => {
        const pkce = pkcePair();
        const state = randomBytes(8).toString('base64url');
        const sid = sessions[sessionIndex++ % sessions.length]!;
        Object.assign(context, { pkce, state, sid });
        return { ...request, method: 'GET', path: authorizePath(seed.app, pkce.challenge, state), headers: { ...request.headers, cookie: `sid=${sid}` } };
      },
      (_body, context, headers) => {
        const location = header(headers, 'location');
        if (!location?.startsWith('/consent?')) throw new Error(`redirected to ${location ?? 'nowhere'}`);
        context.consentPath = location;
      },
    ),
    step(
      'GET /consent',
      200,
      (request, context) =>
        typeof context.consentPath === 'string'
          ? { ...request, method: 'GET', path: context.consentPath, headers: { ...request.headers, cookie: `sid=${String(context.sid)}` } }
          : null,
      (body, context) => {
        const fields = hiddenFields(body);
        if (!fields.csrf_token || !fields.rid || !fields.ticket) throw new Error('consent page without csrf_token, rid or ticket');
        context.consentForm = fields;
      },
    ),
    step(
      'POST /consent allow',
      303,
      (request, context) => {
        const fields = context.consentForm as Record<string, string> | undefined;
        if (!fields) return null;
        return {
          ...request,
          method: 'POST',
          path: '/consent',
          headers: { ...request.headers, cookie: `sid=${String(context.sid)}`, 'content-type': FORM },
          body: form({ csrf_token: fields.csrf_token!, rid: fields.rid!, ticket: fields.ticket!, decision: 'allow' }),
        };
      },
      (_body, context, headers) => {
        const location = header(headers, 'location') ?? '';
        const params = new URL(location).searchParams;
        if (params.get('state') !== context.state || !params.get('code')) throw new Error(`redirect without the code or state: ${location.slice(0, 120)}`);
        context.code = params.get('code');
      },
    ),
    step(
      'POST /token authorization_code',
      200,
      (request, context) => {
        if (typeof context.code !== 'string') return null;
        const { verifier } = context.pkce as { verifier: string };
        return {
          ...request,
          method: 'POST',
          path: '/token',
          headers: { ...request.headers, authorization: appAuth, 'content-type': FORM },
          body: form({ grant_type: 'authorization_code', code: context.code, redirect_uri: seed.app.redirectUri, code_verifier: verifier }),
        };
      },
      (body) => {
        const answer = tokenFrom(body);
        ring.put(answer.access_token);
        // New families join the refresh rotation, up to a bound.
        if (answer.refresh_token && refreshQueue.length < maxQueue) refreshQueue.push(answer.refresh_token);
      },
    ),
  ];

  return {
    requests,
    steps,
    reset() {
      for (const s of steps) Object.assign(s, { ok: 0, unexpected: 0, statusCodes: {}, latencies: [], samples: [] });
    },
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
