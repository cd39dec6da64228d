/**
 * Statements many requests make at once, run in groups: the first call runs
 * at once; calls that arrive while `maxInFlight` runs are under way wait,
 * and the next run takes all of them (up to `maxBatch`) as one statement.
 * No timer: a call never waits for company, only for a run already in
 * flight (bench/README.md, "Hot-path changes").
 *
 * For writes (RFC 7009 revocations) this is group commit: each call resolves
 * when the statement that took it has committed, or rejects with its error;
 * one statement is atomic, so it did every item or none. For reads
 * (introspection of refresh tokens) each call resolves with its own item's
 * result, read by a statement that began after the call was made, so a
 * change committed before the request arrived is always seen.
 */
export interface GroupedOptions {
  /** Runs in flight at once (each takes a pooled connection). */
  maxInFlight?: number;
  /** Items one run takes at most. */
  maxBatch?: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * `run` gets the items in the order they were submitted and answers with a
 * result for each, in the same order (or nothing, for writes: each call then
 * resolves with `undefined`).
 */
export function grouped<T, R = void>(run: (items: T[]) => Promise<readonly R[] | void>, { maxInFlight = 2, maxBatch = 500 }: GroupedOptions = {}): (item: T) => Promise<R> {
  const waiting: Array<Waiting<T, R>> = [];
  let inFlight = 0;

  const next = () => {
    if (inFlight >= maxInFlight || waiting.length === 0) return;
    const batch = waiting.splice(0, maxBatch);
    inFlight += 1;
    const items = batch.map((w) => w.item);
    // Begun now; a run that throws instead of rejecting fails its batch the same way.
    (async () => run(items))()
      .then(
        (results) => {
          batch.forEach((w, i) => w.resolve(results ? results[i]! : (undefined as R)));
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
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      next();
    });
}
