/**
 * `GET /`: a small page for whoever opens the server's address in a browser:
 * what this server is and where to go next (the API docs, the admin console,
 * discovery, health). Server-rendered, escaped, no inline script or style
 * (the site-wide CSP applies unchanged). Not part of the API document.
 */
import type { FastifyPluginAsync } from 'fastify';
import { DOCS_PREFIX } from '../clients/swagger-ui-client.js';
import type { Services } from '../services.js';
import { renderPage } from './pages.js';
import { htmlPage } from './schemas.js';

export const homeRoutes: FastifyPluginAsync<{ services: Pick<Services, 'config'> }> = async (app, { services }) => {
  const { config } = services;
  app.get('/', { schema: { hide: true, response: { 200: htmlPage('What this server is, and links to its docs, console, discovery and health.') } } }, async (_request, reply) =>
    renderPage(reply, config, 'home', {
      title: 'OAuth 2.0 authorization server',
      issuer: config.issuer,
      docs: DOCS_PREFIX,
      registrationOpen: config.registration === 'open',
    }),
  );
};
