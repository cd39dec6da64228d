/**
 * RFC 7591 §3 initial access tokens, for `DYNAMIC_REGISTRATION=token`: an
 * admin creates one (admin API, CLI), hands it to whoever may register
 * clients, and revokes it when done. The token is shown once and stored
 * only as a hash; it may expire and may allow a limited number of
 * registrations, counted atomically by the store.
 */
import { recordChange, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import { invalidRequest, notFound } from '../errors.js';
import type { InitialAccessToken, InitialAccessTokenRepo, Page } from '../storage/types.js';
import { generateRegistrationAccessToken, hashClientSecret, randomIdentifier } from './secret.js';

export const MAX_DESCRIPTION_LENGTH = 200;
/** Longest lifetime an admin may give a token: a year. */
export const MAX_EXPIRES_IN_SECONDS = 31_536_000;

export interface NewInitialAccessTokenInput {
  /** Who or what it is for. */
  description?: string;
  /** Seconds from now; absent: never expires. */
  expiresInSeconds?: number;
  /** Registrations it allows; absent: any number. */
  maxUses?: number;
}

export interface InitialAccessTokenService {
  /** The stored token and its value, which is shown this once. */
  create(input: NewInitialAccessTokenInput, context?: ChangeContext): Promise<{ token: InitialAccessToken; value: string }>;
  list(page: Page): Promise<{ tokens: InitialAccessToken[]; total: number }>;
  /** Deletes it; registrations already made with it stay. 404 when unknown. */
  revoke(id: string, context?: ChangeContext): Promise<void>;
  /** Counts a registration against the token with this value, if it is usable (unexpired, uses left); null if not. */
  use(value: string): Promise<InitialAccessToken | null>;
}

export function createInitialAccessTokenService(deps: { repo: InitialAccessTokenRepo; now: () => number; audit?: AuditRecorder }): InitialAccessTokenService {
  const { repo, now } = deps;
  return {
    async create(input, context) {
      const description = (input.description ?? '').trim();
      if (description.length > MAX_DESCRIPTION_LENGTH) throw invalidRequest(`description must be at most ${MAX_DESCRIPTION_LENGTH} characters`);
      const { expiresInSeconds, maxUses } = input;
      if (expiresInSeconds !== undefined && !(Number.isSafeInteger(expiresInSeconds) && expiresInSeconds >= 60 && expiresInSeconds <= MAX_EXPIRES_IN_SECONDS)) {
        throw invalidRequest(`expires_in must be whole seconds from 60 to ${MAX_EXPIRES_IN_SECONDS}`);
      }
      if (maxUses !== undefined && !(Number.isSafeInteger(maxUses) && maxUses >= 1 && maxUses <= 1_000_000)) {
        throw invalidRequest('max_uses must be a whole number from 1 to 1000000');
      }
      const value = generateRegistrationAccessToken();
      const token = await repo.create({
        id: randomIdentifier(9),
        tokenHash: hashClientSecret(value),
        description,
        expiresAt: expiresInSeconds === undefined ? null : new Date(now() + expiresInSeconds * 1000),
        maxUses: maxUses ?? null,
      });
      await recordChange(deps.audit, context, {
        type: 'initial_access_token.created',
        subject: { type: 'initial_access_token', id: token.id },
        details: {
          description: token.description,
          ...(token.maxUses === null ? {} : { max_uses: token.maxUses }),
          ...(token.expiresAt === null ? {} : { expires_at: token.expiresAt.toISOString() }),
        },
      });
      return { token, value };
    },
    async list(page) {
      const [tokens, total] = await Promise.all([repo.list(page), repo.count()]);
      return { tokens, total };
    },
    async revoke(id, context) {
      const token = await repo.findById(id);
      if (!token || !(await repo.delete(id))) throw notFound(`no initial access token "${id}"`);
      await recordChange(deps.audit, context, {
        type: 'initial_access_token.revoked',
        subject: { type: 'initial_access_token', id },
        details: { description: token.description },
      });
    },
    async use(value) {
      // A hash lookup: the token is 256 random bits, so the lookup's timing tells a guesser nothing useful.
      return repo.use(hashClientSecret(value), new Date(now()));
    },
  };
}
