/**
 * Issuing: the claims of a new access token (RFC 9068), the refresh token
 * that goes with it, the optional ID token (OIDC Core), and signing them.
 *
 * Issuing is split in two steps so refresh rotation (`refresh.ts`) can
 * persist the successor in its own single statement between them:
 * `prepare` builds everything without I/O, `sign` signs it. `issue` does
 * both and persists the refresh token itself, in parallel with signing.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { TOKEN_ENDPOINT_AUTH_METHODS } from '../oauth/protocol.js';
import type { NewRefreshToken, RefreshTokenRepo } from '../storage/types.js';
import type { DenyList } from './deny-list.js';
import { accessTokenClaims, idTokenClaims } from './jwt.js';
import { ID_TOKEN_ALG, type KeyStore } from './keys.js';
import { generateRefreshToken, hashRefreshToken, randomId } from './refresh-tokens.js';
import type { AccessTokenClaims, IssueRequest, IssuedTokens, TokenResponse } from './types.js';

export interface IssuerDeps {
  config: Pick<Config, 'issuer' | 'accessTokenTtlSeconds' | 'accessTokenAlg' | 'refreshTokenTtlSeconds'>;
  now: () => number;
  keys: Pick<KeyStore, 'snapshot'>;
  /** Dates a token minted in the second of its user's revocation past the cut-off. */
  denyList: Pick<DenyList, 'earliestIat'>;
  refreshTokens: Pick<RefreshTokenRepo, 'insert'>;
}

/** What `prepare` built: claims, the refresh token (not yet stored) and whether an ID token is due. */
export interface PreparedTokens {
  claims: AccessTokenClaims;
  refresh: { token: string; record: NewRefreshToken } | null;
  idToken: IssueRequest['idToken'];
  request: IssueRequest;
}

export interface Issuer {
  /**
   * Builds the access-token claims and, when `request.refreshToken`, a new
   * refresh token and the row to store for it. No I/O. `refreshScope` is the
   * scope the refresh token keeps (rotation: the original grant's).
   */
  prepare(request: IssueRequest, refreshScope?: string): PreparedTokens;
  /** Signs what `prepare` built (the refresh token is persisted by the caller). */
  sign(prepared: PreparedTokens): Promise<IssuedTokens>;
  /** `prepare`, then sign and store the refresh token (if any) together. */
  issue(request: IssueRequest): Promise<IssuedTokens>;
}

/** Creates the issuing half of the token service (see `TokenService.issue`). */
export function createIssuer(deps: IssuerDeps): Issuer {
  const { config, now, keys, denyList, refreshTokens } = deps;

  function prepare(request: IssueRequest, refreshScope?: string): PreparedTokens {
    const seconds = Math.floor(now() / 1000);
    // A token minted in the same second as a revocation of its user must
    // not fall under it (iat has one-second granularity): it is dated to the
    // next second instead (see revokeUser in revoke.ts).
    const iat = request.user ? Math.max(seconds, denyList.earliestIat(request.user.id)) : seconds;
    const authTime = request.authTime ?? request.idToken?.authTime ?? null;
    // At least a second: a caller's `notAfter` is the exp of a token it found active.
    const ttlSeconds = request.notAfter === undefined ? config.accessTokenTtlSeconds : Math.max(1, Math.min(config.accessTokenTtlSeconds, request.notAfter - iat));
    const claims = accessTokenClaims(
      // A random (v4) UUID: Node hands them out from entropy drawn in batches,
      // where `randomId` draws from the CSPRNG on every token (bench/README.md,
      // "Hot-path changes").
      { client: request.client, user: request.user, scopes: request.scopes, authTime, audience: request.resource, jti: randomUUID(), dpopJkt: request.dpopJkt, act: request.act },
      { issuer: config.issuer, iat, ttlSeconds },
    );
    let refresh: PreparedTokens['refresh'] = null;
    if (request.refreshToken) {
      if (!request.user) throw new Error('a refresh token needs a user (never for client_credentials)');
      const token = generateRefreshToken();
      refresh = {
        token,
        record: {
          tokenHash: hashRefreshToken(token),
          familyId: request.familyId ?? randomId(),
          clientId: request.client.clientId,
          userId: request.user.id,
          // RFC 6749 §6: a rotated refresh token keeps the scope of the one it replaces.
          scope: refreshScope ?? request.scopes.join(' '),
          // RFC 8707 §2.2: and the resources of the grant, however narrow this access token is.
          resources: [...(request.grantResources ?? [request.resource])],
          authTime: authTime === null ? null : new Date(authTime * 1000),
          // OIDC Core §12.2: and how the user authenticated, for the ID tokens of later refreshes.
          amr: request.amr ?? request.idToken?.amr ?? null,
          acr: request.acr ?? request.idToken?.acr ?? null,
          sid: request.sid ?? request.idToken?.sid ?? null,
          accessTokenJti: claims.jti,
          accessTokenExpiresAt: new Date(claims.exp * 1000),
          expiresAt: new Date(now() + config.refreshTokenTtlSeconds * 1000),
          // RFC 9449 §5: a public client's refresh token is bound to the DPoP key (a confidential client's is bound by its authentication).
          dpopJkt: TOKEN_ENDPOINT_AUTH_METHODS[request.client.tokenEndpointAuthMethod].confidential ? null : request.dpopJkt,
        },
      };
    }
    const wantsIdToken = request.idToken !== undefined && request.user !== null && request.scopes.includes('openid');
    return { claims, refresh, idToken: wantsIdToken ? request.idToken : undefined, request };
  }

  async function sign(prepared: PreparedTokens): Promise<IssuedTokens> {
    const snapshot = keys.snapshot();
    const signer = snapshot.signing.get(config.accessTokenAlg)!;
    const { claims, refresh, request } = prepared;
    const accessToken = await signer.sign(claims, 'access');
    const response: TokenResponse = {
      access_token: accessToken,
      // RFC 9449 §5: the type says how the token must be presented.
      token_type: claims.cnf ? 'DPoP' : 'Bearer',
      expires_in: claims.exp - claims.iat,
      scope: claims.scope,
    };
    if (refresh) response.refresh_token = refresh.token;
    if (prepared.idToken && request.user) {
      const idSigner = snapshot.signing.get(ID_TOKEN_ALG)!;
      const idClaims = idTokenClaims(
        {
          client: request.client,
          user: request.user,
          accessToken,
          nonce: prepared.idToken.nonce,
          authTime: claims.auth_time ?? prepared.idToken.authTime,
          amr: prepared.idToken.amr,
          acr: prepared.idToken.acr,
          sid: prepared.idToken.sid,
        },
        { issuer: config.issuer, iat: claims.iat, ttlSeconds: config.accessTokenTtlSeconds },
      );
      response.id_token = await idSigner.sign(idClaims, 'id');
    }
    return { response, accessTokenJti: claims.jti, accessTokenExpiresAt: new Date(claims.exp * 1000), familyId: refresh?.record.familyId ?? null };
  }

  async function issue(request: IssueRequest): Promise<IssuedTokens> {
    const prepared = prepare(request);
    // Client credentials and implicit: nothing to store, one signature.
    if (!prepared.refresh) return sign(prepared);
    const [issued] = await Promise.all([sign(prepared), refreshTokens.insert(prepared.refresh.record)]);
    return issued;
  }

  return { prepare, sign, issue };
}
