#!/usr/bin/env node
// The tests as `npm test` runs them: test/**/*.ts transpiled to plain
// JavaScript in .build/test/ (esbuild strips the types and checks nothing;
// `npm run typecheck` checks them), beside .build/src, a link to dist/ (tsc's
// build of src/, which `pretest` brings up to date first). A test's
// `../../src/x.js` then names dist/x.js, and each test process loads plain
// JavaScript with no TypeScript loader in it: tsx's hooks cost every process
// time on every module it imports (with tap's plugins trimmed too, 14 test
// files took 110 CPU-seconds instead of 137, 2026-12-02).
// A file run on its own, `npx tap test/e2e/x.test.ts`, still runs from test/
// under tsx (test/helpers/tsx-for-ts.mjs).
//
// Takes well under a second; the old copy is removed first, so a deleted or
// renamed test never runs on from here.
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, '.build');

rmSync(join(OUT, 'test'), { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
// Made afresh, whatever was there (rm removes a link, not what it points to).
rmSync(join(OUT, 'src'), { recursive: true, force: true });
symlinkSync('../dist', join(OUT, 'src'), 'dir');

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

