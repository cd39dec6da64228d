/**
 * How tests start the server and the CLI as child processes: the built
 * `dist/` when it is up to date with `src/` (what `npm start` and `npm run
 * cli` run; `npm test` builds it first, in `pretest`), else the sources
 * through tsx, so a test run right after an edit never runs old code. tsx
 * costs each process about a second of CPU (a CLI call: 2.5 s instead of
 * 1.4 s), and the suite starts about a hundred of them per pass.
 *
 * These children record no coverage either way (they are started without
 * tap's NODE_OPTIONS); one that did would count for `src/` through tsc's
 * source maps (`.ci/coverage.mjs`).
 */
import { spawnSync } from 'node:child_process';
import { ROOT } from './root.js';

let distIsFresh: boolean | undefined;

/** Whether `dist/` is up to date with `src/` (asked once per test process; tsc is not run). */
function useDist(): boolean {
  distIsFresh ??= spawnSync(process.execPath, ['scripts/build-if-stale.mjs', '--check'], { cwd: ROOT, stdio: 'ignore' }).status === 0;
  return distIsFresh;
}

/** `node` arguments that run `src/<entry>.ts`, `entry` being e.g. `main` or `admin/cli`; run them with `cwd` the repository root. */
export function entryPoint(entry: 'main' | 'admin/cli'): string[] {
  return useDist() ? [`dist/${entry}.js`] : ['--import', 'tsx', `src/${entry}.ts`];
}
