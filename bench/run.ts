/**
 * `npm run bench`: our server (the built `dist/main.js`, as `npm start` runs
 * it) next to node-oidc-provider and a bare jose route, measured with
 * autocannon on this machine. See `bench/README.md` for what each case
 * measures, the flags and the latest results.
 *
 *   (a) oidc-provider v9, JWT client credentials (the peer)
 *   (b) our POST /token, client credentials
 *   (c) our GET /api/hello over a pool of distinct access tokens
 *   (d) a bare Fastify route that only runs jose.jwtVerify on the same tokens
 *   (e) our refresh-token rotation, each request a fresh refresh token
 *   (f) our password grant (argon2id-bound)
 *   (g) oidc-provider v9, client credentials authenticated with private_key_jwt
 *   (h) ours, the same
 *   (i)–(l) DPoP (RFC 9449): (i) oidc-provider and (j) ours, client
 *       credentials with a proof; (k) our GET /api/hello with DPoP-bound
 *       tokens and proofs; (l) a bare jose route verifying token and proof
 *   (m)–(o) introspection (RFC 7662) by the client the tokens were issued to:
 *       (m) oidc-provider, its opaque access tokens; (n) ours, our JWT access
 *       tokens; (o) ours, our (opaque) refresh tokens. oidc-provider cannot
 *       introspect its JWT access tokens (400 unsupported_token_type, see
 *       peer-oidc-provider.ts), so opaque is its only format here
 *   (p)–(r) revocation (RFC 7009), each request a different, still valid
 *       token: (p) oidc-provider, its opaque access tokens; (q) ours, JWT
 *       access tokens (deny-listed by jti); (r) ours, refresh tokens (each
 *       its own grant, revoked with its family)
 *
 * `--soak N` runs the mixed workload of `lib/soak.ts` for N seconds instead;
 * `--startup` times start → ready and idle memory instead (`startup.ts`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import argon2 from 'argon2';
import autocannon from 'autocannon';
import { ARGON2_OPTIONS } from '../src/users/password.js';
import { ASSERTION_TYPE, assertionKey, assertionsFor, signAssertions, type AssertionKey } from './lib/assertions.js';
import { CASE_IDS, parseArgs, USAGE, type BenchArgs, type CaseId } from './lib/args.js';
import { prepareBackend, type Backend } from './lib/backend.js';
import { foreignCpuPercent, measure, summarize, type LoadResult } from './lib/load.js';
import { freePort, serverEnv, startServer, type ServerChild } from './lib/processes.js';
import { dpopKey, learnNonce, proofPool, signProof, type DpopKey } from './lib/dpop.js';
import { basicAuth, clientTokens, codeFamilies, form, MACHINE_SCOPE, mapLimit, postToken, seed as seedServer, signIn, userTokens, type ClientCreds, type Seed } from './lib/seed.js';
import { mixedWorkload, percentile } from './lib/soak.js';
import { runStartup } from './startup.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FORM = 'application/x-www-form-urlencoded';

const TITLES: Record<CaseId, string> = {
  a: 'oidc-provider v9: POST /token client_credentials (JWT)',
  b: 'ours: POST /token client_credentials',
  c: 'ours: GET /api/hello (token pool)',
  d: 'floor: bare Fastify + jose.jwtVerify (same pool)',
  e: 'ours: POST /token refresh_token (rotation)',
  f: 'ours: POST /token password (argon2id)',
  g: 'oidc-provider v9: POST /token client_credentials, private_key_jwt',
  h: 'ours: POST /token client_credentials, private_key_jwt',
  i: 'oidc-provider v9: POST /token client_credentials with DPoP',
  j: 'ours: POST /token client_credentials with DPoP',
  k: 'ours: GET /api/hello with DPoP (token pool, a proof each)',
  l: 'floor: bare Fastify + jose, token and DPoP proof',
  m: 'oidc-provider v9: introspection of its opaque access tokens',
  n: 'ours: introspection of our JWT access tokens',
  o: 'ours: introspection of our refresh tokens',
  p: 'oidc-provider v9: revocation of its opaque access tokens',
  q: 'ours: revocation of JWT access tokens',
  r: 'ours: revocation of refresh tokens',
};

/** A case's title in this run: the peer's token store named when it is Redis. */
function titleOf(id: CaseId, args: BenchArgs): string {
  return (id === 'm' || id === 'p') && args.peerStore === 'redis' ? `${TITLES[id]}, kept in Redis` : TITLES[id];
}

/** Cases that do not measure our server (excluded from our targets). */
const NOT_OURS: ReadonlySet<CaseId> = new Set(['a', 'd', 'g', 'i', 'l', 'm', 'p']);
/** DPoP-bound tokens in the pool of cases (k) and (l). */
const DPOP_TOKENS = 100;

/**
 * Tokens introspected by cases (n) and (o), issued once for the run (an
 * introspection changes nothing, so every round reuses them).
 */
interface IntrospectionPools {
  /** Access tokens (JWT) of the machine client, by client credentials. */
  accessTokens: string[];
  /** Refresh tokens of the app client, each its own grant. */
  refreshTokens: string[];
}

/** The private_key_jwt client of cases (g) and (h): one key, registered with us (and given to the peer). */
interface KeyClient {
  key: AssertionKey;
  /** Our client_id for it. */
  clientId: string;
}

/** Registers the private_key_jwt client with our server through the admin API. */
async function registerKeyClient(baseUrl: string, adminUser: { username: string; password: string }): Promise<KeyClient> {
  const key = await assertionKey();
  const res = await fetch(`${baseUrl}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${adminUser.username}:${adminUser.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'bench private_key_jwt client',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [key.publicJwk] },
      scope: 'api:read api:write',
    }),
  });
  const body = (await res.json()) as { client_id?: string };
  if (res.status !== 201 || !body.client_id) throw new Error(`registering the private_key_jwt client: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return { key, clientId: body.client_id };
}


interface CaseResult extends LoadResult {
  id: CaseId;
  title: string;
  /** Round of `--repeat` (1-based). */
  round: number;
  /** Machine CPU busy (%) in the second before the case, while the benchmark was idle. */
  foreignCpu: number | null;
  /** Revocation cases: tokens in the pool, and requests made (warm-up included; those beyond the pool had no token). */
  pool?: { tokens: number; requests: number };
}

const log = (line = '') => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const cpuCell = (r: LoadResult) => (r.cpuUsPerRequest === null ? 'n/a' : fmt(r.cpuUsPerRequest));
const mib = (bytes: number | null) => (bytes === null ? 'n/a' : `${fmt(bytes / 1048576, 1)} MiB`);

function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function machine(): Record<string, string> {
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    cpus: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'}`,
    memory: `${fmt(totalmem() / 1024 ** 3, 1)} GiB`,
    node: process.version,
    os: `${process.platform} ${release()}`,
    loadavg: loadavg().map((l) => l.toFixed(2)).join(' '),
    versions: `fastify ${versionOf('fastify')}, jose ${versionOf('jose')}, oidc-provider ${versionOf('oidc-provider')}, autocannon ${versionOf('autocannon')}`,
  };
}

/** `--cpu-prof` for a server process: its profile goes to `<DIR>/<name>/`. */
function profileArgs(args: BenchArgs, name: string): string[] {
  if (!args.cpuProf) return [];
  const dir = resolve(args.cpuProf, name);
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/** A server's issuer (RFC 8414 metadata): what `htu` starts with. */
async function issuerOf(baseUrl: string): Promise<string> {
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const res = await fetch(`${baseUrl}${path}`);
    if (res.status === 200) return ((await res.json()) as { issuer: string }).issuer;
    await res.arrayBuffer();
  }
  throw new Error(`no metadata at ${baseUrl}`);
}

/** The `kid` of a JWT's protected header. */
function kidOf(jwt: string): string {
  return (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid;
}

async function expectOk(url: string, init: RequestInit, what: string): Promise<void> {
  const res = await fetch(url, init);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`pre-flight ${what}: expected 200, got ${res.status}: ${body.slice(0, 300)}`);
}

/** argon2id verifications per second with the server's parameters (libuv's pool, 8 in flight) for 3 s. */
async function argon2Rate(): Promise<number> {
  const hash = await argon2.hash('bench password', ARGON2_OPTIONS);
  let done = 0;
  const end = performance.now() + 3000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        await argon2.verify(hash, 'bench password');
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - start);
}

let argon2Ceiling: number | null = null;

/**
 * Refresh-token families case (e) needs per round: more than twice the
 * connections, so the queue never runs dry even after a whole set of
 * in-flight tokens is lost when the warm-up stops.
 */
function familiesPerRound(args: BenchArgs): number {
  return Math.max(2 * args.connections + 20, 64);
}

async function runCases(args: BenchArgs, ours: ServerChild, seed: Seed, logDir: string, round: number, keyClient: KeyClient | null, introspectionPools: IntrospectionPools): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const pool = seed.accessTokens;
  let poolIndex = 0;
  const rotatingBearer = (): autocannon.Request => ({
    method: 'GET',
    path: '/api/hello',
    setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${pool[poolIndex++ % pool.length]!}` } }),
  });
  const ccRequest = (auth: string): autocannon.Request => ({
    method: 'POST',
    path: '/token',
    headers: { authorization: auth, 'content-type': FORM },
    body: form({ grant_type: 'client_credentials', scope: MACHINE_SCOPE }),
  });

  /**
   * Client credentials authenticated by the next assertion of `pool` (each
   * `jti` is accepted once; a pool that ran dry repeats its last one, whose
   * refusals then show in non-2xx).
   */
  const assertionRequest = (pool: readonly string[]): autocannon.Request => {
    let next = 0;
    return {
      method: 'POST',
      path: '/token',
      setupRequest: (request) => ({
        ...request,
        headers: { ...request.headers, 'content-type': FORM },
        body: form({ grant_type: 'client_credentials', scope: MACHINE_SCOPE, client_assertion_type: ASSERTION_TYPE, client_assertion: pool[next++] ?? pool[pool.length - 1]! }),
      }),
    };
  };
  /** One client-credentials request with a fresh assertion: 200 or the case is not run. */
  const preflightAssertion = async (server: ServerChild, clientId: string, audience: string) => {
    const [assertion] = await signAssertions(keyClient!.key, clientId, audience, 1);
    const params = { grant_type: 'client_credentials', scope: MACHINE_SCOPE, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion! };
    await expectOk(`${server.url}/token`, { method: 'POST', headers: { 'content-type': FORM }, body: form(params) }, `private_key_jwt at ${server.url}`);
  };

  const run = async (id: CaseId, server: ServerChild, requests: autocannon.Request[]) => {
    const foreignCpu = await foreignCpuPercent();
    if (foreignCpu !== null && foreignCpu > 15) log(`   ! the machine was ${fmt(foreignCpu)} % busy before this case without us: numbers may be low`);
    log(`-> (${id})${args.repeat > 1 ? ` round ${round}/${args.repeat}` : ''} ${titleOf(id, args)}: ${args.warmup}s warm-up, ${args.duration}s measured, ${args.connections} connections${args.rate === undefined ? '' : `, at most ${args.rate} req/s`}`);
    const result = await measure({ url: server.url, connections: args.connections, rate: args.rate, requests }, args.duration, args.warmup, server.cpuSeconds);
    results.push({ id, title: titleOf(id, args), round, foreignCpu, ...result });
    log(`   ${fmt(result.rps)} req/s, p50 ${fmt(result.p50, 1)} ms, p99 ${fmt(result.p99, 1)} ms, non-2xx ${result.non2xx}, errors ${result.errors}, server CPU ${cpuCell(result)} µs/req`);
    // Let the servers settle (GC, pending writes) before the next case.
    await new Promise((r) => setTimeout(r, 1000));
  };

  if (args.only.has('a')) {
    const port = await freePort();
    const peerClient = { clientId: 'bench-peer', secret: randomBytes(32).toString('base64url') };
    const peer = await startServer({
      name: 'oidc-provider',
      args: [...profileArgs(args, 'peer'), '--import', 'tsx', 'bench/peer-oidc-provider.ts'],
      env: serverEnv({ PORT: String(port), PEER_ALG: args.alg, PEER_CLIENT_ID: peerClient.clientId, PEER_CLIENT_SECRET: peerClient.secret }),
      port,
      readyPath: '/.well-known/openid-configuration',
      logFile: join(logDir, 'peer.log'),
      cwd: ROOT,
    });
    try {
      const token = await postToken(peer.url, peerClient, { grant_type: 'client_credentials', scope: MACHINE_SCOPE });
      const header = JSON.parse(Buffer.from(token.access_token.split('.')[0]!, 'base64url').toString('utf8')) as { alg: string; typ: string };
      if (header.alg !== args.alg || header.typ !== 'at+jwt') throw new Error(`the peer issued ${JSON.stringify(header)}, not an ${args.alg} at+jwt`);
      await run('a', peer, [ccRequest(basicAuth(peerClient))]);
    } finally {
      await peer.stop();
    }
  }

  if (args.only.has('b')) {
    await postToken(ours.url, seed.machine, { grant_type: 'client_credentials', scope: MACHINE_SCOPE });
    await run('b', ours, [ccRequest(basicAuth(seed.machine))]);
  }

  if (args.only.has('c')) {
    await expectOk(`${ours.url}/api/hello`, { headers: { authorization: `Bearer ${pool[0]!}` } }, 'GET /api/hello');
    await run('c', ours, [rotatingBearer()]);
  }

  /** The bare jose route, with the public key of `token` (ours). */
  const startFloor = async (token: string, name: string): Promise<ServerChild> => {
    const jwks = (await (await fetch(`${ours.url}/jwks.json`)).json()) as { keys: Array<{ kid: string; alg: string }> };
    const jwk = jwks.keys.find((k) => k.kid === kidOf(token));
    if (!jwk) throw new Error('the key of the pool tokens is not in /jwks.json');
    const issuer = await issuerOf(ours.url);
    const port = await freePort();
    return startServer({
      name: 'jwtVerify floor',
      args: [...profileArgs(args, name), '--import', 'tsx', 'bench/floor-verify.ts'],
      env: serverEnv({ PORT: String(port), FLOOR_JWK: JSON.stringify(jwk), FLOOR_ISSUER: issuer, FLOOR_AUDIENCE: `${issuer}/api` }),
      port,
      readyPath: '/healthz',
      logFile: join(logDir, `${name}.log`),
      cwd: ROOT,
    });
  };

  if (args.only.has('d')) {
    const floor = await startFloor(pool[0]!, 'floor');
    try {
      await expectOk(`${floor.url}/api/hello`, { headers: { authorization: `Bearer ${pool[0]!}` } }, 'floor GET /api/hello');
      await run('d', floor, [rotatingBearer()]);
    } finally {
      await floor.stop();
    }
  }

  if (args.only.has('e')) {
    // Rotation consumes each token: requests take from the queue and put the successor back.
    // Each round gets families of its own: the tokens of requests still in flight when
    // autocannon stops are spent without their successor reaching the queue.
    const queue = seed.refreshTokens.splice(0, familiesPerRound(args));
    const spent = queue[0]!;
    const appAuth = basicAuth(seed.app);
    await run('e', ours, [
      {
        method: 'POST',
        path: '/token',
        setupRequest: (request) => ({
          ...request,
          headers: { ...request.headers, authorization: appAuth, 'content-type': FORM },
          // Never empty while every answer is 200 (the queue holds more families than connections); a
          // shortfall would reuse a spent token, whose 400 then shows up in non-2xx.
          body: form({ grant_type: 'refresh_token', refresh_token: queue.shift() ?? spent }),
        }),
        onResponse: (status, body) => {
          if (status === 200) queue.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
        },
      },
    ]);
  }

  // DPoP (i–l): a proof per request, all signed before the case starts (bench/lib/dpop.ts).
  const proofsPerCase = Math.ceil(args.dpopRate * (args.warmup + args.duration));
  /** Client credentials with the next proof of `proofs` in the DPoP header. */
  const dpopCcRequest = (auth: string, proofs: readonly string[], start: number): autocannon.Request => {
    let next = start;
    return {
      method: 'POST',
      path: '/token',
      body: form({ grant_type: 'client_credentials', scope: MACHINE_SCOPE }),
      setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: auth, 'content-type': FORM, dpop: proofs[next++ % proofs.length]! } }),
    };
  };
  /** Signs the pool for a client-credentials case, after a pre-flight that learns the nonce and checks the answer is DPoP-bound. */
  const ccProofs = async (server: ServerChild, client: ClientCreds, key: DpopKey): Promise<string[]> => {
    const tokenEndpoint = `${await issuerOf(server.url)}/token`;
    const init = { method: 'POST', headers: { authorization: basicAuth(client), 'content-type': FORM }, body: form({ grant_type: 'client_credentials', scope: MACHINE_SCOPE }) };
    const nonce = await learnNonce(`${server.url}/token`, init, key, tokenEndpoint);
    const t0 = Date.now();
    const proofs = await proofPool(key, proofsPerCase + 1, () => ({ htm: 'POST', htu: tokenEndpoint, nonce }));
    log(`   ${fmt(proofs.length)} proofs signed in ${((Date.now() - t0) / 1000).toFixed(1)} s${nonce === undefined ? '' : ', with the server nonce'}`);
    const res = await fetch(`${server.url}/token`, { ...init, headers: { ...init.headers, dpop: proofs[0]! } });
    const body = (await res.json()) as { token_type?: string };
    if (res.status !== 200 || body.token_type?.toLowerCase() !== 'dpop') throw new Error(`pre-flight DPoP client credentials: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    return proofs;
  };

  if (args.only.has('i')) {
    const port = await freePort();
    const peerClient = { clientId: 'bench-peer', secret: randomBytes(32).toString('base64url') };
    const peer = await startServer({
      name: 'oidc-provider (DPoP)',
      args: [...profileArgs(args, 'peer-dpop'), '--import', 'tsx', 'bench/peer-oidc-provider.ts'],
      env: serverEnv({ PORT: String(port), PEER_ALG: args.alg, PEER_CLIENT_ID: peerClient.clientId, PEER_CLIENT_SECRET: peerClient.secret, PEER_DPOP_NONCE: 'true' }),
      port,
      readyPath: '/.well-known/openid-configuration',
      logFile: join(logDir, 'peer-dpop.log'),
      cwd: ROOT,
    });
    try {
      const proofs = await ccProofs(peer, peerClient, await dpopKey());
      await run('i', peer, [dpopCcRequest(basicAuth(peerClient), proofs, 1)]);
    } finally {
      await peer.stop();
    }
  }

  if (args.only.has('j')) {
    const proofs = await ccProofs(ours, seed.machine, await dpopKey());
    await run('j', ours, [dpopCcRequest(basicAuth(seed.machine), proofs, 1)]);
  }

  if (args.only.has('k') || args.only.has('l')) {
    // DPoP-bound tokens of one key, and for each request a proof for one of them (its ath).
    const key = await dpopKey();
    const issuer = await issuerOf(ours.url);
    const tokenEndpoint = `${issuer}/token`;
    const helloUrl = `${issuer}/api/hello`;
    const machineAuth = basicAuth(seed.machine);
    const ccInit = { method: 'POST', headers: { authorization: machineAuth, 'content-type': FORM }, body: form({ grant_type: 'client_credentials', scope: MACHINE_SCOPE }) };
    const nonce = await learnNonce(`${ours.url}/token`, ccInit, key, tokenEndpoint);
    const tokens = await mapLimit(Array.from({ length: DPOP_TOKENS }), 8, async () => {
      const res = await fetch(`${ours.url}/token`, { ...ccInit, headers: { ...ccInit.headers, dpop: await signProof(key, { htm: 'POST', htu: tokenEndpoint, nonce }) } });
      if (res.status !== 200) throw new Error(`DPoP token for the pool: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { access_token: string }).access_token;
    });
    const pairs = async (server: ServerChild) => {
      const t0 = Date.now();
      const proofs = await proofPool(key, proofsPerCase, (i) => ({ htm: 'GET', htu: helloUrl, nonce, accessToken: tokens[i % tokens.length]! }));
      log(`   ${fmt(proofs.length)} proofs signed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const check = await signProof(key, { htm: 'GET', htu: helloUrl, nonce, accessToken: tokens[0]! });
      await expectOk(`${server.url}/api/hello`, { headers: { authorization: `DPoP ${tokens[0]!}`, dpop: check } }, `DPoP GET /api/hello at ${server.url}`);
      let next = 0;
      const request: autocannon.Request = {
        method: 'GET',
        path: '/api/hello',
        setupRequest: (r) => {
          const i = next++ % proofs.length;
          return { ...r, headers: { ...r.headers, authorization: `DPoP ${tokens[i % tokens.length]!}`, dpop: proofs[i]! } };
        },
      };
      return request;
    };
    if (args.only.has('k')) await run('k', ours, [await pairs(ours)]);
    if (args.only.has('l')) {
      const floor = await startFloor(tokens[0]!, 'floor-dpop');
      try {
        await run('l', floor, [await pairs(floor)]);
      } finally {
        await floor.stop();
      }
    }
  }

  if (args.only.has('f')) {
    // What argon2id alone achieves on this machine right now, with the server's parameters.
    argon2Ceiling = await argon2Rate();
    log(`   argon2id alone (server parameters, 8 in flight, this process): ${fmt(argon2Ceiling)} verifies/s`);
    let userIndex = 0;
    const appAuth = basicAuth(seed.app);
    await run('f', ours, [
      {
        method: 'POST',
        path: '/token',
        setupRequest: (request) => {
          const user = seed.users[userIndex++ % seed.users.length]!;
          return {
            ...request,
            headers: { ...request.headers, authorization: appAuth, 'content-type': FORM },
            body: form({ grant_type: 'password', username: user.username, password: user.password, scope: 'api:read' }),
          };
        },
      },
    ]);
  }
  if (args.only.has('g') && keyClient) {
    const port = await freePort();
    const peerClientId = 'bench-peer-jwt';
    const peer = await startServer({
      name: 'oidc-provider (private_key_jwt)',
      args: [...profileArgs(args, 'peer-jwt'), '--import', 'tsx', 'bench/peer-oidc-provider.ts'],
      env: serverEnv({ PORT: String(port), PEER_ALG: args.alg, PEER_JWT_CLIENT_ID: peerClientId, PEER_JWT_CLIENT_JWK: JSON.stringify(keyClient.key.publicJwk) }),
      port,
      readyPath: '/.well-known/openid-configuration',
      logFile: join(logDir, 'peer-jwt.log'),
      cwd: ROOT,
    });
    try {
      const issuer = await issuerOf(peer.url);
      await preflightAssertion(peer, peerClientId, issuer);
      const pool = await signAssertions(keyClient.key, peerClientId, issuer, assertionsFor(args.warmup + args.duration));
      await run('g', peer, [assertionRequest(pool)]);
    } finally {
      await peer.stop();
    }
  }

  if (args.only.has('h') && keyClient) {
    const issuer = await issuerOf(ours.url);
    await preflightAssertion(ours, keyClient.clientId, issuer);
    const pool = await signAssertions(keyClient.key, keyClient.clientId, issuer, assertionsFor(args.warmup + args.duration));
    await run('h', ours, [assertionRequest(pool)]);
  }

  // Introspection (m–o) and revocation (p–r): the client the tokens were
  // issued to asks, with client_secret_basic and the token_type_hint a client
  // would send. Each server's endpoint is taken from its metadata.
  /** oidc-provider with opaque access tokens, introspection and revocation (PEER_OPAQUE). */
  const startOpaquePeer = async (name: string, client: ClientCreds): Promise<ServerChild> => {
    const port = await freePort();
    return startServer({
      name: `oidc-provider (${name})`,
      args: [...profileArgs(args, name), '--import', 'tsx', 'bench/peer-oidc-provider.ts'],
      env: serverEnv({
        PORT: String(port),
        PEER_ALG: args.alg,
        PEER_CLIENT_ID: client.clientId,
        PEER_CLIENT_SECRET: client.secret,
        PEER_OPAQUE: 'true',
        ...(args.peerStore === 'redis' ? { PEER_REDIS_URL: args.redisUrl! } : {}),
      }),
      port,
      readyPath: '/.well-known/openid-configuration',
      logFile: join(logDir, `${name}.log`),
      cwd: ROOT,
    });
  };
  const endpointPath = async (server: ServerChild, name: 'introspection_endpoint' | 'revocation_endpoint'): Promise<string> => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const res = await fetch(`${server.url}${path}`);
      if (res.status !== 200) {
        await res.arrayBuffer();
        continue;
      }
      const url = ((await res.json()) as Record<string, string | undefined>)[name];
      if (url) return new URL(url).pathname;
    }
    throw new Error(`no ${name} in the metadata of ${server.url}`);
  };
  /** POSTs `token` to `path` as `client`; the status and the JSON body (null when empty). */
  const tokenCall = async (server: ServerChild, path: string, client: ClientCreds, token: string, hint: string) => {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: basicAuth(client), 'content-type': FORM }, body: form({ token, token_type_hint: hint }) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : (JSON.parse(text) as { active?: boolean; client_id?: string }) };
  };
  /** One introspection must answer 200 with `active: true` for the token's own client, or the case is not run. */
  const preflightIntrospection = async (server: ServerChild, path: string, client: ClientCreds, token: string, hint: string) => {
    const { status, body } = await tokenCall(server, path, client, token, hint);
    if (status !== 200 || body?.active !== true || body.client_id !== client.clientId) throw new Error(`pre-flight introspection at ${server.url}: ${status} ${JSON.stringify(body)}`);
  };
  /** Introspection of the tokens of `pool` in turn (they stay valid, so the pool is reused in a circle). */
  const introspectionRequest = (path: string, client: ClientCreds, pool: readonly string[], hint: string): autocannon.Request => {
    let next = 0;
    const auth = basicAuth(client);
    return {
      method: 'POST',
      path,
      setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: auth, 'content-type': FORM }, body: form({ token: pool[next++ % pool.length]!, token_type_hint: hint }) }),
    };
  };
  const introspection = async (id: CaseId, server: ServerChild, client: ClientCreds, pool: readonly string[], hint: string) => {
    const path = await endpointPath(server, 'introspection_endpoint');
    await preflightIntrospection(server, path, client, pool[0]!, hint);
    await run(id, server, [introspectionRequest(path, client, pool, hint)]);
  };

  /** Tokens a revocation case needs: one per request it may make at `rate` (--revoke-rate), plus one for the pre-flight. */
  const revocationPool = (rate: number) => Math.ceil(rate * (args.warmup + args.duration)) + 1;
  /**
   * Revokes `pool[0]` and checks it (introspection active before, 200, inactive
   * after), then measures revoking the others, each request the next token.
   * Revoking a revoked or unknown token also answers 200 (RFC 7009 §2.2), so
   * a pool must never be reused: once it is spent, requests go without a
   * token and are answered 400 (non-2xx), and the case says how many.
   */
  const revocation = async (id: CaseId, server: ServerChild, client: ClientCreds, pool: readonly string[], hint: string) => {
    const [introspect, revoke] = await Promise.all([endpointPath(server, 'introspection_endpoint'), endpointPath(server, 'revocation_endpoint')]);
    await preflightIntrospection(server, introspect, client, pool[0]!, hint);
    const revoked = await tokenCall(server, revoke, client, pool[0]!, hint);
    const after = await tokenCall(server, introspect, client, pool[0]!, hint);
    if (revoked.status !== 200 || after.status !== 200 || after.body?.active !== false) throw new Error(`pre-flight revocation at ${server.url}: revoke ${revoked.status}, then introspection ${after.status} ${JSON.stringify(after.body)}`);
    let next = 1;
    const auth = basicAuth(client);
    await run(id, server, [
      {
        method: 'POST',
        path: revoke,
        setupRequest: (request) => {
          const token = pool[next++];
          return { ...request, headers: { ...request.headers, authorization: auth, 'content-type': FORM }, body: form(token === undefined ? { token_type_hint: hint } : { token, token_type_hint: hint }) };
        },
      },
    ]);
    const made = next - 1;
    const dry = Math.max(0, made - (pool.length - 1));
    results[results.length - 1]!.pool = { tokens: pool.length - 1, requests: made };
    log(`   pool ${fmt(pool.length - 1)} tokens, ${fmt(made)} requests made (warm-up included)${dry > 0 ? `; ran dry: ${fmt(dry)} requests without a token (400), raise --revoke-rate` : ''}`);
  };
  /** Issues `count` tokens with `issue`, logging how long it took. */
  const issued = async (what: string, issue: () => Promise<string[]>): Promise<string[]> => {
    const t0 = Date.now();
    const tokens = await issue();
    log(`   ${fmt(tokens.length)} ${what} issued in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return tokens;
  };

  if (args.only.has('m')) {
    const peerClient = { clientId: 'bench-peer', secret: randomBytes(32).toString('base64url') };
    const peer = await startOpaquePeer('peer-introspection', peerClient);
    try {
      const pool = await issued('opaque peer access tokens', () => clientTokens(peer.url, peerClient, args.pool, 16));
      if (pool[0]!.includes('.')) throw new Error(`the peer issued a JWT, not an opaque token: ${pool[0]!.slice(0, 40)}…`);
      await introspection('m', peer, peerClient, pool, 'access_token');
    } finally {
      await peer.stop();
    }
  }
  if (args.only.has('n')) await introspection('n', ours, seed.machine, introspectionPools.accessTokens, 'access_token');
  if (args.only.has('o')) await introspection('o', ours, seed.app, introspectionPools.refreshTokens, 'refresh_token');

  if (args.only.has('p')) {
    const peerClient = { clientId: 'bench-peer', secret: randomBytes(32).toString('base64url') };
    const peer = await startOpaquePeer('peer-revocation', peerClient);
    try {
      const pool = await issued('opaque peer access tokens', () => clientTokens(peer.url, peerClient, revocationPool(args.revokeRate.peer), 32));
      await revocation('p', peer, peerClient, pool, 'access_token');
    } finally {
      await peer.stop();
    }
  }
  if (args.only.has('q')) {
    const pool = await issued('access tokens (JWT) of the machine client', () => clientTokens(ours.url, seed.machine, revocationPool(args.revokeRate.ours), 32));
    await revocation('q', ours, seed.machine, pool, 'access_token');
  }
  if (args.only.has('r')) {
    const pool = await issued('refresh tokens (one grant each)', () => codeFamilies(ours.url, seed.users[0]!, seed.app, revocationPool(args.revokeRate.ours), 32));
    await revocation('r', ours, seed.app, pool, 'refresh_token');
  }
  return results;
}

/**
 * Each case's median round by req/s (the upper middle one of an even count),
 * with the spread of req/s over all rounds. With one round, the round itself.
 */
function medianRounds(results: readonly CaseResult[]): Array<CaseResult & { rpsMin: number; rpsMax: number; rounds: number }> {
  const out: Array<CaseResult & { rpsMin: number; rpsMax: number; rounds: number }> = [];
  for (const id of CASE_IDS) {
    const rounds = results.filter((r) => r.id === id).sort((x, y) => x.rps - y.rps);
    if (rounds.length === 0) continue;
    out.push({ ...rounds[Math.floor(rounds.length / 2)]!, rpsMin: rounds[0]!.rps, rpsMax: rounds[rounds.length - 1]!.rps, rounds: rounds.length });
  }
  return out;
}

interface Verdict {
  target: string;
  value: string;
  pass: boolean;
}

function verdicts(results: readonly CaseResult[], peerStore: BenchArgs['peerStore']): Verdict[] {
  const by = new Map(results.map((r) => [r.id, r]));
  const out: Verdict[] = [];
  const a = by.get('a');
  const b = by.get('b');
  const c = by.get('c');
  const d = by.get('d');
  const f = by.get('f');
  const g = by.get('g');
  const h = by.get('h');
  if (a && b) out.push({ target: '(b)/(a) ≥ 2', value: `${(b.rps / a.rps).toFixed(2)}×`, pass: b.rps >= 2 * a.rps });
  if (c && d) out.push({ target: '(c)/(d) ≥ 90 %', value: `${fmt((100 * c.rps) / d.rps)} %`, pass: c.rps >= 0.9 * d.rps });
  if (g && h) out.push({ target: '(h)/(g) ≥ 1 (private_key_jwt, ours vs the peer)', value: `${(h.rps / g.rps).toFixed(2)}×`, pass: h.rps >= g.rps });
  // DPoP: the same yardsticks as (b)/(a) and (c)/(d).
  const [i, j, k, l] = (['i', 'j', 'k', 'l'] as const).map((id) => by.get(id));
  if (i && j) out.push({ target: '(j)/(i) ≥ 2 (DPoP, ours vs the peer)', value: `${(j.rps / i.rps).toFixed(2)}×`, pass: j.rps >= 2 * i.rps });
  if (k && l) out.push({ target: '(k)/(l) ≥ 80 % (DPoP)', value: `${fmt((100 * k.rps) / l.rps)} %`, pass: k.rps >= 0.8 * l.rps });
  // Introspection and revocation against the peer's opaque tokens, its only
  // introspectable format: (n)/(m) is the headline (our JWT against its opaque),
  // (o)/(m) opaque against opaque.
  const [m, n, o, p, q, rr] = (['m', 'n', 'o', 'p', 'q', 'r'] as const).map((id) => by.get(id));
  // A revocation pool that ran dry answers 400s fast: such a ratio would flatter, so it fails.
  const twice = (ours: CaseResult | undefined, peer: CaseResult | undefined, target: string) => {
    if (!ours || !peer) return;
    const failed = ours.non2xx + ours.errors + peer.non2xx + peer.errors;
    const ratio = `${(ours.rps / peer.rps).toFixed(2)}×`;
    if (failed > 0) out.push({ target, value: `${ratio}, void: ${failed} non-2xx or errors`, pass: false });
    else out.push({ target, value: ratio, pass: ours.rps >= 2 * peer.rps });
  };
  const peers = peerStore === 'redis' ? 'the peer\'s opaque, in Redis' : 'the peer\'s opaque';
  twice(n, m, `(n)/(m) ≥ 2 (introspection: our JWT vs ${peers})`);
  twice(o, m, `(o)/(m) ≥ 2 (introspection: our refresh tokens vs ${peers})`);
  twice(q, p, `(q)/(p) ≥ 2 (revocation: our JWT vs ${peers})`);
  twice(rr, p, `(r)/(p) ≥ 2 (revocation: our refresh tokens vs ${peers})`);
  for (const r of results) {
    if (NOT_OURS.has(r.id) || r.id === 'f') continue;
    out.push({ target: `(${r.id}) p99 < 50 ms`, value: `${fmt(r.p99, 1)} ms`, pass: r.p99 < 50 });
  }
  if (f) {
    out.push({ target: '(f) password grant ≥ 70 req/s', value: `${fmt(f.rps)} req/s`, pass: f.rps >= 70 });
    if (argon2Ceiling !== null) {
      out.push({ target: '(f) / argon2id alone', value: `${fmt((100 * f.rps) / argon2Ceiling)} % of ${fmt(argon2Ceiling)}/s`, pass: f.rps >= 0.8 * argon2Ceiling });
    }
  }
  const ours = results.filter((r) => !NOT_OURS.has(r.id));
  const bad = ours.reduce((n, r) => n + r.non2xx + r.errors, 0);
  if (ours.length > 0) out.push({ target: 'our cases: zero non-2xx and errors', value: String(bad), pass: bad === 0 });
  return out;
}

function printCases(results: readonly CaseResult[], checks: readonly Verdict[], showRound = false): void {
  log();
  log('| case | what | req/s | p50 ms | p99 ms | non-2xx | errors | server CPU µs/req |');
  log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) log(`| (${r.id})${showRound ? ` #${r.round}` : ''} | ${r.title} | ${fmt(r.rps)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.non2xx} | ${r.errors} | ${cpuCell(r)} |`);
  if (checks.length > 0) {
    log();
    log('| target | measured | |');
    log('|---|---:|---|');
    for (const v of checks) log(`| ${v.target} | ${v.value} | ${v.pass ? 'met' : 'MISSED'} |`);
  }
}

async function runSoak(args: BenchArgs, ours: ServerChild, seed: Seed): Promise<Record<string, unknown>> {
  const seconds = args.soak!;
  const sessions = await mapLimit(
    Array.from({ length: Math.min(args.connections, 50) }),
    4,
    (_, i) => signIn(ours.url, seed.users[i % seed.users.length]!, seed.app),
  );
  const workload = mixedWorkload(seed, sessions);
  const options = { url: ours.url, connections: args.connections, pipelining: 1, timeout: 10, requests: workload.requests };
  const warmup = Math.max(args.warmup, 10);
  log(`-> soak: ${warmup}s warm-up, then ${seconds}s of the mixed workload at ${args.connections} connections`);
  await autocannon({ ...options, duration: warmup });
  workload.reset();
  await new Promise((r) => setTimeout(r, 1000));
  const foreignCpu = await foreignCpuPercent();
  const rssStart = ours.rssBytes();
  const rssSamples: number[] = [];
  const sampler = setInterval(() => {
    const rss = ours.rssBytes();
    if (rss !== null) rssSamples.push(rss);
  }, 5000);
  const raw = await autocannon({ ...options, duration: seconds });
  clearInterval(sampler);
  const rssEnd = ours.rssBytes();
  const overall = summarize(raw);
  const failures = workload.steps.reduce((n, s) => n + s.unexpected, 0) + overall.errors + raw.resets;
  const growth = rssStart !== null && rssEnd !== null ? (100 * (rssEnd - rssStart)) / rssStart : null;

  log();
  log(`mixed workload, ${seconds}s at ${args.connections} connections: ${fmt(overall.rps)} req/s overall, p50 ${fmt(overall.p50, 1)} ms, p99 ${fmt(overall.p99, 1)} ms`);
  log();
  log('| step | expects | answers | p50 ms | p99 ms | unexpected |');
  log('|---|---:|---:|---:|---:|---:|');
  const steps = workload.steps.map((s) => {
    const sorted = [...s.latencies].sort((x, y) => x - y);
    const row = { name: s.name, expected: s.expected, answers: s.ok + s.unexpected, p50: percentile(sorted, 50), p99: percentile(sorted, 99), unexpected: s.unexpected, statusCodes: s.statusCodes, samples: s.samples };
    log(`| ${row.name} | ${row.expected} | ${fmt(row.answers)} | ${fmt(row.p50, 1)} | ${fmt(row.p99, 1)} | ${row.unexpected} |`);
    return row;
  });
  log();
  log(`status codes: ${JSON.stringify(overall.statusCodes)}; socket errors + timeouts ${overall.errors}; sequence resets ${raw.resets}`);
  log(`failures (unexpected status, errors, timeouts, resets): ${failures}`);
  log(`non-2xx answers: ${overall.non2xx}, of which expected 303 redirects of the browser steps: ${overall.statusCodes['303'] ?? 0}`);
  log(`server RSS after warm-up ${mib(rssStart)}, at the end ${mib(rssEnd)} (${growth === null ? 'n/a' : `${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %`}), max ${mib(rssSamples.length ? Math.max(...rssSamples) : null)}`);
  for (const s of steps) for (const sample of s.samples) log(`   sample of ${s.name}: ${sample}`);
  return { seconds, connections: args.connections, foreignCpu, overall, steps, failures, resets: raw.resets, rss: { start: rssStart, end: rssEnd, max: rssSamples.length ? Math.max(...rssSamples) : null, samples: rssSamples, growthPercent: growth } };
}

async function main(): Promise<void> {
  let args: BenchArgs;
  try {
    args = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  if (args.help) {
    log(USAGE);
    return;
  }
  if (args.startup) {
    await runStartup(args);
    return;
  }
  if (!existsSync(resolve(ROOT, args.server))) throw new Error(`${args.server} is missing: run \`npm run build\` (npm run bench does)`);
  if (!args.embedded && (!args.databaseUrl || !args.redisUrl)) {
    log('! no DATABASE_URL / REDIS_URL (nor --database-url / --redis-url): running on the embedded defaults (--embedded)');
    args.embedded = true;
  }
  if (args.peerStore === 'redis' && !args.redisUrl) throw new Error('--peer-store redis needs REDIS_URL or --redis-url');

  const info = machine();
  log(`# oauth-server benchmark, ${info.date}`);
  for (const [k, v] of Object.entries(info)) if (k !== 'date') log(`${k.padEnd(9)} ${v}`);
  if (loadavg()[0]! >= 1.5) log(`! load average ${loadavg()[0]!.toFixed(2)} ≥ 1.5: something else is running; numbers taken now are not comparable`);

  const stamp = info.date!.replace(/[:.]/g, '-');
  const logDir = resolve(ROOT, 'bench/results', `logs-${stamp}`);
  mkdirSync(logDir, { recursive: true });
  let backend: Backend | null = null;
  let ours: ServerChild | null = null;
  const json: Record<string, unknown> = { machine: info, args: { ...args, only: [...args.only] } };
  try {
    backend = await prepareBackend(args);
    log(`backend   ${backend.describe}`);
    json.backend = backend.describe;
    const port = await freePort();
    const adminUser = { username: 'bench-admin', password: randomBytes(18).toString('base64url') };
    const nodeArgs = profileArgs(args, 'ours');
    ours = await startServer({
      name: 'our server',
      args: [...nodeArgs, args.server],
      env: serverEnv({
        ...backend.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        ADMIN_USERNAME: adminUser.username,
        ADMIN_PASSWORD: adminUser.password,
        ACCESS_TOKEN_ALG: args.alg,
        ...args.env,
      }),
      port,
      readyPath: '/readyz',
      logFile: join(logDir, 'server.log'),
      cwd: ROOT,
    });
    log(`server    node ${args.server} (pid ${ours.pid}) at ${ours.url}, log ${ours.logFile}, env ${JSON.stringify({ LOG_LEVEL: 'info', ACCESS_TOKEN_ALG: args.alg, ...args.env })}`);

    const t0 = Date.now();
    const seed = await seedServer({
      baseUrl: ours.url,
      adminUser,
      pool: args.pool,
      families: familiesPerRound(args) * (args.only.has('e') ? args.repeat : 1),
      userCount: 10,
    });
    log(`seeded    2 clients, ${seed.users.length} users, ${new Set(seed.accessTokens).size} distinct access tokens, ${seed.refreshTokens.length} refresh-token families (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const keyClient = args.only.has('g') || args.only.has('h') ? await registerKeyClient(ours.url, adminUser) : null;
    const introspectionPools: IntrospectionPools = {
      accessTokens: args.only.has('n') ? await clientTokens(ours.url, seed.machine, args.pool) : [],
      refreshTokens: args.only.has('o') ? await codeFamilies(ours.url, seed.users[0]!, seed.app, args.pool) : [],
    };
    if (args.only.has('n') || args.only.has('o')) log(`seeded    for introspection: ${fmt(introspectionPools.accessTokens.length)} access tokens of the machine client, ${fmt(introspectionPools.refreshTokens.length)} refresh tokens of the app client (one grant each)`);
    log(`RSS       our server after seeding: ${mib(ours.rssBytes())}`);
    log();

    if (args.soak !== undefined) {
      json.soak = await runSoak(args, ours, seed);
    } else {
      const results: CaseResult[] = [];
      for (let round = 1; round <= args.repeat; round++) {
        if (round > 1) {
          // Access tokens live 15 minutes and a round with every case lasts about 11: each later
          // round gets pools of its own (the same kinds of tokens), so none expires mid-round.
          const t1 = Date.now();
          const fresh = await userTokens(ours.url, seed.app, seed.users, args.pool, 16);
          seed.accessTokens.splice(0, seed.accessTokens.length, ...fresh.accessTokens);
          if (args.only.has('n')) introspectionPools.accessTokens = await clientTokens(ours.url, seed.machine, args.pool, 16);
          log(`reissued  round ${round}: ${fmt(seed.accessTokens.length)} access tokens for (c)/(d)${args.only.has('n') ? `, ${fmt(introspectionPools.accessTokens.length)} for (n)` : ''} (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
        }
        results.push(...(await runCases(args, ours, seed, logDir, round, keyClient, introspectionPools)));
      }
      const medians = medianRounds(results);
      const checks = verdicts(medians, args.peerStore);
      if (args.repeat > 1) {
        log();
        log(`every round (${args.repeat}):`);
        printCases(results, [], true);
        log();
        log('median round of each case, req/s range over the rounds:');
        log();
        log('| case | req/s (min–max) |');
        log('|---|---:|');
        for (const m of medians) log(`| (${m.id}) | ${fmt(m.rps)} (${fmt(m.rpsMin)}–${fmt(m.rpsMax)}) |`);
      }
      printCases(medians, checks);
      json.cases = results;
      json.medians = medians;
      json.targets = checks;
      json.argon2VerifiesPerSecond = argon2Ceiling;
      log();
      log(`RSS       our server at the end: ${mib(ours.rssBytes())}`);
    }
  } finally {
    await ours?.stop().catch(() => {});
    await backend?.cleanup().catch((err: unknown) => log(`! cleanup failed: ${(err as Error).message}`));
  }
  const out = args.json ?? join(ROOT, 'bench/results', `${args.soak !== undefined ? 'soak' : 'bench'}-${stamp}.json`);
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(resolve(out), `${JSON.stringify(json, null, 2)}\n`);
  log(`results   ${out}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
