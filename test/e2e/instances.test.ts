/**
 * Several server processes on one PostgreSQL and one Redis, as behind a load
 * balancer: real `src/main.ts` processes driven over HTTP only (a cookie jar,
 * no browser). A code issued by one is redeemed at the other; a sign-in on
 * one is honoured by the other, also when the steps of one authorization
 * alternate between them; a key rotated from the CLI is published by both
 * within a bounded time (and signs only minutes later); 50 concurrent
 * redemptions of one code and 50 concurrent refreshes of one refresh token,
 * spread over both, let exactly one succeed and leave the grant consistent.
 *
 * Then a real nginx in front of A and B, as in production: requests are
 * balanced round robin over both, so one authorization's sign-in, code and
 * refresh token are each answered by one instance and used at the other; a
 * body over BODY_LIMIT gets the server's 413 and JSON error through it
 * (Content-Length or chunked, relayed buffered or streaming), not nginx's
 * 502; and with TRUST_PROXY the instances see the client's own address (a
 * client bound to 127.0.0.2), not nginx's. Skipped when nginx is missing.
 *
 * The in-process versions (two `buildApp`s over one database) live in
 * authorization-code, refresh-rotation and keys-and-instances tests; this is
 * the same across process boundaries.
 *
 * Services: the test's own database on `DATABASE_URL` and its own key prefix
 * on `REDIS_URL` when both are set (CI); else throwaway servers when the
 * binaries exist; else skipped.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import pg from 'pg';
import t from 'tap';
import { hashRefreshToken } from '../../src/tokens/refresh-tokens.js';
import { deleteRedisPrefix, openTestDb } from '../helpers/backend.js';
import { hiddenFields, pkcePair, responseParams } from '../helpers/browser-flow.js';
import { entryPoint } from '../helpers/entry-point.js';
import { ROOT } from '../helpers/root.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';
import { basic } from '../helpers/tokens.js';
import { nginxAvailability, postgresAvailability, redisAvailability, startThrowawayNginx, startThrowawayPostgres, startThrowawayRedis } from '../helpers/throwaway.js';
import { eventually } from '../helpers/wait.js';

const ISSUER = 'http://localhost:3000';
const REDIRECT_URI = 'http://localhost:8080/cb';
const ADMIN = { username: 'ops', password: 'instances admin password' };
/** The servers' BODY_LIMIT, and what they read and discard of a refused body at most (src/app.ts). */
const BODY_LIMIT = 65_536;
const DISCARD_LIMIT = BODY_LIMIT + 1_048_576;

/** Where a request goes: a server process, or nginx in front of some. */
type Target = Pick<ServerProcess, 'url'>;

interface Tap {
  teardown(fn: () => unknown): void;
}

interface Shared {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
}

function skipReason(): string | null {
  if (process.env.DATABASE_URL && process.env.REDIS_URL) return null;
  if (process.env.CI) return 'needs PostgreSQL and Redis: runs in the CI pass with DATABASE_URL/REDIS_URL set';
  const pgAvailable = postgresAvailability();
  if ('reason' in pgAvailable) return `no DATABASE_URL/REDIS_URL and ${pgAvailable.reason}`;
  const redisAvailable = redisAvailability();
  if ('reason' in redisAvailable) return `no DATABASE_URL/REDIS_URL and ${redisAvailable.reason}`;
  return null;
}

/** One database and one Redis key prefix of this test's own, removed afterwards. */
async function sharedServices(tap: Tap): Promise<Shared> {
  const prefix = `inst_${process.pid}_${randomBytes(4).toString('hex')}:`;
  if (process.env.DATABASE_URL && process.env.REDIS_URL) {
    const db = await openTestDb({ migrated: false, kind: 'postgres' });
    tap.teardown(() => db.close());
    tap.teardown(() => deleteRedisPrefix(prefix));
    return { databaseUrl: db.url!, redisUrl: process.env.REDIS_URL, prefix };
  }
  const [postgres, redis] = await Promise.all([startThrowawayPostgres(tap), startThrowawayRedis(tap)]);
  return { databaseUrl: postgres.url, redisUrl: redis.url, prefix };
}

interface Answer {
  status: number;
  location: string | null;
  body: string;
  /** Through nginx: the instance that answered (`host:port`, nginx's `X-Upstream`); else null. */
  upstream: string | null;
  json<T = Record<string, unknown>>(): T;
}

async function answer(res: Response): Promise<Answer> {
  const body = await res.text();
  return { status: res.status, location: res.headers.get('location'), body, upstream: res.headers.get('x-upstream'), json: <T>() => JSON.parse(body) as T };
}

/** A person's browser over plain HTTP: remembers cookies, follows nothing by itself. */
class CookieJarBrowser {
  readonly cookies = new Map<string, string>();
  /** Every request made, with the instance that answered it when behind nginx. */
  readonly trail: Array<{ request: string; upstream: string | null }> = [];

  private record(method: string, path: string, answered: Answer): Answer {
    this.trail.push({ request: `${method} ${path.split('?')[0]}`, upstream: answered.upstream });
    return answered;
  }

  private remember(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const gone = value === '' || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return { ...(cookie ? { cookie } : {}), ...extra };
  }

  async get(server: Target, path: string): Promise<Answer> {
    return this.record('GET', path, await answer(this.remember(await fetch(server.url + path, { redirect: 'manual', headers: this.headers() }))));
  }

  async post(server: Target, path: string, form: Record<string, string>): Promise<Answer> {
    const res = await fetch(server.url + path, {
      method: 'POST',
      redirect: 'manual',
      headers: this.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
      body: new URLSearchParams(form).toString(),
    });
    return this.record('POST', path, await answer(this.remember(res)));
  }
}

interface FlowResult {
  params: URLSearchParams;
  sawLogin: boolean;
  sawConsent: boolean;
  /** Which server answered each step, in order. */
  hops: string[];
}

/**
 * Walks /authorize → sign-in → consent → redirect like a person, sending
 * each step to the next server in `servers` (round robin, as a load
 * balancer without sticky sessions would).
 */
async function authorizeAcross(browser: CookieJarBrowser, servers: Target[], path: string, user: { username: string; password: string }): Promise<FlowResult> {
  let turn = 0;
  const next = () => servers[turn++ % servers.length]!;
  const hops: string[] = [];
  let sawLogin = false;
  let sawConsent = false;
  let server = next();
  let res = await browser.get(server, path);
  hops.push(server.url);
  for (let i = 0; i < 12; i++) {
    if (res.status === 303 || res.status === 302) {
      const location = res.location!;
      if (!location.startsWith('/')) return { params: responseParams(location), sawLogin, sawConsent, hops };
      server = next();
      res = await browser.get(server, location);
    } else if (res.status === 200 && res.body.includes('action="/consent"')) {
      sawConsent = true;
      server = next();
      res = await browser.post(server, '/consent', { ...hiddenFields(res.body, '/consent'), decision: 'allow' });
    } else if (res.status === 200 && res.body.includes('action="/login"')) {
      sawLogin = true;
      server = next();
      res = await browser.post(server, '/login', { ...hiddenFields(res.body, '/login'), username: user.username, password: user.password });
    } else {
      throw new Error(`unexpected ${res.status} from ${server.url}: ${res.body.slice(0, 300)}`);
    }
    hops.push(server.url);
  }
  throw new Error('too many steps');
}

/** Runs the real CLI entry point (`src/admin/cli.ts`) with `env`. */
function runCli(argv: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entryPoint('admin/cli'), ...argv], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

interface RawAnswer {
  status: number;
  type: string | undefined;
  body: string;
  upstream: string | undefined;
}

/**
 * One request with node:http: from `localAddress` (any of 127/8 is this
 * machine), and, for a POST, a body sent with a Content-Length or chunked in
 * 64 KiB pieces.
 */
function rawRequest(url: string, options: { localAddress?: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean } = {}): Promise<RawAnswer> {
  const { body, chunked = false } = options;
  const headers: Record<string, string> = { ...options.headers };
  if (body) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    if (chunked) headers['transfer-encoding'] = 'chunked';
    else headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: body ? 'POST' : 'GET', headers, localAddress: options.localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.once('end', () =>
        resolve({ status: res.statusCode!, type: res.headers['content-type'], body: text, upstream: res.headers['x-upstream'] as string | undefined }),
      );
      res.once('error', reject);
    });
    req.once('error', reject);
    if (body) for (let at = 0; at < body.length; at += 65_536) req.write(body.subarray(at, at + 65_536));
    req.end();
  });
}

function nginxSkipReason(): string | null {
  const available = nginxAvailability();
  return 'reason' in available ? available.reason : null;
}

const skip = skipReason();

t.test('two server processes on one PostgreSQL and one Redis', { skip: skip ?? false }, async (t) => {
  const shared = await sharedServices(t);
  const env = {
    DATABASE_URL: shared.databaseUrl,
    REDIS_URL: shared.redisUrl,
    REDIS_KEY_PREFIX: shared.prefix,
    ISSUER,
    ADMIN_USERNAME: ADMIN.username,
    ADMIN_PASSWORD: ADMIN.password,
    // Trust nginx (one hop) for X-Forwarded-For: with clients that send no X-Forwarded-For of
    // their own, the address is the one nginx appends: the client's.
    TRUST_PROXY: '1',
    BODY_LIMIT: String(BODY_LIMIT),
  };
  // A and B: strict refresh rotation (the default). C and D: with a reuse grace window.
  const [a, b, c, d] = await Promise.all([
    startServer(t, { env }),
    startServer(t, { env }),
    startServer(t, { env: { ...env, REFRESH_REUSE_GRACE: '30' } }),
    startServer(t, { env: { ...env, REFRESH_REUSE_GRACE: '30' } }),
  ]);
  const ab = [a, b];

  const adminAuth = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;
  const adminPost = async (server: ServerProcess, path: string, body: unknown) =>
    answer(await fetch(server.url + path, { method: 'POST', headers: { authorization: adminAuth, 'content-type': 'application/json' }, body: JSON.stringify(body) }));

  const created = await adminPost(a, '/admin/clients', {
    client_name: 'Cross-instance app',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile api:read',
  });
  t.equal(created.status, 201);
  const client = created.json<{ client_id: string; client_secret: string }>();
  const clientAuth = basic(client.client_id, client.client_secret);
  const alice = { username: 'alice', password: 'alice across instances' };
  t.equal((await adminPost(b, '/admin/users', { ...alice })).status, 201, 'user created on B, client on A');

  const authorizePath = (challenge: string, state = randomBytes(8).toString('hex')) =>
    `/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: REDIRECT_URI,
      scope: 'openid api:read',
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString()}`;
  const tokenRequest = async (server: Target, params: Record<string, string>) =>
    answer(
      await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { authorization: clientAuth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(params).toString(),
      }),
    );
  const redeem = (server: Target, code: string, verifier: string) =>
    tokenRequest(server, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
  const hello = async (server: Target, token: string) => (await fetch(`${server.url}/api/hello`, { headers: { authorization: `Bearer ${token}` } })).status;

  const browser = new CookieJarBrowser();

  t.test('an authorization whose steps alternate between A and B; the code from one redeemed at the other', async (t) => {
    const pkce = pkcePair();
    const flow = await authorizeAcross(browser, ab, authorizePath(pkce.challenge, 'alt'), alice);
    t.ok(flow.sawLogin && flow.sawConsent, 'signed in and consented');
    t.ok(flow.hops.includes(a.url) && flow.hops.includes(b.url), 'both servers answered steps of the one authorization');
    t.equal(flow.params.get('state'), 'alt');
    t.equal(flow.params.get('iss'), ISSUER);
    // The last step was answered by one of them; redeem at the other.
    const issuer = flow.hops[flow.hops.length - 1] === a.url ? a : b;
    const other = issuer === a ? b : a;
    const res = await redeem(other, flow.params.get('code')!, pkce.verifier);
    t.equal(res.status, 200, 'redeemed at the other instance');
    const tokens = res.json<{ access_token: string; refresh_token: string; id_token: string }>();
    t.ok(tokens.refresh_token && tokens.id_token);
    t.equal(await hello(issuer, tokens.access_token), 200);
  });

  t.test('a sign-in on A is honoured by B', async (t) => {
    const person = new CookieJarBrowser();
    const form = await person.get(a, '/login');
    t.equal(form.status, 200);
    const signedIn = await person.post(a, '/login', { ...hiddenFields(form.body, '/login'), ...alice });
    t.equal(signedIn.status, 303, 'signed in on A');
    const account = await person.get(b, '/account');
    t.equal(account.status, 200);
    t.match(account.body, /You are signed in/, 'B knows the session');
    t.match(account.body, /alice/);
    // B skips sign-in (session) and consent (remembered in PostgreSQL) and answers with a code at once.
    const pkce = pkcePair();
    const direct = await person.get(b, authorizePath(pkce.challenge, 'sso'));
    t.equal(direct.status, 303);
    const params = responseParams(direct.location!);
    t.equal(params.get('state'), 'sso');
    t.ok(params.get('code'), 'a code without any page');
    t.equal((await redeem(a, params.get('code')!, pkce.verifier)).status, 200);
  });

  /** A code from the signed-in `browser`, straight from /authorize (session and consent are remembered). */
  const freshCode = async (tap: { equal(found: unknown, wanted: unknown): boolean }, server: ServerProcess) => {
    const pkce = pkcePair();
    const res = await browser.get(server, authorizePath(pkce.challenge));
    tap.equal(res.status, 303);
    return { code: responseParams(res.location!).get('code')!, verifier: pkce.verifier };
  };

  t.test('a key rotated with the CLI is published by both within 2 s (pub/sub) and signs only from its activation', async (t) => {
    const jwksKids = async (server: ServerProcess) => ((await (await fetch(`${server.url}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const before = await jwksKids(a);
    const signingKid = async () => {
      const { code, verifier } = await freshCode(t, a);
      const tokens = (await redeem(a, code, verifier)).json<{ access_token: string }>();
      return { token: tokens.access_token, kid: (JSON.parse(Buffer.from(tokens.access_token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid };
    };
    const oldKid = (await signingKid()).kid;
    const rotated = await runCli(['keys', 'rotate', '--json'], env);
    const exited = Date.now();
    t.equal(rotated.code, 0, rotated.stderr);
    const key = JSON.parse(rotated.stdout) as { kid: string; status: string; activates_at: string };
    t.notOk(before.includes(key.kid));
    t.equal(key.status, 'pending');
    t.ok(Date.parse(key.activates_at) - exited >= 60_000, 'it signs no sooner than the JWKS max-age from now');
    // Bound: the CLI announces the new key on the `keys` channel after committing it; each
    // instance reloads on the message. (Without the message: a token with an unknown kid
    // makes an instance reload at most every 5 s, and every instance reloads every 60 s.)
    for (const server of ab) {
      t.ok(await eventually(2_000, async () => (await jwksKids(server)).includes(key.kid)), `${server === a ? 'A' : 'B'} publishes the new key`);
    }
    t.comment(`both published the new key within ${Date.now() - exited} ms of the CLI exiting`);
    // The switch itself (at the stored instant, on every instance) is tested with injected clocks in key-rollover.test.ts.
    const meanwhile = await signingKid();
    t.equal(meanwhile.kid, oldKid, 'A keeps signing with the old key until the activation');
    t.equal(await hello(b, meanwhile.token), 200, 'B accepts it');
    for (const old of before) t.ok((await jwksKids(b)).includes(old), 'the previous keys stay published');
  });

  t.test('50 concurrent redemptions of one code across A and B: exactly one succeeds', async (t) => {
    const { code, verifier } = await freshCode(t, b);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => redeem(ab[i % 2]!, code, verifier)));
    const winners = results.filter((r) => r.status === 200);
    t.equal(winners.length, 1, 'exactly one 200');
    const losers = results.filter((r) => r.status !== 200);
    t.equal(losers.length, 49);
    t.ok(
      losers.every((r) => r.status === 400 && r.json<{ error: string }>().error === 'invalid_grant'),
      'every other one: 400 invalid_grant',
    );
    // RFC 6749 §4.1.2: a replayed code revokes what it issued, on every instance.
    const won = winners[0]!.json<{ access_token: string; refresh_token: string }>();
    for (const server of ab) t.ok(await eventually(2_000, async () => (await hello(server, won.access_token)) === 401), 'access token revoked');
    t.equal((await tokenRequest(a, { grant_type: 'refresh_token', refresh_token: won.refresh_token })).status, 400, 'refresh token revoked');
  });

  /** Every refresh-token row of the family `token` belongs to. */
  const family = async (token: string) => {
    const db = new pg.Client({ connectionString: shared.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ token_hash: string; used: boolean; revoked: boolean }>(
        `SELECT token_hash, used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked FROM refresh_tokens
          WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)`,
        [hashRefreshToken(token)],
      );
      return rows;
    } finally {
      await db.end();
    }
  };

  t.test('50 concurrent refreshes of one token across A and B (strict): one succeeds, the family is revoked whole', async (t) => {
    const { code, verifier } = await freshCode(t, a);
    const start = (await redeem(a, code, verifier)).json<{ refresh_token: string }>();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => tokenRequest(ab[i % 2]!, { grant_type: 'refresh_token', refresh_token: start.refresh_token })));
    const winners = results.filter((r) => r.status === 200);
    t.equal(winners.length, 1, 'exactly one 200');
    t.ok(
      results.filter((r) => r.status !== 200).every((r) => r.status === 400 && r.json<{ error: string }>().error === 'invalid_grant'),
      'the other 49: 400 invalid_grant',
    );
    const won = winners[0]!.json<{ access_token: string; refresh_token: string }>();
    // One rotation happened (no fork of the family), and the losers' reuse revoked all of it
    // (RFC 9700 §4.14.2): the successor and its access token too, on both instances.
    const rows = await family(start.refresh_token);
    t.equal(rows.length, 2, 'the family holds the original and exactly one successor');
    t.ok(rows.every((r) => r.revoked), 'every token of the family is revoked');
    t.equal(rows.filter((r) => r.used).length, 1, 'only the original was used');
    t.equal((await tokenRequest(b, { grant_type: 'refresh_token', refresh_token: won.refresh_token })).status, 400);
    for (const server of ab) t.ok(await eventually(2_000, async () => (await hello(server, won.access_token)) === 401), 'access token revoked');
  });

  t.test('50 concurrent refreshes across C and D (REFRESH_REUSE_GRACE=30): one rotation, everyone gets the one successor, it works', async (t) => {
    const { code, verifier } = await freshCode(t, c);
    const start = (await redeem(d, code, verifier)).json<{ refresh_token: string }>();
    const cd = [c, d];
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => tokenRequest(cd[i % 2]!, { grant_type: 'refresh_token', refresh_token: start.refresh_token })));
    t.same(
      results.map((r) => r.status),
      Array(50).fill(200),
      'all 200 (within the window the losers are handed the winner’s successor)',
    );
    const successors = new Set(results.map((r) => r.json<{ refresh_token: string }>().refresh_token));
    t.equal(successors.size, 1, 'one successor for all of them');
    const rows = await family(start.refresh_token);
    t.equal(rows.length, 2, 'exactly one rotation');
    t.notOk(rows.some((r) => r.revoked), 'nothing revoked');
    const [successor] = successors;
    const next = await tokenRequest(d, { grant_type: 'refresh_token', refresh_token: successor! });
    t.equal(next.status, 200, 'the successor works');
  });
  t.test('through nginx in front of A and B', { skip: nginxSkipReason() ?? false }, async (t) => {
    const proxy = await startThrowawayNginx(t, { upstreams: ab.map((s) => `127.0.0.1:${s.port}`), clientMaxBodySize: DISCARD_LIMIT });
    const instance = (upstream: string | null | undefined) => ab.find((s) => upstream === `127.0.0.1:${s.port}`);
    const name = (upstream: string | null | undefined) => (instance(upstream) === a ? 'A' : instance(upstream) === b ? 'B' : `not an instance (${upstream})`);

    t.test('requests are balanced over both instances', async (t) => {
      const answered = [];
      for (let i = 0; i < 10; i++) answered.push(name((await rawRequest(`${proxy.url}/healthz`)).upstream));
      const byA = answered.filter((n) => n === 'A').length;
      t.equal(byA + answered.filter((n) => n === 'B').length, 10, 'every request answered by A or B');
      t.ok(byA >= 4 && byA <= 6, `round robin: ${answered.join(' ')}`);
    });

    t.test('a sign-in, a code and a refresh token from one instance are accepted by the other', async (t) => {
      // Round robin sends each request to the other instance than the one before, so every
      // credential below is used at another instance than the one that issued it.
      const person = new CookieJarBrowser();
      const pkce = pkcePair();
      const flow = await authorizeAcross(person, [proxy], authorizePath(pkce.challenge, 'nginx'), alice);
      t.ok(flow.sawLogin, 'signed in through nginx (consent was remembered)');
      t.equal(flow.params.get('state'), 'nginx');
      const signIn = person.trail.find((step) => step.request === 'POST /login')!;
      const issuedBy = person.trail[person.trail.length - 1]!.upstream;
      const redeemed = await redeem(proxy, flow.params.get('code')!, pkce.verifier);
      t.equal(redeemed.status, 200);
      t.not(name(redeemed.upstream), name(issuedBy), `the code from ${name(issuedBy)} redeemed at ${name(redeemed.upstream)}`);
      const refreshed = await tokenRequest(proxy, { grant_type: 'refresh_token', refresh_token: redeemed.json<{ refresh_token: string }>().refresh_token });
      t.equal(refreshed.status, 200);
      t.not(name(refreshed.upstream), name(redeemed.upstream), `the refresh token from ${name(redeemed.upstream)} rotated at ${name(refreshed.upstream)}`);
      const again = pkcePair();
      const sso = await person.get(proxy, authorizePath(again.challenge, 'sso'));
      t.equal(sso.status, 303);
      t.ok(responseParams(sso.location!).get('code'), 'a code at once, without a sign-in page');
      t.not(name(sso.upstream), name(signIn.upstream), `the session from ${name(signIn.upstream)} honoured by ${name(sso.upstream)}`);
      const accessToken = refreshed.json<{ access_token: string }>().access_token;
      t.same([await hello(proxy, accessToken), await hello(proxy, accessToken)], [200, 200], 'its access token accepted by both');
    });

    t.test('a body over BODY_LIMIT gets the 413 and its JSON error, not 502', async (t) => {
      // 1 MiB: nginx lets it through (client_max_body_size BODY_LIMIT + 1 MiB). Before the
      // servers closed lingeringly, nginx was reset while sending it, more or less often
      // depending on timing: hence ten of each, and nginx's log checked too.
      const body = Buffer.alloc(1_048_576, 'a');
      for (const [via, url] of [['buffered', proxy.url], ['streaming', proxy.streamingUrl]] as const) {
        for (const chunked of [false, true]) {
          const statuses: number[] = [];
          for (let i = 0; i < 10; i++) {
            const res = await rawRequest(`${url}/token`, { body, chunked });
            statuses.push(res.status);
            if (res.status !== 413) continue;
            t.match(res.type, /^application\/json/);
            t.same(JSON.parse(res.body), { error: 'invalid_request', error_description: 'Request body is too large.' });
          }
          t.same(statuses, Array(10).fill(413), `${via}, ${chunked ? 'chunked' : 'Content-Length'}: 413 every time`);
        }
      }
      t.notMatch(proxy.log(), /while sending request to upstream|prematurely closed|reset by peer/, 'nginx saw no broken upstream connection');
    });

    t.test('with TRUST_PROXY the instances see the client’s own address, not nginx’s', async (t) => {
      // The address every per-address limit counts (request.ip), as logged with each request.
      for (const address of ['127.0.0.2', '127.0.0.3']) {
        const id = `nginx-${randomBytes(8).toString('hex')}`;
        const res = await rawRequest(`${proxy.url}/login`, { localAddress: address, headers: { 'x-request-id': id } });
        t.equal(res.status, 200);
        const server = instance(res.upstream);
        if (!t.ok(server, `answered by an instance (${res.upstream})`)) continue;
        const [line] = await server!.waitForOutput(new RegExp(`^.*"reqId":"${id}".*"msg":"incoming request".*$`, 'm'), 5_000);
        const logged = JSON.parse(line) as { req: { remoteAddress: string } };
        t.equal(logged.req.remoteAddress, address, `${name(res.upstream)} saw the client at ${address}`);
      }
    });
  });
});
