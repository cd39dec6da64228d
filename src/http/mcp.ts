/**
 * `/mcp`: the sample MCP server (Streamable HTTP transport, MCP 2025-11-25),
 * the resource `${ISSUER}/mcp`. Only access tokens issued for it are
 * accepted (`requireBearer`), with scope `api:read`; a 401 points the client
 * to the resource's metadata (RFC 9728), which names this server as its
 * authorization server, so an MCP client given only the URL finds its way.
 *
 * Stateless: every POST gets an MCP server and a transport of its own, for
 * the caller its token names, and nothing outlives the request. So any
 * instance answers any request (instances share nothing but the database
 * and the TTL store, and these tools need neither), and no session can be
 * picked up with another caller's token. The tools send no server-initiated
 * messages, so there is no SSE stream to offer: GET and DELETE answer 405
 * (Streamable HTTP §"Listening for Messages from the Server", §"Session
 * Management"), and the answers to POSTs are plain JSON.
 *
 * The SDK computes the answer; Fastify sends it. The route hands the SDK's
 * web-standard transport a `Request` built from what Fastify read (the body
 * within BODY_LIMIT, and only the headers the transport reads: never the
 * Authorization header) and copies the `Response` back onto the reply. The
 * reply is never hijacked, so the security headers, the request id, CORS,
 * the access log, the metrics and the error handler apply as on any route.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Services } from '../services.js';
import { InsufficientScopeError, requireBearer } from './bearer.js';
import { calledTools, MCP_SCOPE, toolNeedingScope } from './mcp-scopes.js';
import { sampleResource } from './resource-metadata.js';
import { errorResponses, SECURITY } from './schemas.js';

/**
 * Route policy: callable from browser-based MCP clients of `CORS_ORIGINS`
 * (with their own bearer header, never cookies); request lines at debug like
 * the other resource routes (an agent calls tools in loops). Each tool call
 * is logged at info on its own (tool, subject, client).
 */
const MCP_ROUTE = { cors: 'app', accessLog: 'debug', securityHeaders: 'api' } as const;

/** The request headers the transport reads (content negotiation and the protocol version); nothing else reaches the SDK. */
const FORWARDED_HEADERS = ['accept', 'content-type', 'mcp-protocol-version'] as const;

/** The parts of the MCP SDK the route uses, with the one validator every request's server shares. */
async function loadMcpSdk() {
  const [{ AjvJsonSchemaValidator }, { WebStandardStreamableHTTPServerTransport }, { createSampleMcpServer }] = await Promise.all([
    import('@modelcontextprotocol/sdk/validation/ajv'),
    import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
    import('./mcp-server.js'),
  ]);
  return { validator: new AjvJsonSchemaValidator(), WebStandardStreamableHTTPServerTransport, createSampleMcpServer };
}
type McpSdk = Awaited<ReturnType<typeof loadMcpSdk>>;

/** A JSON-RPC error answer without a request id, the shape of the transport's own HTTP-level errors. */
function jsonRpcError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

/** The JSON-RPC body as the transport takes it, or undefined when it is not JSON (the transport then answers the error itself). */
function parseJson(body: unknown): unknown {
  if (typeof body !== 'string') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

const jsonRpcErrorSchema = {
  description: 'JSON-RPC error answered by the transport (malformed message, not acceptable, unsupported media type)',
  type: 'object',
  properties: {
    jsonrpc: { type: 'string' },
    error: { type: 'object', properties: { code: { type: 'integer' }, message: { type: 'string' } } },
    id: { type: 'null' },
  },
} as const;

export const mcpRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'tokens' | 'resources' | 'now' | 'dpop'> }> = async (app, { services }) => {
  const resource = sampleResource(services, 'mcp');
  // Left out of RESOURCES: no token is ever issued for it, so it is not served.
  if (resource === null) return;
  const { config } = services;

  app.decorateRequest('accessToken', null);
  // The body is read as text (within BODY_LIMIT) whatever its type, and judged by the transport:
  // a malformed message is a JSON-RPC error after authentication, not a parser's 400 before it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  const bearer = requireBearer(services, { resource, scope: MCP_SCOPE });
  // The MCP SDK (with its own Ajv and zod schemas) costs about 130 ms and 25 MB to load
  // (bench/startup.ts): loaded by the first call that gets past authentication, not at start.
  let sdk: Promise<McpSdk> | undefined;
  const loadSdk = () => (sdk ??= loadMcpSdk());

  // Streamable HTTP §"Security Warning": the Origin header of every request is validated
  // (against DNS rebinding); a browser page of another origin gets 403.
  const issuerOrigin = new URL(config.issuer).origin;
  const anyOrigin = config.corsOrigins.includes('*');
  const allowedOrigins = new Set([issuerOrigin, ...config.corsOrigins]);
  const checkOrigin: onRequestHookHandler = (request, reply, done) => {
    const origin = request.headers.origin;
    if (origin === undefined || anyOrigin || allowedOrigins.has(origin)) return done();
    void jsonRpcError(reply, 403, 'Forbidden: this Origin may not call the MCP server (add it to CORS_ORIGINS).');
  };

  async function handleMcpPost(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const claims = request.accessToken!;
    const message = parseJson(request.body);
    // JSON-RPC 2.0 §6: an empty batch is one Invalid Request error (the SDK would accept it silently).
    if (Array.isArray(message) && message.length === 0) {
      return reply.code(400).header('cache-control', 'no-store').send({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request: an empty batch.' } });
    }
    const tools = calledTools(message);
    // MCP authorization §"Scope Challenge Handling" (RFC 6750 §3.1): a tool needing more than the
    // token has is refused before it runs, 403 insufficient_scope naming every scope it needs.
    const missing = toolNeedingScope(tools, claims.scope.split(' '));
    if (missing !== null) throw new InsufficientScopeError(`The tool ${missing.tool} needs scope ${missing.scope}.`, missing.scope);
    for (const tool of tools) request.log.info({ tool: tool.slice(0, 100), sub: claims.sub, client_id: claims.client_id }, 'MCP tool call');

    const headers = new Headers();
    for (const name of FORWARDED_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string') headers.set(name, value);
    }
    const body = typeof request.body === 'string' ? request.body : undefined;
    const { createSampleMcpServer, validator, WebStandardStreamableHTTPServerTransport } = await loadSdk();
    const server = createSampleMcpServer(claims, { validator, now: services.now });
    // Stateless (no session ids); answers as JSON once every request of the message is answered.
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    let response: Response;
    let text: string;
    try {
      await server.connect(transport);
      response = await transport.handleRequest(new Request(resource!, { method: 'POST', headers, body }), message === undefined ? {} : { parsedBody: message });
      text = await response.text();
    } finally {
      await server.close();
    }
    reply.code(response.status).header('cache-control', 'no-store');
    const type = response.headers.get('content-type');
    if (type !== null) reply.type(type);
    return reply.send(text === '' ? undefined : text);
  }

  app.post(
    '/mcp',
    {
      ...bearer,
      onRequest: checkOrigin,
      config: MCP_ROUTE,
      schema: {
        tags: ['mcp'],
        security: SECURITY.bearer,
        summary: 'Sample MCP server (Streamable HTTP, stateless): tools whoami and write_note; an access token for the resource $ISSUER/mcp',
        description:
          'A JSON-RPC message (initialize, tools/list, tools/call, …). Needs scope api:read; the tool write_note also api:write ' +
          '(403 insufficient_scope naming "api:read api:write" otherwise). Send Accept: application/json, text/event-stream. ' +
          'GET and DELETE /mcp (an SSE stream, ending a session) answer 405 with Allow: POST: the server is stateless.',
        body: { description: 'JSON-RPC request, notification or response (MCP 2025-11-25)' },
        response: {
          200: { description: 'The JSON-RPC response', content: { 'application/json': { schema: { type: 'object' } } } },
          202: { description: 'Accepted: the message held only notifications or responses', type: 'null' },
          400: jsonRpcErrorSchema,
          ...errorResponses(401, 403),
          406: jsonRpcErrorSchema,
          415: jsonRpcErrorSchema,
        },
      },
    },
    handleMcpPost,
  );

  // No stream for server-initiated messages, and no sessions to end: 405 (after authentication,
  // so a client probing without a token still learns where to get one). Streamable HTTP defines
  // GET (an SSE stream) and DELETE (ending a session) and lets a server answer both with 405. Not
  // operations of the document, which lists what can succeed (Swagger UI would offer to try two
  // calls that never can): POST /mcp's description says they answer 405.
  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply) => {
    reply.header('allow', 'POST');
    return jsonRpcError(reply, 405, 'Method not allowed: this MCP server is stateless and offers no SSE stream; POST JSON-RPC messages.');
  };
  for (const method of ['GET', 'DELETE'] as const) {
    app.route({ method, url: '/mcp', ...bearer, onRequest: checkOrigin, config: MCP_ROUTE, schema: { hide: true }, handler: notAllowed });
  }
};
