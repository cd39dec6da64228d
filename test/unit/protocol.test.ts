/**
 * `oauth/protocol.ts` is the one table of what the server speaks: metadata,
 * client registration rules, the token endpoint's dispatch and the metrics
 * derive from it, so none of them can drift from the others.
 */
import t from 'tap';
import { validateClientMetadata } from '../../src/clients/metadata.js';
import { loadConfig } from '../../src/config.js';
import { ClientMetadataError } from '../../src/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createGrantHandlers, GRANT_PARAMETERS } from '../../src/oauth/grants/index.js';
import type { GrantDeps } from '../../src/oauth/grants/types.js';
import { buildServerMetadata } from '../../src/oauth/metadata.js';
import {
  AUTH_METHOD_NAMES,
  CONFIDENTIAL_AUTH_METHODS,
  GRANT_TYPE_NAMES,
  GRANT_TYPES,
  PKCE_METHODS,
  RESPONSE_TYPE_NAMES,
  RESPONSE_TYPES,
  responseTypesFor,
  TOKEN_GRANT_TYPES,
} from '../../src/oauth/protocol.js';

const config = loadConfig({});

t.test('server metadata lists exactly what the table supports', async (t) => {
  const metadata = buildServerMetadata(config);
  t.same(metadata.grant_types_supported, GRANT_TYPE_NAMES);
  t.same(metadata.response_types_supported, RESPONSE_TYPE_NAMES);
  t.same(metadata.code_challenge_methods_supported, PKCE_METHODS);
  t.same(metadata.token_endpoint_auth_methods_supported, AUTH_METHOD_NAMES);
  t.same(metadata.introspection_endpoint_auth_methods_supported, CONFIDENTIAL_AUTH_METHODS);
  t.notOk(CONFIDENTIAL_AUTH_METHODS.includes('none'), 'introspection needs an authenticated client (RFC 7662 §2.1)');
});

t.test('metadata: client metadata documents and none together (clients choose CIMD only with both); the registration endpoint unless registration is off', async (t) => {
  const metadata = buildServerMetadata(config);
  t.equal(metadata.client_id_metadata_document_supported, true);
  t.ok((metadata.token_endpoint_auth_methods_supported as string[]).includes('none'));
  t.equal(metadata.registration_endpoint, 'http://localhost:3000/oauth/register');
  t.equal(buildServerMetadata(loadConfig({ DYNAMIC_REGISTRATION: 'token' })).registration_endpoint, 'http://localhost:3000/oauth/register');
  const off = buildServerMetadata(loadConfig({ DYNAMIC_REGISTRATION: 'off' }));
  t.notOk('registration_endpoint' in off, 'not advertised when off');
  t.equal(off.client_id_metadata_document_supported, true);
});

t.test('the token endpoint has a handler for each grant it serves, and no other', async (t) => {
  const handlers = createGrantHandlers({} as GrantDeps);
  t.same(Object.keys(handlers).sort(), [...TOKEN_GRANT_TYPES].sort());
  t.same(Object.keys(GRANT_PARAMETERS).sort(), [...TOKEN_GRANT_TYPES].sort(), 'and its documented parameters');
  t.notOk(TOKEN_GRANT_TYPES.includes('implicit' as never), 'implicit is served by the authorization endpoint');
  for (const r of RESPONSE_TYPE_NAMES) t.ok(GRANT_TYPE_NAMES.includes(RESPONSE_TYPES[r].grantType), `response type ${r} belongs to a supported grant`);
});

t.test('registration rules follow the table', async (t) => {
  t.same(responseTypesFor(['authorization_code', 'refresh_token']), ['code']);
  t.same(responseTypesFor(['implicit']), ['token']);
  t.same(responseTypesFor(['client_credentials']), []);
  const name = { client_name: 'x', redirect_uris: ['https://app.example/cb'] };
  for (const grant of GRANT_TYPE_NAMES.filter((g) => GRANT_TYPES[g].confidentialOnly)) {
    t.throws(() => validateClientMetadata({ ...name, grant_types: [grant], token_endpoint_auth_method: 'none' }, config.scopes), ClientMetadataError, `${grant} needs a confidential client`);
  }
  t.throws(() => validateClientMetadata({ ...name, grant_types: ['refresh_token'] }, config.scopes), ClientMetadataError, 'refresh_token alone issues nothing');
  for (const grant of GRANT_TYPE_NAMES.filter((g) => GRANT_TYPES[g].issuesRefreshTokens)) {
    const meta = validateClientMetadata({ ...name, grant_types: [grant, 'refresh_token'] }, config.scopes);
    t.same(meta.responseTypes, responseTypesFor([grant]), `${grant} + refresh_token: response types derived`);
  }
});

t.test('the device grant: its endpoint in metadata; public (none) or confidential device clients without redirect URIs (RFC 8628 §3.1)', async (t) => {
  t.equal(buildServerMetadata(config).device_authorization_endpoint, 'http://localhost:3000/device_authorization');
  const device = 'urn:ietf:params:oauth:grant-type:device_code';
  for (const method of ['none', 'client_secret_basic']) {
    const meta = validateClientMetadata({ client_name: 'TV', grant_types: [device, 'refresh_token'], token_endpoint_auth_method: method }, config.scopes);
    t.same(meta.responseTypes, [], `${method}: no response types, so no redirect URIs needed`);
  }
});

t.test('metrics count every grant type by name and nothing else', async (t) => {
  const metrics = createMetrics();
  for (const g of GRANT_TYPE_NAMES) metrics.tokenIssued(g);
  metrics.tokenIssued('urn:example:made-up');
  const body = (await metrics.render()).body;
  for (const g of GRANT_TYPE_NAMES) t.match(body, `grant_type="${g}"`);
  t.match(body, 'grant_type="other"');
  t.notMatch(body, 'made-up');
});
