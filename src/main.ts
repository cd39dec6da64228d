/**
 * Entry point: loadConfig → storage → services → buildApp → listen; prints
 * where to go and how to log in; closes gracefully on SIGTERM/SIGINT.
 */
import type { FastifyInstance } from 'fastify';
import { startControlServer } from './admin/control.js';
import { buildApp } from './app.js';
import { SWAGGER_UI_CLIENT_ID, swaggerUiRedirectUri } from './clients/swagger-ui-client.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startMetricsServer } from './observability/metrics-http.js';
import { createServices } from './services.js';
import { createStorage } from './storage/index.js';

/** How long in-flight requests may take to finish after SIGTERM/SIGINT before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const storage = await createStorage(config);
  // Background work (key reloads, deny-list polls, revocation broadcasts) retries on its own; say when it fails.
  let logBackground = (_err: unknown) => {};
  // An audit event that could not be written is lost (the request went on): say so loudly.
  let logAudit = (_err: unknown, _what: string) => {};
  const services = createServices(config, storage, { onBackgroundError: (err) => logBackground(err), onAuditError: (err, what) => logAudit(err, what) });
  const app = await buildApp(config, services);
  logBackground = (err) => app.log.warn({ err }, 'background task failed; it will retry');
  logAudit = (err, what) => app.log.error({ err }, `${what} failed`);
  const closers: Array<() => Promise<void>> = [];
  // From here on a signal closes everything that is open, even mid-start.
  handleSignals(app, closers);
  app.log.info(storage.describe());
  if (config.clientMetadataAllowPrivateNetworks) {
    app.log.warn(
      'CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS=true: client metadata documents may be fetched from private, loopback and link-local addresses. ' +
        'For development and tests only: anyone who can reach /authorize can make this server send requests into its own network.',
    );
  }
  services.metrics.collectProcessMetrics();
  await services.start();
  let admin;
  try {
    admin = await services.bootstrap();
  } catch (err) {
    // A weak ADMIN_PASSWORD is refused here, where the password rule is loaded.
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`Configuration error: ${err.message}\n`);
    await app.close().catch(() => {});
    process.exit(2);
  }

  try {
    await app.listen({ port: config.port, host: config.host });
    if (config.metricsPort !== undefined) {
      const metricsServer = await startMetricsServer(services.metrics, config.metricsPort, config.host);
      closers.push(metricsServer.close);
    }
    if (storage.db.kind === 'pglite') {
      // This process holds the embedded database; `npm run cli` sends its commands here (admin/control.ts).
      const control = await startControlServer(services, config.dataDir, app.log);
      closers.push(control.close);
    }
  } catch (err) {
    // Release the database (and the embedded database's lock) before giving up.
    await Promise.allSettled(closers.map((close) => close()));
    await app.close().catch(() => {});
    throw err;
  }

  const lines = [
    '',
    `  OAuth 2.0 authorization server listening at ${config.issuer}`,
    `    API docs (Swagger UI):  ${config.issuer}/docs`,
    `    admin console:          ${config.issuer}/admin`,
    `    discovery:              ${config.issuer}/.well-known/oauth-authorization-server`,
    `    health / readiness:     ${config.issuer}/healthz  ${config.issuer}/readyz`,
    config.metricsPort !== undefined
      ? `    metrics:                http://${config.host}:${config.metricsPort}/metrics`
      : `    metrics (admin only):   ${config.issuer}/metrics`,
  ];
  if (config.swaggerUiClient) {
    lines.push(`    Swagger UI "Authorize": client_id ${SWAGGER_UI_CLIENT_ID} (redirect ${swaggerUiRedirectUri(config)})`);
  }
  if (admin?.generatedPassword) {
    lines.push(
      '',
      `  Created admin user "${admin.user.username}" with password: ${admin.generatedPassword}`,
      '  (shown once: set ADMIN_USERNAME/ADMIN_PASSWORD to choose your own)',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

/**
 * SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish
 * (new requests on kept-alive sockets get 503, idle sockets are closed),
 * close the database and Redis (the app's onClose hook), exit 0. Exits 1 if
 * that takes longer than SHUTDOWN_GRACE_MS; a second signal exits at once.
 */
function handleSignals(app: FastifyInstance, closers: Array<() => Promise<void>>): void {
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) {
      app.log.warn({ signal }, 'second signal: exiting without waiting for in-flight requests');
      process.exit(1);
    }
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      app.log.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS} ms; exiting`);
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    // server.close() drops idle keep-alive sockets once; a socket whose request
    // finishes later would idle until keepAliveTimeout. Reap those as they free up.
    const reaper = setInterval(() => app.server.closeIdleConnections(), 100);
    reaper.unref();
    Promise.allSettled(closers.map((close) => close()))
      .then(() => app.close())
      .then(
        () => {
          app.log.info('shut down cleanly');
          process.exit(0);
        },
        (err: unknown) => {
          app.log.error({ err }, 'error while shutting down');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`Failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
