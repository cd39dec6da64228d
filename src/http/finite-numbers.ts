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
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
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
 * The `preHandler` check: 400 when a validated query or params value is
 * ±Infinity or NaN. Callback style, not async: an async hook costs a
 * promise each time.
 */
function refuseNonFinite(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const name = nonFinite(request.query) ?? nonFinite(request.params);
  done(name === null ? undefined : invalidRequest(`Parameter "${name.slice(0, 64)}" must be a finite number.`));
}

/**
 * An `onRoute` hook: gives the check to each route whose schema validates
 * its query or path parameters. Without such a schema nothing is coerced
 * (every value stays a string), so the other routes, the token and
 * introspection endpoints among them, skip the hook.
 */
export function rejectNonFiniteNumbers(route: RouteOptions): void {
  if (!route.schema?.querystring && !route.schema?.params) return;
  const preHandler = route.preHandler;
  route.preHandler = preHandler === undefined ? [refuseNonFinite] : [refuseNonFinite, ...(Array.isArray(preHandler) ? preHandler : [preHandler])];
}
