/**
 * `buildTestApp(t)`: the whole server over a fresh backend of its own (see
 * `backend.ts`), closed in `t.teardown`. Tests drive it with `app.inject()`
 * or, when they need a real socket, `listen()`.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices, type ServiceOptions, type Services } from '../../src/services.js';
import type { DbWithScripts } from '../../src/storage/db.js';
import { createStorage } from '../../src/storage/index.js';
import type { KvStore, Storage, User } from '../../src/storage/types.js';
import { openTestDb, openTestKv } from './backend.js';

export interface TestAppOptions {
  /** Environment variables for `loadConfig` (merged over test defaults). */
  env?: Record<string, string>;
  now?: () => number;
  logger?: FastifyServerOptions['logger'];
  /** Share a database / TTL store with another test app (two instances). */
  db?: DbWithScripts;
  kv?: KvStore;
  /** Further options for `createServices` (e.g. the token service's background intervals). */
  serviceOptions?: Omit<ServiceOptions, 'now'>;
}

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  /** The repositories under `services`, for tests that look at what was stored (hashes, rows). */
  storage: Storage;
  config: Config;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

export async function buildTestApp(t: Tap, options: TestAppOptions = {}): Promise<TestApp> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ISSUER: 'http://localhost:3000', ...options.env });
  // A shared db/kv belongs to whoever opened it; an own one is closed with the app.
  const db = options.db ?? (await openTestDb());
  const kv = options.kv ?? (await openTestKv());
  const shared = { db: options.db !== undefined, kv: options.kv !== undefined };
  const storage = await createStorage(config, {
    db: shared.db ? { ...db, close: async () => {} } : db,
    kv: shared.kv ? { ...kv, close: async () => {} } : kv,
    skipMigrations: true,
  });
  const services = createServices(config, storage, { ...options.serviceOptions, ...(options.now ? { now: options.now } : {}) });
  const app = await buildApp(config, services, { logger: options.logger ?? false });
  await services.start();
  t.teardown(() => app.close());
  await app.ready();
  return { app, services, storage, config };
}

/** Creates a user directly through the service (no HTTP). */
export async function seedUser(
  services: Services,
  input: { username?: string; password?: string; roles?: string[]; email?: string } = {},
): Promise<{ id: string; username: string; password: string }> {
  const username = input.username ?? `user${Math.random().toString(36).slice(2, 10)}`;
  const password = input.password ?? 'correct horse battery staple';
  const user = await services.users.create({ username, password, roles: input.roles ?? [], email: input.email ?? null });
  return { id: user.id, username, password };
}

/** Registers a client directly through the service; returns its id and plain secret. */
export async function seedClient(
  services: Services,
  metadata: {
    client_name?: string;
    redirect_uris?: string[];
    post_logout_redirect_uris?: string[];
    grant_types?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
    scope?: string;
    resource_server?: boolean;
    dpop_bound_access_tokens?: boolean;
  } = {},
): Promise<{ clientId: string; clientSecret: string | null }> {
  const { client, clientSecret } = await services.clients.register({ client_name: 'Test client', ...metadata });
  return { clientId: client.clientId, clientSecret };
}

/** The user when `password` is theirs and the account is enabled (checked through the server's one sign-in path), else null. */
export async function checkPassword(services: Services, username: string, password: string): Promise<User | null> {
  const result = await services.users.signIn(username, password, { ip: '127.0.0.1', source: 'login_form' });
  return result.ok ? result.user : null;
}

/**
 * Sets up an authenticator app for a user directly through the service, as
 * the account page does, with a code of the current time step (of
 * `services.now`): that step is then used up. Returns the secret (base32)
 * and the ten recovery codes.
 */
export async function enrolSecondFactor(services: Services, userId: string, ip = '127.0.0.1'): Promise<{ secret: string; recoveryCodes: string[] }> {
  const user = await services.users.get(userId);
  const { secret } = await services.secondFactor.beginEnrolment(user);
  const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: services.now() });
  const recoveryCodes = await services.secondFactor.confirmEnrolment(user, code, ip);
  if (!recoveryCodes) throw new Error('the enrolment code was refused');
  return { secret, recoveryCodes };
}
