/**
 * Failures at start that used to be quiet or vague: a misspelt variable is
 * named with the setting it was probably meant as; an unreachable or missing
 * PostgreSQL database is named by host, port, database and user (never the
 * password) with the driver's reason; the CLI says which data it works on.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { runCli } from '../../src/admin/cli/run.js';
import { DATABASE_URL, openTestDb, seedDataDir } from '../helpers/backend.js';
import { freePort, ROOT } from '../helpers/server-process.js';
import { tempDir } from '../helpers/temp-dir.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm start` without the build: src/main.ts until it exits. */
async function startMain(env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

async function cli(argv: string[], env: Record<string, string>): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => '' }, { env: { LOG_LEVEL: 'silent', ...env } });
  return { code, stdout, stderr };
}

t.test('an unreachable PostgreSQL: where, why, never the password; a misspelt variable is named', async (t) => {
  const port = await freePort(); // nothing listens there
  const run = await startMain({ DATABASE_URL: `postgres://oauth:s3cret-pw@127.0.0.1:${port}/oauth_db`, REGISTRATON: 'closed', PG_CONNECT_TIMEOUT_MS: '2000' });
  t.equal(run.code, 1, run.stderr);
  t.match(run.stderr, /^Configuration warning: REGISTRATON is not a setting of this server and is ignored; did you mean REGISTRATION\?/m);
  t.match(run.stderr, new RegExp(`^Failed to start: cannot use PostgreSQL at 127\\.0\\.0\\.1:${port}, database "oauth_db", user "oauth": .*ECONNREFUSED`, 'm'));
  t.notOk(`${run.stdout}${run.stderr}`.includes('s3cret-pw'), 'never the password');

  const fromCli = await cli(['users', 'list'], { DATABASE_URL: `postgres://oauth:s3cret-pw@127.0.0.1:${port}/oauth_db` });
  t.equal(fromCli.code, 1);
  t.match(fromCli.stderr, new RegExp(`^error: cannot use PostgreSQL at 127\\.0\\.0\\.1:${port}, database "oauth_db", user "oauth": .*ECONNREFUSED`, 'm'), 'the CLI says the same');
  t.notOk(fromCli.stderr.includes('s3cret-pw'));
});

t.test('a database that does not exist yet: create it first', { skip: DATABASE_URL ? false : 'needs DATABASE_URL (a PostgreSQL server)' }, async (t) => {
  const url = new URL(DATABASE_URL!);
  url.pathname = '/no_such_database_here';
  const run = await cli(['users', 'list'], { DATABASE_URL: url.toString() });
  t.equal(run.code, 1);
  t.match(run.stderr, /cannot use PostgreSQL at .*, database "no_such_database_here".*: database "no_such_database_here" does not exist; create it first/);
});

t.test('the CLI says which data it works on', async (t) => {
  const dir = await tempDir(t, 'oauth-cli-store-');
  await seedDataDir(dir);
  const embedded = await cli(['users', 'list', '--json'], { DATA_DIR: dir });
  t.equal(embedded.code, 0, embedded.stderr);
  t.equal(embedded.stderr, `(the embedded database in ${dir}: DATABASE_URL is not set)\n`);
  t.same(JSON.parse(embedded.stdout).items, [], 'and stdout stays the JSON');
  if (DATABASE_URL) {
    const db = await openTestDb({ kind: 'postgres' });
    t.teardown(() => db.close());
    const onPostgres = await cli(['users', 'list', '--json'], { DATABASE_URL: db.url! });
    t.equal(onPostgres.code, 0, onPostgres.stderr);
    const url = new URL(db.url!);
    t.equal(onPostgres.stderr, `(PostgreSQL at ${url.hostname}:${url.port || '5432'}, database "${url.pathname.slice(1)}"${url.username ? `, user "${url.username}"` : ''}, from DATABASE_URL)\n`);
    if (url.password) t.notOk(onPostgres.stderr.includes(url.password));
  }
});
