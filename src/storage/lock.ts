/**
 * One process at a time per embedded database.
 *
 * PGlite is PostgreSQL compiled to WebAssembly running inside one process; it
 * has no postmaster to arbitrate between processes, so two processes opening
 * the same `DATA_DIR` would each believe they own the files and corrupt them.
 * Whoever opens the embedded database first takes `DATA_DIR/oauth-server.lock`
 * (pid, host, a random control token); anyone else is refused with
 * `DataDirLockedError` naming the holder. The CLI uses that error to send its
 * command to the holder over the control socket instead (`admin/control.ts`).
 *
 * The lock file is created atomically (written under a temporary name, then
 * hard-linked into place, which fails if the name exists), so a reader never
 * sees half a lock. A lock whose process is gone (same host, pid not alive)
 * is stale and is taken over; the takeover itself is serialised by a short
 * `mkdir` mutex so two processes finding the same stale lock cannot both win.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'oauth-server.lock';

/** What the lock file says about its holder. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** ISO date the lock was taken. */
  startedAt: string;
  /** Shared secret a CLI must present on the holder's control socket. */
  token: string;
}

export interface DataDirLock {
  readonly dataDir: string;
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still ours; idempotent. */
  release(): Promise<void>;
}

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly owner: LockOwner,
  ) {
    super(
      `the embedded database in ${dataDir} is in use by process ${owner.pid} on ${owner.hostname} (since ${owner.startedAt}); ` +
        `stop it first, or point DATA_DIR elsewhere. If no such process exists, delete ${join(dataDir, LOCK_FILE)}.`,
    );
    this.name = 'DataDirLockedError';
  }
}

/**
 * Where the holder listens for CLI commands. Unix socket paths are limited to
 * about 107 bytes, so a long `DATA_DIR` gets a socket in the temp dir named by
 * the directory's hash instead; Windows uses a named pipe.
 */
export function controlSocketPath(dataDir: string): string {
  const digest = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  if (process.platform === 'win32') return `\\\\.\\pipe\\oauth-server-${digest}`;
  const inside = join(dataDir, 'control.sock');
  return Buffer.byteLength(inside) < 100 ? inside : join(tmpdir(), `oauth-server-${digest}.sock`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The current holder, or null when the directory is not locked (or the file is unreadable garbage). */
export async function readLockOwner(dataDir: string): Promise<LockOwner | null> {
  let raw: string;
  try {
    raw = await readFile(join(dataDir, LOCK_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const parsed = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string' && typeof parsed.token === 'string') {
      return { pid: parsed.pid, hostname: parsed.hostname, token: parsed.token, startedAt: String(parsed.startedAt ?? '') };
    }
  } catch {
    // fall through: unparseable
  }
  return { pid: 0, hostname: '', token: '', startedAt: '' };
}

/** A lock is stale when it names a process on this host that no longer runs (or is unreadable). */
function isStale(owner: LockOwner): boolean {
  if (owner.pid <= 0) return true;
  if (owner.hostname !== hostname()) return false; // cannot tell: assume held
  return !isAlive(owner.pid);
}

const TAKEOVER_STALE_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` holding `<lock>.takeover` (a directory: mkdir is atomic). */
async function withTakeoverMutex<T>(lockPath: string, fn: () => Promise<T>): Promise<T | undefined> {
  const mutex = `${lockPath}.takeover`;
  try {
    await mkdir(mutex);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Someone else is taking over right now; a mutex left by a crash ages out.
    const info = await stat(mutex).catch(() => null);
    if (info && Date.now() - info.mtimeMs > TAKEOVER_STALE_MS) await rmdir(mutex).catch(() => {});
    return undefined;
  }
  try {
    return await fn();
  } finally {
    await rmdir(mutex).catch(() => {});
  }
}

/**
 * Takes the lock on `dataDir` (which must exist) or throws
 * `DataDirLockedError`. Waits up to `waitMs` for a live holder to let go
 * (default: do not wait).
 */
export async function acquireDataDirLock(dataDir: string, options: { waitMs?: number } = {}): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(), token: randomBytes(32).toString('base64url') };
  const deadline = Date.now() + (options.waitMs ?? 0);
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temp, `${JSON.stringify(owner)}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const current = await readLockOwner(dataDir);
      if (current === null) continue; // released between our link and read: try again
      if (isStale(current) && attempt < 100) {
        await withTakeoverMutex(path, async () => {
          // Remove only the stale lock we looked at, not one taken meanwhile.
          const again = await readLockOwner(dataDir);
          if (again && again.token === current.token && again.pid === current.pid) await unlink(path).catch(() => {});
        });
        await sleep(10 + Math.random() * 20);
        continue;
      }
      if (Date.now() >= deadline) throw new DataDirLockedError(dataDir, current);
      await sleep(100);
    }
  } finally {
    await unlink(temp).catch(() => {});
  }

  let released = false;
  return {
    dataDir,
    path,
    owner,
    async release() {
      if (released) return;
      released = true;
      const current = await readLockOwner(dataDir).catch(() => null);
      if (current && current.token === owner.token) await unlink(path).catch(() => {});
    },
  };
}
