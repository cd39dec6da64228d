#!/usr/bin/env node
// Builds dist/ from src/ only when it is out of date, so `npm start` and
// `npm run cli` start in about a second instead of running tsc every time.
//
//   node scripts/build-if-stale.mjs           build when stale (npm start, npm run cli)
//   node scripts/build-if-stale.mjs --force   always build (npm run build)
//   node scripts/build-if-stale.mjs --check   only tell: exit 0 when dist/ is up to date, else
//                                             print why not and exit 1 (the tests' choice between
//                                             dist/ and src/ under tsx, test/helpers/entry-point.ts)
//
// Out of date: dist/.built-at (touched after every successful build) is
// missing, or older than a file or folder under src/ (a folder's time
// changes when a file in it is added, removed or renamed), tsconfig.json,
// tsconfig.build.json or package.json. Checking costs a few milliseconds.
//
// Without TypeScript (a production install, `npm ci --omit=dev`): an
// existing dist/ is run as it is (with a warning when src/ is newer), and a
// missing one is an error that says what to do. Without src/ (a container
// image that ships dist/ alone) there is nothing to build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.built-at');
const CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];

const force = process.argv.includes('--force');
const checkOnly = process.argv.includes('--check');
const say = (text) => process.stderr.write(`${text}\n`);

/** The newest modification time (ms) of `dir`, and of every file and folder below it. */
function newestUnder(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

function stale() {
  const built = mtime(STAMP);
  if (built === null) return 'dist/ has not been built yet';
  if (newestUnder(SRC) > built) return 'src/ changed since the last build';
  const config = CONFIG_FILES.find((file) => (mtime(join(ROOT, file)) ?? 0) > built);
  return config === undefined ? null : `${config} changed since the last build`;
}

function findTsc() {
  try {
    return createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return null;
  }
}

/**
 * dist/pglite/<release>-<migrations>/, the migrated empty embedded database a
 * fresh DATA_DIR starts from (src/storage/pglite-template.ts), made by the
 * built code when it may be missing: just built, or the migrations or the
 * installed PGlite changed since it was made (the code itself decides by the
 * exact release and migration checksums). Without it the server still
 * starts (running initdb and the migrations), so a failure here only warns.
 */
function ensurePgliteTemplate() {
  if (!existsSync(join(DIST, 'storage', 'pglite-template.js'))) return;
  let pglite;
  try {
    pglite = join(dirname(createRequire(join(ROOT, 'package.json')).resolve('@electric-sql/pglite')), '..', 'package.json');
  } catch {
    return;
  }
  const migrations = join(ROOT, 'migrations');
  if (!existsSync(migrations)) return;
  const made = mtime(join(DIST, 'pglite'));
  if (made !== null && made >= Math.max(mtime(STAMP) ?? 0, newestUnder(migrations), mtime(pglite) ?? 0)) return;
  say('Making the migrated empty embedded database (dist/pglite/), for fresh DATA_DIRs.');
  const script = "import('./dist/storage/pglite-template.js').then((m) => m.buildPgliteTemplate())";
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) say('warning: making dist/pglite/ failed (see above); a fresh DATA_DIR will run initdb and the migrations at its first start instead.');
  // Checked: the next start need not ask again until something changes.
  else utimesSync(join(DIST, 'pglite'), new Date(), new Date());
}

if (!existsSync(SRC)) process.exit(0);
if (checkOnly) {
  const why = stale();
  if (why !== null) say(why);
  process.exit(why === null ? 0 : 1);
}
const reason = force ? 'npm run build' : stale();
if (reason === null) {
  ensurePgliteTemplate();
  process.exit(0);
}

const tsc = findTsc();
if (tsc === null) {
  if (existsSync(join(DIST, 'main.js'))) {
    say(`warning: ${reason}, but TypeScript is not installed (an install without devDependencies); running the existing dist/.`);
    process.exit(0);
  }
  say(
    'error: dist/ is not built and TypeScript is not installed (an install without devDependencies, e.g. npm ci --omit=dev).\n' +
      'Either install with devDependencies (npm ci) so npm start can build it, or build where they are (npm ci && npm run build)\n' +
      'and ship dist/ with the install, as the Dockerfile does.',
  );
  process.exit(1);
}

if (!force) say(`Building dist/ with tsc (${reason}); later starts skip this until src/ changes.`);
// A source saved while tsc runs must make the next start build again: the stamp gets the start time.
const startedAt = new Date();
// tsc prints its diagnostics on stdout: send them to stderr, so `npm run cli -- … --json` output stays JSON.
const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: ['ignore', 2, 2] });
if (result.status !== 0) {
  say(`error: the TypeScript build failed (exit ${result.status ?? result.signal}); see above.`);
  process.exit(result.status ?? 1);
}
mkdirSync(DIST, { recursive: true });
writeFileSync(STAMP, `${startedAt.toISOString()}\n`);
utimesSync(STAMP, startedAt, startedAt);
ensurePgliteTemplate();
