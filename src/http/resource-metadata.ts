/**
 * The sample protected resources this server hosts, `${ISSUER}/api` (the
 * sample API) and `${ISSUER}/mcp` (the sample MCP server), and their
 * protected resource metadata (RFC 9728): `GET
 * /.well-known/oauth-protected-resource/api` and `…/mcp`, the path-insertion
 * form of §3.1, so a client that knows only a resource's URL finds its
 * authorization server and scopes.
 *
 * A sample resource exists only while `RESOURCES` lists it: otherwise this
 * server issues no token for it, so neither its metadata nor its routes are
 * served (`sampleResource` is null). Each document is serialised once, at
 * start.
 */
import type { FastifyPluginAsync } from 'fastify';
import { resourceMetadataUrl } from '../oauth/resource-uri.js';
import { protectedResourceMetadata } from '../oauth/resources.js';
import type { Services } from '../services.js';

/** The sample resources, by their path under `ISSUER`. */
export type SampleResourceName = 'api' | 'mcp';

/** What each sample resource's metadata says: its name and the scopes it understands (those of `SCOPES`). */
const SAMPLE_RESOURCES: Readonly<Record<SampleResourceName, { name: string; scopes: readonly string[] }>> = {
  api: { name: 'Sample API', scopes: ['api:read', 'api:write'] },
  mcp: { name: 'Sample MCP server', scopes: ['api:read', 'api:write'] },
};

/**
 * The sample resource `${ISSUER}/<name>` as `RESOURCES` spells it (what its
 * tokens' `aud` is, and what `requireBearer` takes), or null when
 * `RESOURCES` leaves it out and it is not to be served.
 */
export function sampleResource(services: Pick<Services, 'config' | 'resources'>, name: SampleResourceName): string | null {
  return services.resources.find(`${services.config.issuer}/${name}`);
}

const metadataSchema = {
  type: 'object',
  description: 'Protected resource metadata (RFC 9728 §2).',
  properties: {
    resource: { type: 'string' },
    authorization_servers: { type: 'array', items: { type: 'string' } },
    scopes_supported: { type: 'array', items: { type: 'string' } },
    bearer_methods_supported: { type: 'array', items: { type: 'string' } },
    dpop_signing_alg_values_supported: { type: 'array', items: { type: 'string' }, description: 'RFC 9449: DPoP-bound tokens are accepted with proofs of these algorithms.' },
    resource_name: { type: 'string' },
  },
  required: ['resource', 'authorization_servers'],
} as const;

/** Read by any origin and fetched by machines (like discovery): CORS public, request lines at debug. */
const MACHINE_PUBLIC = { cors: 'public', accessLog: 'debug', securityHeaders: 'api' } as const;

export const resourceMetadataRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config' | 'resources'> }> = async (app, { services }) => {
  const { config } = services;
  for (const name of Object.keys(SAMPLE_RESOURCES) as SampleResourceName[]) {
    const resource = sampleResource(services, name);
    if (resource === null) continue;
    const { name: resourceName, scopes } = SAMPLE_RESOURCES[name];
    const body = JSON.stringify(
      protectedResourceMetadata(config.issuer, { resource, name: resourceName, scopes: scopes.filter((scope) => config.scopes.includes(scope)) }),
    );
    // Served where RFC 9728 §3.1 puts it for this identifier (behind a proxy when ISSUER has a path).
    const path = new URL(resourceMetadataUrl(resource)).pathname;
    app.get(
      path,
      { config: MACHINE_PUBLIC, schema: { tags: ['discovery'], summary: `Protected resource metadata of ${resource} (RFC 9728)`, response: { 200: metadataSchema } } },
      async (_request, reply) => {
        reply.header('cache-control', 'public, max-age=300').type('application/json; charset=utf-8');
        // Pre-serialised: sent as is, not through the response schema.
        return reply.send(body);
      },
    );
  }
};
