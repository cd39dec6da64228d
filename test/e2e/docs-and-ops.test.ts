/**
 * Operations surface over one app: the OpenAPI document and Swagger UI,
 * security headers on every kind of response, CORS per endpoint, and the
 * Prometheus metrics (admin-only on the main port, or alone on METRICS_PORT).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startMetricsServer } from '../../src/observability/metrics-http.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { ROOT } from '../helpers/root.js';
import { userBasic } from '../helpers/tokens.js';

const SPA = 'https://spa.example';
const { app, services, config } = await buildTestApp(t, { env: { CORS_ORIGINS: `${SPA},https://other.example`, SWAGGER_UI_CLIENT: 'true' } });
const admin = await seedUser(services, { roles: ['admin'] });
const plain = await seedUser(services);

interface Schema {
  type?: string | string[];
  $ref?: string;
  required?: string[];
}

interface DocumentedResponse {
  content?: Record<string, { schema?: Schema }>;
}

interface Operation {
  tags?: string[];
  summary?: string;
  security?: Array<Record<string, string[]>>;
  responses?: Record<string, DocumentedResponse>;
  requestBody?: DocumentedResponse;
}

/** The documented answer for `status`: its own code, else its range (`4XX`), else `default` (OpenAPI 3.1 §4.8.16). */
function documentedAnswer(op: Operation, status: number): DocumentedResponse | undefined {
  const responses = op.responses ?? {};
  return responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
}

t.test(`OpenAPI document and Swagger UI (${backendName})`, async (t) => {
  const res = await app.inject({ url: '/openapi.json' });
  t.equal(res.statusCode, 200);
  const doc = res.json();
  t.equal(doc.openapi, '3.1.0');
  t.same(doc.servers, [{ url: config.issuer }]);

  await t.test("security schemes describe this server's own flows", async (t) => {
    const schemes = doc.components.securitySchemes;
    // Only the flow the public swagger-ui client can run: Swagger UI pre-fills its client_id into every OAuth flow.
    t.same(Object.keys(schemes.oauth2.flows), ['authorizationCode']);
    t.equal(schemes.oauth2.flows.authorizationCode.authorizationUrl, `${config.issuer}/authorize`);
    t.equal(schemes.oauth2.flows.authorizationCode.tokenUrl, `${config.issuer}/token`);
    t.notOk(schemes.oauth2.flows.authorizationCode.refreshUrl, 'the swagger-ui client gets no refresh tokens');
    t.same(Object.keys(schemes.oauth2.flows.authorizationCode.scopes), config.scopes.filter((s) => s !== 'offline_access'), "the client's scopes");
    t.match(schemes.oauth2.description, /public client `swagger-ui` \(pre-filled\): authorization code with PKCE \(S256\)\. Leave client_secret empty\./);
    t.match(doc.info.description, /Client credentials .* confidential client's secret, .* \*clientBasic\* .* `POST \/token` with `grant_type=client_credentials`/, 'client credentials: documented for confidential clients');
    t.match(schemes.clientBasic.description, /confidential client/);
    t.match(schemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    t.match(schemes.adminBasic, { type: 'http', scheme: 'basic' });
  });

  await t.test('every documented operation has a tag, a summary and a success response', async (t) => {
    const paths = doc.paths as Record<string, Record<string, Operation>>;
    t.ok(Object.keys(paths).length > 5, 'routes were captured');
    for (const [path, ops] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${path}`;
        t.ok(op.tags && op.tags.length > 0, `${name} has a tag`);
        t.ok(op.summary, `${name} has a summary`);
        t.ok(Object.keys(op.responses ?? {}).some((code) => /^[23]/.test(code)), `${name} documents its success response`);
      }
    }
  });

  await t.test('every $ref resolves, and every SPEC endpoint is documented', async (t) => {
    const refs = new Set<string>();
    JSON.stringify(doc, (key, value: unknown) => {
      if (key === '$ref') refs.add(String(value));
      return value;
    });
    for (const ref of refs) {
      const target = ref.replace(/^#\//, '').split('/').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
      t.ok(target, `${ref} resolves`);
    }
    const spec = ['/authorize', '/token', '/revoke', '/introspect', '/jwks.json', '/userinfo', '/login', '/logout', '/end-session', '/consent', '/register', '/api/hello', '/api/admin/hello', '/admin/clients', '/admin/clients/{client_id}', '/admin/clients/{client_id}/secret', '/admin/users', '/admin/users/{id}', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/oauth-protected-resource/api', '/.well-known/oauth-protected-resource/mcp', '/healthz', '/readyz'];
    for (const path of spec) t.ok(doc.paths[path], `${path} is documented`);
  });

  await t.test('admin routes need Basic (or an admin bearer token); pages and assets are not in the API', async (t) => {
    const paths = doc.paths as Record<string, Record<string, Operation>>;
    for (const [path, ops] of Object.entries(paths)) {
      if (!path.startsWith('/admin/')) continue;
      for (const op of Object.values(ops)) t.ok(op.security?.some((s) => 'adminBasic' in s), `${path} declares adminBasic`);
    }
    t.ok(paths['/admin/clients'], 'the admin JSON API is documented');
    t.notOk(Object.keys(paths).some((p) => p.startsWith('/admin/console') || p.startsWith('/assets/') || p.startsWith('/docs')));
    t.ok(paths['/metrics']?.get?.security?.some((s) => 'adminBasic' in s));
    t.same(doc.components.schemas.OAuthError.required, ['error']);
  });

  await t.test('an HTML answer is documented as HTML (a string), a JSON one as JSON', async (t) => {
    const paths = doc.paths as Record<string, Record<string, Operation>>;
    for (const [path, ops] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, answer] of Object.entries(op.responses ?? {})) {
          for (const [media, { schema }] of Object.entries(answer.content ?? {})) {
            const name = `${method.toUpperCase()} ${path} ${status} ${media}`;
            if (media === 'text/html') t.equal(schema?.type, 'string', `${name}: a page, not the JSON error object`);
            if (/json/.test(media)) t.not(schema?.type, 'string', `${name}: JSON`);
          }
        }
      }
    }
  });

  await t.test('what the server answers is documented: status, media type and the body kind', async (t) => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const json = { 'content-type': 'application/json' };
    const tooLarge = `grant_type=${'x'.repeat(config.bodyLimitBytes + 10)}`;
    const tooLargeJson = JSON.stringify({ username: 'x'.repeat(config.bodyLimitBytes + 10) });
    const cases: Array<{ path: string; method?: 'GET' | 'POST'; url?: string; headers?: Record<string, string>; payload?: string; status: number }> = [
      // Pages: their errors are the HTML error page.
      { path: '/login', url: '/login?rid=unknown', status: 400 },
      { path: '/consent', status: 400 },
      { path: '/device', url: `/device?user_code=${'x'.repeat(100)}`, status: 400 },
      { path: '/login/second-factor', url: `/login/second-factor?rid=${'x'.repeat(200)}`, status: 400 },
      { path: '/account', url: `/account?notice=${'x'.repeat(50)}`, status: 400 },
      { path: '/login', method: 'POST', headers: form, payload: 'username=a', status: 403 },
      { path: '/logout', method: 'POST', headers: form, payload: tooLarge, status: 413 },
      { path: '/account/passkeys/{id}/remove', method: 'POST', url: '/account/passkeys/x/remove', headers: form, payload: tooLarge, status: 413 },
      // Every endpoint taking a body is refused past BODY_LIMIT, before its own code runs.
      ...['/token', '/revoke', '/introspect', '/par', '/device_authorization', '/userinfo'].map((path) => ({ path, method: 'POST' as const, headers: form, payload: tooLarge, status: 413 })),
      { path: '/oauth/register', method: 'POST', headers: json, payload: tooLargeJson, status: 413 },
      { path: '/mcp', method: 'POST', headers: json, payload: tooLargeJson, status: 413 },
      // Self-registration: JSON for JSON (and anything that is not the form), the form again for the form.
      { path: '/register', method: 'POST', headers: json, payload: tooLargeJson, status: 413 },
      { path: '/register', method: 'POST', headers: form, payload: tooLarge, status: 413 },
      { path: '/register', method: 'POST', headers: { 'content-type': 'text/plain' }, payload: '{"username":"t","password":"long enough"}', status: 415 },
      { path: '/register', method: 'POST', headers: json, payload: '{"username":"no-password"}', status: 400 },
      { path: '/register', method: 'POST', headers: form, payload: 'username=a&password=b', status: 403 },
    ];
    const ops = doc.paths as Record<string, Record<string, Operation>>;
    for (const c of cases) {
      const method = c.method ?? 'GET';
      const name = `${method} ${c.path} (${c.status})`;
      const res = await app.inject({ method, url: c.url ?? c.path, remoteAddress: `10.9.0.${cases.indexOf(c) + 1}`, ...(c.headers ? { headers: c.headers } : {}), ...(c.payload === undefined ? {} : { payload: c.payload }) });
      t.equal(res.statusCode, c.status, `${name}: ${res.body.slice(0, 200)}`);
      const op = ops[c.path]?.[method.toLowerCase()];
      if (!t.ok(op, `${name}: documented`)) continue;
      const answer = documentedAnswer(op!, res.statusCode);
      if (!t.ok(answer, `${name}: the status is documented`)) continue;
      const media = String(res.headers['content-type']).split(';')[0]!;
      const schema = answer!.content?.[media]?.schema;
      if (!t.ok(schema, `${name}: ${media} is documented (not only ${Object.keys(answer!.content ?? {}).join(', ') || 'no body'})`)) continue;
      if (media === 'text/html') {
        t.equal(schema!.type, 'string', `${name}: an HTML page`);
        continue;
      }
      const resolved = schema!.$ref ? (doc.components.schemas[schema!.$ref.replace('#/components/schemas/', '')] as Schema) : schema!;
      const body = res.json<Record<string, unknown>>();
      for (const field of resolved.required ?? []) t.ok(field in body, `${name}: the body has ${field}`);
    }
    const registerBody = ops['/register']!.post!.requestBody!.content!;
    for (const media of ['application/json', 'application/x-www-form-urlencoded']) {
      t.same(registerBody[media]!.schema!.required, ['username', 'password'], `POST /register ${media}: username and password are required`);
    }
  });

  await t.test('Swagger UI at /docs, the old address redirects there', async (t) => {
    const ui = await app.inject({ url: '/docs' });
    t.equal(ui.statusCode, 200);
    t.match(ui.headers['content-type'], /text\/html/);
    const csp = String(ui.headers['content-security-policy']);
    t.match(csp, /script-src 'self'(;|$)/, 'scripts only from this server');
    t.match(csp, /frame-ancestors 'none'/);
    t.notMatch(csp, /script-src[^;]*unsafe/, 'no inline or eval scripts');
    const old = await app.inject({ url: '/swagger-ui.html' });
    t.equal(old.statusCode, 301);
    t.equal(old.headers.location, '/docs');
    const init = await app.inject({ url: '/docs/static/swagger-initializer.js' });
    t.match(init.body, /"clientId":"swagger-ui"/);
    t.match(init.body, /"usePkceWithAuthorizationCodeGrant":true/);
    t.match(init.body, /persistAuthorization":false/);
    const redirectPage = await app.inject({ url: '/docs/static/oauth2-redirect.html' });
    t.equal(redirectPage.statusCode, 200, 'the OAuth redirect page Swagger UI uses exists');
  });
});

t.test('security headers on every kind of response', async (t) => {
  const requests = [
    { url: '/healthz' },
    { url: '/no-such-route' },
    { url: '/openapi.json' },
    { url: '/docs' },
    { url: '/assets/app.css' },
    { url: '/admin/clients' },
    { url: '/admin/console/sign-in' },
    { url: '/metrics' },
    { url: '/register' },
    { url: '/docs/static/swagger-ui.css' },
    // JSON for machines: the API subset.
    { url: '/token', method: 'POST' as const, payload: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    { url: '/api/hello' },
    { url: '/jwks.json' },
    { url: '/.well-known/oauth-authorization-server' },
  ];
  const machineRoutes = ['/token', '/api/hello', '/jwks.json', '/.well-known/oauth-authorization-server'];
  for (const r of requests) {
    const res = await app.inject(r);
    t.equal(res.headers['x-frame-options'], 'DENY', `${r.url}: X-Frame-Options`);
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${r.url}: nosniff`);
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${r.url}: Referrer-Policy`);
    t.equal(res.headers['cross-origin-resource-policy'], 'same-origin', `${r.url}: Cross-Origin-Resource-Policy`);
    t.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/, `${r.url}: CSP`);
    // Headers that only affect documents: on everything but the machines' JSON routes.
    const document = !machineRoutes.includes(r.url);
    t.equal(res.headers['cross-origin-opener-policy'], document ? 'same-origin' : undefined, `${r.url}: COOP ${document ? 'set' : 'left out'}`);
    t.equal(res.headers['x-dns-prefetch-control'], document ? 'off' : undefined, `${r.url}: X-DNS-Prefetch-Control ${document ? 'set' : 'left out'}`);
  }
});

t.test('CORS', async (t) => {
  const preflight = (url: string, origin: string, method = 'POST') =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' },
    });

  await t.test('token endpoint: preflight and request from an allowed origin', async (t) => {
    const pre = await preflight('/token', SPA);
    t.equal(pre.statusCode, 204);
    t.equal(pre.headers['access-control-allow-origin'], SPA);
    t.match(pre.headers['access-control-allow-methods'], /POST/);
    t.match(String(pre.headers['access-control-allow-headers']).toLowerCase(), /authorization/);
    t.notOk(pre.headers['access-control-allow-credentials'], 'never with credentials');
    t.match(String(pre.headers.vary), /Origin/);
    const client = await seedClient(services, { grant_types: ['client_credentials'] });
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { origin: SPA, 'content-type': 'application/x-www-form-urlencoded', authorization: userBasic(client.clientId, client.clientSecret!) },
      payload: 'grant_type=client_credentials',
    });
    t.equal(res.statusCode, 200);
    t.equal(res.headers['access-control-allow-origin'], SPA);
    t.match(String(res.headers['access-control-expose-headers']), /WWW-Authenticate/);
  });

  await t.test('an origin not on the list gets nothing', async (t) => {
    const pre = await preflight('/token', 'https://evil.example');
    t.not(pre.statusCode, 204);
    t.notOk(pre.headers['access-control-allow-origin']);
    const res = await app.inject({ method: 'POST', url: '/token', headers: { origin: 'https://evil.example' }, payload: {} });
    t.notOk(res.headers['access-control-allow-origin']);
  });

  await t.test('discovery, protected resource metadata and JWKS are public: any origin', async (t) => {
    for (const url of ['/jwks.json', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await app.inject({ url, headers: { origin: 'https://anyone.example' } });
      t.equal(res.headers['access-control-allow-origin'], '*', url);
      t.notOk(res.headers['access-control-allow-credentials']);
    }
  });

  await t.test('userinfo, revocation and the sample API: allowed origins only', async (t) => {
    for (const url of ['/userinfo', '/revoke', '/api/hello']) {
      const pre = await preflight(url, 'https://other.example', url === '/revoke' ? 'POST' : 'GET');
      t.equal(pre.statusCode, 204, url);
      t.equal(pre.headers['access-control-allow-origin'], 'https://other.example', url);
    }
  });

  await t.test('no CORS on introspection, the admin API, the admin console or the login pages', async (t) => {
    for (const url of ['/introspect', '/admin/clients', '/admin/users', '/admin/console/sign-in', '/login', '/authorize', '/register']) {
      const pre = await preflight(url, SPA);
      t.notOk(pre.headers['access-control-allow-origin'], `${url}: no preflight grant`);
      const res = await app.inject({ url, headers: { origin: SPA, authorization: userBasic(admin.username, admin.password) } });
      t.notOk(res.headers['access-control-allow-origin'], `${url}: no CORS on the response`);
    }
  });

  await t.test('no Origin header: no CORS headers', async (t) => {
    const res = await app.inject({ url: '/jwks.json' });
    t.notOk(res.headers['access-control-allow-origin']);
  });
});

t.test('metrics', async (t) => {
  await t.test('/metrics needs an admin', async (t) => {
    const anonymous = await app.inject({ url: '/metrics' });
    t.equal(anonymous.statusCode, 401);
    t.match(String(anonymous.headers['www-authenticate']), /^Basic/);
    const user = await app.inject({ url: '/metrics', headers: { authorization: userBasic(plain.username, plain.password) } });
    t.equal(user.statusCode, 403);
  });

  await t.test('requests are counted by route pattern and status, never by raw URL', async (t) => {
    await app.inject({ url: '/healthz' });
    await app.inject({ url: '/admin/clients/some-secret-looking-id', headers: { authorization: userBasic(admin.username, admin.password) } });
    await app.inject({ url: '/no-such-page-4242' });
    const res = await app.inject({ url: '/metrics', headers: { authorization: userBasic(admin.username, admin.password) } });
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /^text\/plain/);
    t.equal(res.headers['cache-control'], 'no-store');
    const text = res.body;
    t.match(text, /http_requests_total\{route="\/healthz",method="GET",status_code="200"\} [1-9]/);
    t.match(text, /http_requests_total\{route="\/admin\/clients\/:client_id",method="GET",status_code="404"\} 1/);
    t.match(text, /http_request_duration_seconds_bucket\{le="[\d.]+",route="\/healthz",method="GET",status_code="200"\}/);
    t.match(text, /route="unmatched"/);
    t.notMatch(text, /some-secret-looking-id|no-such-page-4242/, 'raw URLs never become labels');
  });

  await t.test('login failures are counted', async (t) => {
    const before = await app.inject({ url: '/metrics', headers: { authorization: userBasic(admin.username, admin.password) } });
    const count = (text: string) => Number(/oauth_login_failures_total\{source="admin_api"\} (\d+)/.exec(text)?.[1] ?? 0);
    await app.inject({ url: '/admin/clients', headers: { authorization: userBasic(admin.username, 'wrong password!') } });
    const after = await app.inject({ url: '/metrics', headers: { authorization: userBasic(admin.username, admin.password) } });
    t.equal(count(after.body), count(before.body) + 1);
  });

  await t.test('tokens issued by grant type, and refresh-token reuse, are counted', async (t) => {
    const scrape = async () => (await app.inject({ url: '/metrics', headers: { authorization: userBasic(admin.username, admin.password) } })).body;
    const value = (text: string, series: RegExp) => Number(series.exec(text)?.[1] ?? 0);
    const CC = /oauth_tokens_issued_total\{grant_type="client_credentials"\} (\d+)/;
    const PASSWORD = /oauth_tokens_issued_total\{grant_type="password"\} (\d+)/;
    const REFRESH = /oauth_tokens_issued_total\{grant_type="refresh_token"\} (\d+)/;
    const REUSE = /oauth_refresh_token_reuse_total (\d+)/;
    const before = await scrape();

    const machine = await seedClient(services, { grant_types: ['client_credentials'] });
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const cc = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { ...form, authorization: userBasic(machine.clientId, machine.clientSecret!) },
      payload: 'grant_type=client_credentials',
    });
    t.equal(cc.statusCode, 200);

    const legacy = await seedClient(services, { grant_types: ['password', 'refresh_token'], token_endpoint_auth_method: 'client_secret_post' });
    const auth = `client_id=${legacy.clientId}&client_secret=${legacy.clientSecret}`;
    const pw = await app.inject({ method: 'POST', url: '/token', headers: form, payload: `grant_type=password&username=${plain.username}&password=${encodeURIComponent(plain.password)}&${auth}` });
    t.equal(pw.statusCode, 200);
    const first = pw.json().refresh_token as string;
    t.equal((await app.inject({ method: 'POST', url: '/token', headers: form, payload: `grant_type=refresh_token&refresh_token=${first}&${auth}` })).statusCode, 200);
    t.equal((await app.inject({ method: 'POST', url: '/token', headers: form, payload: `grant_type=refresh_token&refresh_token=${first}&${auth}` })).statusCode, 400);

    const after = await scrape();
    t.equal(value(after, CC), value(before, CC) + 1);
    t.equal(value(after, PASSWORD), value(before, PASSWORD) + 1);
    t.equal(value(after, REFRESH), value(before, REFRESH) + 1, 'the replay issued nothing');
    t.equal(value(after, REUSE), value(before, REUSE) + 1);
  });

  await t.test('with METRICS_PORT, /metrics is not on the main port but alone on its own', async (t) => {
    const separate = await buildTestApp(t, { env: { METRICS_PORT: '9464' } });
    const itsAdmin = await seedUser(separate.services, { roles: ['admin'] });
    t.equal((await separate.app.inject({ url: '/metrics', headers: { authorization: userBasic(itsAdmin.username, itsAdmin.password) } })).statusCode, 404, 'not even for an admin');

    const server = await startMetricsServer(services.metrics, 0, '127.0.0.1');
    t.teardown(() => server.close());
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    t.equal(res.status, 200);
    t.match(await res.text(), /http_requests_total/);
    t.equal((await fetch(`http://127.0.0.1:${server.port}/admin`)).status, 404);
  });
});

t.test('docs/operations.md has a row for every variable, with the bounds the server enforces', async (t) => {
  const doc = await readFile(join(ROOT, 'docs/operations.md'), 'utf8');
  // Every variable loadConfig reads (it reads each on every call).
  const read = new Set<string>();
  loadConfig(new Proxy({}, { get: (_target, key) => (typeof key === 'string' && read.add(key), undefined) }));
  t.ok(read.size > 20);
  for (const name of read) {
    const row = doc.split('\n').find((line) => new RegExp(`^\\| [^|]*\`${name}\``).test(line));
    if (!row) {
      t.fail(`${name} has no row in a table of docs/operations.md`);
      continue;
    }
    // A whole-number variable's bounds, as loadConfig states them when refusing a value.
    let message = '';
    try {
      loadConfig({ [name]: 'not-a-number' });
    } catch (err) {
      message = err instanceof ConfigError ? err.message : '';
    }
    const bounds = /expected a whole number from (\d+) to (\d+)/.exec(message);
    if (bounds) t.match(row, new RegExp(`\\b${bounds[1]} – ${bounds[2]}\\b`), `${name}: ${bounds[1]} – ${bounds[2]} in its row`);
  }
  const grace = doc.split('\n').find((line) => line.startsWith('| `REFRESH_REUSE_GRACE`'))!;
  t.match(grace, /shorter than `REFRESH_TOKEN_TTL`/, 'and the relations between them');
  t.match(doc.split('\n').find((line) => line.startsWith('| `HEADERS_TIMEOUT_MS`'))!, /At most `REQUEST_TIMEOUT_MS`/);
});
