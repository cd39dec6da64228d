/**
 * Entry point: loadConfig → storage → services → buildApp → listen; prints
 * where to go and how to log in; closes gracefully on SIGTERM/SIGINT.
 */
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createServices } from './services.js';
import { createStorage } from './storage/index.js';

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
  const services = createServices(config, storage);
  const app = await buildApp(config, services);
  app.log.info(storage.describe());
  await services.start();
  const admin = await services.users.ensureAdmin(config);

  await app.listen({ port: config.port, host: config.host });

  const lines = [
    '',
    `  OAuth 2.0 authorization server listening at ${config.issuer}`,
    `    API docs (Swagger UI):  ${config.issuer}/docs`,
    `    discovery:              ${config.issuer}/.well-known/oauth-authorization-server`,
    `    health / readiness:     ${config.issuer}/healthz  ${config.issuer}/readyz`,
  ];
  if (admin?.generatedPassword) {
    lines.push(
      '',
      `  Created admin user "${admin.user.username}" with password: ${admin.generatedPassword}`,
      '  (shown once: set ADMIN_USERNAME/ADMIN_PASSWORD to choose your own)',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      app.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`Failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
