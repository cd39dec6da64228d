/**
 * DPoP (RFC 9449) on the HTTP side: the `DPoP-Nonce` header (§8.2, §9) on
 * every answer to a request that carried a proof, success or error, so a
 * client always holds the current nonce and pays the `use_dpop_nonce`
 * round trip only on its first request (or after an idle slot).
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Services } from '../services.js';

/** A route hook that adds `DPoP-Nonce` to answers to DPoP requests; a no-op when nonces are off. */
export function dpopNonceHook(nonces: Services['dpop']['nonces']): preHandlerAsyncHookHandler {
  return async function sendDpopNonce(request: FastifyRequest, reply: FastifyReply) {
    if (nonces === null || request.headers.dpop === undefined) return;
    reply.header('dpop-nonce', await nonces.current());
  };
}
