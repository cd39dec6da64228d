/**
 * Failures at start that used to be quiet or vague: a misspelt variable is
 * named with the setting it was probably meant as; an unreachable or missing
 * PostgreSQL database is named by host, port, database and user (never the
 * password) with the driver's reason; the CLI says which data it works on; an
 * address or port it cannot listen on is named by its variable.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import t from 'tap';
import { runCli } from '../../src/admin/cli/run.js';
import { DATABASE_URL, openTestDb, seedDataDir } from '../helpers/backend.js';
import { entryPoint } from '../helpers/entry-point.js';
import { ROOT } from '../helpers/root.js';
import { freePort } from '../helpers/server-process.js';
import { tempDir } from '../helpers/temp-dir.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm start` without the build: src/main.ts until it exits. */
async function startMain(env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, entryPoint('main'), {
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

t.test('an address or port the server cannot listen on is told by its variable', async (t) => {
  const dir = await tempDir(t, 'oauth-listen-');
  await seedDataDir(dir);
  const start = (env: Record<string, string>) => startMain({ DATA_DIR: dir, ...env });

  const name = await start({ HOST: 'no-such-host.invalid' });
  t.equal(name.code, 1, name.stderr);
  t.match(name.stderr, /^Failed to start: HOST: "no-such-host\.invalid" does not resolve to an address to listen on \(getaddrinfo \w+ no-such-host\.invalid\)/m);

  const address = await start({ HOST: '192.0.2.1' }); // TEST-NET-1 (RFC 5737): no machine's own address
  t.equal(address.code, 1, address.stderr);
  t.match(address.stderr, /^Failed to start: HOST: 192\.0\.2\.1 is not an address of this machine \(listen EADDRNOTAVAIL.*\); 0\.0\.0\.0 listens on all of them$/m);

  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => squatter.close(resolve)));
  const taken = String((squatter.address() as AddressInfo).port);
  const port = await start({ HOST: '127.0.0.1', PORT: taken });
  t.equal(port.code, 1, port.stderr);
  t.match(port.stderr, new RegExp(`^Failed to start: PORT: port ${taken} on 127\\.0\\.0\\.1 is in use by another process \\(listen EADDRINUSE.*\\); stop it or choose another port$`, 'm'));
  const metrics = await start({ HOST: '127.0.0.1', METRICS_PORT: taken });
  t.equal(metrics.code, 1, metrics.stderr);
  t.match(metrics.stderr, new RegExp(`^Failed to start: METRICS_PORT: port ${taken} on 127\\.0\\.0\\.1 is in use`, 'm'));
});
