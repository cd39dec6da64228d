/**
 * One handler per `grant_type` (RFC 6749 §4), dispatched by the token
 * endpoint after it has authenticated the client (or identified a public
 * client by `client_id`) and checked that the client is registered for the
 * grant. Handlers validate their own parameters and throw `OAuthError`.
 */
import type { Services } from '../../services.js';
import type { Client } from '../../storage/types.js';
import type { TokenGrantType } from '../protocol.js';
import type { TokenResponse } from '../../tokens/types.js';

export interface GrantContext {
  client: Client;
  /** The form parameters, each a single string (repeats were refused already). */
  params: Readonly<Record<string, string | undefined>>;
  services: Services;
  /** Client IP, for throttling. */
  ip: string;
}

export type GrantHandler = (ctx: GrantContext) => Promise<TokenResponse>;

/** One handler for every grant type the token endpoint serves (`protocol.ts`). */
export type GrantHandlers = Readonly<Record<TokenGrantType, GrantHandler>>;
