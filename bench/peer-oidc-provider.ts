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
 *
 * Environment: PORT, PEER_ALG (ES256, RS256, PS256 or EdDSA), PEER_CLIENT_ID,
 * PEER_CLIENT_SECRET, PEER_JWT_CLIENT_ID, PEER_JWT_CLIENT_JWK, PEER_DPOP_NONCE,
 * PEER_OPAQUE.
 * Prints `listening <url>` when ready.
 */
import { randomBytes } from 'node:crypto';
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
  ...(opaque ? { adapter: MapAdapter } : {}),
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
