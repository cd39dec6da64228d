/**
 * The configuration mistakes of a first hour, each told plainly: an issuer
 * without its scheme, scopes separated by commas, a misspelt variable.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig, unknownVariableWarnings } from '../../src/config.js';
import { ROOT } from '../helpers/root.js';

t.test('ISSUER without a scheme is told the scheme is missing, not "must use https"', async (t) => {
  for (const raw of ['localhost:3456', 'auth.example.com', 'auth.example.com/oauth', '//auth.example.com']) {
    t.throws(() => loadConfig({ ISSUER: raw }), { name: 'ConfigError', variable: 'ISSUER', message: /has no scheme: expected an absolute URL such as https:\/\/auth\.example\.com/ }, raw);
  }
  t.throws(() => loadConfig({ ISSUER: 'localhost:3456', PORT: '3456' }), { message: /http:\/\/localhost:3456/ }, 'and suggests the local form');
  t.throws(() => loadConfig({ ISSUER: 'http://auth.example.com' }), { variable: 'ISSUER', message: /must use https/ }, 'a real http issuer is still told https');
  t.equal(loadConfig({ ISSUER: 'http://localhost:3456' }).issuer, 'http://localhost:3456');
});

t.test('ISSUER holds only the characters of a URI: it is compared character for character', async (t) => {
  for (const raw of ['https://auth.example.com/a<b>', 'https://auth.example.com/a b', 'https://auth.example.com/a"b', 'https://auth.example.com/é']) {
    t.throws(() => loadConfig({ ISSUER: raw }), { name: 'ConfigError', variable: 'ISSUER', message: /characters of a URI/ }, raw);
  }
  t.equal(loadConfig({ ISSUER: 'https://auth.example.com/t%C3%A9nant' }).issuer, 'https://auth.example.com/t%C3%A9nant', 'percent-encoded is fine');
});

t.test('ISSUER with a query or fragment is told so; an IPv6 loopback host is an issuer', async (t) => {
  for (const raw of ['http://localhost:4142/?x=1', 'http://localhost:4142#f', 'https://auth.example.com?', 'https://auth.example.com/#']) {
    t.throws(() => loadConfig({ ISSUER: raw }), { name: 'ConfigError', variable: 'ISSUER', message: 'ISSUER: must not contain a query or fragment (RFC 8414 §2)' }, raw);
  }
  t.equal(loadConfig({ ISSUER: 'http://[::1]:4142' }).issuer, 'http://[::1]:4142', 'plain http on the IPv6 loopback, like 127.0.0.1');
  t.equal(loadConfig({ ISSUER: 'https://[2001:db8::1]/tenant' }).issuer, 'https://[2001:db8::1]/tenant');
  t.throws(() => loadConfig({ ISSUER: 'http://[2001:db8::1]' }), { variable: 'ISSUER', message: /must use https/ });
  t.throws(() => loadConfig({ ISSUER: 'https://auth.example.com/a[b]' }), { variable: 'ISSUER', message: /\[ and \] only around an IPv6 address as its host/ });
});

t.test('ISSUER with a trailing slash is refused, naming the form to use: it is used exactly as written', async (t) => {
  t.throws(() => loadConfig({ ISSUER: 'http://localhost:4142/' }), { name: 'ConfigError', variable: 'ISSUER', message: /^ISSUER: must not end with a slash .*: use http:\/\/localhost:4142$/ });
  t.throws(() => loadConfig({ ISSUER: 'https://auth.example.com/tenant//' }), { variable: 'ISSUER', message: /use https:\/\/auth\.example\.com\/tenant$/ });
  t.equal(loadConfig({ ISSUER: 'https://auth.example.com/tenant' }).issuer, 'https://auth.example.com/tenant');
});

t.test('SCOPES separated by commas is refused, with the spaced form', async (t) => {
  t.throws(() => loadConfig({ SCOPES: 'openid,profile' }), { name: 'ConfigError', variable: 'SCOPES', message: 'SCOPES: "openid,profile" contains a comma: scopes are separated by spaces, e.g. SCOPES="openid profile"' });
  t.throws(() => loadConfig({ SCOPES: 'openid, profile api:read' }), { variable: 'SCOPES', message: /e\.g\. SCOPES="openid profile api:read"/ });
  t.same(loadConfig({ SCOPES: 'openid profile' }).scopes, ['openid', 'profile']);
});

t.test('RESOURCES separated by commas is refused, with the spaced form', async (t) => {
  const api = 'http://localhost:4142/api';
  const mcp = 'http://localhost:4142/mcp';
  t.throws(() => loadConfig({ RESOURCES: `${api},${mcp}` }), { name: 'ConfigError', variable: 'RESOURCES', message: `RESOURCES: "${api},${mcp}" contains a comma: resources are separated by spaces, e.g. RESOURCES="${api} ${mcp}"` });
  t.throws(() => loadConfig({ RESOURCES: `${api}, ${mcp}` }), { variable: 'RESOURCES', message: `RESOURCES: "${api}," contains a comma: resources are separated by spaces, e.g. RESOURCES="${api} ${mcp}"` });
  t.same(loadConfig({ RESOURCES: `${api} ${mcp}` }).resources, [api, mcp]);
  t.same(loadConfig({ RESOURCES: 'https://api.example.com/v1,2' }).resources, ['https://api.example.com/v1,2'], 'a comma inside one URL is still a URL');
});

t.test('unknown variables that look like settings are named, with the closest known one', async (t) => {
  const warnings = unknownVariableWarnings({
    REGISTRATON: 'closed',
    SCOPE: 'openid',
    PG_POOL_SIZE: '20',
    REDIS_PASSWORD: 'x',
    ADMIN_PASWORD: 'x',
    // A real setting, and what every shell or tool sets: never warned about.
    REGISTRATION: 'open',
    PATH: '/usr/bin',
    HOME: '/root',
    HOSTNAME: 'vm',
    SESSION_MANAGER: 'local/vm',
    NODE_ENV: 'production',
    npm_config_cache: '/tmp',
  });
  t.same(
    warnings.map((w) => /^(\S+) is not a setting of this server and is ignored; did you mean (\S+)\?/.exec(w)?.slice(1)),
    [
      ['ADMIN_PASWORD', 'ADMIN_PASSWORD'],
      ['PG_POOL_SIZE', 'PG_POOL_MAX'],
      ['REDIS_PASSWORD', 'REDIS_URL'],
      ['REGISTRATON', 'REGISTRATION'],
      ['SCOPE', 'SCOPES'],
    ],
  );
  t.same(unknownVariableWarnings({ DATABASE_URL: 'postgres://db/oauth', ADMIN_USERNAME: 'a', ADMIN_PASSWORD: 'b', PORT: '1' }), [], 'every setting the server reads is known');
});

t.test('a misspelt variable of any setting is named: every setting\'s first word is a prefix', async (t) => {
  const warnings = unknownVariableWarnings({
    PORT: '4142',
    REQUIRE_MFA: 'true',
    DYNAMIC_REGISTRATION_MODE: 'off',
    SESSION_TIMEOUT: '60',
    CLIENT_METADATA_ALLOW_PRIVATE: 'true',
    DPOP_REQUIRED: 'true',
    ISSUER_URL: 'https://x',
    LOG_FORMAT: 'json',
    CODE_LIFETIME: '60',
    BODY_MAX: '1',
    // Others' variables that begin like a setting: the X session manager's, Kubernetes' service links.
    SESSION_MANAGER: 'local/vm',
    REDIS_SERVICE_HOST: '10.0.0.7',
    REDIS_SERVICE_PORT: '6379',
    REDIS_PORT: 'tcp://10.0.0.7:6379',
    REDIS_PORT_6379_TCP_ADDR: '10.0.0.7',
    DATA_SERVICE_PORT_HTTP: '80',
  });
  t.same(
    warnings.map((w) => /^(\S+) is not a setting of this server and is ignored; did you mean (\S+)\?/.exec(w)?.slice(1)),
    [
      ['BODY_MAX', 'BODY_LIMIT'],
      ['CLIENT_METADATA_ALLOW_PRIVATE', 'CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS'],
      ['CODE_LIFETIME', 'CODE_TTL'],
      ['DPOP_REQUIRED', 'DPOP_NONCE'],
      ['DYNAMIC_REGISTRATION_MODE', 'DYNAMIC_REGISTRATION'],
      ['ISSUER_URL', 'ISSUER'],
      ['LOG_FORMAT', 'LOG_LEVEL'],
      ['REQUIRE_MFA', 'REQUIRE_MFA_FOR_ADMINS'],
      ['SESSION_TIMEOUT', 'SESSION_TTL'],
    ],
  );
  // The prefixes come from the names loadConfig reads: each documented setting's first word is one.
  const doc = await readFile(join(ROOT, 'docs/operations.md'), 'utf8');
  const settings = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]!);
  t.ok(settings.length > 40, 'the settings are read from the tables');
  for (const setting of settings) {
    const typo = `${setting.split('_')[0]}_XYZZY`;
    t.match(unknownVariableWarnings({ [typo]: '1' }), [new RegExp(`^${typo} is not a setting`)], typo);
  }
});

t.test('SMTP_URL and SMTP_FROM go together; the sender is one address; email verification needs them', async (t) => {
  t.throws(() => loadConfig({ SMTP_URL: 'smtp://mail:25' }), { name: 'ConfigError', variable: 'SMTP_FROM', message: /set together/ });
  t.throws(() => loadConfig({ SMTP_FROM: 'auth@example.com' }), { variable: 'SMTP_URL', message: /set together/ });
  t.throws(() => loadConfig({ SMTP_URL: 'http://mail:25', SMTP_FROM: 'auth@example.com' }), { variable: 'SMTP_URL', message: /smtp:\/\/ or smtps:\/\// });
  for (const from of ['not an address', 'auth@example.com\r\nBcc: x@evil.example', 'A <auth@example.com', 'a@b@c']) {
    t.throws(() => loadConfig({ SMTP_URL: 'smtp://mail:25', SMTP_FROM: from }), { name: 'ConfigError', variable: 'SMTP_FROM' }, JSON.stringify(from));
  }
  t.same(loadConfig({ SMTP_URL: 'smtp://mail:25', SMTP_FROM: 'Sign-in <auth@example.com>' }).smtp, { url: 'smtp://mail:25', from: 'Sign-in <auth@example.com>' });
  t.equal(loadConfig({}).smtp, undefined, 'unset: no mail');
  t.throws(() => loadConfig({ REQUIRE_EMAIL_VERIFICATION: 'true' }), { variable: 'REQUIRE_EMAIL_VERIFICATION', message: /needs SMTP_URL/ });
  t.equal(loadConfig({ REQUIRE_EMAIL_VERIFICATION: 'true', SMTP_URL: 'smtps://mail:465', SMTP_FROM: 'auth@example.com' }).requireEmailVerification, true);
});
