/**
 * The sample MCP server's tools on their own (no HTTP): which calls a
 * message makes, which of them needs more scope than a token has (what the
 * route turns into 403 for step-up), and the tools answering from the
 * claims they were built with, write_note refusing on its own without
 * api:write. The SDK's client talks to the server over its in-memory
 * transport.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import t from 'tap';
import { calledTools, toolNeedingScope } from '../../src/http/mcp-scopes.js';
import { createSampleMcpServer } from '../../src/http/mcp-server.js';
import type { AccessTokenClaims } from '../../src/tokens/types.js';

const call = (name: unknown, id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

t.test('calledTools: the tool names of a message or a batch, nothing else', async (t) => {
  t.same(calledTools(call('whoami')), ['whoami']);
  t.same(calledTools([call('whoami', 1), { jsonrpc: '2.0', id: 2, method: 'tools/list' }, call('write_note', 3)]), ['whoami', 'write_note']);
  for (const message of [undefined, null, 'tools/call', 42, [], [null, 1, 'x'], { method: 'tools/call' }, { method: 'tools/call', params: null }, call(7), call({ name: 'x' })]) {
    t.same(calledTools(message), [], JSON.stringify(message) ?? 'undefined');
  }
});

t.test('toolNeedingScope: the first tool the scope does not cover, with every scope it needs', async (t) => {
  t.equal(toolNeedingScope(['whoami'], ['api:read']), null);
  t.same(toolNeedingScope(['whoami', 'write_note'], ['api:read']), { tool: 'write_note', scope: 'api:read api:write' });
  t.same(toolNeedingScope(['write_note'], ['api:write']), { tool: 'write_note', scope: 'api:read api:write' }, 'all of them, not only the missing one');
  t.equal(toolNeedingScope(['write_note'], ['api:write', 'api:read']), null);
  t.equal(toolNeedingScope(['no_such_tool', '__proto__', 'constructor', 'toString'], []), null, 'unknown names need nothing here (the MCP server refuses them)');
  t.same(toolNeedingScope(['whoami'], []), { tool: 'whoami', scope: 'api:read' });
});

t.test('the tools answer from the claims they were built with', async (t) => {
  const validator = new AjvJsonSchemaValidator();
  const at = Date.UTC(2026, 0, 2, 3, 4, 5);
  async function connect(claims: Partial<AccessTokenClaims>) {
    const full: AccessTokenClaims = { iss: 'http://as', aud: 'http://as/mcp', iat: 0, exp: 0, jti: 'j', sub: 'u1', client_id: 'c1', scope: 'api:read', ...claims };
    const server = createSampleMcpServer(full, { validator, now: () => at });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: 'unit', version: '1.0.0' });
    await server.connect(serverSide);
    await client.connect(clientSide);
    t.teardown(() => client.close());
    return client;
  }

  const reader = await connect({ preferred_username: 'dana' });
  const me = await reader.callTool({ name: 'whoami', arguments: {} });
  t.same(me.structuredContent, { sub: 'u1', username: 'dana', client_id: 'c1', scope: 'api:read' });
  const refused = await reader.callTool({ name: 'write_note', arguments: { text: 'hi' } });
  t.equal(refused.isError, true, 'write_note refuses by itself without api:write');
  t.match(JSON.stringify(refused.content), /api:read api:write/);

  const writer = await connect({ preferred_username: 'dana', scope: 'api:read api:write' });
  const note = await writer.callTool({ name: 'write_note', arguments: { text: 'hi' } });
  t.same(note.structuredContent, { text: 'hi', author: 'dana', sub: 'u1', written_at: '2026-01-02T03:04:05.000Z' });
  const empty = await writer.callTool({ name: 'write_note', arguments: { text: '' } });
  t.equal(empty.isError, true, 'an empty note is invalid input');

  const machine = await connect({ sub: 'c9', client_id: 'c9', scope: 'api:read api:write' });
  t.match((await machine.callTool({ name: 'whoami', arguments: {} })).structuredContent, { sub: 'c9', username: null }, 'no user behind a client’s own token');
  t.match((await machine.callTool({ name: 'write_note', arguments: { text: 'x' } })).structuredContent, { author: 'c9' });
});
