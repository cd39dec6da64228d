/**
 * Turning any thrown thing into an `OAuthError`, and the JSON dialect of the
 * error response (RFC 6749 §5.2 shape: `error`, `error_description`).
 * Scopes with another dialect (the `/authorize` redirect, RFC 6750, HTML
 * pages) call `toOAuthError` and render the result their own way.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../errors.js';

/** Fastify's own error codes that are the client's fault, with the status to answer. */
const CLIENT_ERRORS: Record<string, { status: number; description: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, description: 'Request body is too large.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, description: 'Unsupported Content-Type.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, description: 'Content-Length does not match the body.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, description: 'Body is empty but Content-Type is application/json.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, description: 'Body is not valid JSON.' },
  FST_ERR_CTP_INVALID_TYPE: { status: 400, description: 'Invalid Content-Type.' },
  FST_ERR_CTP_EMPTY_TYPE: { status: 400, description: 'Missing Content-Type.' },
  FST_ERR_BAD_URL: { status: 400, description: 'Malformed URL.' },
  FST_ERR_ASYNC_CONSTRAINT: { status: 400, description: 'Malformed request.' },
};

/** Every error becomes an `OAuthError`; unknown errors become a generic `server_error`. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  const fe = err as Partial<FastifyError> | null;
  if (fe && typeof fe === 'object') {
    if (Array.isArray(fe.validation)) {
      return new OAuthError('invalid_request', describeValidation(fe), { cause: err });
    }
    const known = typeof fe.code === 'string' ? CLIENT_ERRORS[fe.code] : undefined;
    if (known) return new OAuthError('invalid_request', known.description, { status: known.status, cause: err });
    // A SyntaxError from a body parser (e.g. malformed JSON) is the client's.
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
      return new OAuthError('invalid_request', 'Malformed request.', { status: fe.statusCode, cause: err });
    }
  }
  return new OAuthError('server_error', 'The server encountered an unexpected error.', { cause: err });
}

function describeValidation(err: Partial<FastifyError>): string {
  const first = err.validation?.[0];
  const where = err.validationContext ?? 'request';
  if (!first) return `Invalid ${where}.`;
  const path = (first.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const params = first.params as Record<string, unknown> | undefined;
  if (first.keyword === 'required' && params && typeof params.missingProperty === 'string') {
    return `Missing ${where} parameter "${params.missingProperty}".`;
  }
  if (first.keyword === 'additionalProperties' && params && typeof params.additionalProperty === 'string') {
    return `Unknown ${where} property "${params.additionalProperty}".`;
  }
  if (first.keyword === 'type' && params?.type === 'string' && path) {
    return `Parameter "${path}" must be a single string (was it repeated?).`;
  }
  return path ? `Invalid ${where} parameter "${path}": ${first.message ?? 'invalid'}.` : `Invalid ${where}: ${first.message ?? 'invalid'}.`;
}

/** Logs a server-side failure with its cause; client mistakes at debug level. */
export function logError(request: FastifyRequest, err: OAuthError): void {
  if (err.status >= 500) {
    const cause = err.cause ?? err;
    if (err.error === 'temporarily_unavailable') request.log.warn({ err: cause }, err.description);
    else request.log.error({ err: cause }, 'request failed');
  } else {
    request.log.debug({ error: err.error, description: err.description }, 'request refused');
  }
}

/** Sends the `{error, error_description}` JSON body with `Cache-Control: no-store` (the admin API's and sign-up's dialect). */
export function sendJsonError(reply: FastifyReply, err: OAuthError, extraHeaders: Record<string, string> = {}): FastifyReply {
  return sendErrorBody(reply, err, extraHeaders, err.toJSON());
}

/** Sends the RFC 6749 §5.2 JSON body, its description in the characters the RFC allows, with `Cache-Control: no-store`. */
export function sendProtocolError(reply: FastifyReply, err: OAuthError, extraHeaders: Record<string, string> = {}): FastifyReply {
  return sendErrorBody(reply, err, extraHeaders, err.toProtocolJSON());
}

function sendErrorBody(reply: FastifyReply, err: OAuthError, extraHeaders: Record<string, string>, body: object): FastifyReply {
  reply.code(err.status).header('cache-control', 'no-store').header('pragma', 'no-cache');
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  for (const [name, value] of Object.entries(extraHeaders)) reply.header(name, value);
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(body));
}

/** The default error handler: JSON dialect. Route scopes override where the RFCs want another. */
export function jsonErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = toOAuthError(error);
  logError(request, err);
  return sendJsonError(reply, err);
}
