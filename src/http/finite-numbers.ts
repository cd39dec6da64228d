/**
 * Refuses non-finite numbers produced by schema validation.
 *
 * With type coercion on (needed for querystrings), ajv turns the strings
 * "Infinity" and "1e999" into ±Infinity for `integer`/`number` schemas and
 * then skips `minimum`/`maximum`, which only look at finite numbers
 * (ajv-validator/ajv#2212, fastify/fastify#6718, unfixed upstream). Such a
 * value would reach a handler past its declared bounds (e.g. `?offset=1e999`
 * into SQL, a 500). No parameter of this server may be infinite, so any
 * that validation produced is answered 400 `invalid_request`.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { invalidRequest } from '../errors.js';

function nonFinite(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return null;
  for (const [name, v] of Object.entries(value)) {
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    if (values.some((x) => typeof x === 'number' && !Number.isFinite(x))) return name;
  }
  return null;
}

/**
 * A `preHandler` hook (after validation): 400 when a validated query or
 * params value is ±Infinity or NaN. Callback style, not async: it runs
 * before every handler, and an async hook costs a promise each time.
 */
export function rejectNonFiniteNumbers(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const name = nonFinite(request.query) ?? nonFinite(request.params);
  done(name === null ? undefined : invalidRequest(`Parameter "${name.slice(0, 64)}" must be a finite number.`));
}
