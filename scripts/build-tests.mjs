#!/usr/bin/env node
// The tests as `npm test` runs them: test/**/*.ts transpiled to plain
// JavaScript in .build/test/ (esbuild strips the types and checks nothing;
// `npm run typecheck` checks them), beside .build/src, a link to dist/ (tsc's
// build of src/, which `pretest` brings up to date first). A test's
// `../../src/x.js` then names dist/x.js, and each test process loads plain
// JavaScript with no TypeScript loader in it: tsx's hooks cost every process
// time on every module it imports, about 15% of the suite's CPU (2026-12-02).
// A file run on its own, `npx tap test/e2e/x.test.ts`, still runs from test/
// under tsx (test/helpers/tsx-for-ts.mjs).
//
// Takes well under a second; the old copy is removed first, so a deleted or
// renamed test never runs on from here.
import { existsSync, lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, '.build');

rmSync(join(OUT, 'test'), { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const link = join(OUT, 'src');
if (!existsSync(link) && !isLink(link)) symlinkSync('../dist', link, 'dir');

await build({
  absWorkingDir: ROOT,
  entryPoints: ['test/**/*.ts'],
  outbase: 'test',
  outdir: '.build/test',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  charset: 'utf8',
  keepNames: true,
  logLevel: 'warning',
});

function isLink(path) {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
