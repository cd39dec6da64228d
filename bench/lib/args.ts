/**
 * Command-line flags of `npm run bench -- …` (see `bench/README.md`).
 */
export const CASE_IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r'] as const;
export type CaseId = (typeof CASE_IDS)[number];

export interface BenchArgs {
  /** Seconds measured per case. */
  duration: number;
  /** Seconds of unmeasured load before each case. */
  warmup: number;
  connections: number;
  /**
   * Requests per second the load generator sends at most (autocannon's
   * `overallRate`); undefined: as fast as the server answers. At a fixed
   * rate two builds are compared at the same load, so their CPU per request
   * is not skewed by how busy the machine was (see bench/README.md).
   */
  rate: number | undefined;
  /** Embedded PGlite + in-process TTL store instead of PostgreSQL + Redis. */
  embedded: boolean;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  only: ReadonlySet<CaseId>;
  /** Rounds of the cases, interleaved; tables and targets use each case's median round. */
  repeat: number;
  /** Seconds of the mixed soak; undefined runs the side-by-side cases instead. */
  soak: number | undefined;
  /** Distinct access tokens in the /api/hello pool, and tokens in each introspection pool. */
  pool: number;
  /** The highest req/s a DPoP case is expected to reach: its proofs are signed beforehand, this many per second of load. */
  dpopRate: number;
  /**
   * The highest req/s a revocation case is expected to reach, the peer's (p)
   * and ours (q, r): its tokens are issued beforehand, this many per second
   * of load (issuing ours, a refresh token's grant especially, is slower).
   */
  revokeRate: { peer: number; ours: number };
  /**
   * Where the peer keeps its opaque tokens in the introspection and
   * revocation cases (m, p): its process's memory (default), or Redis at
   * `redisUrl`, as on several instances.
   */
  peerStore: 'memory' | 'redis';
  /** Signing algorithm of access tokens, ours and the peer's. */
  alg: 'ES256' | 'RS256' | 'PS256' | 'EdDSA';
  /** Write V8 CPU profiles of the servers (`node --cpu-prof`) under this directory. */
  cpuProf: string | undefined;
  /** Extra environment for our server (`--env LOG_LEVEL=warn`). */
  env: Record<string, string>;
  /** Where the JSON results go (default bench/results/<time>.json). */
  json: string | undefined;
  /** Entry point of our server (default dist/main.js): an A/B comparison runs a saved build. */
  server: string;
  /** Time start → ready and idle memory instead of the load cases (bench/startup.ts). */
  startup: boolean;
  help: boolean;
}

export const USAGE = `npm run bench -- [flags]

  --duration N        seconds measured per case (default 10)
  --warmup N          seconds of unmeasured load before each case (default 3)
  --connections N     concurrent connections (default 50)
  --rate N            send at most N req/s in all (default: as fast as answered); compare
                      two builds' server CPU µs/req at the same load
  --only a,b,...      run only these cases (a peer, b /token cc, c /api/hello,
                      d jwtVerify floor, e refresh rotation, f password grant,
                      g peer cc with private_key_jwt, h ours cc with private_key_jwt;
                      DPoP: i peer cc, j our cc, k our /api/hello, l floor;
                      introspection: m peer (opaque), n ours (JWT), o ours (refresh token);
                      revocation: p peer (opaque), q ours (JWT), r ours (refresh token))
  --repeat N          run all the cases N times in turn (a b c … a b c …) and judge each
                      case by its median round (default 1); for machines whose speed drifts
  --embedded          embedded PGlite + in-process store instead of PostgreSQL + Redis
  --database-url URL  PostgreSQL to use (default $DATABASE_URL); a fresh database is
                      created on it for the run and dropped afterwards
  --redis-url URL     Redis to use (default $REDIS_URL)
  --soak N            run the mixed workload for N seconds instead of the cases
  --startup           time start → ready (/readyz) and idle RSS instead of the cases: a fresh
                      and an already set-up DATA_DIR (and database, with PostgreSQL + Redis);
                      --repeat N rounds, --embedded for the embedded default only
  --pool N            distinct tokens for /api/hello and for introspection (m–o) (default 1000)
  --dpop-rate N       req/s a DPoP case (i–l) may reach: N × (warm-up + duration) proofs are
                      signed before it (default 8000); keep warm-up + duration under 45 s
  --revoke-rate N[,M] req/s a revocation case may reach, the peer's (p) N and ours (q, r) M
                      (default M = N): N × (warm-up + duration) tokens are issued before it,
                      one revoked per request; a pool that runs dry shows as 400s
                      (default 15000,8000)
  --peer-store WHERE  memory (default) or redis: where the peer keeps its opaque tokens in
                      (m) and (p); redis (at --redis-url) is how it runs on several instances
  --alg ALG           ES256 (default), RS256, PS256 or EdDSA, for us and the peer
  --cpu-prof DIR      write CPU profiles of the servers into DIR/{ours,peer,floor}
                      (summarise with bench/profile-summary.ts)
  --env KEY=VALUE     extra environment for our server (repeatable)
  --json FILE         write the results as JSON (default bench/results/<time>.json)
  --server FILE       our server's entry point (default dist/main.js); for A/B runs copy a
                      build next to dist/ (e.g. cp -r dist dist-before) and pass dist-before/main.js
`;

function positive(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}: expected a positive number, got "${raw ?? ''}"`);
  return value;
}

/** Parses `argv` (without node and the script); throws on unknown or malformed flags. */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): BenchArgs {
  const args: BenchArgs = {
    duration: 10,
    warmup: 3,
    connections: 50,
    rate: undefined,
    embedded: false,
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    only: new Set(CASE_IDS),
    repeat: 1,
    soak: undefined,
    pool: 1000,
    dpopRate: 8000,
    revokeRate: { peer: 15_000, ours: 8_000 },
    peerStore: 'memory',
    alg: 'ES256',
    cpuProf: undefined,
    env: {},
    json: undefined,
    server: 'dist/main.js',
    startup: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.startsWith('--') && flag.includes('=') ? flag.split(/=(.*)/s, 2) : [flag, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--duration':
        args.duration = positive(name, value());
        break;
      case '--warmup':
        args.warmup = Number(value());
        if (!(args.warmup >= 0)) throw new Error('--warmup: expected 0 or more seconds');
        break;
      case '--connections':
        args.connections = Math.round(positive(name, value()));
        break;
      case '--rate':
        args.rate = Math.round(positive(name, value()));
        break;
      case '--embedded':
        args.embedded = true;
        break;
      case '--database-url':
        args.databaseUrl = value();
        break;
      case '--redis-url':
        args.redisUrl = value();
        break;
      case '--only': {
        const ids = value().split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
        for (const id of ids) if (!(CASE_IDS as readonly string[]).includes(id)) throw new Error(`--only: unknown case "${id}" (cases: ${CASE_IDS.join(', ')})`);
        args.only = new Set(ids as CaseId[]);
        break;
      }
      case '--repeat':
        args.repeat = Math.round(positive(name, value()));
        break;
      case '--soak':
        args.soak = positive(name, value());
        break;
      case '--pool':
        args.pool = Math.round(positive(name, value()));
        break;
      case '--dpop-rate':
        args.dpopRate = Math.round(positive(name, value()));
        break;
      case '--revoke-rate': {
        const [peer, ours = peer] = value().split(',');
        args.revokeRate = { peer: Math.round(positive(name, peer)), ours: Math.round(positive(name, ours)) };
        break;
      }
      case '--peer-store': {
        const store = value();
        if (store !== 'memory' && store !== 'redis') throw new Error(`--peer-store: expected memory or redis, got "${store}"`);
        args.peerStore = store;
        break;
      }
      case '--alg': {
        const alg = value();
        if (alg !== 'ES256' && alg !== 'RS256' && alg !== 'PS256' && alg !== 'EdDSA') throw new Error(`--alg: expected ES256, RS256, PS256 or EdDSA, got "${alg}"`);
        args.alg = alg;
        break;
      }
      case '--cpu-prof':
        args.cpuProf = value();
        break;
      case '--env': {
        const pair = value();
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new Error(`--env: expected KEY=VALUE, got "${pair}"`);
        args.env[pair.slice(0, eq)] = pair.slice(eq + 1);
        break;
      }
      case '--json':
        args.json = value();
        break;
      case '--server':
        args.server = value();
        break;
      case '--startup':
        args.startup = true;
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        throw new Error(`unknown flag "${flag}"\n\n${USAGE}`);
    }
  }
  return args;
}
