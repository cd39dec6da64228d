/**
 * The walkthrough in the docs, run as written against the real server, so the
 * documentation cannot drift from what the server does.
 *
 * Marker convention in the Markdown file (an HTML comment on the line before
 * a fenced code block; blank lines in between are allowed):
 *
 * - `<!-- walkthrough:server -->`: the block that starts the server (exactly
 *   one). Not run: the test starts the server itself on the embedded defaults
 *   in a temp DATA_DIR (or on its own PostgreSQL database when DATABASE_URL
 *   is set), with the `NAME=value` assignments that precede `npm start` in
 *   that block as its environment.
 * - `<!-- walkthrough -->`: a shell block to run. All of them run in order in
 *   one bash session (`set -euo pipefail`, cwd = the repository root), so
 *   variables carry from block to block. `curl` runs with `--fail-with-body`:
 *   an HTTP error fails the walkthrough.
 * - `<!-- walkthrough:expect -->`: what the preceding run block prints. The
 *   output must contain it; `…` stands for anything, whitespace is flexible.
 * - A line `NAME='<…>'` in a run block is something the reader fills in by
 *   hand; the test fills it in: `ADMIN_PASSWORD` with the password the server
 *   printed at its first start (which the test makes fail on a taken port
 *   first: the password is printed all the same, and the start after it
 *   says how to set a new one, with the command the README gives); `CODE` with the `code` the browser is sent
 *   back with after the test opens the last `/authorize?…` URL the
 *   walkthrough printed in headless Chromium, signs in as the user the
 *   walkthrough registered (`"username":…,"password":…` in its JSON) and
 *   presses Allow. Any other placeholder fails the test.
 * - Links written `<http://localhost:3000/…>` in the prose must answer 200.
 *
 * Substitutions: `http://localhost:3000` becomes the test server's own
 * address (a free port), and `npm run -s cli --` becomes `node dist/admin/cli.js` (what it
 * runs; `node --import tsx src/admin/cli.ts` when dist/ is out of date).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { backendName } from '../helpers/backend.js';
import { entryPoint } from '../helpers/entry-point.js';
import { ROOT } from '../helpers/root.js';
import { freePort, spawnServer, startServer } from '../helpers/server-process.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

/** The Markdown file whose walkthrough is run; becomes 'README.md' once the walkthrough moves there. */
export const WALKTHROUGH_FILE = 'README.md';

const DOC_BASE = 'http://localhost:3000';
const BLOCK_TIMEOUT_MS = 90_000;

interface Step {
  kind: 'server' | 'run' | 'expect';
  code: string;
  /** 1-based line of the marker, for messages. */
  line: number;
}

/** The marked code blocks of the walkthrough, in order. */
export function parseWalkthrough(markdown: string): Step[] {
  const lines = markdown.split('\n');
  const steps: Step[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!--\s*walkthrough(?::(server|expect))?\s*-->\s*$/.exec(lines[i]!.trim());
    if (!marker) continue;
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() === '') j++;
    const fence = /^(`{3,})/.exec(lines[j] ?? '');
    if (!fence) throw new Error(`${WALKTHROUGH_FILE}:${i + 1}: a walkthrough marker must be followed by a fenced code block`);
    const body: string[] = [];
    let k = j + 1;
    while (k < lines.length && !lines[k]!.startsWith(fence[1]!)) body.push(lines[k++]!);
    if (k === lines.length) throw new Error(`${WALKTHROUGH_FILE}:${j + 1}: unclosed code block`);
    steps.push({ kind: (marker[1] as 'server' | 'expect' | undefined) ?? 'run', code: body.join('\n'), line: i + 1 });
    i = k;
  }
  return steps;
}

/** The environment assignments before `npm start` in the server block. */
export function serverEnv(code: string): Record<string, string> {
  const command = code.split('\n').find((l) => /\bnpm (start|run start)\b/.test(l));
  if (!command) throw new Error(`${WALKTHROUGH_FILE}: the walkthrough:server block must contain "npm start"`);
  const env: Record<string, string> = {};
  const words = command.trim().split(/\s+/);
  for (const word of words) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(word);
    if (!m) break;
    env[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

/** An expected-output block as a pattern: `…` is anything, whitespace is flexible. */
export function expectation(text: string): RegExp {
  const parts = text.trim().split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+'));
  return new RegExp(parts.join('[\\s\\S]*?'));
}

const PLACEHOLDER = /^(\s*)([A-Z_][A-Z0-9_]*)='<[^>']*>'\s*$/;

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

const markdown = await readFile(join(ROOT, WALKTHROUGH_FILE), 'utf8');
const steps = parseWalkthrough(markdown);
const noChromium = chromiumSkip(t);

t.test(`the walkthrough's field helper prints a field, or the answer that lacks it and fails`, async (t) => {
  const block = steps.find((s) => s.kind === 'run' && /^field\(\) \{/m.test(s.code));
  if (!block) return t.fail(`${WALKTHROUGH_FILE}: no run block defines field()`);
  const definition = block.code.slice(block.code.search(/^field\(\) \{/m));
  const run = (input: string, name: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const bash = spawn('bash', ['--noprofile', '--norc', '-c', `${definition}\nfield ${shellQuote(name)}`], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      bash.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      bash.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      bash.on('close', (code) => resolve({ code, stdout, stderr }));
      bash.stdin.end(input);
    });
  t.same(await run('{"client_id":"abc","nested":{"x":"y"}}', 'client_id'), { code: 0, stdout: 'abc\n', stderr: '' });
  t.same(await run('{"client_id":"abc","nested":{"x":"y"}}', 'nested.x'), { code: 0, stdout: 'y\n', stderr: '' });
  const error = '{"error":"invalid_client","error_description":"Client authentication failed."}';
  const missing = await run(error, 'client_id');
  t.equal(missing.code, 1, 'a missing field fails (set -e stops the walkthrough there)');
  t.equal(missing.stdout, '', 'never "undefined"');
  t.equal(missing.stderr, `no client_id in: ${error}\n`, 'and shows the answer it got');
  t.equal((await run('Bad Gateway', 'access_token')).stderr, 'no access_token in: Bad Gateway\n', 'also when the answer is not JSON');
});

t.test(`the walkthrough in ${WALKTHROUGH_FILE} works as written (${backendName})`, { skip: noChromium }, async (t) => {
  const servers = steps.filter((s) => s.kind === 'server');
  t.equal(servers.length, 1, 'exactly one walkthrough:server block');
  t.ok(steps.filter((s) => s.kind === 'run').length > 0, 'there are commands to run');

  const port = await freePort();
  const base = `http://localhost:${port}`;
  const env = serverEnv(servers[0]!.code);

  // The first hour as it can go wrong: the port is taken (another server, an earlier start left
  // running), so the very first start fails, after it created the admin. The password is printed
  // before that failure, and the next start says how to set one, as the README tells.
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  const failed = await spawnServer(t, { port, env });
  const failedWith = await failed.exited;
  await new Promise((resolve) => squatter.close(resolve));
  t.not(failedWith, 0, 'a first start on a taken port fails');
  t.match(failed.stderr(), /EADDRINUSE/, 'saying why');
  const adminPassword = /Created admin user "([^"]+)" with password: (\S+)/.exec(failed.stdout());
  t.ok(adminPassword, 'after printing the generated admin password');
  const server = await startServer(t, { port, env, storesOf: failed });
  t.notMatch(server.stdout(), /with password:/, 'the next start never prints a password');
  const hint = /The admin user "admin" has never signed in[\s\S]*?^\s+((?:[A-Z_]+=\S+ )?)(npm run cli -- users update admin --password-stdin)$/m.exec(server.stdout());
  t.ok(hint, 'but says how to set one, since nobody may have seen it');
  t.ok(hint && markdown.includes(hint[2]!), `${WALKTHROUGH_FILE} gives the same command`);
  // With the storage setting of this server in front: without it the CLI would open ./.data, another database.
  const storage = server.env.DATABASE_URL ? `DATABASE_URL=${server.env.DATABASE_URL}` : `DATA_DIR=${server.env.DATA_DIR}`;
  t.equal(hint?.[1], `${storage} `, 'the command names the data this server uses');

  const localize = (text: string) => text.split(DOC_BASE).join(base).replace(/\bnpm run -s cli --/g, ['node', ...entryPoint('admin/cli')].join(' '));

  // The user the walkthrough registers signs in at the browser step.
  const registered = /"username"\s*:\s*"([^"]+)"\s*,\s*"password"\s*:\s*"([^"]+)"/.exec(steps.filter((s) => s.kind === 'run').map((s) => s.code).join('\n'));

  await t.test('links in the prose answer 200', async (t) => {
    const links = [...markdown.matchAll(/<(http:\/\/localhost:3000\/[^>\s]*)>/g)].map((m) => m[1]!);
    t.ok(links.length > 0);
    for (const link of links) {
      const res = await fetch(localize(link), { redirect: 'follow' });
      t.equal(res.status, 200, link);
    }
  });

  const work = await mkdtemp(join(tmpdir(), 'walkthrough-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const shellEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, LANG: 'C.UTF-8' };
  for (const key of ['DATA_DIR', 'DATABASE_URL', 'REDIS_URL'] as const) if (server.env[key]) shellEnv[key] = server.env[key]!;
  const bash = spawn('bash', ['--noprofile', '--norc'], { cwd: ROOT, env: shellEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  bash.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  bash.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const bashExit = new Promise<number | null>((resolve) => bash.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (bash.exitCode === null) bash.kill('SIGKILL');
  });
  bash.stdin.write(`set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n`);

  /** Runs one block in the shell; resolves with what it printed. */
  async function runBlock(index: number, code: string): Promise<string> {
    const file = join(work, `block-${index}.sh`);
    await writeFile(file, `${code}\n`);
    const marker = `__walkthrough_block_${index}_done__`;
    const start = stdout.length;
    bash.stdin.write(`source ${shellQuote(file)} </dev/null\nprintf '\\n%s\\n' ${marker}\n`);
    const done = await Promise.race([
      new Promise<'done'>((resolve) => {
        const check = () => {
          if (stdout.includes(`${marker}\n`, start)) {
            bash.stdout.off('data', check);
            resolve('done');
          }
        };
        bash.stdout.on('data', check);
        check();
      }),
      bashExit.then((code) => `exited with ${code}` as const),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), BLOCK_TIMEOUT_MS).unref()),
    ]);
    const output = stdout.slice(start).split(`\n${marker}\n`)[0]!;
    if (done !== 'done') throw new Error(`the block ${done}:\n${code}\n--- stdout:\n${output}\n--- stderr:\n${stderr}`);
    return output;
  }

  /** The `code` a person would copy from the address bar after signing in and allowing. */
  async function codeFromBrowser(): Promise<string> {
    const urls = [...stdout.matchAll(new RegExp(`${base.replace(/[.:/]/g, '\\$&')}/authorize\\?\\S+`, 'g'))].map((m) => m[0]);
    const url = urls.at(-1);
    if (!url) throw new Error('CODE: the walkthrough printed no /authorize URL to open');
    if (!registered) throw new Error('CODE: no "username"/"password" registration in the walkthrough to sign in with');
    const redirectUri = new URL(url).searchParams.get('redirect_uri');
    if (!redirectUri) throw new Error('CODE: the /authorize URL has no redirect_uri');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      let landed: string | null = null;
      // Nothing listens at the app's redirect URI: catch the navigation there.
      await page.route(`${new URL(redirectUri).origin}/**`, async (route) => {
        landed = route.request().url();
        await route.fulfill({ status: 200, contentType: 'text/plain', body: 'the app would take it from here' });
      });
      await page.goto(url);
      await page.fill('input[name="username"]', registered[1]!);
      await page.fill('input[name="password"]', registered[2]!);
      await page.click('button:has-text("Sign in")');
      await page.click('button[name="decision"][value="allow"]');
      await page.waitForURL(`${redirectUri}**`);
      const params = new URL(landed ?? page.url()).searchParams;
      const code = params.get('code');
      if (!code) throw new Error(`CODE: the browser landed on ${landed ?? page.url()} without a code`);
      return code;
    } finally {
      await browser.close();
    }
  }

  async function fill(code: string): Promise<string> {
    const out: string[] = [];
    for (const line of code.split('\n')) {
      const m = PLACEHOLDER.exec(line);
      if (!m) {
        out.push(line);
        continue;
      }
      const name = m[2]!;
      let value: string;
      if (name === 'ADMIN_PASSWORD') {
        if (!adminPassword) throw new Error('ADMIN_PASSWORD: the server did not print a generated admin password');
        value = adminPassword[2]!;
      } else if (name === 'CODE') {
        value = await codeFromBrowser();
      } else {
        throw new Error(`no value for the placeholder ${name} (the test knows ADMIN_PASSWORD and CODE)`);
      }
      out.push(`${m[1]}${name}=${shellQuote(value)}`);
    }
    return out.join('\n');
  }

  let lastOutput: string | null = null;
  let index = 0;
  for (const step of steps) {
    if (step.kind === 'server') continue;
    if (step.kind === 'expect') {
      if (lastOutput === null) {
        t.fail(`${WALKTHROUGH_FILE}:${step.line}: an expect block must follow a run block`);
        continue;
      }
      t.match(lastOutput, expectation(localize(step.code)), `${WALKTHROUGH_FILE}:${step.line}: output as documented`);
      continue;
    }
    const code = await fill(localize(step.code));
    try {
      lastOutput = await runBlock(index++, code);
      t.pass(`${WALKTHROUGH_FILE}:${step.line}: ran`);
    } catch (err) {
      t.fail(`${WALKTHROUGH_FILE}:${step.line}: ${(err as Error).message}`);
      break;
    }
  }
  bash.stdin.end();
  t.equal(await bashExit, 0, 'the shell ends cleanly');
});
