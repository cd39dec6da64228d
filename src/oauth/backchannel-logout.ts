/**
 * OpenID Connect Back-Channel Logout 1.0: when a browser session ends
 * (`SessionService` `onEnd`: a sign-out, or a session ended from the account
 * page), each client it signed the user in to that registered a
 * `backchannel_logout_uri` is sent a logout token (§2.4, signed like ID
 * tokens, `typ: logout+jwt`, with `sub` and `sid`), as a POST of the form
 * `logout_token=…` (§2.5).
 *
 * - In the background: `sessionEnded` returns at once, so the sign-out never
 *   waits on a client, and a client that is down changes nothing for it.
 * - Each POST has `TIMEOUT_MS`, follows no redirect and counts any 2xx as
 *   done (§2.8 asks for 200; frameworks answer 204). A failure that may pass
 *   (no answer, a 5xx, a timeout) is tried once more after `retryDelayMs`;
 *   one that will not (a 4xx, a redirect, an address refused) is not.
 * - A client no admin registered (RFC 7591, metadata document) is posted to
 *   through the SSRF guard (`security/outbound-fetch.ts`: https only, public
 *   addresses only unless `CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS`); an
 *   admin's client may name http and any address (its own services).
 * - Each outcome is reported (`report`, logged by the server, never the
 *   token) and recorded in the audit trail (`backchannel_logout.sent`).
 */
import { SYSTEM_ACTOR, type AuditRecorder } from '../audit/events.js';
import type { ClientService } from '../clients/service.js';
import { OutboundFetchError, type OutboundPost } from '../security/outbound-fetch.js';
import type { EndedSession } from '../sessions/service.js';
import type { Client } from '../storage/types.js';
import type { TokenService } from '../tokens/types.js';

/** The longest a POST may take, from resolving the name to the last byte of the answer, ms. */
export const BACKCHANNEL_LOGOUT_TIMEOUT_MS = 5_000;
/** The largest answer read (and dropped), bytes. */
export const BACKCHANNEL_LOGOUT_MAX_ANSWER_BYTES = 16_384;

/** How one client's logout token fared. */
export interface BackchannelLogoutOutcome {
  clientId: string;
  userId: string;
  /** Where it was posted (registered metadata, not a secret). */
  uri: string;
  ok: boolean;
  /** Tries made: 1, or 2 after a retry. */
  attempts: number;
  /** The status of the answer, when one came. */
  status?: number;
  /** Why it failed (an `OutboundFetchError` message, or why no token was sent); absent when it was delivered. */
  reason?: string;
}

export interface BackchannelLogoutDeps {
  clients: Pick<ClientService, 'find'>;
  tokens: Pick<TokenService, 'signLogoutToken'>;
  /** POSTs for clients an admin registered: http too, any address. */
  postTrusted: OutboundPost;
  /** POSTs for any other client: the SSRF guard's rules. */
  postGuarded: OutboundPost;
  audit?: AuditRecorder;
  /** Told of each outcome (the server logs it); must not throw. */
  report?: (outcome: BackchannelLogoutOutcome) => void;
  /** Wait before the one retry, ms (default 1 s). */
  retryDelayMs?: number;
}

export interface BackchannelLogout {
  /** Starts telling the clients of `ended` that it ended; returns at once. */
  sessionEnded(ended: EndedSession): void;
  /** Resolves when every delivery started so far is over (tests; shutdown). */
  idle(): Promise<void>;
}

/** Whether a failure may pass on its own, so one more try is worth it. */
function mayPass(err: unknown): boolean {
  if (!(err instanceof OutboundFetchError)) return false;
  if (err.reason === 'status') return err.status !== undefined && err.status >= 500;
  return err.reason === 'network' || err.reason === 'timeout';
}

export function createBackchannelLogout(deps: BackchannelLogoutDeps): BackchannelLogout {
  const retryDelayMs = deps.retryDelayMs ?? 1_000;
  const running = new Set<Promise<void>>();

  const post = async (client: Client, uri: string, token: string): Promise<Pick<BackchannelLogoutOutcome, 'ok' | 'attempts' | 'status' | 'reason'>> => {
    const send = client.origin === 'admin' ? deps.postTrusted : deps.postGuarded;
    const form = new URLSearchParams({ logout_token: token });
    for (let attempt = 1; ; attempt++) {
      try {
        const { status } = await send(uri, form);
        return { ok: true, attempts: attempt, status };
      } catch (err) {
        if (attempt < 2 && mayPass(err)) {
          await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
          continue;
        }
        const status = err instanceof OutboundFetchError ? err.status : undefined;
        return { ok: false, attempts: attempt, ...(status === undefined ? {} : { status }), reason: err instanceof Error ? err.message : 'the request failed' };
      }
    }
  };

  const notify = async (ended: EndedSession, clientId: string): Promise<void> => {
    let client: Client | null;
    try {
      client = await deps.clients.find(clientId);
    } catch {
      // A metadata document that cannot be used now: no URI to trust.
      client = null;
    }
    const uri = client?.backchannelLogoutUri ?? null;
    if (client === null || uri === null) return;
    let outcome: BackchannelLogoutOutcome;
    try {
      const token = await deps.tokens.signLogoutToken({ clientId, sub: ended.userId, sid: ended.sid });
      outcome = { clientId, userId: ended.userId, uri, ...(await post(client, uri, token)) };
    } catch (err) {
      outcome = { clientId, userId: ended.userId, uri, ok: false, attempts: 0, reason: `no logout token could be signed (${err instanceof Error ? err.message : 'unknown error'})` };
    }
    deps.report?.(outcome);
    await deps.audit?.record({
      type: 'backchannel_logout.sent',
      outcome: outcome.ok ? 'success' : 'failure',
      actor: SYSTEM_ACTOR,
      subject: { type: 'user', id: ended.userId },
      clientId,
      details: outcome.ok ? {} : { reason: outcome.reason },
    });
  };

  return {
    sessionEnded(ended) {
      for (const clientId of new Set(ended.clientIds)) {
        const run = notify(ended, clientId).catch(() => {});
        running.add(run);
        void run.finally(() => running.delete(run));
      }
    },
    async idle() {
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}
