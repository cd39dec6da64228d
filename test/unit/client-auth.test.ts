import t from 'tap';
import { extractClientCredentials, parseClientBasic } from '../../src/oauth/client-auth.js';
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
  t.same(extractClientCredentials(header, {}), { method: 'client_secret_basic', clientId: 'c1', secret: 's1' });
  t.same(extractClientCredentials(header, { client_id: 'c1' }), { method: 'client_secret_basic', clientId: 'c1', secret: 's1' });
  t.same(extractClientCredentials(undefined, { client_id: 'c2', client_secret: 's2' }), { method: 'client_secret_post', clientId: 'c2', secret: 's2' });
  t.same(extractClientCredentials(undefined, { client_id: 'pub' }), { method: 'none', clientId: 'pub', secret: null });
  t.equal(errorCode(() => extractClientCredentials(header, { client_secret: 's1' })), 'invalid_request', 'Basic and post');
  t.equal(errorCode(() => extractClientCredentials(header, { client_id: 'other' })), 'invalid_request', 'two different client ids');
  t.equal(errorCode(() => extractClientCredentials(undefined, { client_secret: 's' })), 'invalid_request', 'secret without id');
  t.equal(errorCode(() => extractClientCredentials(undefined, {})), 'invalid_client', 'no authentication at all');
  t.equal(errorCode(() => extractClientCredentials('Bearer x', {})), 'invalid_client');
  t.equal(errorCode(() => extractClientCredentials(undefined, { client_id: 'c', client_assertion: 'x', client_assertion_type: 'y' })), 'invalid_client');
  t.equal(errorCode(() => extractClientCredentials(header, { client_assertion: 'x' })), 'invalid_request');
});
