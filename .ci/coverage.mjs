#!/usr/bin/env node
// Coverage of all of src/, from the raw V8 coverage that tap keeps in
// .tap/coverage: one JSON file per process tap's hook ran in, the test files
// (a child process gets the hook only through NODE_OPTIONS, which the helpers
// that start servers and CLIs leave out, so those record none).
//
//   node .ci/coverage.mjs [--keep] [--reporter text,html,lcov,json-summary,...] [--report-dir DIR] [DIR ...]
//
// Each DIR is one run's raw coverage. --keep first copies the last run's
// (.tap/coverage, emptied by tap at the start of every run) to
// coverage/raw/services when DATABASE_URL is set, else coverage/raw/embedded
// (.ci/run records it in its PostgreSQL pass only), and reports that; `npm test` does this after
// every run. Without DIRs: every run kept under coverage/raw/, each on a line
// of its own and then merged (or .tap/coverage when none is kept). A
// directory written through NODE_V8_COVERAGE has the same shape and works too.
//
// Why not tap's own report: it merges the processes' V8 coverage per URL and
// only then maps it back to TypeScript, so when the same src/x.ts is
// compiled in two ways (tap's default loader is ts-node; the spawned servers
// run under tsx, whitespace-minified, its source maps without
// sourcesContent), byte offsets from the two do not line up and one source
// map is used for both: a file last seen in a server came out as a single
// line. It also leaves out every file no process loaded. Here each compiled
// form is mapped back through its own source map first, and the results are
// merged per line of TypeScript. `npm test`'s test processes run tsc's
// dist/x.js (the transpiled tests in .build/test/ import it through the link
// .build/src, scripts/build-tests.mjs): each counts for the src/x.ts its
// source map names. A test file run on its own as TypeScript loads src/x.ts
// under tsx (test/helpers/tsx-for-ts.mjs), and a run with tap's default
// loader (ts-node) comes out right too.
//
// What counts:
// - lines: every line of src/ that compiles to JavaScript (not comments,
//   blank lines, type-only declarations or lines of closing brackets); a
//   line is covered when some process ran it; a file no process loaded
//   counts with all its lines uncovered. This is the figure to read; the
//   statements column is the same count.
// - functions and branches: V8's function and block ranges, identified by
//   the line they start on; known only for files some process loaded.
// Files with no runtime code at all (types only) are listed, not counted.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8CoverageTools from '@bcoe/v8-coverage';
import libCoverage from 'istanbul-lib-coverage';
import libReport from 'istanbul-lib-report';
import reports from 'istanbul-reports';
import ts from 'typescript';
import v8ToIstanbul from 'v8-to-istanbul';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SRC = join(ROOT, 'src') + sep;
const DIST = join(ROOT, 'dist') + sep;

// ---------------------------------------------------------------- source files

const sources = new Map();
function source(path) {
  let s = sources.get(path);
  if (!s) {
    const text = readFileSync(path, 'utf8');
    const lineStarts = [0];
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
    s = { text, lineStarts, codeLines: codeLines(path, text) };
    sources.set(path, s);
  }
  return s;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The original (1-based) lines that source map `mappings` point into. */
function mappedLines(mappings) {
  const lines = new Set();
  let origLine = 0;
  for (const group of mappings.split(';')) {
    for (const segment of group.split(',')) {
      if (segment === '') continue;
      const fields = [];
      let value = 0;
      let shift = 0;
      for (const char of segment) {
        const digit = BASE64.indexOf(char);
        value += (digit & 31) << shift;
        if (digit & 32) {
          shift += 5;
        } else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      if (fields.length >= 4) {
        origLine += fields[2];
        lines.add(origLine + 1);
      }
    }
  }
  return lines;
}

/**
 * Lines that hold code: those TypeScript's own output maps back to, less the
 * ones made of closing brackets only (where a block's end lands differs
 * between compilers). Empty for a file of types only.
 */
function codeLines(path, text) {
  const out = ts.transpileModule(text, {
    fileName: path,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: true, removeComments: true },
  });
  const js = out.outputText.replace(/\/\/# sourceMappingURL=.*$/m, '');
  if (js.replace(/export\s*\{\s*\};?/g, '').trim() === '') return new Set();
  const lines = text.split('\n');
  const code = new Set();
  for (const line of mappedLines(JSON.parse(out.sourceMapText).mappings)) {
    if (line <= lines.length && !/^[\s})\];,]*$/.test(lines[line - 1])) code.add(line);
  }
  return code;
}

function srcFiles() {
  const files = [];
  const typeOnly = [];
  for (const entry of readdirSync(SRC, { recursive: true })) {
    const path = join(SRC, String(entry));
    if (!path.endsWith('.ts') || path.endsWith('.d.ts')) continue;
    (source(path).codeLines.size > 0 ? files : typeOnly).push(path);
  }
  return { files: files.sort(), typeOnly: typeOnly.sort() };
}

// ---------------------------------------------------------------- per-file records

/** A function's own name over a placeholder such as `(anonymous)`. */
const betterName = (a, b) => (a && !a.startsWith('(') ? a : b || a);

/** { loaded, lines: Map<line, hits>, fns: Map<line, {name, hits, end}>, blocks: Map<line, {hits, end}> } */
const emptyRecord = (loaded) => ({ loaded, lines: new Map(), fns: new Map(), blocks: new Map() });

function addInto(target, rec) {
  for (const [line, hits] of rec.lines) target.lines.set(line, (target.lines.get(line) ?? 0) + hits);
  for (const [line, fn] of rec.fns) {
    const had = target.fns.get(line);
    target.fns.set(line, had ? { ...had, name: betterName(had.name, fn.name), hits: had.hits + fn.hits } : { ...fn });
  }
  for (const [line, block] of rec.blocks) {
    const had = target.blocks.get(line);
    target.blocks.set(line, had ? { ...had, hits: had.hits + block.hits } : { ...block });
  }
}

/** Merges file → record maps; a file some run loaded drops the placeholders of runs that did not. */
function mergeRecords(into, from) {
  for (const [path, rec] of from) {
    const had = into.get(path);
    if (!had || (!had.loaded && rec.loaded)) {
      into.set(path, emptyRecord(rec.loaded));
      addInto(into.get(path), rec);
    } else if (had.loaded === rec.loaded) {
      addInto(had, rec);
    }
  }
  return into;
}

/** One compiled form of `path` with its merged V8 coverage, as a record. */
async function convert(path, sourceMap, functions) {
  const src = source(path);
  // tsx leaves sourcesContent null unless NODE_V8_COVERAGE is set, which
  // v8-to-istanbul would take for an empty file: give it src/ from disk.
  const { sourcesContent: _unused, ...map } = sourceMap.data;
  const converter = v8ToIstanbul(path, 0, {
    source: sourceMap.lineLengths.map((n) => '.'.repeat(n)).join('\n'),
    originalSource: src.text,
    sourceMap: { sourcemap: map },
  });
  await converter.load();
  // A range that starts after nothing but indentation starts its line: ts-node
  // maps such a start to the line's beginning, tsx to its first token, and
  // v8-to-istanbul zeroes only lines a range covers whole.
  const remap = converter._maybeRemapStartColEndCol.bind(converter);
  converter._maybeRemapStartColEndCol = (range, isEmpty) => {
    const r = remap(range, isEmpty);
    if (Number.isFinite(r.startCol)) {
      const lineStart = src.text.lastIndexOf('\n', r.startCol - 1) + 1;
      if (src.text.slice(lineStart, r.startCol).trim() === '') r.startCol = lineStart;
    }
    return r;
  };
  // tsx (esbuild's keepNames) adds code of its own: a `__name` helper, and in
  // every class a `static { __name(this, …) }` block that maps back to no
  // line of ours and would mark the whole class as run. Leave both out (src/
  // has no static blocks of its own). v8-to-istanbul records only named
  // functions, and tsx's `__name(() => …)` wrapping leaves arrows nameless
  // where ts-node's keep their variable's name: name them all, but the module
  // itself (the range that starts at 0).
  const tsx = functions.some((f) => f.functionName === '__name');
  converter.applyCoverage(
    functions
      .filter((f) => f.functionName !== '__name' && !(tsx && f.functionName === '<static_initializer>'))
      .map((f) => (f.functionName || f.ranges[0]?.startOffset === 0 ? f : { ...f, functionName: '(anonymous)' })),
  );
  const data = converter.toIstanbul()[path];
  const rec = emptyRecord(true);
  if (!data) return rec;
  for (const [k, hits] of Object.entries(data.s)) {
    const line = data.statementMap[k].start.line;
    if (src.codeLines.has(line)) rec.lines.set(line, (rec.lines.get(line) ?? 0) + hits);
  }
  for (const [k, hits] of Object.entries(data.f)) {
    const { name, loc } = data.fnMap[k];
    if (!src.codeLines.has(loc.start.line)) continue;
    const had = rec.fns.get(loc.start.line);
    rec.fns.set(loc.start.line, { name: betterName(had?.name, name), hits: (had?.hits ?? 0) + hits, end: Math.max(had?.end ?? 0, loc.end.line) });
  }
  for (const [k, hits] of Object.entries(data.b)) {
    const { loc } = data.branchMap[k];
    if (!src.codeLines.has(loc.start.line)) continue;
    const had = rec.blocks.get(loc.start.line);
    rec.blocks.set(loc.start.line, { hits: (had?.hits ?? 0) + hits[0], end: Math.max(had?.end ?? 0, loc.end.line) });
  }
  return rec;
}

/** A directory of raw V8 coverage as file → record, for the src/ files in `counted`. */
async function loadDir(dir, counted) {
  const groups = new Map();
  let processes = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    let raw;
    try {
      raw = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch {
      continue; // a process killed while writing it
    }
    if (!Array.isArray(raw.result)) continue;
    processes++;
    const maps = raw['source-map-cache'] ?? {};
    for (const script of raw.result) {
      if (!script.url?.startsWith('file://')) continue;
      const compiled = fileURLToPath(script.url.replace(/[?#].*$/, ''));
      const sourceMap = maps[script.url];
      // dist/x.js (tsc's): its source map names src/x.ts, as a file: URL once Node resolved it.
      const fromDist = compiled.startsWith(DIST) && sourceMap?.data?.sources?.[0]?.startsWith('file://');
      const path = fromDist ? fileURLToPath(sourceMap.data.sources[0]) : compiled;
      if (!counted.has(path)) continue;
      if (!sourceMap?.data?.mappings || !sourceMap.lineLengths) {
        console.warn(`coverage: no source map for ${relative(ROOT, path)} in ${name}; left out`);
        continue;
      }
      // Same URL and same source map: the same compiled code, safe to merge as V8 data.
      const key = createHash('sha1').update(script.url).update(sourceMap.data.mappings).update(String(sourceMap.lineLengths)).digest('hex');
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { path, sourceMap, scripts: [] }));
      group.scripts.push(script);
    }
  }
  const records = new Map();
  for (const { path, sourceMap, scripts } of groups.values()) {
    const merged = scripts.length === 1 ? scripts[0] : v8CoverageTools.mergeScriptCovs(scripts);
    mergeRecords(records, new Map([[path, await convert(path, sourceMap, merged.functions)]]));
  }
  return { records, processes };
}

/** Placeholders (every code line uncovered) for counted files no process loaded. */
function withUnloaded(records, files) {
  for (const path of files) {
    if (records.has(path)) continue;
    const rec = emptyRecord(false);
    for (const line of source(path).codeLines) rec.lines.set(line, 0);
    records.set(path, rec);
  }
  return records;
}

// ---------------------------------------------------------------- istanbul, for the reporters

const lineLoc = (src, start, end = start) => ({
  start: { line: start, column: 0 },
  end: { line: end, column: Math.max(0, (src.lineStarts[end] ?? src.text.length + 1) - src.lineStarts[end - 1] - 1) },
});

function toCoverageMap(records) {
  const map = libCoverage.createCoverageMap({});
  for (const [path, rec] of records) {
    const src = source(path);
    const data = { path, statementMap: {}, s: {}, fnMap: {}, f: {}, branchMap: {}, b: {} };
    [...rec.lines].sort((a, b) => a[0] - b[0]).forEach(([line, hits], i) => {
      data.statementMap[i] = lineLoc(src, line);
      data.s[i] = hits;
    });
    [...rec.fns].sort((a, b) => a[0] - b[0]).forEach(([line, fn], i) => {
      const loc = lineLoc(src, line, Math.max(line, fn.end));
      data.fnMap[i] = { name: fn.name || `(anonymous, line ${line})`, decl: lineLoc(src, line), loc, line };
      data.f[i] = fn.hits;
    });
    [...rec.blocks].sort((a, b) => a[0] - b[0]).forEach(([line, block], i) => {
      const loc = lineLoc(src, line, Math.max(line, block.end));
      data.branchMap[i] = { type: 'block', line, loc, locations: [loc] };
      data.b[i] = [block.hits];
    });
    map.addFileCoverage(data);
  }
  return map;
}

// ---------------------------------------------------------------- main

const { values, positionals } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    reporter: { type: 'string', default: '' },
    'report-dir': { type: 'string', default: join(ROOT, 'coverage', 'report') },
  },
  allowPositionals: true,
});
const LAST_RUN = join(ROOT, '.tap', 'coverage');
const KEPT = join(ROOT, 'coverage', 'raw');
let dirs = positionals.map((d) => resolve(d));
if (values.keep) {
  const kept = join(KEPT, process.env.DATABASE_URL ? 'services' : 'embedded');
  rmSync(kept, { recursive: true, force: true });
  if (!existsSync(LAST_RUN) || readdirSync(LAST_RUN).length === 0) {
    // e.g. `npm test -- --disable-coverage`: nothing to keep, and no reason to fail the run.
    console.log('coverage: this run recorded none');
    process.exit();
  }
  cpSync(LAST_RUN, kept, { recursive: true });
  dirs.push(kept);
} else if (dirs.length === 0) {
  const kept = existsSync(KEPT) ? readdirSync(KEPT).sort().map((d) => join(KEPT, d)) : [];
  dirs = kept.length > 0 ? kept : [LAST_RUN];
}

const { files, typeOnly } = srcFiles();
const counted = new Set(files);
const all = new Map();
const rows = [];
for (const dir of dirs) {
  let loaded;
  try {
    loaded = await loadDir(dir, counted);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    loaded = { processes: 0 };
  }
  if (loaded.processes === 0) {
    console.error(`coverage: no raw coverage in ${relative(ROOT, dir) || dir} (run the tests first)`);
    process.exitCode = 1;
    continue;
  }
  mergeRecords(all, loaded.records);
  const summary = toCoverageMap(withUnloaded(loaded.records, files)).getCoverageSummary();
  rows.push({ label: relative(ROOT, dir) || dir, processes: loaded.processes, files: loaded.records.size - [...loaded.records.values()].filter((r) => !r.loaded).length, summary });
}
if (rows.length === 0) process.exit();

const pct = ({ pct, covered, total }) => `${pct}% (${covered}/${total})`;
const describe = (s) => `lines ${pct(s.lines)}, functions ${pct(s.functions)}, branches ${pct(s.branches)}`;
console.log(`\nCoverage of src/ (${files.length} files with code; types only, not counted: ${typeOnly.map((f) => relative(SRC, f)).join(', ') || 'none'})`);
for (const row of rows) console.log(`  ${row.label}: ${row.processes} processes loaded ${row.files} of ${files.length} files: ${describe(row.summary)}`);

const coverageMap = toCoverageMap(withUnloaded(all, files));
if (rows.length > 1) console.log(`  merged: ${describe(coverageMap.getCoverageSummary())}`);

const context = libReport.createContext({ dir: values['report-dir'], coverageMap, defaultSummarizer: 'nested' });
for (const name of values.reporter.split(',').map((r) => r.trim()).filter(Boolean)) {
  reports.create(name, { skipEmpty: false, skipFull: name === 'text', projectRoot: ROOT }).execute(context);
  if (!name.startsWith('text')) console.log(`${name} report written to ${relative(ROOT, values['report-dir'])}/`);
}
// --keep runs as `npm test`'s posttest, which npm runs only when the tests passed: say so last, so
// nobody reads a figure under 100% as a failure (coverage is reported, never enforced; README, Tests).
if (values.keep) console.log('\nnpm test: all tests passed. Coverage above is a report, not a gate: nothing fails below 100% (README.md, "Tests").');
