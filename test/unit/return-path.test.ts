import t from 'tap';
import { safeReturnPath } from '../../src/http/return-path.js';

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
