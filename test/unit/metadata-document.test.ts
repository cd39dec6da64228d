/** Client ID Metadata Documents without I/O: the client_id URL forms, the document's rules, how long it is cached. */
import t from 'tap';
import { checkClientIdUrl, DOCUMENT_CACHE, documentCacheSeconds, parseMetadataDocument } from '../../src/clients/metadata-document.js';

const KNOWN = ['openid', 'profile', 'offline_access', 'api:read', 'api:write'];
const URL_ID = 'https://app.example/oauth/client.json';

t.test('client_id URLs: https, a path, canonical; no fragment, credentials or dot segments', async (t) => {
  for (const ok of [URL_ID, 'https://app.example:8443/c.json', 'https://app.example/c?v=1']) t.doesNotThrow(() => checkClientIdUrl(ok), ok);
  for (const [bad, why] of [
    ['http://app.example/c.json', /https/],
    ['https://app.example', /path/],
    ['https://app.example/', /path/],
    ['https://app.example/a/./c.json', /canonically/],
    ['https://app.example/a/../c.json', /canonically/],
    ['https://App.Example/c.json', /canonically/],
    ['https://app.example:443/c.json', /canonically/],
    ['https://app.example/c.json#x', /fragment/],
    ['https://user:pw@app.example/c.json', /credentials/],
    ['https://', /not a URL/],
  ] as const) {
    t.throws(() => checkClientIdUrl(bad), { name: 'OAuthError', error: 'invalid_client', description: why }, bad);
  }
});

t.test('a document: client_id equal to the URL, public only, unknown fields and ungrantable values ignored', async (t) => {
  const doc = (fields: Record<string, unknown>) => JSON.stringify({ client_id: URL_ID, redirect_uris: ['https://app.example/cb'], ...fields });
  const meta = parseMetadataDocument(URL_ID, doc({ client_name: 'App', logo_uri: 'x', tos_uri: 'y', jwks: { keys: [] }, scope: 'openid api:read nope admin', grant_types: ['authorization_code', 'implicit'] }), KNOWN);
  t.match(meta, { clientName: 'App', redirectUris: ['https://app.example/cb'], grantTypes: ['authorization_code'], responseTypes: ['code'], tokenEndpointAuthMethod: 'none', scope: KNOWN.join(' '), resourceServer: false });
  const defaults = parseMetadataDocument(URL_ID, doc({}), KNOWN);
  t.same(defaults.grantTypes, ['authorization_code', 'refresh_token']);
  t.equal(defaults.clientName, 'Unnamed application');
  t.equal(defaults.scope, KNOWN.join(' '));
  t.equal(parseMetadataDocument(URL_ID, doc({ scope: 'nothing known' }), KNOWN).scope, KNOWN.join(' '), 'no known scope asked for: the default');
  t.same(defaults.postLogoutRedirectUris, [], 'no post-logout redirect URI unless the document lists one');
  t.same(parseMetadataDocument(URL_ID, doc({ post_logout_redirect_uris: ['https://app.example/bye'] }), KNOWN).postLogoutRedirectUris, ['https://app.example/bye']);
  t.ok(parseMetadataDocument(URL_ID, doc({ id_token_signed_response_alg: 'RS256', subject_type: 'public', userinfo_signed_response_alg: null }), KNOWN), 'OpenID Connect values this server honours are accepted');

  t.equal(defaults.backchannelLogoutUri, null, 'no back-channel logout URI unless the document has one');
  const bc = parseMetadataDocument(URL_ID, doc({ backchannel_logout_uri: 'https://app.example/bc', backchannel_logout_session_required: true }), KNOWN);
  t.equal(bc.backchannelLogoutUri, 'https://app.example/bc');
  t.equal(bc.backchannelLogoutSessionRequired, true);
  t.equal(parseMetadataDocument(URL_ID, doc({ backchannel_logout_uri: 'https://127.0.0.1:8443/bc' }), KNOWN, true).backchannelLogoutUri, 'https://127.0.0.1:8443/bc', 'CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS lifts the address rule');

  for (const [body, why] of [
    [JSON.stringify({ client_id: `${URL_ID}x`, redirect_uris: ['https://app.example/cb'] }), /client_id is not this URL/],
    [JSON.stringify({ redirect_uris: ['https://app.example/cb'] }), /client_id is not this URL/],
    [doc({ client_secret: 'x' }), /secret/],
    [doc({ client_secret_expires_at: 0 }), /secret/],
    [doc({ token_endpoint_auth_method: 'private_key_jwt' }), /"private_key_jwt" is not supported/],
    [doc({ token_endpoint_auth_method: 7 }), /token_endpoint_auth_method is not supported/],
    [doc({ redirect_uris: [1] }), /redirect_uris/],
    [doc({ client_name: ['x'] }), /client_name/],
    [doc({ response_types: ['token'] }), /code/],
    [doc({ grant_types: ['password'] }), /authorization_code/],
    [doc({ redirect_uris: ['http://app.example/cb'] }), /https/],
    [doc({ post_logout_redirect_uris: 'https://app.example/bye' }), /post_logout_redirect_uris must be a list/],
    [doc({ post_logout_redirect_uris: ['http://app.example/bye'] }), /post-logout redirect URI .* must use https/],
    [doc({ post_logout_redirect_uris: ['https://app.example/bye#x'] }), /fragment/],
    [doc({ id_token_signed_response_alg: 'ES256' }), /id_token_signed_response_alg must be "RS256"/],
    [doc({ userinfo_encrypted_response_alg: 'RSA-OAEP' }), /userinfo_encrypted_response_alg is not supported/],
    [doc({ backchannel_logout_uri: ['https://app.example/bc'] }), /backchannel_logout_uri must be a string/],
    [doc({ backchannel_logout_uri: 'http://app.example/bc' }), /back-channel logout URI .* must use https/],
    [doc({ backchannel_logout_uri: 'https://192.168.1.1/bc' }), /not public/],
    [doc({ backchannel_logout_session_required: 'yes' }), /true or false/],
    ['[]', /JSON object/],
    ['nope', /not JSON/],
  ] as const) {
    t.throws(() => parseMetadataDocument(URL_ID, body, KNOWN), { name: 'OAuthError', error: 'invalid_client', description: why }, body.slice(0, 60));
  }
});

t.test('cache lifetime from the caching headers, within bounds', async (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  t.equal(documentCacheSeconds({}, now), DOCUMENT_CACHE.defaultSeconds, 'no headers: the default');
  t.equal(documentCacheSeconds({ 'cache-control': 'public, max-age=3600' }, now), 3_600);
  t.equal(documentCacheSeconds({ 'cache-control': 'max-age=3600', age: '600' }, now), 3_000, 'less its age');
  t.equal(documentCacheSeconds({ 'cache-control': 'max-age=5' }, now), DOCUMENT_CACHE.minSeconds, 'at least the floor');
  t.equal(documentCacheSeconds({ 'cache-control': 'max-age=99999999' }, now), DOCUMENT_CACHE.maxSeconds, 'at most the ceiling');
  t.equal(documentCacheSeconds({ 'cache-control': 'no-store' }, now), DOCUMENT_CACHE.minSeconds, 'no-store: the floor, never every request');
  t.equal(documentCacheSeconds({ 'cache-control': 'no-cache, max-age=600' }, now), DOCUMENT_CACHE.minSeconds);
  t.equal(documentCacheSeconds({ expires: 'Wed, 01 Jan 2030 02:00:00 GMT', date: 'Wed, 01 Jan 2030 00:00:00 GMT' }, now), 7_200, 'Expires against Date');
  t.equal(documentCacheSeconds({ expires: 'Wed, 01 Jan 2030 00:30:00 GMT' }, now), 1_800, 'Expires against now without Date');
  t.equal(documentCacheSeconds({ expires: '0' }, now), DOCUMENT_CACHE.minSeconds, 'an invalid Expires: expired, so the floor');
  t.equal(documentCacheSeconds({ 'cache-control': 'max-age=120', expires: 'Wed, 01 Jan 2030 02:00:00 GMT' }, now), 120, 'max-age wins over Expires');
});
