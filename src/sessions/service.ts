/**
 * Browser sessions, kept server-side in the TTL store. The cookie holds only a
 * random id (256 bits); the store is keyed by its SHA-256, so reading the
 * store does not yield usable cookies. Each session carries its own CSRF
 * token (synchronizer pattern) for every HTML form.
 *
 * A session exists before sign-in (so the login form has a CSRF token) and is
 * replaced by a new id at sign-in (no session fixation).
 *
 * Each user's signed-in sessions are also listed in a map of the store
 * (`<prefix>user:<user id>`: one field per session, its store key's hash), so
 * the account page can show them and end one or all of them on every
 * instance. A field whose session is gone (expired, signed out) is dropped
 * when the list is read.
 *
 * A signed-in session also has a `sid` (OpenID Connect Back-Channel Logout
 * §2.4, Front-Channel Logout §3): random, kept across the id changes of
 * the same user's later sign-ins in the browser, never derived from the
 * cookie; and the clients it signed the user in to (`rememberClient`), so
 * that when it ends (`onEnd`: sign-out, ended from the account page) each
 * can be told (`oauth/backchannel-logout.ts`). Those are a map of their own
 * (`<prefix>clients:<sid>`: one field per client, set in one atomic
 * command), not part of the session's stored value, which each write
 * replaces whole: two authorizations at once in one browser, or a page
 * saving the session meanwhile, would otherwise keep only one of them.
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
  /** The browser the session was opened from (shown on the account page); absent on older sessions. */
  device?: SessionDevice;
  /** Epoch seconds this session was last seen on the account page or saved; absent: not since sign-in. */
  lastSeenAt?: number;
  /**
   * Epoch seconds of the last write: the store keeps the session until
   * `renewedAt + ttlSeconds` (`keepAlive`). Absent on sessions stored before the field existed.
   */
  renewedAt?: number;
  /**
   * The session's id for relying parties (OIDC `sid`): random, set at the
   * first sign-in of a user in this browser session and kept while the same
   * user signs in again. Absent before sign-in and on sessions stored before
   * the field existed (`sidOf` derives one).
   */
  sid?: string;
  /**
   * Clients remembered in the session's value by earlier releases; read when
   * it ends, never written (`rememberClient` keeps them in a map of their own).
   */
  clients?: string[];
  /** Free-form per-session data for the flows (e.g. pending authorization ids). */
  data: Record<string, unknown>;
}

/** A signed-in session that has just ended, for whoever must be told (back-channel logout). */
export interface EndedSession {
  userId: string;
  sid: string;
  /** The clients it signed the user in to. */
  clientIds: readonly string[];
}

/** Where a session was opened from, as far as it is cheap to tell. */
export interface SessionDevice {
  /** The client address the server saw. */
  ip: string;
  /** The `User-Agent` header, cut to a reasonable length (a summary is made for display). */
  userAgent: string;
}

/** A signed-in session of a user, as the account page lists it. Never the id. */
export interface SessionSummary {
  /** Names the session for `endForUser` (the hash of its id: no use as a cookie). */
  readonly handle: string;
  readonly createdAt: number;
  /** Epoch milliseconds of the sign-in. */
  readonly signedInAt: number | null;
  readonly lastSeenAt: number | null;
  readonly device: SessionDevice | null;
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
  create(device?: SessionDevice): Promise<BrowserSession>;
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
  /** The handle of a session (as in `SessionSummary`). */
  handleOf(session: Pick<BrowserSession, 'id'>): string;
  /** The user's signed-in sessions, oldest sign-in first. */
  listForUser(userId: string): Promise<SessionSummary[]>;
  /** Ends the user's session named by `handle`; false when the user has no such session. */
  endForUser(userId: string, handle: string): Promise<boolean>;
  /** Ends every signed-in session of the user except `keep` (a handle); returns how many ended. */
  endAllForUser(userId: string, keep?: string): Promise<number>;
  /**
   * Sliding expiry for a signed-in session that was just used: its end moves
   * to `ttlSeconds` from now. Written only when a tenth of `ttlSeconds` has
   * passed since the last write, so a busy session is not rewritten on every
   * request; the idle timeout is thus between 90 % and 100 % of `ttlSeconds`.
   * True when it was written (the cookie's Max-Age is to be renewed with it).
   */
  keepAlive(session: BrowserSession): Promise<boolean>;
  /**
   * Notes that the session was just used from `device` (saved at most once a
   * minute), for the account page's "last seen".
   */
  touch(session: BrowserSession, device: SessionDevice): Promise<void>;
  /** Constant-time check of a submitted CSRF token against the session's. */
  verifyCsrf(session: BrowserSession, submitted: unknown): boolean;
  /** The session's OIDC `sid` (see `BrowserSession.sid`). */
  sidOf(session: BrowserSession): string;
  /** Notes that the session signed its user in to `clientId` (atomically: concurrent calls and writes lose none). */
  rememberClient(session: BrowserSession, clientId: string): Promise<void>;
  /** The clients the session signed its user in to, least recently first; at most `MAX_REMEMBERED_CLIENTS`. */
  rememberedClients(session: Pick<BrowserSession, 'id' | 'sid' | 'clients'>): Promise<string[]>;
}

type Stored = Omit<BrowserSession, 'id'>;

/**
 * Anonymous sessions (created by any visit to /authorize or /login) live
 * only long enough to finish signing in, so unauthenticated traffic cannot
 * fill the store with day-long entries.
 */
export const ANONYMOUS_SESSION_TTL_SECONDS = 1_800;

const newId = () => randomBytes(32).toString('base64url');

/** How often `touch` writes at most, seconds. */
const TOUCH_INTERVAL_SECONDS = 60;
/** `keepAlive` writes once this share of the lifetime has passed since the last write (a tenth). */
const RENEW_AFTER_SHARE = 0.1;
/** The longest user agent kept. */
const MAX_USER_AGENT = 300;
const HANDLE = /^[\w-]{43}$/;

/** The most clients a session remembers; past it the one signed in to least recently is forgotten. */
export const MAX_REMEMBERED_CLIENTS = 50;

const cleanDevice = (device: SessionDevice): SessionDevice => ({ ip: device.ip.slice(0, 64), userAgent: device.userAgent.slice(0, MAX_USER_AGENT) });

export interface SessionServiceDeps {
  kv: KvStore;
  /** Default `browser`; each kind has its own key space and cookie. */
  kind?: SessionKind;
  /** Lifetime of a signed-in session, seconds. */
  ttlSeconds: number;
  now?: () => number;
  /**
   * Told of each signed-in session that ends (`destroy`, `endForUser`,
   * `endAllForUser`), after it ended; not of one replaced at sign-in. Must
   * not throw; nothing waits on what it starts.
   */
  onEnd?: (ended: EndedSession) => void;
}

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { kv, ttlSeconds } = deps;
  const kind = deps.kind ?? 'browser';
  const prefix = kind === 'browser' ? 'session:' : `${kind}-session:`;
  const handleOf = (session: Pick<BrowserSession, 'id'>) => createHash('sha256').update(session.id).digest('base64url');
  const key = (id: string) => `${prefix}${handleOf({ id })}`;
  const userIndex = (userId: string) => `${prefix}user:${userId}`;
  const now = deps.now ?? Date.now;
  const seconds = () => Math.floor(now() / 1000);
  /**
   * The sid of a session stored before `sid` existed: derived from its handle
   * with a prefix of its own (a one-way function of a hash: no way back to the cookie).
   */
  const sidFromHandle = (handle: string) => createHash('sha256').update(`oidc-sid:${handle}`).digest('base64url');
  const sidOf = (session: Pick<BrowserSession, 'sid' | 'id'>) => session.sid ?? sidFromHandle(handleOf(session));
  /** The map of the clients a session (by its sid) signed its user in to: field client id, value epoch ms of the last time. */
  const clientsKey = (sid: string) => `${prefix}clients:${sid}`;

  /** Clients in the map, least recently first, then those an earlier release kept in the value. */
  const remembered = async (sid: string, legacy: readonly string[] | undefined) => {
    const entries = Object.entries(await kv.mapEntries(clientsKey(sid))).sort(([, a], [, b]) => Number(a) - Number(b));
    const ids = entries.map(([clientId]) => clientId);
    return [...(legacy ?? []).filter((clientId) => !ids.includes(clientId)), ...ids];
  };

  /** A signed-in session has ended: its remembered clients are read and forgotten, and `onEnd` told. */
  const ended = async (userId: string | null, stored: Pick<BrowserSession, 'sid' | 'clients'>, handle: string) => {
    if (userId === null) return;
    const sid = stored.sid ?? sidFromHandle(handle);
    const clientIds = await remembered(sid, stored.clients);
    await kv.delete(clientsKey(sid));
    deps.onEnd?.({ userId, sid, clientIds });
  };

  const write = async (session: BrowserSession) => {
    session.renewedAt = seconds();
    const { id, ...stored } = session;
    const ttl = stored.userId === null ? Math.min(ANONYMOUS_SESSION_TTL_SECONDS, ttlSeconds) : ttlSeconds;
    await kv.set(key(id), JSON.stringify(stored), ttl);
    // The index lives as long as the longest-lived of its sessions, the remembered clients as long as theirs.
    if (stored.userId !== null) await Promise.all([kv.mapSet(userIndex(stored.userId), handleOf(session), '1', ttl), kv.extend(clientsKey(sidOf(session)), ttl)]);
  };

  /** The stored session a handle names, if it is still one of the user's. */
  const loadByHandle = async (userId: string, handle: string): Promise<Stored | null> => {
    const raw = await kv.get(`${prefix}${handle}`);
    const stored = raw === null ? null : (JSON.parse(raw) as Stored);
    return stored?.userId === userId ? stored : null;
  };

  const endByHandle = async (userId: string, handle: string, stored: Stored) => {
    await kv.delete(`${prefix}${handle}`);
    await kv.mapDelete(userIndex(userId), handle);
    await ended(userId, stored, handle);
  };

  return {
    kind,
    ttlSeconds,
    async create(device) {
      const session: BrowserSession = {
        id: newId(),
        userId: null,
        authTime: null,
        csrfToken: newId(),
        createdAt: seconds(),
        data: {},
        ...(device ? { device: cleanDevice(device) } : {}),
      };
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
      // The same user signing in again (step-up, re-authentication) goes on with the same sid and clients.
      const same = session.userId === userId;
      if (session.userId !== null) {
        await kv.mapDelete(userIndex(session.userId), handleOf(session));
        if (!same) await kv.delete(clientsKey(sidOf(session)));
      }
      const at = now();
      const next: BrowserSession = {
        ...session,
        id: newId(),
        userId,
        authTime: Math.floor(at / 1000),
        signedInAt: at,
        amr: [...amr],
        csrfToken: newId(),
        sid: same ? sidOf(session) : newId(),
        clients: same ? [...(session.clients ?? [])] : [],
      };
      await write(next);
      return next;
    },
    async destroy(session) {
      await kv.delete(key(session.id));
      if (session.userId !== null) await kv.mapDelete(userIndex(session.userId), handleOf(session));
      await ended(session.userId, session, handleOf(session));
    },
    handleOf,
    async listForUser(userId) {
      const handles = Object.keys(await kv.mapEntries(userIndex(userId))).filter((h) => HANDLE.test(h));
      const found = await Promise.all(handles.map(async (handle) => ({ handle, stored: await loadByHandle(userId, handle) })));
      const list: SessionSummary[] = [];
      for (const { handle, stored } of found) {
        // Gone (expired, signed out, signed in as someone else): forget it.
        if (!stored) await kv.mapDelete(userIndex(userId), handle);
        else list.push({ handle, createdAt: stored.createdAt, signedInAt: stored.signedInAt ?? null, lastSeenAt: stored.lastSeenAt ?? null, device: stored.device ?? null });
      }
      return list.sort((a, b) => (a.signedInAt ?? 0) - (b.signedInAt ?? 0));
    },
    async endForUser(userId, handle) {
      const stored = HANDLE.test(handle) ? await loadByHandle(userId, handle) : null;
      if (!stored) return false;
      await endByHandle(userId, handle, stored);
      return true;
    },
    async endAllForUser(userId, keep) {
      const handles = Object.keys(await kv.mapEntries(userIndex(userId))).filter((h) => h !== keep && HANDLE.test(h));
      const ended = await Promise.all(
        handles.map(async (handle) => {
          const stored = await loadByHandle(userId, handle);
          // Only the user's own sessions: a handle reused by someone else's session is never ended here.
          if (stored) await endByHandle(userId, handle, stored);
          else await kv.mapDelete(userIndex(userId), handle);
          return stored !== null;
        }),
      );
      return ended.filter(Boolean).length;
    },
    async keepAlive(session) {
      if (session.userId === null) return false;
      if (session.renewedAt !== undefined && seconds() - session.renewedAt < ttlSeconds * RENEW_AFTER_SHARE) return false;
      await write(session);
      return true;
    },
    async touch(session, device) {
      const at = seconds();
      const clean = cleanDevice(device);
      const same = session.device?.ip === clean.ip && session.device.userAgent === clean.userAgent;
      if (same && session.lastSeenAt !== undefined && at - session.lastSeenAt < TOUCH_INTERVAL_SECONDS) return;
      session.lastSeenAt = at;
      session.device = clean;
      await write(session);
    },
    verifyCsrf(session, submitted) {
      return constantTimeEqual(submitted, session.csrfToken);
    },
    sidOf,
    async rememberClient(session, clientId) {
      const sid = sidOf(session);
      const count = await kv.mapSet(clientsKey(sid), clientId, String(now()), ttlSeconds);
      if (count <= MAX_REMEMBERED_CLIENTS) return;
      const clients = await remembered(sid, undefined);
      await Promise.all(clients.slice(0, clients.length - MAX_REMEMBERED_CLIENTS).map((forgotten) => kv.mapDelete(clientsKey(sid), forgotten)));
    },
    rememberedClients: (session) => remembered(sidOf(session), session.clients),
  };
}
