/**
 * The code store's replay bookkeeping (RFC 6749 §4.1.2): in either order of
 * redemption and replay, a replay by the client the code was issued to
 * revokes what the code issued, and a replay by any other client does not.
 */
import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { createCodeStore } from '../../src/oauth/codes.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';

const grant = {
  clientId: 'owner',
  redirectUri: 'https://app.example/cb',
  redirectUriSent: true,
  codeChallenge: 'x',
  userId: 'u',
  scopes: ['openid'],
  resources: [],
  nonce: undefined,
  authTime: null,
};
const issued = { clientId: 'owner', familyId: 'f', accessTokenJti: 'j', accessTokenExpiresAt: 1 };

async function store(t: Test) {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const codes = createCodeStore({ kv, config: { codeTtlSeconds: 60, accessTokenTtlSeconds: 900 } });
  const code = await codes.issue(grant);
  t.ok(await codes.take(code), 'the first take gets the grant');
  return { codes, code, kv };
}

t.test('a replay after the redemption: the owner gets what to revoke, another client nothing', async (t) => {
  const { codes, code } = await store(t);
  t.equal(await codes.recordRedemption(code, issued), false, 'no replay seen yet');
  t.equal(await codes.recordReplay(code, 'intruder'), null);
  t.same(await codes.recordReplay(code, 'owner'), issued);
});

t.test('a replay while the redemption is in flight: only the owner\'s makes the winner revoke', async (t) => {
  const byIntruder = await store(t);
  t.equal(await byIntruder.codes.recordReplay(byIntruder.code, 'intruder'), null, 'nothing issued yet');
  t.equal(await byIntruder.codes.recordRedemption(byIntruder.code, issued), false, 'another client\'s replay revokes nothing');

  const byOwner = await store(t);
  t.equal(await byOwner.codes.recordReplay(byOwner.code, 'owner'), null, 'nothing issued yet');
  t.equal(await byOwner.codes.recordRedemption(byOwner.code, issued), true, 'the winner must revoke what it issued');
});

t.test('a marker written before the client was recorded counts for any client', async (t) => {
  const { codes, code, kv } = await store(t);
  const { clientId: _, ...legacy } = issued;
  const digest = createHash('sha256').update(code).digest('base64url');
  await kv.set(`code-redeemed:${digest}`, JSON.stringify(legacy), 60);
  t.same(await codes.recordReplay(code, 'intruder'), legacy);
});
