import t from 'tap';
import { createMetrics } from '../../src/observability/metrics.js';

t.test('each instance has its own registry', async (t) => {
  const a = createMetrics();
  const b = createMetrics();
  a.tokenIssued('client_credentials');
  a.tokenIssued('client_credentials');
  b.tokenIssued('client_credentials');
  t.match((await a.render()).body, /oauth_tokens_issued_total\{grant_type="client_credentials"\} 2/);
  t.match((await b.render()).body, /oauth_tokens_issued_total\{grant_type="client_credentials"\} 1/);
});

t.test('label values come from closed sets', async (t) => {
  const m = createMetrics();
  m.tokenIssued('urn:ietf:params:oauth:grant-type:jwt-bearer');
  m.observeRequest('PROPFIND', undefined, 404, 0.002);
  m.observeRequest('GET', '/admin/clients/:client_id', 200, 0.01);
  m.loginFailed('login_form');
  m.refreshReuseDetected();
  const { body, contentType } = await m.render();
  t.match(contentType, /^text\/plain/);
  t.match(body, /oauth_tokens_issued_total\{grant_type="other"\} 1/);
  t.match(body, /http_requests_total\{route="unmatched",method="other",status_code="404"\} 1/);
  t.match(body, /http_request_duration_seconds_count\{route="\/admin\/clients\/:client_id",method="GET",status_code="200"\} 1/);
  t.match(body, /oauth_login_failures_total\{source="login_form"\} 1/);
  t.match(body, /oauth_refresh_token_reuse_total 1/);
  t.notMatch(body, /jwt-bearer|PROPFIND/);
});

t.test('request counts are the latency histogram\'s counts, series by series, scrape after scrape', async (t) => {
  const m = createMetrics();
  for (let i = 0; i < 3; i++) m.observeRequest('POST', '/introspect', 200, 0.002);
  m.observeRequest('POST', '/introspect', 401, 0.001);
  m.observeRequest('GET', '/healthz', 200, 0.0005);
  const first = (await m.render()).body;
  t.match(first, /^http_requests_total\{route="\/introspect",method="POST",status_code="200"\} 3$/m);
  t.match(first, /^http_requests_total\{route="\/introspect",method="POST",status_code="401"\} 1$/m);
  t.match(first, /^http_requests_total\{route="\/healthz",method="GET",status_code="200"\} 1$/m);
  t.match(first, /^http_request_duration_seconds_bucket\{le="0.0025",route="\/introspect",method="POST",status_code="200"\} 3$/m);
  t.match(first, /# TYPE http_requests_total counter[\s\S]*# TYPE http_request_duration_seconds histogram/, 'the counter first, as before');
  m.observeRequest('POST', '/introspect', 200, 0.002);
  const second = (await m.render()).body;
  t.match(second, /^http_requests_total\{route="\/introspect",method="POST",status_code="200"\} 4$/m, 'a second scrape counts on, without counting twice');
  t.match(second, /^http_requests_total\{route="\/healthz",method="GET",status_code="200"\} 1$/m);
});

t.test('process metrics are opt-in, once', async (t) => {
  const m = createMetrics();
  t.notMatch((await m.render()).body, /process_cpu_user_seconds_total/);
  m.collectProcessMetrics();
  m.collectProcessMetrics();
  t.match((await m.render()).body, /process_cpu_user_seconds_total/);
});

t.test('the signing metrics are read at each scrape', async (t) => {
  const m = createMetrics();
  t.match((await m.render()).body, /oauth_signing_worker_running 0\n/, 'no worker: not running');
  t.notMatch((await m.render()).body, /oauth_tokens_signed_total\{/, 'and nothing counted');
  let stats = { running: true, ready: true, signedInWorker: 40, batches: 3, signedHere: 2, starts: 1 };
  m.observeSigning(() => stats);
  let body = (await m.render()).body;
  t.match(body, /oauth_tokens_signed_total\{signer="worker"\} 40\n/);
  t.match(body, /oauth_tokens_signed_total\{signer="event_loop"\} 2\n/);
  t.match(body, /oauth_signing_worker_running 1\n/);
  t.match(body, /oauth_signing_worker_starts_total 1\n/);
  stats = { ...stats, running: false, signedInWorker: 50 };
  body = (await m.render()).body;
  t.match(body, /oauth_tokens_signed_total\{signer="worker"\} 50\n/, 'the current values, not a sum of scrapes');
  t.match(body, /oauth_signing_worker_running 0\n/);
});
