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
 *
 * Environment: PORT, PEER_ALG (ES256, RS256, PS256 or EdDSA), PEER_CLIENT_ID,
 * PEER_CLIENT_SECRET, PEER_JWT_CLIENT_ID, PEER_JWT_CLIENT_JWK, PEER_DPOP_NONCE.
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
  ttl: { ClientCredentials: 900 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
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
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
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
