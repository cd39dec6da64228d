// Lets @modelcontextprotocol/conformance run under Node 20. Its 0.2.x build
// does `import { globSync } from "fs"`, an export Node added in 22, so under
// 20 the module fails to link before any scenario runs. Loaded with
// `node --import ./test/conformance/node20-fs-glob-sync.mjs …`, this
// registers a resolve hook that hands the conformance package (and only it)
// a stand-in for `fs`: all of node:fs plus `globSync`. On a Node that has
// `fs.globSync` it does nothing. node_modules is not touched.
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') register('./fs-glob-sync-hooks.mjs', import.meta.url);
