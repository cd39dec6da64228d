/**
 * REFRESH_REUSE_GRACE: within the window, re-presenting the just-rotated
 * refresh token returns the same successor (parallel tabs, retries); after
 * it, reuse revokes the family as in strict mode. The successor is kept only
 * encrypted in the TTL store.
 */
import t from 'tap';
import { hashRefreshToken } from '../../src/tokens/refresh-tokens.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';

t.test(`refresh reuse grace window (${backendName})`, async (t) => {
  let skewMs = 0;
  const { app, services, storage } = await buildTestApp(t, { env: { REFRESH_REUSE_GRACE: '5' }, now: () => Date.now() + skewMs });
  const client = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'api:read' });
  const auth = basic(client.clientId, client.clientSecret!);
  const user = await seedUser(services, { username: 'grace' });

  const start = async () => {
    const res = await postForm(app, '/token', { grant_type: 'password', username: 'grace', password: user.password }, { authorization: auth });
    return res.json() as { access_token: string; refresh_token: string };
  };
  const refresh = (refreshToken: string) => postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, { authorization: auth });

  t.test('within the window the same successor comes back', async (t) => {
    const first = await start();
    const successor = await refresh(first.refresh_token);
    t.equal(successor.statusCode, 200);
    skewMs = 3_000;
    const retry = await refresh(first.refresh_token);
    t.equal(retry.statusCode, 200);
    t.equal(retry.json().refresh_token, successor.json().refresh_token, 'same refresh token');
    t.equal(retry.json().access_token, successor.json().access_token, 'same access token');
    t.ok(retry.json().expires_in <= successor.json().expires_in, 'expires_in counts down');
    t.equal(retry.headers['cache-control'], 'no-store');

    // The successor stays usable: no revocation happened.
    const next = await refresh(successor.json().refresh_token);
    t.equal(next.statusCode, 200);
    t.equal((await getWithToken(app, '/api/hello', next.json().access_token)).statusCode, 200);

    // The TTL store holds the successor only encrypted under the old token.
    const sealed = await storage.kv.get(`rt-grace:${hashRefreshToken(first.refresh_token)}`);
    t.type(sealed, 'string');
    t.notMatch(sealed!, successor.json().refresh_token);
    t.notMatch(Buffer.from(sealed!, 'base64url').toString('latin1'), successor.json().refresh_token);
    skewMs = 0;
  });

  t.test('concurrent refreshes of one token all get the one successor', async (t) => {
    const first = await start();
    const results = await Promise.all(Array.from({ length: 6 }, () => refresh(first.refresh_token)));
    t.same(results.map((r) => r.statusCode), [200, 200, 200, 200, 200, 200]);
    t.equal(new Set(results.map((r) => r.json().refresh_token)).size, 1, 'one successor');
  });

  t.test('after the window, reuse revokes the family', async (t) => {
    const first = await start();
    const successor = (await refresh(first.refresh_token)).json();
    skewMs = 6_000;
    try {
      const late = await refresh(first.refresh_token);
      t.equal(late.statusCode, 400);
      t.equal(late.json().error, 'invalid_grant');
      t.equal((await refresh(successor.refresh_token)).statusCode, 400, 'the successor is revoked');
      t.equal((await getWithToken(app, '/api/hello', successor.access_token)).statusCode, 401);
    } finally {
      skewMs = 0;
    }
  });

  t.test('inside the window, a token whose successor was already used is reuse', async (t) => {
    const first = await start();
    const second = (await refresh(first.refresh_token)).json();
    const third = (await refresh(second.refresh_token)).json();
    // Returning `second` would hand out a used token, and following it would
    // lead an old token to the live one: this is reuse, and revokes the family.
    const again = await refresh(first.refresh_token);
    t.equal(again.statusCode, 400);
    t.equal(again.json().error, 'invalid_grant');
    t.equal((await refresh(third.refresh_token)).statusCode, 400, 'the live token is revoked');
    t.equal((await getWithToken(app, '/api/hello', third.access_token)).statusCode, 401);
  });
});
