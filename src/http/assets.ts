/**
 * The static files of the HTML pages (`public/`): the stylesheet of every
 * page, the admin console's script, the passkey script and the favicon. Read
 * once at start and served with a strong ETag; the strict CSP allows styles
 * and scripts only from 'self', so nothing is inlined. `/favicon.ico`, which
 * browsers ask for on pages that name no icon (JSON answers, Swagger UI),
 * redirects to the favicon instead of answering 404.
 *
 * The browser half of @simplewebauthn (its UMD bundle, global
 * `SimpleWebAuthnBrowser`) is served from node_modules, never a CDN, under a
 * URL that names the installed version: cached for a year (`immutable`),
 * and a new version is a new URL.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

const FILES = [
  { name: 'app.css', type: 'text/css; charset=utf-8' },
  { name: 'admin.js', type: 'text/javascript; charset=utf-8' },
  { name: 'passkeys.js', type: 'text/javascript; charset=utf-8' },
  { name: 'favicon.svg', type: 'image/svg+xml' },
] as const;

const JAVASCRIPT = 'text/javascript; charset=utf-8';
const ONE_YEAR_SECONDS = 31_536_000;

interface VendorScript {
  path: string;
  body: Buffer;
}

let webauthnBrowser: VendorScript | undefined;

/** @simplewebauthn/browser's bundle and its versioned URL (read once, on first use: at start, by `assetRoutes`). */
function webauthnBrowserScript(): VendorScript {
  if (!webauthnBrowser) {
    // Resolved like an import (wherever npm put the package), then from its root.
    const require = createRequire(import.meta.url);
    const root = join(dirname(require.resolve('@simplewebauthn/browser')), '..');
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const body = readFileSync(join(root, 'dist', 'bundle', 'index.umd.min.js'));
    webauthnBrowser = { path: `/assets/vendor/simplewebauthn-browser-${encodeURIComponent(version)}.umd.min.js`, body };
  }
  return webauthnBrowser;
}

/** The scripts of a page with passkey buttons, in load order (the page's CSP must allow `script-src 'self'`). */
export function passkeyScripts(): readonly string[] {
  return [webauthnBrowserScript().path, '/assets/passkeys.js'];
}

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
  const vendor = webauthnBrowserScript();
  app.get(vendor.path, { schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', `public, max-age=${ONE_YEAR_SECONDS}, immutable`).type(JAVASCRIPT).send(vendor.body),
  );
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=86400').redirect('/assets/favicon.svg', 301),
  );
};
