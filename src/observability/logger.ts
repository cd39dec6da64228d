/**
 * The server's logger options (pino, through Fastify): JSON lines at
 * `LOG_LEVEL`, credentials redacted from headers, query values only of
 * harmless parameters (`log-redaction.ts`), errors without secrets.
 */
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config.js';
import { redactUrl, serializeError } from './log-redaction.js';

/** Paths pino must never print. */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
];

export function defaultLogger(config: Pick<Config, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req(req) {
        return {
          method: req.method,
          url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
          remoteAddress: req.ip,
        };
      },
      err: serializeError,
    },
  };
}
