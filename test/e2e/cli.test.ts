/**
 * The admin CLI (`npm run cli -- …`): every command through `runCli` over the
 * test backend (fast, in-process), then the real entry point as a child
 * process: help and usage exit codes, a command against its own database, and
 * a command while another process holds the embedded database (carried out
 * by that process over its control socket). Last, `keys reencrypt` both ways,
 * with an identity provider's client secret moving along with the keys.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import { handleControlRequest, startControlServer } from '../../src/admin/control.js';
import { runCli } from '../../src/admin/cli/run.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createServices, type Services } from '../../src/services.js';
import { createStorage } from '../../src/storage/index.js';
import { PASSWORD_RULE } from '../../src/users/password-policy.js';
import { createSecretSealer } from '../../src/identity-providers/secret.js';
import { createKeyProtector } from '../../src/tokens/key-encryption.js';
import { buildTestApp, checkPassword, enrolSecondFactor, seedUser } from '../helpers/app.js';
import { backendName, DATABASE_URL, openTestDb, seedDataDir } from '../helpers/backend.js';
import { entryPoint } from '../helpers/entry-point.js';
import { ROOT } from '../helpers/root.js';
import { tempDir } from '../helpers/temp-dir.js';
import { basic, postForm, userBasic } from '../helpers/tokens.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process against `services`. */
async function cli(services: Services, argv: string[], stdin = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => stdin }, { services });
  return { code, stdout, stderr };
}

/** Runs the real entry point (`npm run cli`'s `dist/admin/cli.js`, or `src/admin/cli.ts` under tsx) as a child process. */
function spawnCli(argv: string[], env: Record<string, string>, stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entryPoint('admin/cli'), ...argv], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'silent', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const json = <T = Record<string, unknown>>(run: Run): T => JSON.parse(run.stdout) as T;

t.test(`CLI commands (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t);

  t.test('clients: create, list, show, update, rotate-secret, delete', async (t) => {
    const created = await cli(services, [
      'clients', 'create', '--name', 'CLI Demo',
      '--redirect-uri', 'http://localhost:8080/cb', '--redirect-uri', 'https://app.example.com/cb',
      '--grant', 'authorization_code', '--grant', 'refresh_token',
      '--auth-method', 'client_secret_basic', '--scope', 'openid profile api:read', '--json',
    ]);
    t.equal(created.code, 0, created.stderr);
    const client = json<{ client_id: string; client_secret: string; redirect_uris: string[]; scope: string }>(created);
    t.same(client.redirect_uris, ['http://localhost:8080/cb', 'https://app.example.com/cb']);
    t.equal(client.scope, 'openid profile api:read');
    t.type(client.client_secret, 'string');

    const text = await cli(services, ['clients', 'create', '--name', 'Machine', '--grant', 'client_credentials', '--scope', 'api:read']);
    t.equal(text.code, 0);
    t.match(text.stdout, /client_secret: \S{43}/);
    t.match(text.stdout, /shown once/);

    const list = await cli(services, ['clients', 'list']);
    t.equal(list.code, 0);
    t.match(list.stdout, /CLIENT_ID\s+ORIGIN\s+AUTH_METHOD\s+GRANTS\s+NAME/);
    t.match(list.stdout, new RegExp(client.client_id));
    const listed = json<{ items: Array<{ client_id: string }>; total: number }>(await cli(services, ['clients', 'list', '--json', '--limit', '1']));
    t.equal(listed.items.length, 1);
    t.ok(listed.total >= 2);

    const shown = await cli(services, ['clients', 'show', client.client_id]);
    t.match(shown.stdout, /client_name:\s+CLI Demo/);
    t.notMatch(shown.stdout, /client_secret:/, 'the secret is never shown again');

    const updated = json(await cli(services, ['clients', 'update', client.client_id, '--name', 'Renamed', '--redirect-uri', 'https://new.example.com/cb', '--json']));
    t.match(updated, { client_name: 'Renamed', redirect_uris: ['https://new.example.com/cb'], scope: 'openid profile api:read' });
    t.same(updated.post_logout_redirect_uris, [], 'none by default');

    const withLogout = await cli(services, ['clients', 'update', client.client_id, '--post-logout-redirect-uri', 'https://new.example.com/bye', '--post-logout-redirect-uri', 'http://localhost:8080/bye']);
    t.equal(withLogout.code, 0, withLogout.stderr);
    t.match(withLogout.stdout, /post_logout_redirect_uris:\s+https:\/\/new\.example\.com\/bye http:\/\/localhost:8080\/bye/);
    t.same((await services.clients.get(client.client_id)).postLogoutRedirectUris, ['https://new.example.com/bye', 'http://localhost:8080/bye']);
    const badLogout = await cli(services, ['clients', 'update', client.client_id, '--post-logout-redirect-uri', 'https://*.example.com/bye']);
    t.equal(badLogout.code, 1);
    t.match(badLogout.stderr, /post-logout redirect URI .* contains "\*"/);
    const both = await cli(services, ['clients', 'update', client.client_id, '--post-logout-redirect-uri', 'https://new.example.com/bye', '--no-post-logout-redirect-uris']);
    t.equal(both.code, 2, 'a usage error');
    const cleared = json(await cli(services, ['clients', 'update', client.client_id, '--no-post-logout-redirect-uris', '--json']));
    t.same(cleared.post_logout_redirect_uris, []);

    const withBackchannel = await cli(services, ['clients', 'update', client.client_id, '--backchannel-logout-uri', 'http://billing.internal:8080/bc', '--backchannel-logout-session-required']);
    t.equal(withBackchannel.code, 0, withBackchannel.stderr);
    t.match(withBackchannel.stdout, /backchannel_logout_uri:\s+http:\/\/billing\.internal:8080\/bc/);
    t.match(withBackchannel.stdout, /backchannel_logout_session_required:\s+yes/);
    const stored = await services.clients.get(client.client_id);
    t.equal(stored.backchannelLogoutUri, 'http://billing.internal:8080/bc', 'an admin may register http');
    t.equal(stored.backchannelLogoutSessionRequired, true);
    const badBackchannel = await cli(services, ['clients', 'update', client.client_id, '--backchannel-logout-uri', 'https://billing.example/bc#frag']);
    t.equal(badBackchannel.code, 1);
    t.match(badBackchannel.stderr, /back-channel logout URI .* fragment/);
    const bothBackchannel = await cli(services, ['clients', 'update', client.client_id, '--backchannel-logout-uri', 'https://billing.example/bc', '--no-backchannel-logout-uri']);
    t.equal(bothBackchannel.code, 2, 'a usage error');
    const noBackchannel = json(await cli(services, ['clients', 'update', client.client_id, '--no-backchannel-logout-uri', '--no-backchannel-logout-session-required', '--json']));
    t.equal(noBackchannel.backchannel_logout_uri, null);
    t.equal(noBackchannel.backchannel_logout_session_required, false);

    const rotated = json<{ client_secret: string }>(await cli(services, ['clients', 'rotate-secret', client.client_id, '--json']));
    t.not(rotated.client_secret, client.client_secret);

    t.equal((await cli(services, ['clients', 'delete', client.client_id])).code, 0);
    const gone = await cli(services, ['clients', 'show', client.client_id]);
    t.equal(gone.code, 1);
    t.match(gone.stderr, /no client/);
  });

  t.test('clients: private_key_jwt with --jwks or --jwks-uri, no secret; bad JSON is a usage error', async (t) => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'cli-key' }] });
    const created = await cli(services, ['clients', 'create', '--name', 'Signed', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks', jwks]);
    t.equal(created.code, 0, created.stderr);
    t.match(created.stdout, /jwks:\s+EC kid=cli-key/);
    t.notMatch(created.stdout, /client_secret:/, 'no secret');
    const clientId = /client_id:\s+(\S+)/.exec(created.stdout)![1]!;
    const moved = json<{ jwks_uri: string; jwks?: unknown }>(await cli(services, ['clients', 'update', clientId, '--jwks-uri', 'https://keys.example.com/jwks.json', '--json']));
    t.equal(moved.jwks_uri, 'https://keys.example.com/jwks.json');
    t.notOk(moved.jwks, 'the URL replaces the inline keys');
    t.equal((await cli(services, ['clients', 'create', '--name', 'X', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks', '{nope'])).code, 2);
    const leaked = await cli(services, ['clients', 'create', '--name', 'X', '--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks', JSON.stringify({ keys: [{ kty: 'EC', d: 'x' }] })]);
    t.equal(leaked.code, 1);
    t.match(leaked.stderr, /private member "d"/);
  });

  t.test('identity-providers: create with the secret from stdin (never shown), list and show the redirect URI, update, delete', async (t) => {
    const created = await cli(services, ['identity-providers', 'create', 'cli-corp', '--issuer', 'https://login.example.com', '--client-id', 'us', '--client-secret-stdin', '--name', 'CLI Corp'], 'cli provider secret\n');
    t.equal(created.code, 0, created.stderr);
    t.match(created.stdout, /redirect_uri: +http:\/\/localhost:3000\/login\/providers\/cli-corp\/callback/);
    t.notMatch(created.stdout, /cli provider secret/);
    const list = await cli(services, ['identity-providers', 'list', '--json']);
    t.match(json(list), { items: [{ id: 'cli-corp', display_name: 'CLI Corp', enabled: true, redirect_uri: 'http://localhost:3000/login/providers/cli-corp/callback' }] });
    t.notMatch(list.stdout, /cli provider secret/);
    t.equal((await cli(services, ['identity-providers', 'create', 'cli-bad', '--issuer', 'http://login.example.com', '--client-id', 'us', '--client-secret', 'x', '--name', 'Bad'])).code, 1, 'http on a public host');
    t.equal((await cli(services, ['identity-providers', 'create', 'cli-none', '--issuer', 'https://login.example.com', '--client-id', 'us', '--name', 'No secret'])).code, 2, 'the secret is required');
    t.match(json(await cli(services, ['identity-providers', 'update', 'cli-corp', '--disable', '--json'])), { enabled: false });
    t.equal((await cli(services, ['identity-providers', 'delete', 'cli-corp'])).code, 0);
    t.equal((await cli(services, ['identity-providers', 'show', 'cli-corp'])).code, 1);
  });

  t.test('initial-access-tokens: create (shown once), list (never the value), revoke; usable at the registration endpoint until revoked', async (t) => {
    const created = await cli(services, ['initial-access-tokens', 'create', '--description', 'Partner', '--expires-in', '3600', '--max-uses', '2']);
    t.equal(created.code, 0, created.stderr);
    const token = /token: (\S{43})/.exec(created.stdout)?.[1];
    t.ok(token, created.stdout);
    t.match(created.stdout, /shown once/);
    const id = /^id:\s+(\S+)/m.exec(created.stdout)![1]!;
    const listed = await cli(services, ['initial-access-tokens', 'list']);
    t.match(listed.stdout, /ID\s+EXPIRES\s+USES\s+DESCRIPTION/);
    t.match(listed.stdout, new RegExp(`${id}.*0/2\\s+Partner`));
    t.notOk(listed.stdout.includes(token!));
    const asJson = json<{ items: Array<{ id: string; max_uses: number; token?: string }> }>(await cli(services, ['initial-access-tokens', 'list', '--json']));
    t.match(asJson.items.find((i) => i.id === id), { max_uses: 2 });
    t.notOk(asJson.items.some((i) => 'token' in i));
    t.ok(await services.initialAccessTokens.use(token!), 'the printed token is the one stored');
    t.equal((await cli(services, ['initial-access-tokens', 'create', '--max-uses', '0'])).code, 2, 'a bad number is a usage error');
    t.equal((await cli(services, ['initial-access-tokens', 'revoke', id])).code, 0);
    t.equal(await services.initialAccessTokens.use(token!), null, 'revoked');
    t.equal((await cli(services, ['initial-access-tokens', 'revoke', id])).code, 1, 'unknown id');
  });

  t.test('users: create (given, stdin or generated password), list, show, update, delete', async (t) => {
    const alice = await cli(services, ['users', 'create', '--username', 'cli-alice', '--role', 'admin', '--email', 'alice@example.com', '--json']);
    t.equal(alice.code, 0, alice.stderr);
    const created = json<{ id: string; roles: string[]; generated_password: string }>(alice);
    t.same(created.roles, ['admin']);
    t.type(created.generated_password, 'string', 'no password given: one is generated and printed once');
    t.ok(await checkPassword(services, 'cli-alice', created.generated_password));

    const fromStdin = await cli(services, ['users', 'create', '--username', 'cli-bob', '--password-stdin'], 'stdin password 1\n');
    t.equal(fromStdin.code, 0, fromStdin.stderr);
    t.notMatch(fromStdin.stdout, /password:/, 'a given password is not echoed');
    t.ok(await checkPassword(services, 'cli-bob', 'stdin password 1'), 'the first line of stdin, without its newline');

    t.equal((await cli(services, ['users', 'create', '--username', 'cli-carol', '--password', 'given password 1'])).code, 0);
    t.ok(await checkPassword(services, 'cli-carol', 'given password 1'));

    const dupe = await cli(services, ['users', 'create', '--username', 'CLI-ALICE', '--password', 'a password for the dupe']);
    t.equal(dupe.code, 1);
    t.match(dupe.stderr, /taken/);

    const list = await cli(services, ['users', 'list']);
    t.match(list.stdout, /cli-alice\s+admin\s+enabled\s+alice@example.com/);

    t.match((await cli(services, ['users', 'show', 'cli-alice'])).stdout, new RegExp(`id:\\s+${created.id}`), 'by username');
    t.match((await cli(services, ['users', 'show', created.id])).stdout, /username:\s+cli-alice/, 'by id');

    const lastAdmin = await cli(services, ['users', 'update', 'cli-alice', '--disable']);
    t.equal(lastAdmin.code, 1, 'the only admin cannot be disabled');
    t.match(lastAdmin.stderr, /last enabled admin/);
    t.equal((await cli(services, ['users', 'create', '--username', 'cli-dora', '--role', 'admin', '--password', 'given password 2'])).code, 0, 'a second admin');

    const changed = json(await cli(services, ['users', 'update', 'cli-alice', '--role', 'auditor', '--role', 'admin', '--email', '', '--disable', '--json']));
    t.match(changed, { roles: ['admin', 'auditor'], email: null, disabled: true });
    t.equal((await cli(services, ['users', 'update', 'cli-alice', '--no-roles', '--enable', '--password-stdin'], 'new password 12\n')).code, 0);
    const after = await checkPassword(services, 'cli-alice', 'new password 12');
    t.same(after?.roles, []);

    t.equal((await cli(services, ['users', 'delete', 'cli-alice'])).code, 0);
    t.equal(await services.users.findByUsername('cli-alice'), null);
    t.equal((await cli(services, ['users', 'show', 'cli-alice'])).code, 1);
  });

  t.test('users reset-second-factor: an admin who lost their authenticator app gets in with the password again', async (t) => {
    const lost = await seedUser(services, { username: 'cli-lost-phone', roles: ['admin'] });
    await enrolSecondFactor(services, lost.id);
    const adminApi = () => app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(lost.username, lost.password) } });
    t.equal((await adminApi()).statusCode, 403, 'locked out of the admin API: the password alone is not enough');
    t.match((await cli(services, ['users', 'show', 'cli-lost-phone'])).stdout, /second_factor:\s+authenticator app/);

    const reset = await cli(services, ['users', 'reset-second-factor', 'cli-lost-phone']);
    t.equal(reset.code, 0, reset.stderr);
    t.match(reset.stdout, new RegExp(`Removed the authenticator app and recovery codes of cli-lost-phone \\(${lost.id}\\)`));
    t.notOk(await services.secondFactor.isEnrolled(lost.id));
    t.equal((await adminApi()).statusCode, 200, 'the password opens the admin API again');
    t.match(json(await cli(services, ['users', 'show', lost.id, '--json'])), { username: 'cli-lost-phone', second_factor: false });

    const again = await cli(services, ['users', 'reset-second-factor', lost.id]);
    t.equal(again.code, 1, 'nothing to reset');
    t.match(again.stderr, /has no authenticator app/);
    const unknown = await cli(services, ['users', 'reset-second-factor', 'nobody-here']);
    t.equal(unknown.code, 1);
    t.match(unknown.stderr, /no user with id or username "nobody-here"/);
    t.equal((await cli(services, ['users', 'reset-second-factor'])).code, 2, 'the user is required');

    // While a server holds the embedded database, the command runs inside it (control socket).
    await enrolSecondFactor(services, lost.id);
    const token = 'control-token';
    const viaServer = await handleControlRequest(
      services,
      token,
      JSON.stringify({ token, group: 'users', command: 'reset-second-factor', args: { values: {}, positionals: ['cli-lost-phone'] } }),
    );
    t.match(viaServer, { ok: true, result: { data: { reset: true, id: lost.id, username: 'cli-lost-phone' } } });
    t.notOk(await services.secondFactor.isEnrolled(lost.id));
  });

  t.test('bad values are failures (exit 1) with the reason', async (t) => {
    const run = await cli(services, ['clients', 'create', '--name', 'Bad', '--redirect-uri', 'http://evil.example.com/cb']);
    t.equal(run.code, 1);
    t.match(run.stderr, /must use https/);
    t.equal(run.stdout, '');
    const jsonErr = await cli(services, ['users', 'create', '--username', 'x y', '--password', 'long enough', '--json']);
    t.equal(jsonErr.code, 1);
    t.match(JSON.parse(jsonErr.stderr), { error: 'invalid_request' });
  });

  t.test('weak passwords are refused (exit 1) with what is wrong and the rule, never echoed', async (t) => {
    const common = await cli(services, ['users', 'create', '--username', 'cli-weak', '--password', '12345678']);
    t.equal(common.code, 1);
    t.match(common.stderr, /too easy to guess: it is a common password/);
    t.ok(common.stderr.includes(PASSWORD_RULE), 'the rule');
    t.notOk(common.stderr.includes('12345678'), 'never the password');

    const own = await cli(services, ['users', 'create', '--username', 'cli-weak', '--password-stdin', '--json'], 'cli-weak-2024\n');
    t.equal(own.code, 1);
    t.match(JSON.parse(own.stderr), { error: 'invalid_request', error_description: /made from your username or email/ });
    t.notOk(own.stderr.includes('cli-weak-2024'), 'never the password');
    t.equal(await services.users.findByUsername('cli-weak'), null, 'not created');

    t.equal((await cli(services, ['users', 'create', '--username', 'cli-erin', '--password', 'erin has a good one'])).code, 0);
    const update = await cli(services, ['users', 'update', 'cli-erin', '--password-stdin'], '        \n');
    t.equal(update.code, 1, 'eight spaces');
    t.match(update.stderr, /too easy to guess: it repeats characters or words/);
    t.ok(await checkPassword(services, 'cli-erin', 'erin has a good one'), 'the password is unchanged');
  });

  t.test('usage errors exit 2 and point to --help', async (t) => {
    const cases: string[][] = [
      [],
      ['nope'],
      ['clients'],
      ['clients', 'explode'],
      ['clients', 'create', '--nmae', 'typo'],
      ['clients', 'create'],
      ['clients', 'show'],
      ['clients', 'show', 'a', 'b'],
      ['clients', 'update', 'some-id'],
      ['clients', 'list', '--limit', 'many'],
      ['users', 'create', '--password', 'x'],
      ['users', 'create', '--username', 'u', '--password', 'p', '--password-stdin'],
      ['users', 'update', 'someone', '--enable', '--disable'],
      ['users', 'create', '--username', 'u', '--password'],
    ];
    for (const argv of cases) {
      const run = await cli(services, argv);
      t.equal(run.code, 2, argv.join(' ') || '(no arguments)');
      t.not(run.stderr, '', 'explains on stderr');
    }
    t.equal(await services.users.findByUsername('u'), null);
  });

  t.test('a bad configuration is a usage error naming the variable', async (t) => {
    let stderr = '';
    const code = await runCli(['users', 'list'], { stdout: () => {}, stderr: (s) => (stderr += s), readStdin: async () => '' }, { env: { PORT: 'eighty' } });
    t.equal(code, 2);
    t.match(stderr, /PORT/);
  });

  t.test('--help on every level exits 0', async (t) => {
    const top = await cli(services, ['--help']);
    t.equal(top.code, 0);
    t.match(top.stdout, /clients/);
    t.match(top.stdout, /users/);
    for (const group of ['clients', 'users']) {
      const help = await cli(services, [group, '--help']);
      t.equal(help.code, 0);
      t.match(help.stdout, /Commands:/);
    }
    const create = await cli(services, ['clients', 'create', '--help']);
    t.equal(create.code, 0);
    t.match(create.stdout, /--redirect-uri URL/);
    t.match(create.stdout, /repeatable/);
    t.match((await cli(services, ['users', 'update', '-h'])).stdout, /--password-stdin/);
  });
});

t.test('the real entry point', async (t) => {
  t.test('help and usage exit codes', async (t) => {
    const help = await spawnCli(['--help'], {});
    t.equal(help.code, 0);
    t.match(help.stdout, /Usage: npm run cli --/);
    const bad = await spawnCli(['users', 'create'], {});
    t.equal(bad.code, 2);
    t.match(bad.stderr, /--username is required/);
  });

  // On the embedded database, "the CLI opens it itself" is the last step of the `npm start` subtest below.
  if (DATABASE_URL) {
    t.test('against its own PostgreSQL database (DATABASE_URL)', async (t) => {
      const db = await openTestDb({ kind: 'postgres' });
      t.teardown(() => db.close());
      const env = { DATABASE_URL: db.url! };
      const created = await spawnCli(['users', 'create', '--username', 'spawned', '--password-stdin', '--role', 'admin', '--json'], env, 'child process passphrase\n');
      t.equal(created.code, 0, created.stderr);
      const user = json<{ id: string; username: string }>(created);
      t.equal(user.username, 'spawned');
      const list = await spawnCli(['users', 'list', '--json'], env);
      t.same(
        json<{ items: Array<{ id: string }> }>(list).items.map((u) => u.id),
        [user.id],
        'a second run sees what the first stored',
      );
    });
  }

  t.test('while another process holds the embedded database, the command runs there', async (t) => {
    const dir = await tempDir(t, 'oauth-cli-');
    await seedDataDir(dir);
    // This test process plays the server: it holds the database and listens for CLI commands.
    const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent' });
    const storage = await createStorage(config);
    const services = createServices(config, storage);
    const control = await startControlServer(services, dir);
    t.teardown(async () => {
      await control.close();
      await services.close();
    });

    const created = await spawnCli(['clients', 'create', '--name', 'Via socket', '--grant', 'client_credentials', '--json'], { DATA_DIR: dir });
    t.equal(created.code, 0, created.stderr);
    const { client_id: clientId } = json<{ client_id: string }>(created);
    t.equal((await services.clients.get(clientId)).clientName, 'Via socket', 'stored by the holder, through its own services');

    const failed = await spawnCli(['clients', 'show', 'no-such-client'], { DATA_DIR: dir });
    t.equal(failed.code, 1, 'failures come back as failures');
    t.match(failed.stderr, /no client/);
    const usage = await spawnCli(['clients', 'update', clientId], { DATA_DIR: dir });
    t.equal(usage.code, 2, 'usage errors found by the holder are still usage errors');
  });

  t.test('while `npm start` (src/main.ts) runs on the embedded database', async (t) => {
    const dir = await tempDir(t, 'oauth-cli-');
    await seedDataDir(dir);
    const env = { DATA_DIR: dir, PORT: '0', ADMIN_USERNAME: 'main-admin', ADMIN_PASSWORD: 'harbour lights at dusk' };
    const server = spawn(process.execPath, entryPoint('main'), {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (server.exitCode === null) server.kill('SIGKILL');
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 60_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (/listening at/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
      server.on('exit', () => reject(new Error(`server exited: ${output}`)));
    });

    const list = await spawnCli(['users', 'list', '--json'], { DATA_DIR: dir });
    t.equal(list.code, 0, list.stderr);
    t.same(
      json<{ items: Array<{ username: string; roles: string[] }> }>(list).items.map((u) => [u.username, u.roles]),
      [['main-admin', ['admin']]],
      "the server's admin, read through the server",
    );

    server.kill('SIGTERM');
    t.equal(await exited, 0, 'the server stops cleanly');
    const after = await spawnCli(['users', 'show', 'main-admin', '--json'], { DATA_DIR: dir });
    t.equal(after.code, 0, 'after it stopped, the CLI opens the database itself');
  });
});

t.test('keys reencrypt: stored keys move from SIGNING_KEY_ENCRYPTION_KEY to a new key', async (t) => {
  const newKey = () => randomBytes(32).toString('base64url');
  const [keyA, keyB, keyC] = [newKey(), newKey(), newKey()];
  const bytes = (key: string) => new Uint8Array(Buffer.from(key, 'base64url'));
  const PROVIDER_SECRET = 'upstream-client-secret';
  /** What `env`'s configuration reads as the client secret of provider `corp` (the message when it cannot). */
  const providerSecret = async (env: Record<string, string>) => {
    const config = loadConfig({ LOG_LEVEL: 'silent', ISSUER: 'http://localhost:3000', ...env });
    const services = createServices(config, await createStorage(config));
    try {
      return (await services.identityProviders.credentials('corp'))!.clientSecret;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    } finally {
      await services.close();
    }
  };
  /** Runs the CLI over its own storage (as `npm run cli` does when no server holds the database). */
  const cliWith = async (env: Record<string, string>, argv: string[], stdin = ''): Promise<Run> => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => stdin }, { env: { LOG_LEVEL: 'silent', ...env } });
    return { code, stdout, stderr };
  };
  /** Starts a server over `env`'s database and returns the kid its access tokens carry. */
  const serverSigns = async (env: Record<string, string>) => {
    const config = loadConfig({ LOG_LEVEL: 'silent', ISSUER: 'http://localhost:3000', ...env });
    const services = createServices(config, await createStorage(config));
    const app = await buildApp(config, services, { logger: false });
    try {
      await services.start();
      const { client, clientSecret } = await services.clients.register({ client_name: 'reencrypt', grant_types: ['client_credentials'], scope: 'api:read' });
      const res = await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, clientSecret!) });
      if (res.statusCode !== 200) throw new Error(`token request failed: ${res.statusCode} ${res.body}`);
      return JSON.parse(Buffer.from((res.json().access_token as string).split('.')[0]!, 'base64url').toString()).kid as string;
    } finally {
      await app.close();
    }
  };

  t.test(`over its own storage (${DATABASE_URL ? 'postgres' : 'pglite'})`, async (t) => {
    let where: Record<string, string>;
    if (DATABASE_URL) {
      const db = await openTestDb({ kind: 'postgres' });
      t.teardown(() => db.close());
      where = { DATABASE_URL: db.url! };
    } else {
      const dir = await tempDir(t, 'oauth-cli-');
      await seedDataDir(dir);
      where = { DATA_DIR: dir };
    }
    const listed = await cliWith({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA }, ['keys', 'list', '--json']);
    t.equal(listed.code, 0, listed.stderr);
    const kids = json<Array<{ kid: string; alg: string }>>(listed);
    const esKid = kids.find((k) => k.alg === 'ES256')!.kid;
    const provider = await cliWith(
      { ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA },
      ['identity-providers', 'create', 'corp', '--issuer', 'https://login.example.com', '--client-id', 'auth-server', '--client-secret-stdin', '--name', 'Example Corp'],
      `${PROVIDER_SECRET}\n`,
    );
    t.equal(provider.code, 0, provider.stderr);

    for (const [argv, stdin, message] of [
      [['keys', 'reencrypt'], '', /either --new-key-stdin or --decrypt/],
      [['keys', 'reencrypt', '--new-key-stdin', '--decrypt'], keyB, /either --new-key-stdin or --decrypt/],
      [['keys', 'reencrypt', '--new-key-stdin'], '', /standard input was empty/],
      [['keys', 'reencrypt', '--new-key-stdin'], 'too-short\n', /not valid: SIGNING_KEY_ENCRYPTION_KEY: expected 32 random bytes/],
    ] as const) {
      const run = await cliWith({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA }, [...argv], stdin);
      t.equal(run.code, 2, `${argv.join(' ')}: a usage error`);
      t.match(run.stderr, message);
    }

    const wrong = await cliWith({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyC }, ['keys', 'reencrypt', '--new-key-stdin'], `${keyB}\n`);
    t.equal(wrong.code, 1, 'a configured key that does not open the stored keys is refused');
    t.match(wrong.stderr, /cannot be decrypted: SIGNING_KEY_ENCRYPTION_KEY is not the key it was encrypted with/);
    t.equal(await serverSigns({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA }), esKid, 'nothing changed: the old key still opens them');

    const moved = await cliWith({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA }, ['keys', 'reencrypt', '--new-key-stdin'], `${keyB}\n`);
    t.equal(moved.code, 0, moved.stderr);
    t.match(moved.stdout, /^2 signing key\(s\) are now encrypted under the new key\.\nNow set SIGNING_KEY_ENCRYPTION_KEY to the new key for every instance/);
    t.match(moved.stdout, /\n1 identity-provider client secret\(s\) were re-sealed the same way/);
    t.equal(await serverSigns({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyB }), esKid, 'a server started with the new key signs with the same key');
    const old = await cliWith({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA }, ['keys', 'list']);
    t.equal(old.code, 1, 'the old key opens nothing any more');
    t.match(old.stderr, /SIGNING_KEY_ENCRYPTION_KEY is not the key/);
    t.equal(await providerSecret({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyB }), PROVIDER_SECRET, "the provider's client secret opens with the new key");
    t.match(await providerSecret({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyA }), /identity provider corp cannot be decrypted/, 'and no longer with the old one');

    const plain = await cliWith({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyB }, ['keys', 'reencrypt', '--decrypt', '--json']);
    t.equal(plain.code, 0, plain.stderr);
    t.same(json(plain), { reencrypted: 2, encrypted: false, totpSecrets: 0, identityProviderSecrets: 1 });
    t.equal(await serverSigns(where), esKid, 'after --decrypt a server without the variable signs');
    t.equal(await providerSecret(where), PROVIDER_SECRET, "and reads the provider's secret plainly");

    // From plain to encrypted: the configuration holds no key, the new one comes from stdin.
    const sealed = await cliWith(where, ['keys', 'reencrypt', '--new-key-stdin', '--json'], `${keyC}\n`);
    t.equal(sealed.code, 0, sealed.stderr);
    t.same(json(sealed), { reencrypted: 2, encrypted: true, totpSecrets: 0, identityProviderSecrets: 1 });
    t.equal(await providerSecret({ ...where, SIGNING_KEY_ENCRYPTION_KEY: keyC }), PROVIDER_SECRET, 'a plain secret is sealed under the new key');
    t.match(await providerSecret(where), /identity provider corp is stored encrypted/);
  });

  t.test('through the control socket of the process holding the embedded database', async (t) => {
    const dir = await tempDir(t, 'oauth-cli-');
    await seedDataDir(dir);
    const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', SIGNING_KEY_ENCRYPTION_KEY: keyA });
    const storage = await createStorage(config);
    const services = createServices(config, storage);
    await services.start();
    const control = await startControlServer(services, dir);
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await control.close();
      await services.close();
    };
    t.teardown(close);
    const esKid = (await services.tokens.keys.list()).find((k) => k.alg === 'ES256')!.kid;
    await services.identityProviders.create({ id: 'corp', issuer: 'https://login.example.com', clientId: 'auth-server', clientSecret: PROVIDER_SECRET, displayName: 'Example Corp' });

    // The CLI's own environment holds no key: the holder's configuration opens the keys, the new one travels from stdin.
    const moved = await spawnCli(['keys', 'reencrypt', '--new-key-stdin', '--json'], { DATA_DIR: dir }, `${keyB}\n`);
    t.equal(moved.code, 0, moved.stderr);
    t.same(json(moved), { reencrypted: 2, encrypted: true, totpSecrets: 0, identityProviderSecrets: 1 });
    // The holder seals under the new key from now on, without a restart.
    const rotated = await services.tokens.keys.rotate();
    const rows = await storage.db.query<{ kid: string; private_jwk: Record<string, unknown> }>('SELECT kid, private_jwk FROM signing_keys');
    t.equal(rows.length, 3, 'two keys and the rotated one');
    for (const row of rows) t.ok(await createKeyProtector(new Uint8Array(Buffer.from(keyB, 'base64url'))).open(row.kid, row.private_jwk), `${row.kid === rotated.kid ? 'the rotated key' : row.kid} opens with the new key`);
    // Its provider secrets too: the holder opens the re-sealed one at once, and so does the new key alone.
    t.equal((await services.identityProviders.credentials('corp'))!.clientSecret, PROVIDER_SECRET, 'the holder reads the re-sealed provider secret');
    const [row] = await storage.db.query<{ client_secret: Record<string, unknown> }>('SELECT client_secret FROM identity_providers WHERE id = $1', ['corp']);
    t.equal(await createSecretSealer(bytes(keyB)).open('corp', row!.client_secret), PROVIDER_SECRET, 'the provider secret opens with the new key');
    await t.rejects(createSecretSealer(bytes(keyA)).open('corp', row!.client_secret), /cannot be decrypted/, 'and no longer with the old one');
    await close();

    t.equal(await serverSigns({ DATA_DIR: dir, SIGNING_KEY_ENCRYPTION_KEY: keyB }), esKid, 'restarted with the new key, the server signs');
  });
});
