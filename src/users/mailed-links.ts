/**
 * Single-use links sent by mail (password reset, email verification). The
 * token is 256 random bits; the store keeps only its SHA-256, under a key of
 * its own purpose, so a copy of the store yields no usable link. A link is
 * used at most once across every instance (`KvStore.take`: GETDEL), and is
 * refused after its lifetime by the server's own clock as well as by the
 * store's expiry.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KvStore } from '../storage/types.js';

export interface MailedLink {
  userId: string;
  /** Epoch milliseconds. */
  issuedAt: number;
  /** Extra facts the purpose needs (the address being verified). */
  detail?: string;
}

export interface MailedLinks {
  /** A new token for the user; the store keeps its hash for `ttlSeconds`. */
  issue(userId: string, detail?: string): Promise<string>;
  /** The link a token stands for, if it is unused and in date; it stays usable. */
  peek(token: string): Promise<MailedLink | null>;
  /** Uses the link up: of concurrent callers at most one gets it; null when used, unknown or out of date. */
  take(token: string): Promise<MailedLink | null>;
}

const TOKEN = /^[\w-]{43}$/;

export function createMailedLinks(deps: { kv: KvStore; purpose: string; ttlSeconds: number; now: () => number }): MailedLinks {
  const { kv, ttlSeconds, now } = deps;
  const key = (token: string) => `${deps.purpose}:${createHash('sha256').update(token).digest('base64url')}`;
  const inDate = (raw: string | null): MailedLink | null => {
    if (raw === null) return null;
    const link = JSON.parse(raw) as MailedLink;
    return now() < link.issuedAt + ttlSeconds * 1000 ? link : null;
  };
  return {
    async issue(userId, detail) {
      const token = randomBytes(32).toString('base64url');
      const link: MailedLink = { userId, issuedAt: now(), ...(detail === undefined ? {} : { detail }) };
      await kv.set(key(token), JSON.stringify(link), ttlSeconds);
      return token;
    },
    async peek(token) {
      return TOKEN.test(token) ? inDate(await kv.get(key(token))) : null;
    },
    async take(token) {
      return TOKEN.test(token) ? inDate(await kv.take(key(token))) : null;
    },
  };
}
