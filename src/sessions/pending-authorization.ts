/**
 * Pending authorization requests: a validated `/authorize` request waiting
 * for the user to sign in and consent, kept server-side in the TTL store.
 *
 * The browser carries only a random id (`rid`) in the login/consent URLs and
 * forms. The request is bound to the browser session that started it through
 * a per-session flow key (kept across sign-in, when the session id changes),
 * so an id leaked from one browser is useless in another. The consent
 * decision is bound to the exact page that was shown: rendering the consent
 * page mints a ticket stored with the request, and the decision must carry
 * it. Completing the request takes it out of the store atomically, so one
 * request yields at most one response.
 */
import { randomBytes } from 'node:crypto';
import type { AuthorizationRequest } from '../oauth/authorize-request.js';
import { constantTimeEqual } from '../security/constant-time.js';
import type { KvStore } from '../storage/types.js';
import type { BrowserSession } from './service.js';

/** How long a person has to sign in and consent, seconds. */
export const PENDING_TTL_SECONDS = 600;

export interface PendingAuthorization {
  readonly id: string;
  readonly request: AuthorizationRequest;
  /** The flow key of the session that started it. */
  readonly binding: string;
  /** Epoch seconds. */
  readonly createdAt: number;
  /** Set once the user signed in for this request (satisfies prompt=login / max_age). */
  loginDone: boolean;
  /** Minted when the consent page is shown; the decision must carry it. */
  consentTicket: string | null;
  /** The user the consent page was shown to. */
  consentUserId: string | null;
}

export interface PendingAuthorizationStore {
  create(request: AuthorizationRequest, session: BrowserSession): Promise<PendingAuthorization>;
  /** The pending request, when it exists and belongs to this session; else null. */
  load(id: unknown, session: BrowserSession): Promise<PendingAuthorization | null>;
  save(pending: PendingAuthorization): Promise<void>;
  /** Atomically removes and returns it (same checks as `load`); of concurrent callers, one wins. */
  take(id: unknown, session: BrowserSession): Promise<PendingAuthorization | null>;
}

const FLOW_KEY = 'flowKey';
const key = (id: string) => `authz:${id}`;
const newId = () => randomBytes(32).toString('base64url');
const isId = (id: unknown): id is string => typeof id === 'string' && /^[\w-]{43}$/.test(id);

/** The session's flow key, created on first use. The caller saves the session. */
export function flowKeyOf(session: BrowserSession): { key: string; created: boolean } {
  const existing = session.data[FLOW_KEY];
  if (typeof existing === 'string') return { key: existing, created: false };
  const created = newId();
  session.data[FLOW_KEY] = created;
  return { key: created, created: true };
}

function sameBinding(pending: PendingAuthorization, session: BrowserSession): boolean {
  const mine = session.data[FLOW_KEY];
  return constantTimeEqual(mine, pending.binding);
}

export function createPendingAuthorizationStore(deps: { kv: KvStore; now?: () => number }): PendingAuthorizationStore {
  const { kv } = deps;
  const now = deps.now ?? Date.now;
  const write = (pending: PendingAuthorization) => kv.set(key(pending.id), JSON.stringify(pending), PENDING_TTL_SECONDS);
  const parse = (raw: string | null, session: BrowserSession) => {
    if (raw === null) return null;
    const pending = JSON.parse(raw) as PendingAuthorization;
    return sameBinding(pending, session) ? pending : null;
  };

  return {
    async create(request, session) {
      const pending: PendingAuthorization = {
        id: newId(),
        request,
        binding: flowKeyOf(session).key,
        createdAt: Math.floor(now() / 1000),
        loginDone: false,
        consentTicket: null,
        consentUserId: null,
      };
      await write(pending);
      return pending;
    },
    async load(id, session) {
      if (!isId(id)) return null;
      return parse(await kv.get(key(id)), session);
    },
    save: write,
    async take(id, session) {
      if (!isId(id)) return null;
      const raw = await kv.get(key(id));
      // Check the binding before taking, so another session's id cannot be used to destroy it.
      if (parse(raw, session) === null) return null;
      return parse(await kv.take(key(id)), session);
    },
  };
}

/** A fresh consent ticket. */
export function newConsentTicket(): string {
  return newId();
}
