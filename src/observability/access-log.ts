/**
 * Fastify's per-request log lines ("incoming request", "request completed"),
 * with the machine-facing hot endpoints moved from `info` to `debug`.
 *
 * Why: at `info` every request writes two JSON lines (serialised, redacted,
 * written synchronously). On the token endpoint and the resource routes that
 * was a large share of the whole request's CPU (bench/README.md, "Hot-path
 * changes"), for lines nobody reads at that volume: requests are counted by
 * route and status in the Prometheus metrics. Nothing is lost at `debug`.
 *
 * What stays as it was on every route: failures (`request errored`, and the
 * error handlers' own `error`/`warn` lines for 5xx and 503), and both lines
 * for everything else, notably the browser pages, the admin API and
 * registration, which a person drives and an operator may want to follow.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `'debug'`: this route's two request lines are logged at debug, for
     * routes called by machines at high rates (clients, resource servers,
     * probes). Declared on the route itself.
     */
    accessLog?: 'debug';
  }
}

function isQuiet(request: FastifyRequest): boolean {
  return request.routeOptions.config.accessLog === 'debug';
}

/** Pass as Fastify's `logController` option. */
export class AccessLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (!isQuiet(request)) return super.incomingRequest(request, reply, metadata);
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    // An error is always worth its line.
    if (error || !isQuiet(request)) return super.requestCompleted(error, request, reply, metadata);
    reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
