// Loaded first in every test process (tap's `node-arg` in package.json): runs a
// test file given as TypeScript (`npx tap test/e2e/x.test.ts`) through tsx. The
// suite `npm test` runs is plain JavaScript (.build/test/, scripts/build-tests.mjs)
// and loads nothing here.
if (process.argv[1]?.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
