/**
 * Protected resource metadata (RFC 9728) of the sample resources, and the
 * challenges that lead a client to it: `resource_metadata` on every error
 * of a resource route (§5.1), `scope` where a scope is needed (RFC 6750 §3,
 * step-up on 403). A route is mounted here the way the sample MCP server
 * mounts `/mcp`, with `requireBearer(services, { resource, scope })`.
 */
import Fastify from 'fastify';
import t from 'tap';
import { InsufficientScopeError, requireBearer } from '../../src/http/bearer.js';
import { sampleResource } from '../../src/http/resource-metadata.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { basic, getWithToken, postForm } from '../helpers/tokens.js';
import { DPOP_ALGORITHMS } from '../../src/tokens/dpop.js';

/** RFC 9449 §7.1: every challenge of a resource route also offers DPoP. */
const DPOP_CHALLENGE = `DPoP algs="${DPOP_ALGORITHMS.join(' ')}"`;

const ISSUER = 'http://localhost:3000';
const API = `${ISSUER}/api`;
const MCP = `${ISSUER}/mcp`;
const API_METADATA = `${ISSUER}/.well-known/oauth-protected-resource/api`;
const MCP_METADATA = `${ISSUER}/.well-known/oauth-protected-resource/mcp`;

t.test(`protected resource metadata and challenges (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t, { env: { ISSUER } });
  const machine = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read api:write' });
  const legacy = await seedClient(services, { grant_types: ['password'], scope: 'openid api:read' });
  const bob = await seedUser(services, { username: 'bob' });
  const clientToken = async (params: Record<string, string>) => {
    const res = await postForm(app, '/token', { grant_type: 'client_credentials', ...params }, { authorization: basic(machine.clientId, machine.clientSecret!) });
    return res.json().access_token as string;
  };

  t.test('GET /.well-known/oauth-protected-resource/api and /mcp describe the sample resources', async (t) => {
    for (const [url, resource, name] of [
      ['/.well-known/oauth-protected-resource/api', API, 'Sample API'],
      ['/.well-known/oauth-protected-resource/mcp', MCP, 'Sample MCP server'],
    ] as const) {
      const res = await app.inject({ url, headers: { origin: 'https://anyone.example' } });
      t.equal(res.statusCode, 200, url);
      t.match(res.headers['content-type'], /^application\/json/);
      t.same(res.json(), {
        resource,
        authorization_servers: [ISSUER],
        scopes_supported: ['api:read', 'api:write'],
        bearer_methods_supported: ['header'],
        dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
        resource_name: name,
      });
      t.equal(res.headers['access-control-allow-origin'], '*', 'readable by any origin, like discovery');
      t.match(res.headers['cache-control'], /public/);
    }
    t.equal((await app.inject({ url: '/.well-known/oauth-protected-resource' })).statusCode, 404, 'the server itself is no resource');
    const authorizationServer = (await app.inject({ url: '/.well-known/oauth-authorization-server' })).json();
    t.equal(authorizationServer.issuer, ISSUER, 'authorization_servers names an issuer whose metadata is served');
  });

  t.test('a 401 from /api names the metadata, and the metadata names the resource (RFC 9728 §5.1, §3.3)', async (t) => {
    const missing = await app.inject({ url: '/api/hello' });
    t.equal(missing.statusCode, 401);
    t.equal(missing.headers['www-authenticate'], `Bearer realm="${ISSUER}", resource_metadata="${API_METADATA}", ${DPOP_CHALLENGE}`, 'no error attribute without a token (RFC 6750 §3.1)');
    const path = new URL(API_METADATA).pathname;
    t.equal((await app.inject({ url: path })).json().resource, API, 'followed from the challenge alone');

    const invalid = await getWithToken(app, '/api/hello', 'not-a-jwt');
    t.equal(invalid.statusCode, 401);
    t.match(invalid.headers['www-authenticate'], new RegExp(`^Bearer realm="${ISSUER}", resource_metadata="${API_METADATA}", error="invalid_token", error_description="[^"]+", DPoP algs="[^"]+"$`));
    const elsewhere = await getWithToken(app, '/api/hello', await clientToken({ resource: MCP }));
    t.match(elsewhere.headers['www-authenticate'], /resource_metadata=".*\/api", error="invalid_token", error_description="[^"]*aud/, 'a token for another resource');

    const password = await postForm(app, '/token', { grant_type: 'password', username: bob.username, password: bob.password, scope: 'api:read' }, { authorization: basic(legacy.clientId, legacy.clientSecret!) });
    const admin = await getWithToken(app, '/api/admin/hello', password.json().access_token as string);
    t.equal(admin.statusCode, 403);
    t.equal(
      admin.headers['www-authenticate'],
      `Bearer realm="${ISSUER}", resource_metadata="${API_METADATA}", error="insufficient_scope", error_description="This resource needs a user with role admin.", ${DPOP_CHALLENGE}`,
      'a role no scope grants: no scope named',
    );
  });

  t.test('UserInfo, the server’s own endpoint: no resource metadata, the scope it needs', async (t) => {
    const missing = await app.inject({ url: '/userinfo' });
    t.equal(missing.statusCode, 401);
    t.equal(missing.headers['www-authenticate'], `Bearer realm="${ISSUER}", scope="openid", ${DPOP_CHALLENGE}`);
    const noOpenid = await getWithToken(app, '/userinfo', await clientToken({ resource: MCP }));
    t.equal(noOpenid.statusCode, 403);
    t.match(noOpenid.headers['www-authenticate'], /^Bearer realm="[^"]+", error="insufficient_scope", error_description="[^"]+", scope="openid", DPoP algs="[^"]+"$/);
  });

  t.test('a route mounted like /mcp: its audience, its metadata, its scope, and step-up', async (t) => {
    const mcp = Fastify();
    t.teardown(() => mcp.close());
    mcp.decorateRequest('accessToken', null);
    const resource = sampleResource(services, 'mcp');
    t.equal(resource, MCP);
    mcp.post('/mcp', { ...requireBearer(services, { resource: resource!, scope: 'api:read' }) }, async (request) => {
      const claims = request.accessToken!;
      if (!claims.scope.split(' ').includes('api:write')) throw new InsufficientScopeError('This tool needs api:write.', 'api:read api:write');
      return { sub: claims.sub };
    });
    const call = (token?: string) => mcp.inject({ method: 'POST', url: '/mcp', headers: token ? { authorization: `Bearer ${token}` } : {} });

    const missing = await call();
    t.equal(missing.statusCode, 401);
    t.equal(missing.headers['www-authenticate'], `Bearer realm="${ISSUER}", resource_metadata="${MCP_METADATA}", scope="api:read", ${DPOP_CHALLENGE}`, 'the metadata and the scope to ask for');
    const forApi = await call(await clientToken({ scope: 'api:read' }));
    t.equal(forApi.statusCode, 401, 'an /api token is refused');
    t.match(forApi.headers['www-authenticate'], /error="invalid_token".*scope="api:read", DPoP algs="[^"]+"$/);
    const writeOnly = await call(await clientToken({ resource: MCP, scope: 'api:write' }));
    t.equal(writeOnly.statusCode, 403, 'the route’s scope is checked');
    t.match(writeOnly.headers['www-authenticate'], new RegExp(`resource_metadata="${MCP_METADATA}", error="insufficient_scope", error_description="[^"]+", scope="api:read", DPoP algs="[^"]+"$`));
    const readOnly = await call(await clientToken({ resource: MCP, scope: 'api:read' }));
    t.equal(readOnly.statusCode, 403, 'a tool that needs more');
    t.match(readOnly.headers['www-authenticate'], /error="insufficient_scope", error_description="This tool needs api:write.", scope="api:read api:write", DPoP algs="[^"]+"$/, 'names the scope to step up to');
    t.same((await call(await clientToken({ resource: MCP, scope: 'api:read api:write' }))).json(), { sub: machine.clientId });

    t.throws(() => requireBearer(services, { resource: 'https://elsewhere.example/mcp' }), /not one of RESOURCES/, 'a route for a resource the server does not know fails at start');
  });
});

t.test(`a sample resource RESOURCES leaves out is not served (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t, { env: { ISSUER, RESOURCES: `https://api.example.com ${MCP}` } });
  t.equal((await app.inject({ url: '/.well-known/oauth-protected-resource/api' })).statusCode, 404, 'no metadata for /api');
  t.equal((await app.inject({ url: '/api/hello' })).statusCode, 404, 'nor its routes');
  t.equal((await app.inject({ url: '/.well-known/oauth-protected-resource/mcp' })).json().resource, MCP, '/mcp is listed: served');
  t.equal(sampleResource(services, 'api'), null);
  t.equal((await app.inject({ url: '/userinfo' })).statusCode, 401, 'UserInfo is no sample resource: always served');
});

t.test(`an issuer with a path: its metadata where RFC 8414 §3.1 puts it, and where the resources' metadata points (${backendName})`, async (t) => {
  const issuer = 'http://localhost:3000/auth';
  const { app } = await buildTestApp(t, { env: { ISSUER: issuer } });
  const resourceMetadata = await app.inject({ url: '/.well-known/oauth-protected-resource/auth/api' });
  t.equal(resourceMetadata.statusCode, 200);
  t.same(resourceMetadata.json().authorization_servers, [issuer]);
  // What a client does with authorization_servers (oauth4webapi's discoveryRequest, algorithm oauth2).
  const inserted = await app.inject({ url: '/.well-known/oauth-authorization-server/auth' });
  t.equal(inserted.statusCode, 200, 'the path-inserted URL answers');
  t.equal(inserted.json().issuer, issuer);
  t.equal(inserted.json().token_endpoint, `${issuer}/token`);
  // OIDC Discovery appends to the issuer: behind the proxy that strips /auth, the plain route.
  t.same((await app.inject({ url: '/.well-known/openid-configuration' })).json(), inserted.json(), 'the same document');
  t.equal((await app.inject({ url: '/.well-known/oauth-authorization-server/other' })).statusCode, 404, 'no other path');
});
