import t from 'tap';
import { redactUrl, serializeError } from '../../src/observability/log-redaction.js';

t.test('redactUrl keeps harmless parameters and redacts everything else', async (t) => {
  t.equal(redactUrl('/healthz'), '/healthz');
  t.equal(
    redactUrl('/authorize?response_type=code&client_id=app&state=xyz&code_challenge=abc&code_challenge_method=S256&scope=openid'),
    '/authorize?response_type=code&client_id=app&state=[redacted]&code_challenge=[redacted]&code_challenge_method=S256&scope=openid',
  );
  t.equal(redactUrl('/cb?code=SECRET&iss=x'), '/cb?code=[redacted]&iss=[redacted]');
  t.equal(redactUrl('/userinfo?access_token=SECRET'), '/userinfo?access_token=[redacted]');
  t.equal(
    redactUrl('/end-session?id_token_hint=eyJ.SECRET.sig&post_logout_redirect_uri=https%3A%2F%2Fapp%2Fbye&state=xyz'),
    '/end-session?id_token_hint=[redacted]&post_logout_redirect_uri=https%3A%2F%2Fapp%2Fbye&state=[redacted]',
    'the ID token of a logout request is never logged',
  );
  t.equal(redactUrl('/userinfo?acc%65ss_token=SECRET'), '/userinfo?acc%65ss_token=[redacted]', 'an escaped name is not trusted');
  t.equal(redactUrl('/x?client_id%3D=SECRET'), '/x?client_id%3D=[redacted]');
  t.equal(redactUrl('/x?password=a=b=c&page=2'), '/x?password=[redacted]&page=2');
  t.equal(redactUrl('/x?flag&token=s'), '/x?flag&token=[redacted]');
  t.equal(redactUrl(`/x?${'n'.repeat(100)}=v`), '/x?[redacted]=[redacted]', 'a huge name may itself be the secret');
  t.equal(redactUrl('/x?token=s#frag'), '/x?token=[redacted]');
});

t.test('serializeError keeps the useful fields and drops everything else', async (t) => {
  const err = Object.assign(new Error('parse failed'), {
    code: 'HPE_INVALID_HEADER_TOKEN',
    rawPacket: Buffer.from('Authorization: Basic c2VjcmV0'),
    body: { password: 'hunter2' },
  });
  const out = serializeError(err);
  t.equal(out.type, 'Error');
  t.equal(out.message, 'parse failed');
  t.equal(out.code, 'HPE_INVALID_HEADER_TOKEN');
  t.match(out.stack, /parse failed/);
  t.notOk('rawPacket' in out);
  t.notOk('body' in out);
  t.notOk(JSON.stringify(out).includes('hunter2'));

  const wrapped = new Error('outer', { cause: Object.assign(new TypeError('inner'), { statusCode: 400, config: { headers: { authorization: 'x' } } }) });
  const serialized = { cause: serializeError(wrapped).cause as Record<string, unknown> };
  t.equal(serialized.cause.type, 'TypeError');
  t.equal(serialized.cause.statusCode, 400);
  t.notOk('config' in serialized.cause);

  // A cycle of causes ends.
  const a = new Error('a');
  const b = new Error('b', { cause: a });
  (a as { cause?: unknown }).cause = b;
  t.doesNotThrow(() => JSON.stringify(serializeError(a)));
});
