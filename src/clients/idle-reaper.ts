/**
 * Removes clients no admin registered (dynamic registrations, metadata-
 * document clients) that nobody used for `DYNAMIC_CLIENT_IDLE_DAYS`: no
 * token issued to them and no authorization since (`last_used_at`, or their
 * registration when never used). Deleting goes through the client service,
 * so their tokens end with them and each removal is in the audit trail
 * (`client.deleted`, reason `idle`, by the system). A client that was
 * removed and comes back gets `invalid_client` and registers again.
 */
import { SYSTEM_ACTOR } from '../audit/events.js';
import { isOAuthError } from '../errors.js';
import type { ClientRepo } from '../storage/types.js';
import type { ClientService } from './service.js';

const DAY_MS = 86_400_000;
/** Clients removed per query; the reaper loops until none is left. */
const BATCH = 200;

export interface IdleClientReaperDeps {
  repo: Pick<ClientRepo, 'listIdle'>;
  clients: Pick<ClientService, 'delete'>;
  now: () => number;
  idleDays: number;
  /** How often it runs, ms (default hourly). */
  intervalMs?: number;
  /** A failed run (it tries again at the next one). */
  onError?: (err: unknown) => void;
}

export interface IdleClientReaper {
  /** Removes every client idle as of `now()`; returns how many. */
  reap(): Promise<number>;
  /** Reaps now and then every `intervalMs` (unref'd timer); returns the stop. */
  start(): () => Promise<void>;
}

export function createIdleClientReaper(deps: IdleClientReaperDeps): IdleClientReaper {
  const onError = deps.onError ?? (() => {});
  /** The run in progress, if any: a slow run is not overlapped by the next. */
  let running: Promise<unknown> | null = null;

  async function reap(): Promise<number> {
    const cutoff = new Date(deps.now() - deps.idleDays * DAY_MS);
    let removed = 0;
    for (;;) {
      const ids = await deps.repo.listIdle(cutoff, BATCH);
      for (const id of ids) {
        try {
          await deps.clients.delete(id, { actor: SYSTEM_ACTOR }, 'idle');
          removed += 1;
        } catch (err) {
          // Already deleted by someone else: not an error worth stopping for.
          if (!(isOAuthError(err) && err.error === 'not_found')) throw err;
        }
      }
      if (ids.length < BATCH) return removed;
    }
  }

  return {
    reap,
    start() {
      const run = () => {
        running ??= reap()
          .catch(onError)
          .finally(() => {
            running = null;
          });
      };
      run();
      const timer = setInterval(run, deps.intervalMs ?? 3_600_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  };
}
