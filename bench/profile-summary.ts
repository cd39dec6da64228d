/**
 * Where a server's CPU went during one benchmark case: reads a V8 profile
 * written by `npm run bench -- --cpu-prof DIR` and prints self time by
 * function and by package, keeping only the samples inside the case's
 * measured window (from the run's results JSON), so start-up and seeding do
 * not blur the picture.
 *
 *   node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [RESULTS.json CASE] [--top N]
 *
 * Also prints inclusive time by function (the function and everything it
 * called, each function counted once per stack), which shows what a request
 * spends in, say, the token route or the signing call as a whole.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const topIndex = argv.indexOf('--top');
const top = topIndex >= 0 ? Number(argv.splice(topIndex, 2)[1]) : 30;
const [profilePath, resultsPath, caseId] = argv;
if (!profilePath) {
  process.stderr.write('usage: profile-summary.ts PROFILE.cpuprofile [RESULTS.json CASE] [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as Profile;
let window: { startUs: number; endUs: number } | null = null;
if (resultsPath && caseId) {
  const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as { cases?: Array<{ id: string; window: { startUs: number; endUs: number } | null }> };
  window = results.cases?.find((c) => c.id === caseId)?.window ?? null;
  if (!window) throw new Error(`no measured window for case ${caseId} in ${resultsPath}`);
}

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const where = (n: ProfileNode) => {
  const url = n.callFrame.url;
  if (url === '') return `(${n.callFrame.functionName || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node core';
  return 'our code';
};
const label = (n: ProfileNode) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist|src|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;

const parents = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n.id);
/** Each function on the sample's stack, once. */
const stackLabels = (id: number): Set<string> => {
  const labels = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) labels.add(label(nodes.get(at)!));
  return labels;
};

const byFunction = new Map<string, number>();
const inclusive = new Map<string, number>();
const byPackage = new Map<string, number>();
let t = profile.startTime;
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  if (window && (t < window.startUs || t > window.endUs)) continue;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const node = nodes.get(profile.samples[i]!)!;
  total += dt;
  byFunction.set(label(node), (byFunction.get(label(node)) ?? 0) + dt);
  byPackage.set(where(node), (byPackage.get(where(node)) ?? 0) + dt);
  for (const l of stackLabels(node.id)) inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
}
const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title} (${(total / 1e6).toFixed(1)} s of samples${window ? ' in the window' : ''})\n`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(6)} %  ${k}\n`);
};
print('self time by package', byPackage);
print('self time by function', byFunction);
inclusive.delete(label(profile.nodes[0]!));
print('inclusive time by function', inclusive);
