/**
 * Access tokens verified once are remembered by their exact text
 * (`tokens/verify.ts`). Each case first has the token accepted (so it is
 * remembered), then changes what a remembered verification must not hide:
 * the clock passes `exp`, the route wants another audience, the token is
 * revoked, its key is no longer published, or the text differs by one
 * character.
 */
import t from 'tap';
import { KEYS_CHANNEL } from '../../src/tokens/keys.js';
import { buildTestApp, seedClient } from '../helpers/app.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';
import { eventually } from '../helpers/wait.js';

t.test('a remembered verification is checked again where it can change', async (t) => {
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  const { app, services, storage } = await buildTestApp(t, { now });
  const machine = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read' });
  const auth = basic(machine.clientId, machine.clientSecret!);
  const issue = async () => {
    const res = await postForm(app, '/token', { grant_type: 'client_credentials' }, { authorization: auth });
    t.equal(res.statusCode, 200);
    return res.json().access_token as string;
  };
  const hello = async (token: string) => {
    const res = await getWithToken(app, '/api/hello', token);
    return { status: res.statusCode, challenge: String(res.headers['www-authenticate'] ?? '') };
  };

  t.test('expiry', async (t) => {
    t.teardown(() => {
      offsetMs = 0;
    });
    const token = await issue();
    t.equal((await hello(token)).status, 200);
    t.equal((await hello(token)).status, 200, 'again (remembered)');
    offsetMs = 901_000; // past exp (ACCESS_TOKEN_TTL 900 s)
    const after = await hello(token);
    t.equal(after.status, 401);
    t.match(after.challenge, /expired/);
  });

  t.test('another audience', async (t) => {
    const token = await issue();
    t.equal((await hello(token)).status, 200);
    const res = await app.inject({
      method: 'POST',
      url: '/mcp',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      payload: { jsonrpc: '2.0', id: 1, method: 'ping' },
    });
    t.equal(res.statusCode, 401, 'a token for /api is not one for /mcp, remembered or not');
    t.match(String(res.headers['www-authenticate']), /not meant for this resource/);
  });

  t.test('revocation', async (t) => {
    const token = await issue();
    t.equal((await hello(token)).status, 200);
    t.equal((await postForm(app, '/revoke', { token }, { authorization: auth })).statusCode, 200);
    t.equal((await hello(token)).status, 401, 'refused at once');
  });

  t.test('a changed signature', async (t) => {
    const token = await issue();
    t.equal((await hello(token)).status, 200);
    const last = token.at(-2) === 'A' ? 'B' : 'A';
    const forged = `${token.slice(0, -2)}${last}${token.at(-1)!}`;
    t.equal((await hello(forged)).status, 401);
  });

  t.test('its key no longer published', async (t) => {
    const token = await issue();
    t.equal((await hello(token)).status, 200);
    const kid = (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid;
    // As an operator would after a compromise: a new key, the old one deleted, every instance told to reload.
    await services.tokens.keys.rotate();
    await storage.db.query('DELETE FROM signing_keys WHERE kid = $1', [kid]);
    await storage.kv.publish(KEYS_CHANNEL, kid);
    t.ok(await eventually(2_000, async () => (await hello(token)).status === 401, 20), 'refused once the key set is reloaded');
  });
});
