/**
 * The sample MCP server at `/mcp` through `app.inject()`, speaking JSON-RPC
 * by hand: who may call it (tokens for the resource `$ISSUER/mcp` only, scope
 * api:read; 401 pointing to the resource metadata), the tools (whoami from
 * the token's claims; write_note refused with 403 insufficient_scope naming
 * the scopes for step-up), the transport's answers (JSON, 202, 405, 406,
 * parse errors after authentication), the route's policy (security
 * headers, no-store, Origin, CORS, body limit, docs) and audience separation
 * against `/api/hello` through the real routes.
 */
import t from 'tap';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { basic, decodePayload, getWithToken, postForm } from '../helpers/tokens.js';
import { DPOP_ALGORITHMS } from '../../src/tokens/dpop.js';

/** RFC 9449 §7.1: every challenge of a resource route also offers DPoP. */
const DPOP_CHALLENGE = `DPoP algs="${DPOP_ALGORITHMS.join(' ')}"`;

const ISSUER = 'http://localhost:3000';
const MCP = `${ISSUER}/mcp`;
const API = `${ISSUER}/api`;
const MCP_METADATA = `${ISSUER}/.well-known/oauth-protected-resource/mcp`;
const SPA = 'https://inspector.example';
const BODY_LIMIT = 4096;
const ACCEPT = 'application/json, text/event-stream';
const VERSION = '2025-11-25';

const initialize = (id = 1) => ({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'test', version: '1.0.0' } } });
const callTool = (name: string, args: Record<string, unknown> = {}, id = 3) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

function mcp(app: FastifyInstance, token: string | null, body: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/mcp',
    headers: { 'content-type': 'application/json', accept: ACCEPT, 'mcp-protocol-version': VERSION, ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

t.test(`the sample MCP server at /mcp (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t, { env: { ISSUER, CORS_ORIGINS: SPA, BODY_LIMIT: String(BODY_LIMIT) } });
  const machine = await seedClient(services, { client_name: 'Agent runner', grant_types: ['client_credentials'], scope: 'api:read api:write' });
  const legacy = await seedClient(services, { client_name: 'Legacy MCP host', grant_types: ['password'], scope: 'openid api:read api:write' });
  const carol = await seedUser(services, { username: 'carol' });

  const clientToken = async (params: Record<string, string>) => {
    const res = await postForm(app, '/token', { grant_type: 'client_credentials', ...params }, { authorization: basic(machine.clientId, machine.clientSecret!) });
    t.equal(res.statusCode, 200, `client token ${JSON.stringify(params)}`);
    return res.json().access_token as string;
  };
  const userToken = async (params: Record<string, string>) => {
    const res = await postForm(app, '/token', { grant_type: 'password', username: carol.username, password: carol.password, ...params }, { authorization: basic(legacy.clientId, legacy.clientSecret!) });
    t.equal(res.statusCode, 200, `user token ${JSON.stringify(params)}`);
    return res.json().access_token as string;
  };
  const readToken = await userToken({ resource: MCP, scope: 'api:read' });
  const writeToken = await userToken({ resource: MCP, scope: 'api:read api:write' });
  t.equal(decodePayload(readToken).aud, MCP, 'the token is for the MCP server');

  t.test('without a token: 401 pointing to the resource metadata and the scope, which lead to this server', async (t) => {
    const res = await mcp(app, null, initialize());
    t.equal(res.statusCode, 401);
    t.equal(res.headers['www-authenticate'], `Bearer realm="${ISSUER}", resource_metadata="${MCP_METADATA}", scope="api:read", ${DPOP_CHALLENGE}`);
    const metadata = (await app.inject({ url: new URL(MCP_METADATA).pathname })).json();
    t.equal(metadata.resource, MCP);
    t.same(metadata.authorization_servers, [ISSUER]);
    const malformed = await mcp(app, null, '{not json');
    t.equal(malformed.statusCode, 401, 'authentication comes before the body is judged');
    t.equal((await app.inject({ method: 'GET', url: '/mcp', headers: { accept: 'text/event-stream' } })).statusCode, 401, 'GET too');
  });

  t.test('initialize, tools/list and whoami over stateless Streamable HTTP', async (t) => {
    const init = await mcp(app, readToken, initialize(), { 'mcp-protocol-version': '' });
    t.equal(init.statusCode, 200);
    t.match(init.headers['content-type'], /^application\/json/, 'plain JSON answers, no SSE');
    t.notOk(init.headers['mcp-session-id'], 'stateless: no session');
    t.equal(init.headers['cache-control'], 'no-store');
    const result = init.json().result;
    t.equal(result.protocolVersion, VERSION);
    t.equal(result.serverInfo.name, 'oauth-server-sample-mcp');
    t.ok(result.capabilities.tools);

    const initialized = await mcp(app, readToken, { jsonrpc: '2.0', method: 'notifications/initialized' });
    t.equal(initialized.statusCode, 202, 'a notification is accepted without a body');
    t.equal(initialized.body, '');

    const list = await mcp(app, readToken, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const tools = list.json().result.tools as Array<{ name: string; description: string; annotations: Record<string, boolean> }>;
    t.same(tools.map((tool) => tool.name).sort(), ['whoami', 'write_note']);
    t.match(tools.find((tool) => tool.name === 'write_note')!.description, /api:write/);
    t.equal(tools.find((tool) => tool.name === 'whoami')!.annotations.readOnlyHint, true);

    const whoami = await mcp(app, readToken, callTool('whoami'));
    t.equal(whoami.statusCode, 200);
    const answer = whoami.json().result;
    t.same(answer.structuredContent, { sub: carol.id, username: 'carol', client_id: legacy.clientId, scope: 'api:read' });
    t.same(JSON.parse(answer.content[0].text), answer.structuredContent, 'the same as text for clients without structured content');

    const own = await mcp(app, await clientToken({ resource: MCP, scope: 'api:read' }), callTool('whoami'));
    t.same(own.json().result.structuredContent, { sub: machine.clientId, username: null, client_id: machine.clientId, scope: 'api:read' }, "a client's own token: no user");
  });

  t.test('write_note needs api:write: 403 insufficient_scope naming every scope it needs (step-up)', async (t) => {
    const refused = await mcp(app, readToken, callTool('write_note', { text: 'hello' }));
    t.equal(refused.statusCode, 403);
    t.equal(
      refused.headers['www-authenticate'],
      `Bearer realm="${ISSUER}", resource_metadata="${MCP_METADATA}", error="insufficient_scope", error_description="The tool write_note needs scope api:read api:write.", scope="api:read api:write", ${DPOP_CHALLENGE}`,
    );
    t.same(refused.json(), { error: 'insufficient_scope', error_description: 'The tool write_note needs scope api:read api:write.' });
    const batch = await mcp(app, readToken, [callTool('whoami', {}, 1), callTool('write_note', { text: 'x' }, 2)]);
    t.equal(batch.statusCode, 403, 'also inside a batch');

    const written = await mcp(app, writeToken, callTool('write_note', { text: 'hello' }));
    t.equal(written.statusCode, 200);
    t.match(written.json().result.structuredContent, { text: 'hello', author: 'carol', sub: carol.id, written_at: /^\d{4}-\d\d-\d\dT/ });
    const tooLong = await mcp(app, writeToken, callTool('write_note', { text: 'x'.repeat(1001) }));
    t.equal(tooLong.statusCode, 200, 'invalid arguments are a tool error, not an HTTP one');
    t.equal(tooLong.json().result.isError, true);
    const unknown = await mcp(app, readToken, callTool('no_such_tool'));
    t.equal(unknown.statusCode, 200);
    t.match(JSON.stringify(unknown.json()), /no_such_tool/, 'an unknown tool is the MCP server’s error');
  });

  t.test('audience separation through the real routes', async (t) => {
    const forApi = await clientToken({ scope: 'api:read' });
    t.equal(decodePayload(forApi).aud, API);
    const refusedHere = await mcp(app, forApi, initialize());
    t.equal(refusedHere.statusCode, 401, 'an /api token is refused by /mcp');
    t.match(refusedHere.headers['www-authenticate'], new RegExp(`resource_metadata="${MCP_METADATA}", error="invalid_token", error_description="[^"]*aud`));
    t.equal((await getWithToken(app, '/api/hello', forApi)).statusCode, 200, 'and accepted where it belongs');

    const forMcp = await userToken({ resource: MCP, scope: 'api:read' });
    const refusedThere = await getWithToken(app, '/api/hello', forMcp);
    t.equal(refusedThere.statusCode, 401, 'an /mcp token is refused by /api/hello');
    t.match(refusedThere.headers['www-authenticate'], /oauth-protected-resource\/api", error="invalid_token"/);
    t.equal((await mcp(app, forMcp, callTool('whoami'))).statusCode, 200);

    const noScope = await mcp(app, await clientToken({ resource: MCP, scope: 'api:write' }), initialize());
    t.equal(noScope.statusCode, 403, 'an /mcp token without api:read');
    t.match(noScope.headers['www-authenticate'], /error="insufficient_scope", error_description="[^"]+", scope="api:read", DPoP algs="[^"]+"$/);
  });

  t.test('the transport’s own answers: 405 for GET and DELETE, 406, 415, JSON-RPC parse errors', async (t) => {
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/mcp', headers: { authorization: `Bearer ${readToken}`, accept: 'text/event-stream' } });
      t.equal(res.statusCode, 405, `${method}: no SSE stream, no session to end`);
      t.equal(res.headers.allow, 'POST');
      t.equal(res.json().jsonrpc, '2.0');
    }
    t.equal((await mcp(app, readToken, initialize(), { accept: 'application/json' })).statusCode, 406, 'a client must accept both JSON and SSE');
    const text = await mcp(app, readToken, 'hello', { 'content-type': 'text/plain' });
    t.equal(text.statusCode, 415);
    t.equal(text.json().error.code, -32000);
    const broken = await mcp(app, readToken, '{"jsonrpc":');
    t.equal(broken.statusCode, 400);
    t.same(broken.json().error, { code: -32700, message: 'Parse error: Invalid JSON' });
    const emptyBatch = await mcp(app, readToken, []);
    t.equal(emptyBatch.statusCode, 400, 'an empty batch (JSON-RPC 2.0 §6)');
    t.same(emptyBatch.json(), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: an empty batch.' } });
    const notRpc = await mcp(app, readToken, { hello: 'world' });
    t.equal(notRpc.statusCode, 400);
    t.equal(notRpc.json().error.code, -32700);
    const version = await mcp(app, readToken, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-protocol-version': '1999-01-01' });
    t.equal(version.statusCode, 400, 'an unsupported MCP-Protocol-Version');
    const huge = await mcp(app, readToken, callTool('whoami', { pad: 'x'.repeat(BODY_LIMIT) }));
    t.equal(huge.statusCode, 413, 'BODY_LIMIT applies');
  });

  t.test('route policy: security headers, request id, Origin, CORS for CORS_ORIGINS', async (t) => {
    const res = await mcp(app, readToken, callTool('whoami'), { 'x-request-id': 'mcp-req-1' });
    t.equal(res.headers['x-frame-options'], 'DENY', 'the reply is Fastify’s: security headers');
    t.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/);
    t.equal(res.headers['x-request-id'], 'mcp-req-1');

    const evil = await mcp(app, readToken, callTool('whoami'), { origin: 'https://evil.example' });
    t.equal(evil.statusCode, 403, 'an Origin that may not call it (DNS rebinding)');
    t.equal(evil.json().error.code, -32000);
    t.notOk(evil.headers['access-control-allow-origin']);
    t.equal((await mcp(app, readToken, callTool('whoami'), { origin: ISSUER })).statusCode, 200, 'this server’s own origin');

    const app2 = await mcp(app, readToken, callTool('whoami'), { origin: SPA });
    t.equal(app2.statusCode, 200, 'an origin of CORS_ORIGINS');
    t.equal(app2.headers['access-control-allow-origin'], SPA);
    t.match(app2.headers['access-control-expose-headers'], /WWW-Authenticate/);
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/mcp',
      headers: { origin: SPA, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' },
    });
    t.equal(preflight.statusCode, 204);
    t.match(String(preflight.headers['access-control-allow-headers']), /MCP-Protocol-Version/i, 'a browser-based MCP client may send its version header');
    const stranger = await app.inject({ method: 'OPTIONS', url: '/mcp', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    t.notOk(stranger.headers['access-control-allow-origin']);
  });

  t.test('documented under the tag mcp; GET and DELETE (405 only) are not operations, POST says what they answer', async (t) => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    const post = doc.paths['/mcp']?.post;
    t.ok(post, 'POST /mcp is documented');
    t.same(post.tags, ['mcp']);
    t.ok(post.responses['200'] && post.responses['401'] && post.responses['403']);
    t.notOk(doc.paths['/mcp'].get);
    t.notOk(doc.paths['/mcp'].delete);
    t.match(post.description, /GET and DELETE \/mcp .* answer 405 with Allow: POST/);
    t.ok(doc.tags.some((tag: { name: string }) => tag.name === 'mcp'));
  });
});

t.test(`/mcp is not served when RESOURCES leaves it out (${backendName})`, async (t) => {
  const { app } = await buildTestApp(t, { env: { ISSUER, RESOURCES: API } });
  t.equal((await mcp(app, null, initialize())).statusCode, 404);
  t.equal((await app.inject({ url: '/.well-known/oauth-protected-resource/mcp' })).statusCode, 404);
});
