/**
 * Group commit for writes many requests make at once (RFC 7009 revocations):
 * the first call writes at once; calls that arrive while `maxInFlight`
 * writes are under way wait, and the next write takes all of them (up to
 * `maxBatch`) in one statement. Each call resolves when the write that took
 * it has committed, or rejects with its error: a batch is one atomic
 * statement, so it either revoked every item or none. No timer: a call
 * never waits for company, only for a write already in flight
 * (bench/README.md, "Hot-path changes").
 */
export interface GroupCommitOptions {
  /** Writes in flight at once (each takes a pooled connection). */
  maxInFlight?: number;
  /** Items one write takes at most. */
  maxBatch?: number;
}

interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export function groupCommit<T>(write: (items: T[]) => Promise<void>, { maxInFlight = 2, maxBatch = 500 }: GroupCommitOptions = {}): (item: T) => Promise<void> {
  let waiting: Array<Waiting<T>> = [];
  let inFlight = 0;

  const next = () => {
    if (inFlight >= maxInFlight || waiting.length === 0) return;
    let batch: Array<Waiting<T>>;
    if (waiting.length <= maxBatch) {
      batch = waiting;
      waiting = [];
    } else {
      batch = waiting.splice(0, maxBatch);
    }
    inFlight += 1;
    const items = batch.map((w) => w.item);
    // Begun now; a write that throws instead of rejecting fails its batch the same way.
    (async () => write(items))()
      .then(
        () => {
          for (const w of batch) w.resolve();
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        inFlight -= 1;
        next();
      });
  };

  return (item) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      next();
    });
}
