/**
 * `npm start` and `npm run cli` build dist/ only when src/ changed
 * (scripts/build-if-stale.mjs), run on a tiny project of their own: built
 * once, not again until a source changes or a file is added; without
 * TypeScript (an install without devDependencies) an existing dist/ runs as
 * it is and a missing one is an error that says what to do; without src/
 * (an image that ships dist/ alone) there is nothing to do. `--check` (the
 * tests' choice of dist/ or tsx) only tells.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from '../helpers/root.js';
import { tempDir } from '../helpers/temp-dir.js';

const TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', rootDir: 'src', outDir: 'dist', skipLibCheck: true, types: [] },
  include: ['src/**/*.ts'],
};

/** A project with the script, a source file and, when `withTypeScript`, this repository's node_modules. */
async function project(t: { teardown(fn: () => unknown): void }, withTypeScript: boolean): Promise<string> {
  const dir = await tempDir(t, 'oauth-build-');
  await mkdir(join(dir, 'scripts'));
  await copyFile(join(ROOT, 'scripts/build-if-stale.mjs'), join(dir, 'scripts/build-if-stale.mjs'));
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src/main.ts'), 'export const answer: number = 42;\n');
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  await writeFile(join(dir, 'tsconfig.json'), '{}\n');
  await writeFile(join(dir, 'tsconfig.build.json'), JSON.stringify(TSCONFIG));
  if (withTypeScript) await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  // Everything "saved" a minute ago, so a build stamped now is newer.
  const past = new Date(Date.now() - 60_000);
  for (const file of ['src/main.ts', 'src', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) await utimes(join(dir, file), past, past);
  return dir;
}

function run(dir: string, ...args: string[]) {
  const result = spawnSync(process.execPath, ['scripts/build-if-stale.mjs', ...args], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Makes the last build older than the sources: as if they were saved after it. */
async function sourcesSavedSince(dir: string): Promise<void> {
  const before = new Date(Date.now() - 120_000);
  await utimes(join(dir, 'dist/.built-at'), before, before);
}

t.test('builds once, then only when src/ changes', async (t) => {
  const dir = await project(t, true);
  t.same(run(dir, '--check'), { code: 1, stdout: '', stderr: 'dist/ has not been built yet\n' }, '--check only tells');
  t.notOk(existsSync(join(dir, 'dist')), 'and builds nothing');
  const first = run(dir);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, /^Building dist\/ with tsc \(dist\/ has not been built yet\)/);
  t.ok(existsSync(join(dir, 'dist/main.js')), 'dist/ built');
  t.same(run(dir), { code: 0, stdout: '', stderr: '' }, 'a restart builds nothing');
  t.same(run(dir, '--check'), { code: 0, stdout: '', stderr: '' }, '--check: up to date');

  await sourcesSavedSince(dir);
  t.same(run(dir, '--check'), { code: 1, stdout: '', stderr: 'src/ changed since the last build\n' }, '--check: stale');
  t.match(run(dir).stderr, /\(src\/ changed since the last build\)/, 'an edited source is built');
  t.same(run(dir), { code: 0, stdout: '', stderr: '' });

  await mkdir(join(dir, 'src/more'));
  await writeFile(join(dir, 'src/more/extra.ts'), 'export const more = 1;\n');
  await sourcesSavedSince(dir);
  t.match(run(dir).stderr, /src\/ changed/, 'so is a new file');
  t.ok(existsSync(join(dir, 'dist/more/extra.js')));

  await writeFile(join(dir, 'src/main.ts'), 'export const answer: number = "not a number";\n');
  await sourcesSavedSince(dir);
  const broken = run(dir);
  t.not(broken.code, 0, 'a type error stops npm start');
  t.equal(broken.stdout, '', "tsc's report goes to stderr (npm run cli -- … --json keeps its stdout)");
  t.match(broken.stderr, /TS2322[\s\S]*the TypeScript build failed/);
  t.match(run(dir).stderr, /Building/, 'and is tried again next time');

  await writeFile(join(dir, 'src/main.ts'), 'export const answer: number = 42;\n');
  t.equal(run(dir).code, 0, 'fixed, it builds');
  t.same(run(dir), { code: 0, stdout: '', stderr: '' });
  const stamped = statSync(join(dir, 'dist/.built-at')).mtimeMs;
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(run(dir, '--force'), { code: 0, stdout: '', stderr: '' }, '--force (npm run build) builds, quietly');
  t.ok(statSync(join(dir, 'dist/.built-at')).mtimeMs > stamped, 'even when nothing changed');
});

t.test('without TypeScript (npm ci --omit=dev)', async (t) => {
  const dir = await project(t, false);
  const missing = run(dir);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /dist\/ is not built and TypeScript is not installed .*npm ci --omit=dev[\s\S]*npm ci && npm run build/);

  await mkdir(join(dir, 'dist'));
  await writeFile(join(dir, 'dist/main.js'), 'export const answer = 42;\n');
  const shipped = run(dir);
  t.equal(shipped.code, 0, 'a shipped dist/ runs');
  t.match(shipped.stderr, /^warning: dist\/ has not been built yet, but TypeScript is not installed .*running the existing dist\//);
});

t.test('without src/ (dist/ shipped alone, as in the Docker image): nothing to do', async (t) => {
  const dir = await tempDir(t, 'oauth-build-');
  await mkdir(join(dir, 'scripts'));
  await copyFile(join(ROOT, 'scripts/build-if-stale.mjs'), join(dir, 'scripts/build-if-stale.mjs'));
  t.same(run(dir), { code: 0, stdout: '', stderr: '' });
});
