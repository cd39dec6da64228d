/**
 * The static files of the HTML pages (`public/`): the stylesheet of every
 * page, the admin console's one script and the favicon. Read once at start
 * and served with a strong ETag; the strict CSP allows styles and scripts
 * only from 'self', so nothing is inlined. `/favicon.ico`, which browsers
 * ask for on pages that name no icon (JSON answers, Swagger UI), redirects
 * to the favicon instead of answering 404.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

const FILES = [
  { name: 'app.css', type: 'text/css; charset=utf-8' },
  { name: 'admin.js', type: 'text/javascript; charset=utf-8' },
  { name: 'favicon.svg', type: 'image/svg+xml' },
] as const;

export const assetRoutes: FastifyPluginAsync = async (app) => {
  for (const { name, type } of FILES) {
    const body = await readFile(`${PUBLIC_DIR}${name}`);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
    app.get(`/assets/${name}`, { schema: { hide: true } }, async (request, reply) => {
      reply.header('cache-control', 'public, max-age=3600').header('etag', etag);
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type(type).send(body);
    });
  }
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=86400').redirect('/assets/favicon.svg', 301),
  );
};
