/**
 * Which scopes the sample MCP server's tools need (`mcp-server.ts`), judged
 * by the route (`mcp.ts`) before the MCP SDK is involved: a module of its
 * own so the route can refuse a call without loading the SDK, which it loads
 * only when the first call is let through.
 */

/** The scope every call to the MCP server needs (the route's, `requireBearer`). */
export const MCP_SCOPE = 'api:read';

/** The scopes each tool needs, all of them (the route's included): what a 403 names for step-up. */
const TOOL_SCOPES: Readonly<Record<string, readonly string[]>> = {
  whoami: [MCP_SCOPE],
  write_note: [MCP_SCOPE, 'api:write'],
};

/** The names of the tools called by `message` (a JSON-RPC message or a batch of them), as sent. */
export function calledTools(message: unknown): string[] {
  const messages: unknown[] = Array.isArray(message) ? message : [message];
  const names: string[] = [];
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) continue;
    const { method, params } = m as { method?: unknown; params?: unknown };
    if (method !== 'tools/call' || typeof params !== 'object' || params === null) continue;
    const name = (params as { name?: unknown }).name;
    if (typeof name === 'string') names.push(name);
  }
  return names;
}

/**
 * The first of `tools` that needs a scope `granted` lacks, with every scope
 * it needs (space-separated), or null. Unknown tools need nothing here: the
 * MCP server answers them with its own error.
 */
export function toolNeedingScope(tools: readonly string[], granted: readonly string[]): { tool: string; scope: string } | null {
  for (const tool of tools) {
    const needed = Object.hasOwn(TOOL_SCOPES, tool) ? TOOL_SCOPES[tool]! : [];
    if (!needed.every((scope) => granted.includes(scope))) return { tool, scope: needed.join(' ') };
  }
  return null;
}
