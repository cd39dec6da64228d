/**
 * Case (a), the peer: node-oidc-provider v9 issuing RFC 9068 JWT access
 * tokens for the client credentials grant, signed with the same algorithm
 * as our server, in its own process. Started by `bench/run.ts`; not part of
 * the product.
 *
 * Configuration, from oidc-provider's documentation:
 * - `features.clientCredentials` enables the grant;
 * - `features.resourceIndicators` (RFC 8707) is how oidc-provider decides
 *   the token format: `defaultResource` names our one API when the request
 *   has no `resource` parameter, and `getResourceServerInfo` describes it
 *   (`accessTokenFormat: 'jwt'`, `jwt.sign.alg`), so tokens are JWTs signed
 *   with the key of that algorithm from `jwks`;
 * - one confidential client using `client_secret_basic`, like ours;
 * - with PEER_JWT_CLIENT_ID and PEER_JWT_CLIENT_JWK (a public JWK), a second
 *   one using `private_key_jwt` with that key (its `jwks`), like ours in
 *   case (h). oidc-provider checks the assertion's `jti` once with its
 *   default (in-memory) replay detection.
 * - `features.dPoP` (RFC 9449, on by default in v9) with `PEER_DPOP_NONCE=true`
 *   also requires server nonces (`nonceSecret`, `requireNonce`), as ours
 *   does by default: case (i). Its `jti` replay check uses its in-process
 *   store (ours uses Redis, shared by every instance).
 * - With PEER_OPAQUE=true (cases m and p): the resource's tokens are opaque
 *   (`accessTokenFormat: 'opaque'`), and `features.introspection` (RFC 7662)
 *   and `features.revocation` (RFC 7009) are on. Only opaque tokens: both
 *   endpoints of oidc-provider v9 answer a JWT with 400 `unsupported_token_type`
 *   ("Structured JWT Tokens cannot be introspected via the introspection_endpoint",
 *   lib/shared/reject_structured_tokens.js), so there is no peer case for
 *   introspecting or revoking its JWT access tokens. Opaque tokens live in
 *   its adapter; the default in-memory one keeps the 1,000 most recently used
 *   entries and forgets the rest, and a forgotten token is answered like a
 *   revoked one (`active: false`, or 200 with nothing revoked), so a pool
 *   larger than that would be measured as nothing. This mode therefore
 *   stores them in `MapAdapter` below: the same in-process storage, without
 *   the bound (ours is PostgreSQL and Redis, shared by every instance).
 * - With PEER_REDIS_URL as well (`--peer-store redis`): in Redis instead
 *   (`RedisAdapter` below), as oidc-provider is run on more than one
 *   instance, where a token issued by one must be introspected and revoked by
 *   any: one Redis command per introspection, and per revocation.
 *
 * Environment: PORT, PEER_ALG (ES256, RS256, PS256 or EdDSA), PEER_CLIENT_ID,
 * PEER_CLIENT_SECRET, PEER_JWT_CLIENT_ID, PEER_JWT_CLIENT_JWK, PEER_DPOP_NONCE,
 * PEER_OPAQUE, PEER_REDIS_URL.
 * Prints `listening <url>` when ready.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 0);
const alg = process.env.PEER_ALG ?? 'ES256';
const clientId = process.env.PEER_CLIENT_ID ?? 'bench-peer';
const clientSecret = process.env.PEER_CLIENT_SECRET ?? 'bench-peer-secret-0123456789-abcdefghijklmnop';
const issuer = `http://127.0.0.1:${port}`;
const audience = `${issuer}/api`;
const scope = 'api:read api:write';
const jwtClientId = process.env.PEER_JWT_CLIENT_ID;
const jwtClientJwk = process.env.PEER_JWT_CLIENT_JWK;
const opaque = process.env.PEER_OPAQUE === 'true';
const redisUrl = process.env.PEER_REDIS_URL;

/** What the adapter keeps of one entry: its payload and when it expires (ms, or none). */
interface Stored {
  payload: Record<string, unknown>;
  expiresAt: number;
}

/**
 * An unbounded in-process adapter (oidc-provider's adapter interface: upsert,
 * find, findByUid, findByUserCode, consume, destroy, revokeByGrantId), one
 * Map per model, with expiry checked on read.
 */
class MapAdapter {
  private static readonly models = new Map<string, Map<string, Stored>>();
  private readonly entries: Map<string, Stored>;

  constructor(name: string) {
    let entries = MapAdapter.models.get(name);
    if (!entries) MapAdapter.models.set(name, (entries = new Map()));
    this.entries = entries;
  }

  upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    this.entries.set(id, { payload, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
    return Promise.resolve();
  }

  find(id: string): Promise<Record<string, unknown> | undefined> {
    const stored = this.entries.get(id);
    if (stored === undefined) return Promise.resolve(undefined);
    if (stored.expiresAt > Date.now()) return Promise.resolve(stored.payload);
    this.entries.delete(id);
    return Promise.resolve(undefined);
  }

  private findBy(field: string, value: string): Promise<Record<string, unknown> | undefined> {
    for (const [id, stored] of this.entries) if (stored.payload[field] === value) return this.find(id);
    return Promise.resolve(undefined);
  }

  findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    return this.findBy('uid', uid);
  }

  findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
    return this.findBy('userCode', userCode);
  }

  consume(id: string): Promise<void> {
    const stored = this.entries.get(id);
    if (stored) stored.payload.consumed = Math.floor(Date.now() / 1000);
    return Promise.resolve();
  }

  destroy(id: string): Promise<void> {
    this.entries.delete(id);
    return Promise.resolve();
  }

  revokeByGrantId(grantId: string): Promise<void> {
    for (const [id, stored] of this.entries) if (stored.payload.grantId === grantId) this.entries.delete(id);
    return Promise.resolve();
  }
}

/**
 * The same interface on Redis: each entry a hash (`payload`, and `consumed`
 * once consumed) that expires with the entry, and sets naming the entries of
 * a grant; `uid` and `userCode` lookups through index keys. Keys are under a
 * prefix of this process, and expire on their own.
 */
class RedisAdapter {
  static redis: Redis;
  static readonly prefix = `bench-peer:${randomBytes(6).toString('hex')}:`;
  private readonly model: string;

  constructor(name: string) {
    this.model = `${RedisAdapter.prefix}${name}:`;
  }

  private static ttl(expiresIn: number | undefined): number | null {
    return typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : null;
  }

  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    const key = this.model + id;
    const ttl = RedisAdapter.ttl(expiresIn);
    const multi = RedisAdapter.redis.multi().del(key).hset(key, 'payload', JSON.stringify(payload));
    if (ttl !== null) multi.expire(key, ttl);
    for (const [field, value] of [['grantId', payload.grantId], ['uid', payload.uid], ['userCode', payload.userCode]] as const) {
      if (typeof value !== 'string') continue;
      const index = `${RedisAdapter.prefix}${field}:${value}`;
      if (field === 'grantId') multi.sadd(index, key);
      else multi.set(index, id);
      if (ttl !== null) multi.expire(index, ttl);
    }
    await multi.exec();
  }

  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const [payload, consumed] = await RedisAdapter.redis.hmget(this.model + id, 'payload', 'consumed');
    if (payload === null || payload === undefined) return undefined;
    const parsed = JSON.parse(payload) as Record<string, unknown>;
    return consumed ? { ...parsed, consumed: Number(consumed) } : parsed;
  }

  private async findByIndex(field: 'uid' | 'userCode', value: string): Promise<Record<string, unknown> | undefined> {
    const id = await RedisAdapter.redis.get(`${RedisAdapter.prefix}${field}:${value}`);
    return id === null ? undefined : this.find(id);
  }

  findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    return this.findByIndex('uid', uid);
  }

  findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
    return this.findByIndex('userCode', userCode);
  }

  async consume(id: string): Promise<void> {
    // Marks an entry that exists; never creates one (it would have no expiry).
    await RedisAdapter.redis.eval(
      "if redis.call('exists', KEYS[1]) == 1 then redis.call('hset', KEYS[1], 'consumed', ARGV[1]) end",
      1,
      this.model + id,
      Math.floor(Date.now() / 1000),
    );
  }

  async destroy(id: string): Promise<void> {
    await RedisAdapter.redis.del(this.model + id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const index = `${RedisAdapter.prefix}grantId:${grantId}`;
    const keys = await RedisAdapter.redis.smembers(index);
    await RedisAdapter.redis.del(...keys, index);
  }
}

if (redisUrl) {
  RedisAdapter.redis = new Redis(redisUrl, { lazyConnect: true });
  await RedisAdapter.redis.connect();
}

// RS256/PS256 keys need a modulus; EC and OKP keys do not.
const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) });
const jwk = { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `peer-${alg}` };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // Its only key is of PEER_ALG; the client metadata must not ask for RS256 ID tokens.
      id_token_signed_response_alg: alg,
      scope,
    },
    ...(jwtClientId && jwtClientJwk
      ? [
          {
            client_id: jwtClientId,
            grant_types: ['client_credentials'],
            response_types: [],
            redirect_uris: [],
            token_endpoint_auth_method: 'private_key_jwt',
            jwks: { keys: [JSON.parse(jwtClientJwk) as Record<string, unknown>] },
            id_token_signed_response_alg: alg,
            scope,
          },
        ]
      : []),
  ],
  jwks: { keys: [jwk] },
  scopes: scope.split(' '),
  cookies: { keys: ['bench-peer-cookie-key-not-secret'] },
  ...(opaque ? { adapter: redisUrl ? RedisAdapter : MapAdapter } : {}),
  ttl: { ClientCredentials: 900 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: opaque },
    revocation: { enabled: opaque },
    dPoP: {
      enabled: true,
      ...(process.env.PEER_DPOP_NONCE === 'true' ? { nonceSecret: randomBytes(32), requireNonce: () => true } : {}),
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope,
        audience,
        accessTokenTTL: 900,
        ...(opaque ? { accessTokenFormat: 'opaque' as const } : { accessTokenFormat: 'jwt' as const, jwt: { sign: { alg } } }),
      }),
    },
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
