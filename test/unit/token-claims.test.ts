import t from 'tap';
import type { Client, User } from '../../src/storage/types.js';
import { accessTokenClaims, atHash, BACKCHANNEL_LOGOUT_EVENT, idTokenClaims, joseToInvalidToken, logoutTokenClaims } from '../../src/tokens/jwt.js';
import { generateRefreshToken, hashRefreshToken, isRefreshTokenShape, openSuccessor, sealSuccessor } from '../../src/tokens/refresh-tokens.js';

const client = { clientId: 'client-1', scope: 'openid api:read' } as Client;
const user = { id: 'user-1', username: 'alice', roles: ['admin'] } as unknown as User;
const ctx = { issuer: 'https://as.example', iat: 1_700_000_000, ttlSeconds: 900 };

t.test('access token claims (RFC 9068 §2.2)', async (t) => {
  t.same(accessTokenClaims({ client, user, scopes: ['openid', 'api:read'], authTime: 1_699_999_000, audience: 'https://as.example/api', jti: 'j1' }, ctx), {
    iss: 'https://as.example',
    sub: 'user-1',
    aud: 'https://as.example/api',
    client_id: 'client-1',
    scope: 'openid api:read',
    iat: 1_700_000_000,
    exp: 1_700_000_900,
    jti: 'j1',
    roles: ['admin'],
    preferred_username: 'alice',
    auth_time: 1_699_999_000,
  });
  const machine = accessTokenClaims({ client, user: null, scopes: ['api:read'], audience: 'aud', jti: 'j2' }, ctx);
  t.equal(machine.sub, 'client-1', 'client credentials: sub is the client_id');
  t.notOk('roles' in machine);
  t.notOk('auth_time' in machine);
  t.notOk('preferred_username' in machine);
  const unknownAuthTime = accessTokenClaims({ client, user, scopes: ['api:read'], authTime: null, audience: 'aud', jti: 'j3' }, ctx);
  t.notOk('auth_time' in unknownAuthTime);
});

t.test('ID token claims (OIDC Core §2, §3.1.3.6)', async (t) => {
  // OIDC Core Appendix A.4: the at_hash of this access token.
  t.equal(atHash('jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y'), '77QmUPtjPfzWtF2AnpK9RQ');
  const claims = idTokenClaims({ client, user, accessToken: 'jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y', nonce: 'n-0S6_WzA2Mj', authTime: 1_699_999_000 }, ctx);
  t.same(claims, {
    iss: 'https://as.example',
    sub: 'user-1',
    aud: 'client-1',
    exp: 1_700_000_900,
    iat: 1_700_000_000,
    azp: 'client-1',
    at_hash: '77QmUPtjPfzWtF2AnpK9RQ',
    auth_time: 1_699_999_000,
    nonce: 'n-0S6_WzA2Mj',
  });
  const bare = idTokenClaims({ client, user, accessToken: 'x', authTime: null }, ctx);
  t.notOk('nonce' in bare);
  t.notOk('auth_time' in bare);
});

t.test('logout token claims (Back-Channel Logout §2.4): iss, aud, iat, exp, jti, sub, sid, the event; never a nonce', async (t) => {
  const claims = logoutTokenClaims({ clientId: 'client-1', sub: 'user-1', sid: 'sid-1', jti: 'j9' }, { ...ctx, ttlSeconds: 120 });
  t.same(claims, {
    iss: 'https://as.example',
    aud: 'client-1',
    iat: 1_700_000_000,
    exp: 1_700_000_120,
    jti: 'j9',
    sub: 'user-1',
    sid: 'sid-1',
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
  });
  t.equal(BACKCHANNEL_LOGOUT_EVENT, 'http://schemas.openid.net/event/backchannel-logout');
  t.notOk('nonce' in claims);
});

t.test('ID token sid: carried when given, absent otherwise', async (t) => {
  t.equal(idTokenClaims({ client, user, accessToken: 'at', authTime: null, sid: 's1' }, ctx).sid, 's1');
  t.notOk('sid' in idTokenClaims({ client, user, accessToken: 'at', authTime: null }, ctx));
});

t.test('jose errors become invalid_token by code', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ code: 'ERR_JWT_EXPIRED' }, /expired/],
    [{ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' }, /typ/],
    [{ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iss' }, /issuer/],
    [{ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' }, /aud/],
    [{ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'jti' }, /"jti"/],
    [{ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' }, /signature/],
    [{ code: 'ERR_JOSE_ALG_NOT_ALLOWED' }, /algorithm/],
    [{ code: 'ERR_JWS_INVALID' }, /malformed/],
    [new TypeError('anything'), /invalid/],
  ];
  for (const [err, description] of cases) {
    const translated = joseToInvalidToken(err);
    t.equal(translated.error, 'invalid_token');
    t.equal(translated.status, 401);
    t.match(translated.description, description);
  }
});

t.test('refresh tokens and the sealed grace successor', async (t) => {
  const token = generateRefreshToken();
  t.ok(isRefreshTokenShape(token));
  t.equal(Buffer.from(token, 'base64url').length, 32, '256 bits');
  t.not(generateRefreshToken(), token);
  t.notOk(isRefreshTokenShape(`${token}x`));
  t.notOk(isRefreshTokenShape('a.b.c'));
  const hash = hashRefreshToken(token);
  t.not(hash, token);
  t.equal(hashRefreshToken(token), hash);

  const sealed = sealSuccessor(token, hash, '{"refresh_token":"next"}');
  t.notMatch(sealed, 'next');
  t.equal(openSuccessor(token, hash, sealed), '{"refresh_token":"next"}');
  t.equal(openSuccessor(generateRefreshToken(), hash, sealed), null, 'another token cannot open it');
  t.equal(openSuccessor(token, hashRefreshToken('other'), sealed), null, 'bound to the token hash (AAD)');
  const raw = Buffer.from(sealed, 'base64url');
  raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
  t.equal(openSuccessor(token, hash, raw.toString('base64url')), null, 'tampering is detected');
  t.equal(openSuccessor(token, hash, 'short'), null);
});
