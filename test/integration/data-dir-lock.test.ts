/**
 * One process per embedded database: the data-dir lock. A held lock refuses
 * every other opener (naming the holder), a lock left by a dead process is
 * taken over, concurrent takers get exactly one winner, and opening PGlite
 * through the storage layer takes the lock and gives it back on close.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { createStorage, DataDirLockedError } from '../../src/storage/index.js';
import { acquireDataDirLock, LOCK_FILE, readLockOwner } from '../../src/storage/lock.js';
import { seedDataDir } from '../helpers/backend.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

t.test('a held lock refuses a second taker and names the holder', async (t) => {
  const dir = await tempDir(t, 'oauth-lock-');
  const lock = await acquireDataDirLock(dir);
  const err = await acquireDataDirLock(dir).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof DataDirLockedError);
  t.equal((err as DataDirLockedError).owner.pid, process.pid);
  t.match((err as Error).message, new RegExp(`in use by process ${process.pid}`));
  const owner = await readLockOwner(dir);
  t.equal(owner?.token, lock.owner.token);
  await lock.release();
  t.equal(await readLockOwner(dir), null, 'released');
  const again = await acquireDataDirLock(dir);
  await again.release();
});

t.test('a lock left by a dead process is taken over', async (t) => {
  const dir = await tempDir(t, 'oauth-lock-');
  const pid = await deadPid();
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid, hostname: hostname(), startedAt: new Date(0).toISOString(), token: 'stale' }));
  const lock = await acquireDataDirLock(dir);
  t.equal(lock.owner.pid, process.pid);
  t.equal((await readLockOwner(dir))?.pid, process.pid);
  await lock.release();
});

t.test('an unreadable lock file counts as stale', async (t) => {
  const dir = await tempDir(t, 'oauth-lock-');
  await writeFile(join(dir, LOCK_FILE), 'garbage');
  const lock = await acquireDataDirLock(dir);
  t.equal((await readLockOwner(dir))?.token, lock.owner.token);
  await lock.release();
});

t.test('a lock on another host is never assumed stale', async (t) => {
  const dir = await tempDir(t, 'oauth-lock-');
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: await deadPid(), hostname: `not-${hostname()}`, startedAt: '', token: 'x' }));
  await t.rejects(acquireDataDirLock(dir), DataDirLockedError);
});

t.test('of concurrent takers of a stale lock exactly one wins', async (t) => {
  const dir = await tempDir(t, 'oauth-lock-');
  await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: await deadPid(), hostname: hostname(), startedAt: '', token: 'stale' }));
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => acquireDataDirLock(dir)));
  const winners = results.filter((r) => r.status === 'fulfilled');
  t.equal(winners.length, 1);
  t.ok(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof DataDirLockedError));
  const lock = (winners[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireDataDirLock>>>).value;
  t.equal((await readLockOwner(dir))?.token, lock.owner.token, 'the file names the winner');
  await lock.release();
});

t.test('the embedded database cannot be opened twice', async (t) => {
  const dir = await tempDir(t, 'oauth-lock-');
  await seedDataDir(dir);
  const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent' });
  const storage = await createStorage(config);
  const lockFile = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as { pid: number };
  t.equal(lockFile.pid, process.pid, 'the opener holds the lock');
  await t.rejects(createStorage(config), DataDirLockedError, 'a second opener is refused before touching the files');
  await storage.users.count();
  await storage.close();
  t.equal(await readLockOwner(dir), null, 'closing gives the lock back');
  const reopened = await createStorage(config);
  await reopened.close();
});
