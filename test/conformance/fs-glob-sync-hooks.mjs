// Resolve hook of node20-fs-glob-sync.mjs: `fs` imported from inside
// @modelcontextprotocol/conformance resolves to fs-with-glob-sync.mjs.
const CONFORMANCE = '/node_modules/@modelcontextprotocol/conformance/';
const SHIM = new URL('./fs-with-glob-sync.mjs', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if ((specifier === 'fs' || specifier === 'node:fs') && context.parentURL?.includes(CONFORMANCE)) {
    return { url: SHIM, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
