import t from 'tap';
import { generateClientId, generateClientSecret, hashClientSecret } from '../../src/clients/secret.js';
import { OAuthError } from '../../src/errors.js';
import { createClientAuthenticator, extractClientCredentials, parseClientBasic } from '../../src/oauth/client-auth.js';
import { createThrottle } from '../../src/security/throttle.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { testClient } from '../helpers/client.js';
import { errorCode } from '../helpers/errors.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

t.test('parseClientBasic: form-urlencoded before base64 (RFC 6749 §2.3.1)', async (t) => {
  t.same(parseClientBasic(`Basic ${b64('client:secret')}`), { clientId: 'client', secret: 'secret' });
  t.same(parseClientBasic(`basic ${b64('client:secret')}`), { clientId: 'client', secret: 'secret' }, 'scheme is case-insensitive');
  t.same(parseClientBasic(`Basic ${b64('my%3Aclient:pa%3Ass%25w%2Brd+x')}`), { clientId: 'my:client', secret: 'pa:ss%w+rd x' });
  t.same(parseClientBasic(`Basic ${b64('client:a:b')}`), { clientId: 'client', secret: 'a:b' }, 'split at the first colon');
  t.same(parseClientBasic(`Basic ${b64('client:')}`), { clientId: 'client', secret: '' });
  t.same(parseClientBasic(`Basic ${b64('caf%C3%A9:s')}`), { clientId: 'café', secret: 's' });
  t.equal(parseClientBasic('Bearer abc'), null, 'not Basic');
  t.equal(errorCode(() => parseClientBasic('Basic')), 'invalid_client');
  t.equal(errorCode(() => parseClientBasic('Basic !!!!')), 'invalid_client');
  t.equal(errorCode(() => parseClientBasic(`Basic ${b64('no-colon')}`)), 'invalid_client');
  t.equal(errorCode(() => parseClientBasic(`Basic ${b64(':secret')}`)), 'invalid_client', 'empty client_id');
  t.equal(errorCode(() => parseClientBasic(`Basic ${b64('client:%E0%A4%A')}`)), 'invalid_client', 'broken percent-encoding');
  t.equal(errorCode(() => parseClientBasic(`Basic ${Buffer.from([0x63, 0x3a, 0xff]).toString('base64')}`)), 'invalid_client', 'not UTF-8');
});

t.test('extractClientCredentials: exactly one method', async (t) => {
  const header = `Basic ${b64('c1:s1')}`;
  t.same(extractClientCredentials(header, {}), { method: 'client_secret_basic', clientId: 'c1', secret: 's1', assertion: null });
  t.same(extractClientCredentials(header, { client_id: 'c1' }), { method: 'client_secret_basic', clientId: 'c1', secret: 's1', assertion: null });
  t.same(extractClientCredentials(undefined, { client_id: 'c2', client_secret: 's2' }), { method: 'client_secret_post', clientId: 'c2', secret: 's2', assertion: null });
  t.same(extractClientCredentials(undefined, { client_id: 'pub' }), { method: 'none', clientId: 'pub', secret: null, assertion: null });
  t.equal(errorCode(() => extractClientCredentials(header, { client_secret: 's1' })), 'invalid_request', 'Basic and post');
  t.equal(errorCode(() => extractClientCredentials(header, { client_id: 'other' })), 'invalid_request', 'two different client ids');
  t.equal(errorCode(() => extractClientCredentials(undefined, { client_secret: 's' })), 'invalid_request', 'secret without id');
  t.equal(errorCode(() => extractClientCredentials(undefined, {})), 'invalid_client', 'no authentication at all');
  t.equal(errorCode(() => extractClientCredentials('Bearer x', {})), 'invalid_client');
  t.equal(errorCode(() => extractClientCredentials(undefined, { client_id: 'c', client_assertion: 'x', client_assertion_type: 'y' })), 'invalid_client');
  t.equal(errorCode(() => extractClientCredentials(header, { client_assertion: 'x' })), 'invalid_request');
});

t.test('a burst of bad client secrets is counted before the next check: at most MAX_FAILED_ATTEMPTS checks per client and IP', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const secret = generateClientSecret();
  const client = testClient({
    clientId: 'machine',
    clientSecretHash: hashClientSecret(secret),
    clientName: 'Machine',
    redirectUris: [],
    grantTypes: ['client_credentials'],
    responseTypes: [],
    scope: 'api:read',
  });

  let checked = 0;
  const auth = createClientAuthenticator({
    // Cached lookups still resolve asynchronously, so concurrent requests interleave here.
    clients: { find: async (id) => (id === client.clientId ? client : null) },
    throttle: createThrottle(kv, { maxFailedAttempts: 10, failedAttemptWindowSeconds: 60 }),
    kv,
    now: Date.now,
    // Called once per secret found wrong, i.e. per check that failed.
    metrics: { loginFailed: () => void (checked += 1) },
  });
  const attempt = (s: string, ip = '192.0.2.1') => auth.authenticate(`Basic ${b64(`machine:${s}`)}`, {}, ip);
  const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => attempt(`guess-${i}`)));
  t.equal(checked, 10, 'ten secrets were checked');
  const codes = results.map((r) => (r.status === 'rejected' && r.reason instanceof OAuthError ? r.reason.error : 'ok'));
  t.equal(codes.filter((c) => c === 'invalid_client').length, 9);
  t.equal(codes.filter((c) => c === 'too_many_requests').length, 21, 'the tenth failure and everything after it: 429');
  const locked = await attempt(secret).catch((err: unknown) => err);
  t.ok(locked instanceof OAuthError && locked.error === 'too_many_requests', 'the right secret waits out the lockout at that address');
  t.equal((await attempt(secret, '192.0.2.2')).clientId, 'machine', 'from another address it works');
});

t.test('client ids never start with "-" (they are typed as CLI arguments)', async (t) => {
  // 4,000 draws: a leading dash (one in 64 without the rule) would show up about 60 times.
  const ids = Array.from({ length: 4_000 }, generateClientId);
  t.notOk(ids.some((id) => id.startsWith('-')));
  t.ok(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id)));
});
