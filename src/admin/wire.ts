/**
 * The admin API's wire forms (RFC 7591 names, snake_case, ISO timestamps),
 * shared by the HTTP routes and the CLI's `--json` output. Hashes never
 * appear here.
 */
import type { AuditEvent } from '../audit/events.js';
import type { Client, Consent, InitialAccessToken, User } from '../storage/types.js';

/** Wire form of a client (RFC 7591 §3.2.1 names). The secret appears only when just created. */
export function clientToWire(client: Client, clientSecret: string | null = null): Record<string, unknown> {
  return {
    client_id: client.clientId,
    ...(clientSecret === null ? {} : { client_secret: clientSecret, client_secret_expires_at: 0 }),
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
    client_name: client.clientName,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    backchannel_logout_uri: client.backchannelLogoutUri,
    backchannel_logout_session_required: client.backchannelLogoutSessionRequired,
    grant_types: client.grantTypes,
    response_types: client.responseTypes,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    scope: client.scope,
    resource_server: client.resourceServer,
    ...(client.jwks === null ? {} : { jwks: client.jwks }),
    ...(client.jwksUri === null ? {} : { jwks_uri: client.jwksUri }),
    dpop_bound_access_tokens: client.dpopBoundAccessTokens,
    require_pushed_authorization_requests: client.requirePushedAuthorizationRequests,
    origin: client.origin,
    last_used_at: client.lastUsedAt?.toISOString() ?? null,
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
  };
}

/** Wire form of an initial access token: never its hash; its value only when just created. */
export function initialAccessTokenToWire(token: InitialAccessToken, value: string | null = null): Record<string, unknown> {
  return {
    id: token.id,
    ...(value === null ? {} : { token: value }),
    description: token.description,
    created_at: token.createdAt.toISOString(),
    expires_at: token.expiresAt?.toISOString() ?? null,
    max_uses: token.maxUses,
    uses: token.uses,
    last_used_at: token.lastUsedAt?.toISOString() ?? null,
  };
}

/**
 * Wire form of a user: never the password hash. `secondFactor`, whether the
 * user has an authenticator app, is given where one user is read (not in
 * lists, which would look it up per user).
 */
export function userToWire(user: User, secondFactor?: boolean): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    email_verified: user.emailVerified,
    roles: user.roles,
    disabled: user.disabled,
    ...(secondFactor === undefined ? {} : { second_factor: secondFactor }),
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

export function consentToWire(consent: Consent, clientName: string | null): Record<string, unknown> {
  return {
    client_id: consent.clientId,
    client_name: clientName,
    scopes: consent.scopes,
    resources: consent.resources,
    created_at: consent.createdAt.toISOString(),
    updated_at: consent.updatedAt.toISOString(),
  };
}


/** Wire form of an audit event (`GET /admin/events`, `events list --json`). */
export function auditEventToWire(event: AuditEvent): Record<string, unknown> {
  return {
    id: event.id,
    occurred_at: event.occurredAt.toISOString(),
    type: event.type,
    outcome: event.outcome,
    actor: event.actor,
    subject: event.subject,
    client_id: event.clientId,
    ip: event.ip,
    details: event.details,
  };
}
