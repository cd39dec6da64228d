/**
 * Resource identifiers and the resource registry (RFC 8707, RFC 9728 §3.1):
 * which URIs name the same resource, where a resource's metadata lives,
 * `RESOURCES` and `ACCESS_TOKEN_AUDIENCE` at start, and narrowing at the
 * token endpoint.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { createCodeStore } from '../../src/oauth/codes.js';
import { resourceKey, resourceMetadataUrl } from '../../src/oauth/resource-uri.js';
import { createResourceRegistry, protectedResourceMetadata } from '../../src/oauth/resources.js';
import { createMemoryKv } from '../../src/storage/kv/memory.js';
import { errorCode } from '../helpers/errors.js';
import { DPOP_ALGORITHMS } from '../../src/tokens/dpop.js';

const API = 'https://as.example/api';
const MCP = 'https://as.example/mcp';

t.test('resourceKey: spellings of one resource share a key, other resources do not', async (t) => {
  const same = ['https://as.example/api', 'HTTPS://AS.EXAMPLE/api', 'https://As.Example:443/api', 'https://as.example/api/', 'https://as.example/v1/../api'];
  for (const spelling of same) t.equal(resourceKey(spelling), 'https://as.example/api', spelling);
  t.equal(resourceKey('http://localhost:80/mcp'), 'http://localhost/mcp', 'http default port');
  t.equal(resourceKey('https://as.example/'), 'https://as.example', 'a bare origin, with or without its slash');
  t.equal(resourceKey('https://as.example'), 'https://as.example');
  t.equal(resourceKey('https://as.example/api?v=1'), 'https://as.example/api?v=1', 'a query is kept and compared');

  const different = ['https://as.example/API', 'https://as.example/api//', 'http://as.example/api', 'https://as.example:8443/api', 'https://user@as.example/api', 'https://as.example/api?'];
  for (const other of different) t.not(resourceKey(other), 'https://as.example/api', `${other} is another resource`);

  const malformed = ['/api', 'api', '', 'https://as.example/api#x', 'https://as.example/api#', 'https:as.example/api', 'https:/as.example/api', 'https://as.example\\api', 'https://as.example/a pi', 'https://ås.example/api', ' https://as.example/api', `https://as.example/${'a'.repeat(2048)}`];
  for (const bad of malformed) t.equal(resourceKey(bad), null, `${JSON.stringify(bad.slice(0, 40))} is malformed`);
  t.equal(resourceKey('urn:example:resource'), 'urn:example:resource', 'any absolute URI is well-formed (RFC 8707 §2), though not one of ours');
});

t.test('resourceMetadataUrl: RFC 9728 §3.1 path insertion', async (t) => {
  t.equal(resourceMetadataUrl('http://localhost:3000/mcp'), 'http://localhost:3000/.well-known/oauth-protected-resource/mcp');
  t.equal(resourceMetadataUrl('https://as.example/api/'), 'https://as.example/.well-known/oauth-protected-resource/api', 'terminating slash dropped');
  t.equal(resourceMetadataUrl('https://as.example'), 'https://as.example/.well-known/oauth-protected-resource', 'no path');
  t.equal(resourceMetadataUrl('https://as.example/tenant/api'), 'https://as.example/.well-known/oauth-protected-resource/tenant/api');
});

t.test('RESOURCES: defaults, validation, and ACCESS_TOKEN_AUDIENCE as the default resource', async (t) => {
  const base = { ISSUER: 'https://as.example' };
  const config = loadConfig(base);
  t.same(config.resources, [API, MCP], 'default: $ISSUER/api and $ISSUER/mcp');
  t.equal(config.defaultResource, API, 'the default resource is $ISSUER/api');

  const own = loadConfig({ ...base, RESOURCES: 'https://api.example.com/v1/  https://mcp.example.com' });
  t.same(own.resources, ['https://api.example.com/v1/', 'https://mcp.example.com'], 'kept as written: their spelling goes into aud');
  t.equal(own.defaultResource, 'https://api.example.com/v1/', 'the first, when ACCESS_TOKEN_AUDIENCE is not set');

  const named = loadConfig({ ...base, RESOURCES: 'https://api.example.com https://mcp.example.com', ACCESS_TOKEN_AUDIENCE: 'https://MCP.example.com/' });
  t.equal(named.defaultResource, 'https://mcp.example.com', 'ACCESS_TOKEN_AUDIENCE picks the default among RESOURCES, in the RESOURCES spelling');

  const old = loadConfig({ ...base, ACCESS_TOKEN_AUDIENCE: 'https://api.example.com' });
  t.same(old.resources, ['https://api.example.com', API, MCP], 'an older deployment that set only ACCESS_TOKEN_AUDIENCE: kept as a resource');
  t.equal(old.defaultResource, 'https://api.example.com', 'and tokens that name no resource keep their aud');
  t.equal(loadConfig({ ...base, ACCESS_TOKEN_AUDIENCE: `${API}/` }).resources.length, 2, 'an audience already among the defaults adds nothing');
  t.equal(loadConfig({ ISSUER: 'http://localhost:3000', RESOURCES: 'http://127.0.0.1:4000/api' }).resources[0], 'http://127.0.0.1:4000/api', 'plain http on loopback');

  const refused: Array<[Record<string, string>, string, RegExp]> = [
    [{ RESOURCES: 'https://api.example.com https://API.example.com/' }, 'RESOURCES', /name the same resource/],
    [{ RESOURCES: '/api' }, 'RESOURCES', /absolute http\(s\) URL/],
    [{ RESOURCES: 'urn:example:api' }, 'RESOURCES', /absolute http\(s\) URL/],
    [{ RESOURCES: 'https://api.example.com#x' }, 'RESOURCES', /fragment/],
    [{ RESOURCES: 'http://api.example.com' }, 'RESOURCES', /https/],
    [{ RESOURCES: 'https://user:pw@api.example.com' }, 'RESOURCES', /credentials/],
    [{ RESOURCES: 'https://api.example.com?tenant=1' }, 'RESOURCES', /query/],
    [{ RESOURCES: 'https://api.example.com', ACCESS_TOKEN_AUDIENCE: 'https://other.example.com' }, 'ACCESS_TOKEN_AUDIENCE', /must be one of RESOURCES/],
    [{ ACCESS_TOKEN_AUDIENCE: 'my-api' }, 'ACCESS_TOKEN_AUDIENCE', /names the default resource now, one of RESOURCES: "my-api" is not an absolute http\(s\) URL/],
  ];
  for (const [env, variable, message] of refused) {
    t.throws(() => loadConfig({ ...base, ...env }), { name: 'ConfigError', variable, message }, JSON.stringify(env));
  }
});

t.test('the registry: what a request may ask for, and narrowing at the token endpoint (RFC 8707 §2.2)', async (t) => {
  const registry = createResourceRegistry({ resources: [API, `${MCP}/`], defaultResource: API });
  t.equal(registry.find('HTTPS://as.example/mcp'), `${MCP}/`, 'any spelling finds the configured one');
  t.equal(registry.find('https://as.example/other'), null);
  t.equal(registry.find('not a uri'), null);

  t.same(registry.requested(undefined), [API], 'none: the default resource');
  t.same(registry.requested([MCP, API, `${API}/`]), [`${MCP}/`, API]);
  t.equal(errorCode(() => registry.requested('https://as.example/other')), 'invalid_target');
  t.equal(errorCode(() => registry.requested('relative')), 'invalid_target');

  t.equal(registry.audienceFor(undefined), API, 'no grant, none asked: the default');
  t.equal(registry.audienceFor(MCP), `${MCP}/`, 'no grant: any resource of the server');
  t.equal(errorCode(() => registry.audienceFor('https://as.example/other')), 'invalid_target', 'no grant: never an unknown one');
  t.equal(registry.audienceFor(undefined, [`${MCP}/`, API]), `${MCP}/`, 'a grant, none asked: its first resource');
  t.equal(registry.audienceFor('https://AS.example/api/', [`${MCP}/`, API]), API, 'narrowing to another resource of the grant');
  t.equal(errorCode(() => registry.audienceFor(API, [`${MCP}/`])), 'invalid_target', 'never widening');
  t.equal(registry.audienceFor(undefined, []), API, 'a grant from before resources were bound covers the default');
  t.equal(registry.audienceFor(API, []), API);
  t.equal(errorCode(() => registry.audienceFor(MCP, [])), 'invalid_target', 'and nothing else');
});

t.test('a code stored before resources were bound reads as covering none (the default)', async (t) => {
  const kv = createMemoryKv();
  t.teardown(() => kv.close());
  const codes = createCodeStore({ kv, config: { codeTtlSeconds: 60, accessTokenTtlSeconds: 900 } });
  const code = await codes.issue({
    clientId: 'c',
    redirectUri: 'https://app.example/cb',
    redirectUriSent: true,
    codeChallenge: 'x',
    userId: 'u',
    scopes: ['openid'],
    resources: [MCP],
    nonce: undefined,
    authTime: null,
  });
  t.same((await codes.take(code))?.resources, [MCP], 'kept with the code');
  // The shape an earlier version stored, without `resources`.
  const legacy = 'L'.repeat(43);
  await kv.set(`code:${createHash('sha256').update(legacy).digest('base64url')}`, JSON.stringify({ clientId: 'c', scopes: [] }), 60);
  t.same((await codes.take(legacy))?.resources, []);
});

t.test('protected resource metadata (RFC 9728 §2)', async (t) => {
  t.same(protectedResourceMetadata('https://as.example', { resource: MCP, name: 'Sample MCP server', scopes: ['api:read'] }), {
    resource: MCP,
    authorization_servers: ['https://as.example'],
    scopes_supported: ['api:read'],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
    resource_name: 'Sample MCP server',
  });
});
