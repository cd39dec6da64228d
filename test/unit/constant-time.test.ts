import t from 'tap';
import { constantTimeEqual } from '../../src/security/constant-time.js';

t.test('equal strings and bytes match', async (t) => {
  t.ok(constantTimeEqual('csrf-token-value', 'csrf-token-value'));
  t.ok(constantTimeEqual(Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 3])));
  t.ok(constantTimeEqual('', ''));
});

t.test('a difference anywhere, or in length, does not match', async (t) => {
  t.notOk(constantTimeEqual('csrf-token-valuE', 'csrf-token-value'));
  t.notOk(constantTimeEqual('Csrf-token-value', 'csrf-token-value'));
  t.notOk(constantTimeEqual('csrf-token-valu', 'csrf-token-value'));
  t.notOk(constantTimeEqual('csrf-token-value-and-more', 'csrf-token-value'));
  t.notOk(constantTimeEqual(Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 4])));
});

t.test('anything but a string or bytes never matches', async (t) => {
  for (const value of [undefined, null, 42, ['csrf-token-value'], { toString: () => 'csrf-token-value' }]) {
    t.notOk(constantTimeEqual(value, 'csrf-token-value'), String(value));
  }
});
