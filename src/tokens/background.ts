/**
 * The token module's background work (deny-list syncs, key reloads, the
 * cleanup of expired rows): begun by timers and messages, never awaited by
 * a request. Stopping awaits what is running, since the database is closed
 * next, and nothing begins after it.
 */
export interface BackgroundRuns {
  /** Begins `work` unless stopped; its failure goes to the `onError` given. */
  run(work: () => Promise<unknown>): void;
  /** No new runs from now on; resolves when the running ones have ended. */
  stop(): Promise<void>;
}

export function backgroundRuns(onError: (err: unknown) => void): BackgroundRuns {
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  return {
    run(work) {
      if (stopped) return;
      const running: Promise<void> = Promise.resolve()
        .then(work)
        .then(() => undefined, onError)
        .finally(() => inFlight.delete(running));
      inFlight.add(running);
    },
    async stop() {
      stopped = true;
      await Promise.all([...inFlight]);
    },
  };
}
