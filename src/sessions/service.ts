/**
 * Browser sessions, kept server-side in the TTL store. The cookie holds only a
 * random id (256 bits); the store is keyed by its SHA-256, so reading the
 * store does not yield usable cookies. Each session carries its own CSRF
 * token (synchronizer pattern) for every HTML form.
 *
 * A session exists before sign-in (so the login form has a CSRF token) and is
 * replaced by a new id at sign-in (no session fixation).
 */
import { createHash, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../security/constant-time.js';
import type { KvStore } from '../storage/types.js';

export interface BrowserSession {
  /** The raw id, as in the cookie. Never logged. */
  readonly id: string;
  userId: string | null;
  /** Epoch seconds of the last sign-in with a password (OIDC `auth_time`). */
  authTime: number | null;
  /**
   * Epoch milliseconds of that sign-in: a session older than the user's last
   * change of credentials is over (`users.findSignedIn`).
   */
  signedInAt?: number | null;
  /**
   * How the user proved who they are at that sign-in (RFC 8176 values, OIDC
   * `amr`): `pwd`, then `otp` after a second factor, `hwk`/`swk` for a
   * passkey. Absent on sessions stored before the field existed (`pwd`).
   */
  amr?: string[];
  readonly csrfToken: string;
  /** Epoch seconds. */
  readonly createdAt: number;
  /** Free-form per-session data for the flows (e.g. pending authorization ids). */
  data: Record<string, unknown>;
}

/**
 * Which sign-in a session stands for: the single sign-on of the login pages
 * (`browser`), or the admin console's own, shorter one (`console`), which a
 * sign-in to any app never opens.
 */
export type SessionKind = 'browser' | 'console';

export interface SessionService {
  readonly kind: SessionKind;
  /** Lifetime of a signed-in session, renewed on every save (sliding expiry). */
  readonly ttlSeconds: number;
  create(): Promise<BrowserSession>;
  /** Null when the id is unknown or expired. */
  load(id: string | undefined): Promise<BrowserSession | null>;
  /** Writes changes back and extends the lifetime (sliding expiry). */
  save(session: BrowserSession): Promise<void>;
  /**
   * Marks the session signed in, under a new id; the old id stops working.
   * `amr`: the methods of this sign-in (default `['pwd']`).
   */
  signIn(session: BrowserSession, userId: string, amr?: readonly string[]): Promise<BrowserSession>;
  destroy(session: BrowserSession): Promise<void>;
  /** Constant-time check of a submitted CSRF token against the session's. */
  verifyCsrf(session: BrowserSession, submitted: unknown): boolean;
}

type Stored = Omit<BrowserSession, 'id'>;

/**
 * Anonymous sessions (created by any visit to /authorize or /login) live
 * only long enough to finish signing in, so unauthenticated traffic cannot
 * fill the store with day-long entries.
 */
export const ANONYMOUS_SESSION_TTL_SECONDS = 1_800;

const newId = () => randomBytes(32).toString('base64url');

export interface SessionServiceDeps {
  kv: KvStore;
  /** Default `browser`; each kind has its own key space and cookie. */
  kind?: SessionKind;
  /** Lifetime of a signed-in session, seconds. */
  ttlSeconds: number;
  now?: () => number;
}

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { kv, ttlSeconds } = deps;
  const kind = deps.kind ?? 'browser';
  const prefix = kind === 'browser' ? 'session:' : `${kind}-session:`;
  const key = (id: string) => `${prefix}${createHash('sha256').update(id).digest('base64url')}`;
  const now = deps.now ?? Date.now;
  const seconds = () => Math.floor(now() / 1000);

  const write = async (session: BrowserSession) => {
    const { id, ...stored } = session;
    const ttl = stored.userId === null ? Math.min(ANONYMOUS_SESSION_TTL_SECONDS, ttlSeconds) : ttlSeconds;
    await kv.set(key(id), JSON.stringify(stored), ttl);
  };

  return {
    kind,
    ttlSeconds,
    async create() {
      const session: BrowserSession = { id: newId(), userId: null, authTime: null, csrfToken: newId(), createdAt: seconds(), data: {} };
      await write(session);
      return session;
    },
    async load(id) {
      if (typeof id !== 'string' || !/^[\w-]{43}$/.test(id)) return null;
      const raw = await kv.get(key(id));
      if (raw === null) return null;
      return { id, ...(JSON.parse(raw) as Stored) };
    },
    save: write,
    async signIn(session, userId, amr = ['pwd']) {
      await kv.delete(key(session.id));
      const at = now();
      const next: BrowserSession = { ...session, id: newId(), userId, authTime: Math.floor(at / 1000), signedInAt: at, amr: [...amr], csrfToken: newId() };
      await write(next);
      return next;
    },
    async destroy(session) {
      await kv.delete(key(session.id));
    },
    verifyCsrf(session, submitted) {
      return constantTimeEqual(submitted, session.csrfToken);
    },
  };
}
