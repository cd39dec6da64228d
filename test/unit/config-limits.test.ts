/**
 * The connection and store limits of the configuration: defaults, the
 * bounds each variable accepts, and the one relation between them (a
 * headers timeout no longer than the request timeout, which Node enforces).
 */
import t from 'tap';
import { loadConfig } from '../../src/config.js';

t.test('defaults', async (t) => {
  const config = loadConfig({});
  t.equal(config.bodyLimitBytes, 65_536);
  t.equal(config.pgPoolMax, 10);
  t.equal(config.pgConnectTimeoutMs, 3_000);
  t.equal(config.pgStatementTimeoutMs, 10_000);
  t.equal(config.redisCommandTimeoutMs, 2_000);
  t.equal(config.redisKeyPrefix, 'oauth:');
  t.equal(config.requestTimeoutMs, 30_000);
  t.equal(config.headersTimeoutMs, 10_000);
  t.equal(config.keepAliveTimeoutMs, 5_000);
  t.equal(config.pgPreparedStatements, true);
  t.equal(config.signingKeyEncryptionKey, undefined);
});

t.test('each limit is read and bounded; a bad value names the variable', async (t) => {
  const config = loadConfig({
    PG_CONNECT_TIMEOUT_MS: '500',
    PG_STATEMENT_TIMEOUT_MS: '2500',
    REDIS_COMMAND_TIMEOUT_MS: '750',
    REDIS_KEY_PREFIX: 'tenant-a:',
    REQUEST_TIMEOUT_MS: '20000',
    HEADERS_TIMEOUT_MS: '4000',
    KEEP_ALIVE_TIMEOUT_MS: '65000',
    PG_PREPARED_STATEMENTS: 'off',
    SIGNING_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url'),
  });
  t.equal(config.pgConnectTimeoutMs, 500);
  t.equal(config.pgStatementTimeoutMs, 2_500);
  t.equal(config.redisCommandTimeoutMs, 750);
  t.equal(config.redisKeyPrefix, 'tenant-a:');
  t.equal(config.requestTimeoutMs, 20_000);
  t.equal(config.headersTimeoutMs, 4_000);
  t.equal(config.keepAliveTimeoutMs, 65_000);
  t.equal(config.pgPreparedStatements, false);
  t.same(config.signingKeyEncryptionKey, new Uint8Array(32).fill(7));

  const bad: Array<[string, string]> = [
    ['PG_CONNECT_TIMEOUT_MS', '0'],
    ['PG_STATEMENT_TIMEOUT_MS', '3s'],
    ['REDIS_COMMAND_TIMEOUT_MS', '-1'],
    ['REDIS_KEY_PREFIX', 'has space'],
    ['REDIS_KEY_PREFIX', 'x'.repeat(65)],
    ['HEADERS_TIMEOUT_MS', '999'],
    ['KEEP_ALIVE_TIMEOUT_MS', '700000'],
    ['BODY_LIMIT', '100'],
    ['PG_POOL_MAX', '0'],
    ['PG_PREPARED_STATEMENTS', 'yes'],
    ['SIGNING_KEY_ENCRYPTION_KEY', 'too-short'],
    ['SIGNING_KEY_ENCRYPTION_KEY', Buffer.alloc(31).toString('base64url')],
    ['SIGNING_KEY_ENCRYPTION_KEY', Buffer.alloc(32).toString('base64')],
  ];
  for (const [name, raw] of bad) {
    t.throws(() => loadConfig({ [name]: raw }), { name: 'ConfigError', variable: name }, `${name}=${raw} is refused`);
  }
});

t.test('the headers timeout never exceeds the request timeout', async (t) => {
  // Default: 10 s, or the request timeout when that is shorter.
  t.equal(loadConfig({ REQUEST_TIMEOUT_MS: '4000' }).headersTimeoutMs, 4_000);
  t.throws(() => loadConfig({ REQUEST_TIMEOUT_MS: '4000', HEADERS_TIMEOUT_MS: '5000' }), {
    name: 'ConfigError',
    variable: 'HEADERS_TIMEOUT_MS',
    message: /REQUEST_TIMEOUT_MS/,
  });
});

t.test('the request timeout outlasts the longest wait for a store, so a request on a hung store gets its 503', async (t) => {
  const pg = { DATABASE_URL: 'postgres://db/oauth' };
  t.equal(loadConfig({ ...pg, REQUEST_TIMEOUT_MS: '12001' }).requestTimeoutMs, 12_001, 'default statement timeout 10 s + 2 s');
  t.throws(() => loadConfig({ ...pg, REQUEST_TIMEOUT_MS: '6000' }), {
    name: 'ConfigError',
    variable: 'REQUEST_TIMEOUT_MS',
    message: /PG_STATEMENT_TIMEOUT_MS \+ 2000: 12000 ms/,
  });
  t.throws(() => loadConfig({ ...pg, PG_STATEMENT_TIMEOUT_MS: '60000' }), { name: 'ConfigError', variable: 'REQUEST_TIMEOUT_MS' }, 'a longer statement timeout needs a longer request timeout');
  t.equal(loadConfig({ ...pg, PG_STATEMENT_TIMEOUT_MS: '60000', REQUEST_TIMEOUT_MS: '65000' }).requestTimeoutMs, 65_000);
  t.throws(() => loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '4000' }), { name: 'ConfigError', message: /REDIS_COMMAND_TIMEOUT_MS: 5000 ms/ });
  t.equal(loadConfig({ REQUEST_TIMEOUT_MS: '6000' }).requestTimeoutMs, 6_000, 'the embedded database has no statement timeout to wait for');
});

t.test('TRUST_PROXY: true, false, a hop count, or proxy addresses/CIDRs; anything else names the variable', async (t) => {
  t.equal(loadConfig({}).trustProxy, false, 'default: no proxy is trusted');
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  t.equal(loadConfig({ TRUST_PROXY: 'FALSE' }).trustProxy, false);
  t.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, 1, 'a hop count, not "true": one proxy in front');
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2);
  t.equal(loadConfig({ TRUST_PROXY: '0' }).trustProxy, false, 'zero hops: nothing trusted');
  t.same(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.10' }).trustProxy, ['10.0.0.0/8', '192.0.2.10']);
  t.same(loadConfig({ TRUST_PROXY: '::1,fd00::/8,127.0.0.1/32' }).trustProxy, ['::1', 'fd00::/8', '127.0.0.1/32']);
  t.same(loadConfig({ TRUST_PROXY: 'loopback,uniquelocal' }).trustProxy, ['loopback', 'uniquelocal'], 'named ranges');

  for (const raw of ['maybe', '1.5', '-1', '101', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/0', '300.1.1.1', '10.0.0.1,', '10.0.0.1,,10.0.0.2', 'fe80::1%eth0', '10.0.0.1/8x', 'proxy.internal']) {
    t.throws(() => loadConfig({ TRUST_PROXY: raw }), { name: 'ConfigError', variable: 'TRUST_PROXY', message: /^TRUST_PROXY: expected true, false, a hop count/ }, `TRUST_PROXY=${raw} is refused`);
  }
});

t.test('client registration and metadata documents: defaults, values, bounds', async (t) => {
  const defaults = loadConfig({});
  t.equal(defaults.dynamicRegistration, 'open');
  t.equal(defaults.dynamicRegistrationLimit, 20);
  t.equal(defaults.dynamicRegistrationWindowSeconds, 3_600);
  t.equal(defaults.dynamicClientIdleDays, 30);
  t.equal(defaults.clientMetadataAllowPrivateNetworks, false);
  t.equal(defaults.clientMetadataTimeoutMs, 5_000);
  const set = loadConfig({
    DYNAMIC_REGISTRATION: 'token',
    DYNAMIC_REGISTRATION_LIMIT: '3',
    DYNAMIC_REGISTRATION_WINDOW: '60',
    DYNAMIC_CLIENT_IDLE_DAYS: '7',
    CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS: 'true',
    CLIENT_METADATA_TIMEOUT_MS: '250',
  });
  t.equal(set.dynamicRegistration, 'token');
  t.equal(set.dynamicRegistrationLimit, 3);
  t.equal(set.dynamicRegistrationWindowSeconds, 60);
  t.equal(set.dynamicClientIdleDays, 7);
  t.equal(set.clientMetadataAllowPrivateNetworks, true);
  t.equal(set.clientMetadataTimeoutMs, 250);
  t.equal(loadConfig({ DYNAMIC_REGISTRATION: 'off' }).dynamicRegistration, 'off');
  for (const [name, raw] of [
    ['DYNAMIC_REGISTRATION', 'closed'],
    ['DYNAMIC_REGISTRATION_LIMIT', '0'],
    ['DYNAMIC_REGISTRATION_WINDOW', '1w'],
    ['DYNAMIC_CLIENT_IDLE_DAYS', '0'],
    ['CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS', 'maybe'],
    ['CLIENT_METADATA_TIMEOUT_MS', '99'],
    ['CLIENT_METADATA_TIMEOUT_MS', '60001'],
  ]) {
    t.throws(() => loadConfig({ [name!]: raw }), { name: 'ConfigError', variable: name }, `${name}=${raw} is refused`);
  }
});
