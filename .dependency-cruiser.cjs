// The layering of src/ (STYLE.md, docs/architecture.md), checked by
// `npm run depcruise`. Dependencies point one way: the web layer (http/,
// admin/, observability/, app.ts, main.ts) -> the domain folders ->
// storage/types.ts; storage/ stands on its own. Type-only imports count.

/** Folders that hold domain rules; they get their dependencies as arguments. */
const DOMAIN = '^src/(oauth|tokens|clients|users|sessions|consents|security|audit)/';
/** Everything allowed to know about Fastify, and nothing below it. Files may move freely among these. */
const WEB = '^src/(http|admin|observability)/|^src/(app|main)[.]ts$';
/** The storage contracts, the one part of storage/ that other layers see. */
const STORAGE_CONTRACTS = '^src/storage/types[.]ts$';
/** Database and cache drivers (and their typings). */
const DRIVERS = '(^|/)node_modules/(pg|@types/pg|@electric-sql/pglite|ioredis)/';
const FASTIFY = '(^|/)node_modules/(fastify|@fastify/[^/]+)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes load order matter and hides which module owns what.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'storage-stands-alone',
      severity: 'error',
      comment:
        'storage/ implements contracts; it knows no domain, no HTTP. Besides itself it may use errors.ts, config.ts ' +
        'and the data-only protocol table (oauth/protocol.ts).',
      from: { path: '^src/storage/' },
      to: { path: '^src/', pathNot: ['^src/storage/', '^src/errors[.]ts$', '^src/config[.]ts$', '^src/oauth/protocol[.]ts$'] },
    },
    {
      name: 'drivers-only-in-storage',
      severity: 'error',
      comment: 'Only storage/ talks to pg, PGlite and ioredis; everyone else goes through storage/types.ts.',
      from: { path: '^src/', pathNot: '^src/storage/' },
      to: { path: DRIVERS },
    },
    {
      name: 'domain-not-web',
      severity: 'error',
      comment:
        'Domain code throws and returns; it never sees a route, a reply or the composition root. It may report to the counters of observability/metrics.ts (prom-client only, no Fastify).',
      from: { path: DOMAIN },
      to: { path: WEB, pathNot: '^src/observability/metrics\\.ts$' },
    },
    {
      name: 'fastify-only-in-web',
      severity: 'error',
      comment: 'Only http/, admin/, observability/, app.ts and main.ts import fastify or @fastify/*.',
      from: { path: '^src/', pathNot: WEB },
      to: { path: FASTIFY },
    },
    {
      name: 'domain-only-storage-contracts',
      severity: 'error',
      comment: 'Domain modules get repositories and stores as arguments typed by storage/types.ts, never an implementation.',
      from: { path: DOMAIN },
      to: { path: '^src/storage/', pathNot: STORAGE_CONTRACTS },
    },
    {
      name: 'routes-only-storage-contracts',
      severity: 'error',
      comment:
        'Routes and observability call domain services; of storage they may see the contracts only. ' +
        '(admin/ is left out: the CLI is a composition root of its own.)',
      from: { path: '^src/(http|observability)/' },
      to: { path: '^src/storage/', pathNot: STORAGE_CONTRACTS },
    },
    {
      name: 'src-not-tests',
      severity: 'error',
      comment: 'Production code never imports tests or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'src-no-dev-dependencies',
      severity: 'error',
      comment: 'The image installs dependencies only: a runtime import of a devDependency breaks `npm start` there.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-undeclared-packages',
      severity: 'error',
      comment: 'A package used but not in package.json works only while something else happens to install it.',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    cache: false,
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
