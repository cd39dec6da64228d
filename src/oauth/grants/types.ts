/**
 * One handler per `grant_type` (RFC 6749 §4) served by the token endpoint,
 * dispatched after the endpoint has authenticated the client (or identified
 * a public client by `client_id`) and checked that the client is registered
 * for the grant. Handlers validate their own parameters and throw
 * `OAuthError`. Each grant file exports a factory that takes only the
 * dependencies it uses (`GrantDeps`) and returns its handler.
 */
import type { AuditRecorder } from '../../audit/events.js';
import type { Config } from '../../config.js';
import type { Client } from '../../storage/types.js';
import type { IssuedTokens, IssueRequest, TokenResponse, TokenService } from '../../tokens/types.js';
import type { SecondFactorService } from '../../users/second-factor.js';
import type { UserService } from '../../users/service.js';
import type { CodeStore } from '../codes.js';
import type { DeviceFlow } from '../device-authorization.js';
import type { TokenGrantType } from '../protocol.js';
import type { ResourceRegistry } from '../resources.js';

/** What a handler is given about one token request. */
export interface GrantRequest {
  client: Client;
  /** The form parameters, each a single string (repeats were refused already). */
  params: Readonly<Record<string, string | undefined>>;
  /** Client IP, for throttling. */
  ip: string;
  /**
   * The thumbprint of the key of the request's verified DPoP proof (RFC
   * 9449), or null: pass it on as `IssueRequest.dpopJkt` (the token
   * endpoint checked the proof, and that every answer is bound to it).
   */
  dpopJkt: string | null;
}

export type GrantHandler = (request: GrantRequest) => Promise<TokenResponse>;

/** One handler for every grant type the token endpoint serves (`protocol.ts`). */
export type GrantHandlers = Readonly<Record<TokenGrantType, GrantHandler>>;

/** The form parameters a grant reads (besides `grant_type`, `scope`, `resource` and client authentication), each with what it is; for the docs. */
export type GrantParameters = Readonly<Record<string, string>>;

/** Everything any grant may need; each factory picks its part. */
export interface GrantDeps {
  config: Pick<Config, 'scopes' | 'requireMfaForAdmins'>;
  now: () => number;
  codes: CodeStore;
  tokens: {
    issue(request: IssueRequest): Promise<IssuedTokens>;
    refresh: TokenService['refresh'];
    revokeIssued: TokenService['revokeIssued'];
    activeAccessToken: TokenService['activeAccessToken'];
  };
  users: Pick<UserService, 'signIn' | 'findEnabled'>;
  /** Whether a user signs in with a second factor (the password grant cannot ask for it). */
  secondFactor: Pick<SecondFactorService, 'isEnrolled'>;
  /** The `resource` parameter (RFC 8707): which resource the access token is for. */
  resources: Pick<ResourceRegistry, 'audienceFor' | 'find'>;
  /** The device authorization grant's requests (RFC 8628), redeemed once. */
  devices: Pick<DeviceFlow, 'redeem'>;
  /** Where a delegation (token exchange) is recorded. */
  audit?: AuditRecorder;
}
