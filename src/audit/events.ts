/**
 * What the audit trail records: the event types, who acted (the actor), on
 * what (the subject), and the change context the admin front ends (API,
 * console, CLI) hand to the services that make the changes, so each change
 * is recorded once, where it happens, whoever asked for it.
 *
 * Never a secret: no password, client secret, token, code or hash goes into
 * an event. Details are a small flat object, cleaned on the way in
 * (`service.ts`).
 */
import type { User } from '../storage/types.js';

/** Every event type, grouped by the prefix a filter may name (`user.`). */
export const AUDIT_EVENT_TYPES = [
  'sign_in.succeeded',
  'sign_in.failed',
  'sign_in.throttled',
  'refresh_token.reuse_detected',
  'token.exchanged',
  'consent.granted',
  'consent.revoked',
  'device_authorization.approved',
  'device_authorization.denied',
  'client.created',
  'client.updated',
  'client.deleted',
  'client.secret_rotated',
  'initial_access_token.created',
  'initial_access_token.revoked',
  'user.created',
  'user.updated',
  'user.password_changed',
  'user.sessions_ended',
  'backchannel_logout.sent',
  'user.disabled',
  'user.enabled',
  'user.deleted',
  'key.rotated',
  'passkey.added',
  'passkey.removed',
  'passkey.clone_detected',
  'second_factor.added',
  'second_factor.removed',
  'second_factor.recovery_codes_regenerated',
  'second_factor.recovery_code_used',
  'second_factor.failed',
  'second_factor.throttled',
  'second_factor.reset',
  'identity_provider.created',
  'identity_provider.updated',
  'identity_provider.deleted',
  'identity.linked',
  'identity.unlinked',
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/**
 * Every key an event's details may carry, and its JSON type. Anything else is
 * dropped before it is stored, and the admin API's response schema lists
 * exactly these: no place for a secret to slip through.
 */
export const AUDIT_DETAIL_FIELDS = {
  /** Where a sign-in was attempted: login_form, admin_console, admin_api, password_grant, passkey, upstream (an identity provider's, `provider`). */
  source: 'string',
  /**
   * Why a sign-in failed (invalid_credentials, disabled), why a client was deleted (idle), why sessions ended
   * (signed_out_elsewhere, password_changed, password_reset), why a logout token was not delivered.
   */
  reason: 'string',
  /** How long the slow-down delayed the check. */
  slowed_ms: 'integer',
  username: 'string',
  roles: 'strings',
  /** Which fields a change touched (never their values for secrets). */
  fields: 'strings',
  scopes: 'strings',
  client_name: 'string',
  token_endpoint_auth_method: 'string',
  grant_types: 'strings',
  scope: 'string',
  alg: 'string',
  /** The user whose refresh-token family was revoked. */
  user_id: 'string',
  /** The audience of a token issued by token exchange (RFC 8693), and the earlier actors of its chain, most recent first. */
  resource: 'string',
  actors: 'strings',
  /** The resources (RFC 8707) a consent was given for. */
  resources: 'strings',
  /** Who registered a client: admin, dynamic (RFC 7591) or metadata_document. */
  origin: 'string',
  /** An initial access token's note from the admin, and its limits. */
  description: 'string',
  max_uses: 'integer',
  expires_at: 'string',
  /** A passkey's name as its owner gave it, and its credential id (public). */
  passkey_name: 'string',
  credential_id: 'string',
  /** Signature counters: the one stored and the one presented (a clone detected). */
  stored_counter: 'integer',
  presented_counter: 'integer',
  /** The unused recovery codes a user has left (after one was used). */
  recovery_codes_left: 'integer',
  /** The upstream identity provider (its id) of a sign-in, a link or a change to it. */
  provider: 'string',
  issuer: 'string',
  display_name: 'string',
} as const satisfies Record<string, 'string' | 'integer' | 'strings'>;

/** `failure`: the attempt was refused (wrong password, throttled, a reused refresh token). */
export const AUDIT_OUTCOMES = ['success', 'failure'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * Who acted. A `user` with a null id is a person not (yet) known to be one:
 * the username typed at a failed sign-in, or someone signing up.
 */
export type AuditActor = { type: 'user'; id: string | null; username: string } | { type: 'cli' } | { type: 'system' } | { type: 'anonymous' };

/** An operator on the server's machine (`npm run cli`). */
export const CLI_ACTOR: AuditActor = Object.freeze({ type: 'cli' });
/** The server itself: start-up work (the bootstrap admin), and what it decides alone (revoking a reused refresh token's family). */
export const SYSTEM_ACTOR: AuditActor = Object.freeze({ type: 'system' });

/**
 * A caller over HTTP who is no user: RFC 7591 registration (open, or with an
 * initial access token) and RFC 7592 management with a registration access
 * token. The event's address and client say who it was.
 */
export const ANONYMOUS_ACTOR: AuditActor = Object.freeze({ type: 'anonymous' });

export function userActor(user: Pick<User, 'id' | 'username'>): AuditActor {
  return { type: 'user', id: user.id, username: user.username };
}

/**
 * Who asks for a change, and from where: the admin API passes the admin of
 * `request.adminPrincipal` and `request.ip`, the console its signed-in admin,
 * the CLI `CLI_ACTOR`. Without one, the change is recorded as the system's.
 */
export interface ChangeContext {
  actor: AuditActor;
  /** The client address (null or absent: not over HTTP). */
  ip?: string | null | undefined;
}

export type AuditSubjectType = 'user' | 'client' | 'key' | 'family' | 'initial_access_token' | 'identity_provider';

export interface AuditEventInput {
  type: AuditEventType;
  /** Default `success`. */
  outcome?: AuditOutcome;
  actor: AuditActor;
  /** What was acted on. */
  subject?: { type: AuditSubjectType; id: string } | null;
  /** The OAuth client involved, if any. */
  clientId?: string | null;
  ip?: string | null | undefined;
  /** A few facts, under the keys of `AUDIT_DETAIL_FIELDS` (others are dropped). Never a secret. */
  details?: { -readonly [K in keyof typeof AUDIT_DETAIL_FIELDS]?: unknown };
}

/** An event as stored and listed. */
export interface AuditEvent {
  id: string;
  occurredAt: Date;
  type: string;
  outcome: string;
  actor: { type: string; id: string | null; username: string | null };
  subject: { type: string; id: string } | null;
  clientId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}

/** What a service needs to record events: `record` never rejects. */
export interface AuditRecorder {
  record(event: AuditEventInput): Promise<void>;
}

/** Records with the context's actor and address, or as the system's when there is no context. */
export function recordChange(audit: AuditRecorder | undefined, context: ChangeContext | undefined, event: Omit<AuditEventInput, 'actor' | 'ip'>): Promise<void> {
  if (!audit) return Promise.resolve();
  return audit.record({ ...event, actor: context?.actor ?? SYSTEM_ACTOR, ip: context?.ip ?? null });
}
