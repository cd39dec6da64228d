/**
 * Requests the router cannot even match (Fastify's `frameworkErrors`): a
 * path with bad percent-encoding (`/login%zz`, `FST_ERR_BAD_URL`) or a path
 * parameter over the router's 200 characters (`FST_ERR_MAX_PARAM_LENGTH`).
 * Fastify answers these itself with its own JSON and before any hook, so
 * without this they would carry no security headers and no request id, go
 * unlogged, and echo the path. Here they get what an unknown URL gets: a
 * 404 (a parameter that long names nothing) or a 400 (a URL that is not
 * one), as the error page for a browser and as `{error, error_description}`
 * for everything else, with the headers every answer has. And requests
 * Node's HTTP parser refuses before Fastify sees them (`clientErrorHandler`).
 */
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { errorPageHtml, isPageNavigation } from './pages.js';
import { apiSecurityHeaders } from './security-headers.js';

export function unroutableHandler(config: Pick<Config, 'issuer'>, securityHeaders: ReadonlyMap<string, string>) {
  const headers = [...securityHeaders];
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const badUrl = error.code === 'FST_ERR_BAD_URL';
    const status = badUrl ? 400 : 404;
    const description = badUrl ? 'The URL is not valid: its percent-encoding is malformed.' : 'No such page: a part of this URL is too long to name anything here.';
    request.log.info({ code: error.code, status }, 'request refused before routing');
    for (const [name, value] of headers) reply.header(name, value);
    reply.header('x-request-id', request.id).header('cache-control', 'no-store').code(status);
    const json = () => reply.type('application/json; charset=utf-8').send(JSON.stringify({ error: badUrl ? 'invalid_request' : 'not_found', error_description: description }));
    // A browser navigating gets the error page; an API client, JSON. (This reply has no
    // decorations, so no `reply.view`: the page is rendered by the instance.)
    if (!isPageNavigation(request)) {
      json();
      return;
    }
    errorPageHtml(request.server, config, status, description).then(
      (html) => reply.type('text/html; charset=utf-8').send(html),
      (err: unknown) => {
        request.log.error({ err }, 'the error page could not be rendered');
        json();
      },
    );
  };
}

/** What each error Node's HTTP parser reports is answered with (Fastify's `clientErrorHandler`). */
function clientErrorAnswer(code: string | undefined): { status: number; reason: string; description: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, reason: 'Request Timeout', description: 'The request was not received in time (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS).' };
  }
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, reason: 'Request Header Fields Too Large', description: 'The request headers are too large.' };
  return { status: 400, reason: 'Bad Request', description: 'The request is not valid HTTP/1.1.' };
}

/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refused (a
 * timeout, oversized headers, malformed HTTP) is answered in this server's
 * dialect, `{error, error_description}` with the API security headers and
 * `Cache-Control: no-store`, on a connection then closed.
 */
export function clientErrorHandler(securityHeaders: ReadonlyMap<string, string>) {
  const headerLines = apiSecurityHeaders(securityHeaders)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return function (this: FastifyInstance, error: Error & { code?: string }, socket: Duplex): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { status, reason, description } = clientErrorAnswer(error.code);
    // Usually a client's or a proxy's trouble, not the server's: debug, as Fastify's own handler does at trace.
    this.log.debug({ err: error, status }, 'client error');
    const body = JSON.stringify({ error: 'invalid_request', error_description: description });
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `cache-control: no-store\r\n${headerLines}connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
