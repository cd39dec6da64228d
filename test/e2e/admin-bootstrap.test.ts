/**
 * The bootstrap admin's generated password can never be lost for good: a
 * start after the one that generated it says when that password may never
 * have been seen (never used to sign in, never replaced), until the admin
 * signs in or gets a new password. The whole path through real processes
 * (a first start that fails on a taken port) is in readme.test.ts.
 */
import t from 'tap';
import { CLI_ACTOR } from '../../src/audit/events.js';
import { buildTestApp } from '../helpers/app.js';
import { backendName, openTestDb, testKv } from '../helpers/backend.js';
import { userBasic } from '../helpers/tokens.js';

t.test(`the generated admin password, and the hint when it may never have been seen (${backendName})`, async (t) => {
  const db = await openTestDb();
  t.teardown(() => db.close());
  const kv = await testKv(t);
  const start = (env: Record<string, string> = {}) => buildTestApp(t, { db, kv, env });

  const first = await start();
  const created = await first.services.bootstrap();
  t.equal(created?.user.username, 'admin');
  t.ok(created?.generatedPassword, 'the first start generates the password');
  t.notOk(created?.passwordMayBeUnseen);
  const password = created!.generatedPassword!;
  await first.app.close();

  const second = await start();
  const unseen = await second.services.bootstrap();
  t.equal(unseen?.generatedPassword, null, 'a later start never shows a password again');
  t.equal(unseen?.passwordMayBeUnseen, true, 'but says that nobody may have it');
  t.equal(unseen?.user.username, 'admin');

  const chosen = await start({ ADMIN_USERNAME: 'ops', ADMIN_PASSWORD: 'a harbour at first light' });
  const ops = await chosen.services.bootstrap();
  t.equal(ops?.user.username, 'ops', 'with ADMIN_USERNAME the bootstrap names that admin, whose password the operator chose');
  t.notOk(ops?.passwordMayBeUnseen);

  // A failed sign-in proves nothing; the right password does.
  t.equal((await second.app.inject({ url: '/admin/users', headers: { authorization: userBasic('admin', 'not the password') } })).statusCode, 401);
  await second.services.audit.flush();
  t.equal((await second.services.bootstrap())?.passwordMayBeUnseen, true, 'a wrong password changes nothing');
  t.equal((await second.app.inject({ url: '/admin/users', headers: { authorization: userBasic('admin', password) } })).statusCode, 200);
  await second.services.audit.flush();
  t.equal(await second.services.bootstrap(), null, 'once the admin has signed in, nothing more is said');
});

t.test(`a new password ends the hint; an admin a person created never gets it (${backendName})`, async (t) => {
  await t.test('the generated password replaced (npm run cli -- users update admin --password-stdin)', async (t) => {
    const { services } = await buildTestApp(t);
    const admin = (await services.bootstrap())!.user;
    t.equal((await services.bootstrap())?.passwordMayBeUnseen, true);
    await services.users.update(admin.id, { password: 'a new passphrase for the admin' }, { actor: CLI_ACTOR });
    t.equal(await services.bootstrap(), null);
  });

  await t.test('an "admin" created through the CLI, with a password someone chose', async (t) => {
    const { services } = await buildTestApp(t);
    await services.users.create({ username: 'admin', password: 'chosen by a person at a desk', roles: ['admin'] }, { actor: CLI_ACTOR });
    t.equal(await services.bootstrap(), null);
  });

  await t.test('a disabled or demoted "admin" is not the bootstrap admin any more', async (t) => {
    const { services } = await buildTestApp(t);
    const admin = (await services.bootstrap())!.user;
    await services.users.create({ username: 'other-admin', password: 'another admin keeps the server', roles: ['admin'] }, { actor: CLI_ACTOR });
    await services.users.update(admin.id, { roles: [] }, { actor: CLI_ACTOR });
    t.equal(await services.bootstrap(), null);
  });
});
