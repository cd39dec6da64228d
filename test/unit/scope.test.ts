import t from 'tap';
import { grantScopes, narrowScopes, parseScopeParameter, USER_ONLY_SCOPES } from '../../src/oauth/scope.js';
import { errorCode } from '../helpers/errors.js';

const known = ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'];

t.test('parseScopeParameter (RFC 6749 §3.3)', async (t) => {
  t.equal(parseScopeParameter(undefined), undefined);
  t.equal(parseScopeParameter('   '), undefined, 'blank is "not requested"');
  t.same(parseScopeParameter('api:read  openid api:read'), ['api:read', 'openid'], 'duplicates and extra spaces dropped, order kept');
  t.equal(errorCode(() => parseScopeParameter('api:read "quoted"')), 'invalid_scope');
  t.equal(errorCode(() => parseScopeParameter('back\\slash')), 'invalid_scope');
  t.equal(errorCode(() => parseScopeParameter('tab\tseparated')), 'invalid_scope');
});

t.test('grantScopes: requested ∩ registered, default all registered', async (t) => {
  const registered = ['openid', 'api:read'];
  t.same(grantScopes(undefined, registered, known), ['openid', 'api:read']);
  t.same(grantScopes(['api:read', 'api:write'], registered, known), ['api:read'], 'known but unregistered scopes are dropped');
  t.equal(errorCode(() => grantScopes(['api:write'], registered, known)), 'invalid_scope', 'nothing left');
  t.equal(errorCode(() => grantScopes(['api:read', 'made:up'], registered, known)), 'invalid_scope', 'unknown scope');
  t.same(grantScopes(undefined, ['api:read', 'retired'], known), ['api:read'], 'a registered scope the server no longer knows is not granted');
  const forClient = (s: string) => !USER_ONLY_SCOPES.has(s);
  t.same(grantScopes(undefined, registered, known, forClient), ['api:read']);
  t.equal(errorCode(() => grantScopes(['openid'], registered, known, forClient)), 'invalid_scope');
  t.equal(errorCode(() => grantScopes(undefined, ['openid'], known, forClient)), 'invalid_scope');
});

t.test('narrowScopes: a refresh never widens (RFC 6749 §6)', async (t) => {
  const original = ['openid', 'api:read', 'api:write'];
  const registered = ['openid', 'api:read', 'api:write'];
  t.same(narrowScopes(undefined, original, registered), original);
  t.same(narrowScopes(['api:read'], original, registered), ['api:read']);
  t.equal(errorCode(() => narrowScopes(['api:read', 'profile'], original, registered)), 'invalid_scope');
  t.same(narrowScopes(undefined, original, ['api:read']), ['api:read'], 'scopes the client lost since are dropped');
  t.equal(errorCode(() => narrowScopes(['api:write'], original, ['api:read'])), 'invalid_scope');
});
