/**
 * `GET /.well-known/oauth-authorization-server` (RFC 8414),
 * `GET /.well-known/openid-configuration` (OIDC Discovery) and
 * `GET /jwks.json` (RFC 7517). The metadata is serialised once at start;
 * the JWKS once per key-set change (by the key store).
 */
import type { FastifyPluginAsync } from 'fastify';
import { buildServerMetadata } from '../oauth/metadata.js';
import { wellKnownUrl } from '../oauth/resource-uri.js';
import type { Services } from '../services.js';
import { JWKS_MAX_AGE_SECONDS } from '../tokens/keys.js';

const metadataSchema = {
  type: 'object',
  description: 'RFC 8414 §2 / OpenID Connect Discovery §3 metadata.',
  additionalProperties: true,
} as const;

const jwksSchema = {
  type: 'object',
  description: 'JSON Web Key Set (RFC 7517 §5): the public keys of the pending (rotated, not signing yet), active and still-published retired signing keys.',
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kty: { type: 'string' },
          kid: { type: 'string' },
          alg: { type: 'string' },
          use: { type: 'string' },
          crv: { type: 'string' },
          x: { type: 'string' },
          y: { type: 'string' },
          n: { type: 'string' },
          e: { type: 'string' },
        },
      },
    },
  },
} as const;

/** Read by any origin (RFC 8414 §3, OIDC Discovery §4); fetched by machines, so their request lines log at debug. */
const MACHINE_PUBLIC = { cors: 'public', accessLog: 'debug', securityHeaders: 'api' } as const;

export const discoveryRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'tokens'> }> = async (app, { services }) => {
  const metadata = JSON.stringify(buildServerMetadata(services.config));

  const documents: Array<[url: string, summary: string]> = [
    ['/.well-known/oauth-authorization-server', 'Authorization server metadata (RFC 8414)'],
    ['/.well-known/openid-configuration', 'OpenID Provider configuration (OIDC Discovery 1.0)'],
  ];
  // An issuer with a path (`https://example.com/auth`): RFC 8414 §3.1 puts its metadata at
  // `/.well-known/oauth-authorization-server/auth`, the path a proxy sends on unchanged (as for
  // RFC 9728's documents); OIDC Discovery's `/auth/.well-known/openid-configuration` arrives
  // with the issuer's path stripped, like every other endpoint, at the route above.
  const insertedPath = new URL(wellKnownUrl(services.config.issuer, 'oauth-authorization-server')).pathname;
  if (insertedPath !== documents[0]![0]) documents.push([insertedPath, 'Authorization server metadata (RFC 8414 §3.1, the issuer has a path)']);
  for (const [url, summary] of documents) {
    app.get(url, { config: MACHINE_PUBLIC, schema: { tags: ['discovery'], summary, response: { 200: metadataSchema } } }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300').type('application/json; charset=utf-8');
      // Pre-serialised: sent as is, not through the response schema.
      return reply.send(metadata);
    });
  }

  app.get(
    '/jwks.json',
    { config: MACHINE_PUBLIC, schema: { tags: ['discovery'], summary: 'Public signing keys (JWKS)', response: { 200: jwksSchema } } },
    async (_request, reply) => {
      // Short, and a rotated key is published this long (plus margins) before it signs (tokens/keys.ts).
      reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`).type('application/jwk-set+json; charset=utf-8');
      return reply.send(services.tokens.keys.jwksJson());
    },
  );
};
