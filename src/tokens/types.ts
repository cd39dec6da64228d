/**
 * The token service's contract, shared by every grant (token endpoint) and by
 * the browser flows (implicit response, authorization-code redemption).
 */
import type { Client, User } from '../storage/types.js';

/** RFC 6749 §5.1 (plus OIDC `id_token`). Sent with `Cache-Control: no-store`. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
}

export interface IssueRequest {
  client: Client;
  /** The resource owner; null for client_credentials (then `sub` is the client_id). */
  user: User | null;
  /** Granted scopes (already checked against the client and the request). */
  scopes: string[];
  /** Issue a refresh token (never for client_credentials or implicit). */
  refreshToken: boolean;
  /** Continue this refresh-token family (rotation) instead of starting a new one. */
  familyId?: string;
  /** OIDC: when set, an ID token is issued (requires `openid` in `scopes`). */
  idToken?: { nonce?: string | undefined; authTime: number | null };
  /** Epoch seconds of the user's authentication, kept with the refresh token. */
  authTime?: number | null;
}

export interface IssuedTokens {
  response: TokenResponse;
  accessTokenJti: string;
  accessTokenExpiresAt: Date;
  /** The refresh-token family, when a refresh token was issued. */
  familyId: string | null;
}

/** Claims of a verified access token (RFC 9068 §2.2). */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  client_id: string;
  scope: string;
  iat: number;
  exp: number;
  jti: string;
  roles?: string[];
  auth_time?: number;
  [claim: string]: unknown;
}
