/**
 * The repository root, for files the tests read (README.md, docs/) and the
 * folder they start servers and CLIs in: the nearest folder above this file
 * with a package.json. That is two levels up here in test/helpers/, three in
 * the transpiled copy `npm test` runs (.build/test/helpers/, made by
 * scripts/build-tests.mjs), so no path below is written relative to a test file.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
