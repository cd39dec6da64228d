import t from 'tap';
import { safeConsolePath, safeReturnPath } from '../../src/http/return-path.js';

t.test('only this server\'s own signed-in pages are return targets', async (t) => {
  for (const ok of ['/account', '/account/totp', '/device', '/device?user_code=BCDF-GHJK']) t.equal(safeReturnPath(ok), ok, ok);
  for (const bad of [
    undefined,
    '',
    'https://evil.example/account',
    '//evil.example/account',
    '/\\evil.example',
    '/account@evil.example',
    '/consent',
    '/login?next=/account',
    'javascript:alert(1)',
    '/account/../admin',
    `/account?${'a'.repeat(400)}`,
  ]) {
    t.equal(safeReturnPath(bad), null, String(bad));
  }
});

t.test("the admin console's pages, by the same rule: only plain characters, so a Location header can always carry them", async (t) => {
  for (const ok of ['/admin', '/admin/console', '/admin/console/clients', '/admin/console/users/0b7c-12_ab', '/admin/console/events?type=user.&limit=20']) t.equal(safeConsolePath(ok), ok, ok);
  for (const bad of [
    '/admin/console/\u2713',
    '/admin/console/\r\nSet-Cookie: x=1',
    '/admin/console/\u0000',
    '/admin/console/a b',
    '/admin/consoles',
    '/admin/clients',
    '/admin/console/..',
    '/admin/console\\evil.example',
    '/admin?x=1',
    '/account',
  ]) {
    t.equal(safeConsolePath(bad), null, JSON.stringify(bad));
  }
});
