/**
 * The sample MCP server's tools, on the MCP SDK's `McpServer`: one server
 * per HTTP request (stateless Streamable HTTP, `mcp.ts`), built for the
 * caller whose access token that request carried, so every tool answers
 * from the verified claims and nothing else.
 *
 * - `whoami` (scope `api:read`, the route's own): the caller's `sub`, user
 *   name, client and scope.
 * - `write_note` (scope `api:read api:write`): the sample of a tool that
 *   needs more than the route. The HTTP layer refuses a call to it with 403
 *   `insufficient_scope` naming the scopes (`toolNeedingScope`), so a client
 *   can step up before the call reaches the server; the tool checks again.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation';
import { z } from 'zod';
import type { AccessTokenClaims } from '../tokens/types.js';
import { toolNeedingScope } from './mcp-scopes.js';

const MAX_NOTE_LENGTH = 1000;

/** What the tools report about the caller, from the access token's claims. */
function caller(claims: AccessTokenClaims) {
  return {
    sub: claims.sub,
    // RFC 9068 tokens of users carry the name (`tokens/jwt.ts`); a client's own token has none.
    username: typeof claims.preferred_username === 'string' ? claims.preferred_username : null,
    client_id: claims.client_id,
    scope: claims.scope,
  };
}

function result(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

function refused(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

export interface SampleMcpServerOptions {
  /** One validator for every request's server (the SDK builds an Ajv instance per server otherwise; the tools never elicit). */
  validator: jsonSchemaValidator;
  now: () => number;
}

/** The sample MCP server for one request, answering as `claims` (a verified access token for the resource `/mcp`). */
export function createSampleMcpServer(claims: AccessTokenClaims, options: SampleMcpServerOptions): McpServer {
  const server = new McpServer(
    { name: 'oauth-server-sample-mcp', title: 'Sample MCP server', version: '1.0.0' },
    {
      instructions: 'A sample MCP server protected by this OAuth 2.0 authorization server. whoami tells who the access token speaks for; write_note needs the scope api:write.',
      jsonSchemaValidator: options.validator,
    },
  );
  const granted = claims.scope.split(' ');
  const me = caller(claims);

  server.registerTool(
    'whoami',
    {
      title: 'Who am I?',
      description: "The caller as this server sees it: the access token's subject (sub), the user's name, the client and the scope granted.",
      outputSchema: {
        sub: z.string(),
        username: z.string().nullable(),
        client_id: z.string(),
        scope: z.string(),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => result(me),
  );

  server.registerTool(
    'write_note',
    {
      title: 'Write a note',
      description: 'A sample write action: needs the scope api:write (a token without it is refused with 403 insufficient_scope, so the client can ask for it). Answers the note as it would be written; the sample keeps nothing.',
      inputSchema: { text: z.string().min(1).max(MAX_NOTE_LENGTH).describe('The note') },
      outputSchema: {
        text: z.string(),
        author: z.string(),
        sub: z.string(),
        written_at: z.string(),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async ({ text }) => {
      // The HTTP layer refused such a call already (403 for step-up); this keeps the tool safe on its own.
      const missing = toolNeedingScope(['write_note'], granted);
      if (missing !== null) return refused(`write_note needs the scope ${missing.scope}.`);
      return result({ text, author: me.username ?? me.client_id, sub: me.sub, written_at: new Date(options.now()).toISOString() });
    },
  );

  return server;
}
