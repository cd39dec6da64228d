// node:fs plus the one thing the conformance package needs from Node 22's:
// `globSync(pattern, { cwd })`. Its only call is `globSync("**/checks.json",
// { cwd })` (the tier-check command, collecting result files), so this
// answers patterns of the form `**/<file name>` (every file of that name
// below cwd, as relative paths) and refuses any other pattern loudly rather
// than guess.
import fs from 'node:fs';
import { join, relative } from 'node:path';

export * from 'node:fs';
export default fs;

export function globSync(pattern, options = {}) {
  const match = /^\*\*\/([^*?[\]{}/]+)$/.exec(String(pattern));
  if (!match) throw new Error(`globSync shim (Node 20): only "**/<file name>" patterns are supported, not ${pattern}`);
  const cwd = options.cwd === undefined ? process.cwd() : String(options.cwd);
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === match[1]) found.push(relative(cwd, path));
    }
  };
  walk(cwd);
  return found;
}
