/**
 * The request log at the production logger configuration: at `info`, the
 * machine-facing hot routes (token endpoint, JWKS, discovery, resource
 * metadata, probes) write no per-request lines, refused requests included
 * (refusals were already `debug` lines), while the pages people drive still
 * write both; at `debug` the hot routes' lines come back. (Why:
 * `src/http/access-log.ts`, numbers in bench/README.md.)
 */
import { Writable } from 'node:stream';
import type { InjectOptions } from 'fastify';
import t from 'tap';
import { defaultLogger } from '../../src/observability/logger.js';
import { loadConfig } from '../../src/config.js';
import { buildTestApp } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';

interface LogLine {
  level: number;
  msg: string;
  req?: { url?: string };
  reqId?: string;
}

async function appLoggingAt(level: string) {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const env = { LOG_LEVEL: level, ISSUER: 'http://localhost:3000' };
  const { app } = await buildTestApp(t, { env, logger: { ...(defaultLogger(loadConfig(env)) as object), stream } });
  return { app, lines };
}

/** The request-log lines ("incoming request", "request completed") of one request, by its id. */
function requestLines(lines: readonly LogLine[], requestId: string): string[] {
  return lines.filter((l) => l.reqId === requestId && (l.msg === 'incoming request' || l.msg === 'request completed')).map((l) => l.msg);
}

const info = await appLoggingAt('info');

t.test(`at info, hot routes write no request lines, pages write both (${backendName})`, async (t) => {
  const { app, lines } = info;
  for (const url of ['/healthz', '/jwks.json', '/.well-known/openid-configuration', '/.well-known/oauth-protected-resource/mcp']) {
    const res = await app.inject({ method: 'GET', url, headers: { 'x-request-id': `quiet-${url.length}` } });
    t.equal(res.statusCode, 200, url);
    t.same(requestLines(lines, `quiet-${url.length}`), [], `${url}: no request lines at info`);
  }
  const token = await app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'x-request-id': 'quiet-token', 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials&client_id=nobody&client_secret=wrong',
  });
  t.equal(token.statusCode, 401, 'an unknown client is refused');
  t.same(requestLines(lines, 'quiet-token'), [], 'a refused token request writes no request lines at info');

  const login = await app.inject({ method: 'GET', url: '/login', headers: { 'x-request-id': 'page-login' } });
  t.equal(login.statusCode, 200);
  t.same(requestLines(lines, 'page-login'), ['incoming request', 'request completed'], 'the login page writes both lines');
});

t.test(`at debug, hot routes write both request lines (${backendName})`, async (t) => {
  const { app, lines } = await appLoggingAt('debug');
  const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'debug-healthz' } });
  t.equal(res.statusCode, 200);
  const mine = lines.filter((l) => l.reqId === 'debug-healthz' && (l.msg === 'incoming request' || l.msg === 'request completed'));
  t.same(
    mine.map((l) => l.msg),
    ['incoming request', 'request completed'],
    'both lines',
  );
  t.ok(mine.every((l) => l.level === 20), 'at debug level (20)');
});

t.test(`every answer names its request: X-Request-ID, refusals and errors included (${backendName})`, async (t) => {
  const { app } = info;
  const cases: Array<[string, InjectOptions, number]> = [
    ['a page', { method: 'GET', url: '/login' }, 200],
    ['no such route (404)', { method: 'GET', url: '/no-such-route' }, 404],
    ['an OAuth refusal (401 invalid_client)', { method: 'POST', url: '/introspect', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=x&client_id=nobody&client_secret=wrong' }, 401],
    ['a JSON body at a form endpoint (400)', { method: 'POST', url: '/token', headers: { 'content-type': 'application/json' }, payload: '{}' }, 400],
    ['the admin API without credentials (401)', { method: 'GET', url: '/admin/users' }, 401],
  ];
  for (const [what, request, status] of cases) {
    const id = `id-${status}-${what.length}`;
    const res = await app.inject({ ...request, headers: { ...request.headers, 'x-request-id': id } });
    t.equal(res.statusCode, status, what);
    t.equal(res.headers['x-request-id'], id, `${what}: the id is echoed`);
  }
  const generated = await app.inject({ method: 'GET', url: '/no-such-route', headers: { 'x-request-id': 'not an id!' } });
  t.match(generated.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an unusable incoming id is replaced by a generated one');
});
