/**
 * Entry point: loadConfig → storage → services → buildApp → listen; prints
 * where to go and how to log in; closes gracefully on SIGTERM/SIGINT.
 */
import { createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { BackchannelLogoutOutcome } from './oauth/backchannel-logout.js';
import { SWAGGER_UI_CLIENT_ID, swaggerUiRedirectUri } from './clients/swagger-ui-client.js';
import { ConfigError, DEFAULT_DATA_DIR, issuerAwaitsPort, loadConfig, unknownVariableWarnings, type Config } from './config.js';
import { createStorage } from './storage/index.js';
import { preparePasswordRule } from './users/password-policy.js';

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
  for (const warning of unknownVariableWarnings(process.env)) process.stderr.write(`Configuration warning: ${warning}\n`);
  // PORT=0 without ISSUER: the default issuer names the port the system picks, so it is picked
  // now, before anything is built with the issuer, and held until the server listens on it.
  let releasePort = async () => {};
  if (issuerAwaitsPort(config, process.env)) {
    const host = config.host;
    const held = await holdFreePort(host).catch((err: unknown) => {
      throw listenFailure(err, host, 'PORT', 0);
    });
    releasePort = held.release;
    config = loadConfig({ ...process.env, PORT: String(held.port) });
  }

  // ADMIN_PASSWORD is checked against the password rule before the admin is set up: its
  // dictionaries are prepared in a pause of the database's opening, not after it.
  if (config.adminPassword !== undefined) setImmediate(preparePasswordRule);
  // The rest of the server's code (the routes, their schemas, the services) is loaded while the
  // database opens: PGlite compiles its WebAssembly and PostgreSQL answers off this thread, which
  // would otherwise wait idle for them (bench/startup.ts).
  const [storage, { createServices }, { buildApp }, { startControlServer }, { startMetricsServer }] = await Promise.all([
    createStorage(config),
    import('./services.js'),
    import('./app.js'),
    import('./admin/control.js'),
    import('./observability/metrics-http.js'),
  ]);
  // Background work (key reloads, deny-list polls, revocation broadcasts) retries on its own; say when it fails.
  let logBackground = (_err: unknown) => {};
  // An audit event that could not be written is lost (the request went on): say so loudly.
  let logAudit = (_err: unknown, _what: string) => {};
  // Each logout token's fate (never the token).
  let logBackchannel = (_outcome: BackchannelLogoutOutcome) => {};
  const services = createServices(config, storage, {
    onBackgroundError: (err) => logBackground(err),
    onAuditError: (err, what) => logAudit(err, what),
    onBackchannelLogout: (outcome) => logBackchannel(outcome),
  });
  const app = await buildApp(config, services);
  logBackground = (err) => app.log.warn({ err }, 'background task failed; it will retry');
  logAudit = (err, what) => app.log.error({ err }, `${what} failed`);
  logBackchannel = ({ clientId, uri, ok, attempts, status, reason }) => {
    const fields = { client_id: clientId, uri, attempts, ...(status === undefined ? {} : { status }) };
    if (ok) app.log.info(fields, 'back-channel logout: logout token delivered');
    else app.log.warn({ ...fields, reason }, 'back-channel logout: logout token not delivered');
  };
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
  // Before anything else can fail (the port taken, the metrics port, the control socket): a
  // password generated now is never shown again, and an admin whose password nobody may have
  // seen gets the way to set one, at every start until it signs in or gets a new one.
  if (admin?.generatedPassword) process.stdout.write(`${generatedPasswordLines(admin.user.username, admin.generatedPassword)}\n`);
  else if (admin?.passwordMayBeUnseen) process.stdout.write(`${unseenPasswordLines(admin.user.username, config)}\n`);

  try {
    await releasePort();
    await app.listen({ port: config.port, host: config.host }).catch((err: unknown) => {
      throw listenFailure(err, config.host, 'PORT', config.port);
    });
    if (config.metricsPort !== undefined) {
      const metricsPort = config.metricsPort;
      const metricsServer = await startMetricsServer(services.metrics, metricsPort, config.host).catch((err: unknown) => {
        throw listenFailure(err, config.host, 'METRICS_PORT', metricsPort);
      });
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
  if (admin?.generatedPassword) lines.push('', `  The password of the admin user "${admin.user.username}" is printed above, once.`);
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

/** A free port of `host` that the system picks, listened on (so no other process takes it) until released. */
async function holdFreePort(host: string): Promise<{ port: number; release: () => Promise<void> }> {
  const server = createServer();
  // Never what keeps the process alive: a start that fails exits without releasing it.
  server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { port: (server.address() as AddressInfo).port, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * A failure to listen, told by the variable to change (`HOST`, or `PORT` /
 * `METRICS_PORT`) with the system's reason: `getaddrinfo ENOTFOUND x` alone
 * does not say that x came from HOST. Other errors are returned as they are.
 */
function listenFailure(err: unknown, host: string, portVariable: 'PORT' | 'METRICS_PORT', port: number): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const reason = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new Error(`HOST: "${host}" does not resolve to an address to listen on (${reason}); use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new Error(`HOST: ${host} is not an address of this machine (${reason}); 0.0.0.0 listens on all of them`, { cause: err });
    case 'EADDRINUSE':
      return new Error(`${portVariable}: port ${port} on ${host} is in use by another process (${reason}); stop it or choose another port`, { cause: err });
    case 'EACCES':
      return new Error(`${portVariable}: not allowed to listen on port ${port} (${reason}); ports below 1024 need privileges: choose a higher port`, { cause: err });
    default:
      return err;
  }
}

function generatedPasswordLines(username: string, password: string): string {
  return [
    '',
    `  Created admin user "${username}" with password: ${password}`,
    '  (shown once: keep it now; set ADMIN_USERNAME/ADMIN_PASSWORD to choose your own)',
    '',
  ].join('\n');
}

/** A value for a POSIX shell command line: as is when plain, else in single quotes. */
function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The storage setting the CLI needs to open this server's data, as a
 * command-line prefix: the CLI reads the same variables, and without them
 * it opens the embedded database in `./.data`, which may be another one.
 * A password in `DATABASE_URL` is not printed: a placeholder stands for it.
 */
function cliStoragePrefix(config: Pick<Config, 'databaseUrl' | 'dataDir'>): { prefix: string; placeholder: boolean } {
  if (config.databaseUrl !== undefined) {
    const url = new URL(config.databaseUrl);
    const placeholder = url.password !== '';
    if (placeholder) url.password = 'PASSWORD';
    return { prefix: `DATABASE_URL=${shellWord(url.href)} `, placeholder };
  }
  if (config.dataDir !== resolve(DEFAULT_DATA_DIR)) return { prefix: `DATA_DIR=${shellWord(config.dataDir)} `, placeholder: false };
  return { prefix: '', placeholder: false };
}

/** The hint for an admin whose generated password may never have been seen (users/unseen-password.ts). */
function unseenPasswordLines(username: string, config: Pick<Config, 'databaseUrl' | 'dataDir'>): string {
  const { prefix, placeholder } = cliStoragePrefix(config);
  return [
    '',
    `  The admin user "${username}" has never signed in. Its password was generated and printed once, by the`,
    '  first start. If you do not have it, set a new one (the command asks for it, or pipe it in):',
    `    ${prefix}npm run cli -- users update ${shellWord(username)} --password-stdin`,
    ...(placeholder ? ['  (with the database password of DATABASE_URL in place of PASSWORD)'] : []),
    '',
  ].join('\n');
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
