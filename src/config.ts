/**
 * Configuration: the only place that reads environment variables.
 *
 * `loadConfig(env)` is pure. It applies the defaults from SPEC.md, derives
 * `ISSUER`, and validates every value; a bad value throws a `ConfigError`
 * naming the variable and the expected form, which `main.ts` prints before
 * exiting.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { resourceKey } from './oauth/resource-uri.js';

export type AccessTokenAlg = 'ES256' | 'RS256' | 'EdDSA' | 'PS256';

/**
 * Which peers may set the client address with `X-Forwarded-For`
 * (`TRUST_PROXY`): `false` none; `true` every hop (the left-most entry, which
 * the client controls, becomes the address); a hop count (the address is that
 * many entries from the right: the socket peer and the next `n - 1` entries
 * are proxies); or the proxies' addresses and CIDRs (entries are skipped
 * from the right while they belong to a listed proxy).
 */
export type TrustProxy = boolean | number | readonly string[];

export interface Config {
  readonly port: number;
  readonly host: string;
  /** The issuer identifier, exactly as in metadata and tokens (no trailing slash). */
  readonly issuer: string;
  /** Whether the issuer is https: decides the `Secure` cookie flag. */
  readonly secureCookies: boolean;
  readonly databaseUrl: string | undefined;
  readonly redisUrl: string | undefined;
  /** `host:port` seed nodes of a Redis Cluster; takes precedence over `redisUrl`. */
  readonly redisClusterNodes: readonly string[] | undefined;
  readonly dataDir: string;
  readonly adminUsername: string | undefined;
  readonly adminPassword: string | undefined;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly codeTtlSeconds: number;
  /** Browser login session lifetime (idle timeout is the same: sessions are re-extended on use). */
  readonly sessionTtlSeconds: number;
  /** Idle timeout of the admin console's own session (renewed on use). */
  readonly adminSessionTtlSeconds: number;
  /** `REQUIRE_MFA_FOR_ADMINS`: admins reach the console only after an authenticator-app code (and must set one up). */
  readonly requireMfaForAdmins: boolean;
  readonly registration: 'open' | 'closed';
  /**
   * The upstream OpenID Connect provider bootstrapped at start from
   * `UPSTREAM_OIDC_*` (all or none); more are managed at
   * `/admin/identity-providers`. Undefined when unset.
   */
  readonly upstreamOidc: UpstreamOidcConfig | undefined;
  /** The scopes this server knows; each client is registered for a subset. */
  readonly scopes: readonly string[];
  /** Seconds during which a just-rotated refresh token returns the same successor (0 = strict). */
  readonly refreshReuseGraceSeconds: number;
  readonly accessTokenAlg: AccessTokenAlg;
  /**
   * The protected resources this server issues access tokens for
   * (`RESOURCES`, RFC 8707), each as configured: absolute http(s) URLs
   * without fragment, query or credentials, no two naming the same resource.
   * An access token's `aud` is one of them, spelled as here.
   */
  readonly resources: readonly string[];
  /**
   * The `aud` of an access token when no resource was asked for: one of
   * `resources`. `ACCESS_TOKEN_AUDIENCE` when set, else the first of
   * `RESOURCES` (by default `${ISSUER}/api`).
   */
  readonly defaultResource: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest accepted request body, bytes. */
  readonly bodyLimitBytes: number;
  readonly pgPoolMax: number;
  /** Milliseconds to wait for a PostgreSQL connection (pool checkout or connect) before answering 503. */
  readonly pgConnectTimeoutMs: number;
  /** Milliseconds a PostgreSQL statement may run (server-side `statement_timeout`; the client gives up 2 s later). */
  readonly pgStatementTimeoutMs: number;
  /** Prepare each statement once per connection (off behind PgBouncer < 1.21 in transaction mode). */
  readonly pgPreparedStatements: boolean;
  /** Milliseconds a Redis command may take before it fails (503). */
  readonly redisCommandTimeoutMs: number;
  /** Prefix of every Redis key and pub/sub channel: lets deployments share one Redis. */
  readonly redisKeyPrefix: string;
  /** 32 bytes that encrypt private signing keys at rest (`SIGNING_KEY_ENCRYPTION_KEY`); undefined stores them plainly. */
  readonly signingKeyEncryptionKey: Uint8Array | undefined;
  /** Milliseconds a whole request may take before the socket is closed (slowloris guard). */
  readonly requestTimeoutMs: number;
  /** Milliseconds to receive a request's headers (slowloris guard); at most `requestTimeoutMs`. */
  readonly headersTimeoutMs: number;
  /** Milliseconds an idle keep-alive connection stays open; above a load balancer's idle timeout. */
  readonly keepAliveTimeoutMs: number;
  /** Browser origins allowed to call the token, JWKS, discovery and userinfo endpoints. */
  readonly corsOrigins: readonly string[];
  /** When set, `/metrics` is served on this port only (unauthenticated, bind it privately). */
  readonly metricsPort: number | undefined;
  /**
   * Ensure at start a public client `swagger-ui` (PKCE, redirect URI the docs page's
   * `${ISSUER}/docs/static/oauth2-redirect.html`) so Swagger UI's "Authorize" works.
   */
  readonly swaggerUiClient: boolean;
  /** Which reverse proxies' `X-Forwarded-*` to trust (Fastify `trustProxy`, see `TrustProxy`). */
  readonly trustProxy: TrustProxy;
  /**
   * Password checks per account and address (and client secrets per client and
   * address, registrations per address) in the window before 429; also the
   * number of failures per account or per address after which checks are
   * slowed down (`security/throttle.ts`).
   */
  readonly maxFailedAttempts: number;
  /** Window in which failed attempts are counted, seconds. */
  readonly failedAttemptWindowSeconds: number;
  /** Days an audit event is kept before it is deleted (`AUDIT_RETENTION_DAYS`). */
  readonly auditRetentionDays: number;
  /**
   * RFC 7591 registration at `/oauth/register` (`DYNAMIC_REGISTRATION`):
   * `open` (anyone, public clients only), `token` (an initial access token an
   * admin created is required), `off`.
   */
  readonly dynamicRegistration: 'open' | 'token' | 'off';
  /** Registrations per client address per window (`DYNAMIC_REGISTRATION_LIMIT`). */
  readonly dynamicRegistrationLimit: number;
  /** The window of that limit, seconds (`DYNAMIC_REGISTRATION_WINDOW`). */
  readonly dynamicRegistrationWindowSeconds: number;
  /** Days without use after which a client no admin registered is deleted (`DYNAMIC_CLIENT_IDLE_DAYS`). */
  readonly dynamicClientIdleDays: number;
  /**
   * Fetch Client ID Metadata Documents from private, loopback and link-local
   * addresses too (`CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS`): development and
   * tests only; the server warns at start.
   */
  readonly clientMetadataAllowPrivateNetworks: boolean;
  /** Milliseconds a metadata-document fetch may take in all (`CLIENT_METADATA_TIMEOUT_MS`). */
  readonly clientMetadataTimeoutMs: number;
  /**
   * Where mail goes out (`SMTP_URL`, `smtp://` or `smtps://`) and whom it is
   * from (`SMTP_FROM`); set together. Undefined: no mail, so no "forgot
   * password" and no email verification.
   */
  readonly smtp: { readonly url: string; readonly from: string } | undefined;
  /** Self-registration with an email sends a verification link (`REQUIRE_EMAIL_VERIFICATION`; needs SMTP). */
  readonly requireEmailVerification: boolean;
  /**
   * DPoP proofs (RFC 9449) at the token endpoint and the resource routes
   * must carry a server nonce (`DPOP_NONCE`, §8, §9): a client's first proof
   * is answered `use_dpop_nonce` with `DPoP-Nonce`, which it then sends.
   */
  readonly dpopNonce: boolean;
  /**
   * Every client must push its authorization requests (`REQUIRE_PAR`, RFC
   * 9126 §5 `require_pushed_authorization_requests`): `/authorize` accepts
   * only a `request_uri` from `/par`. A client can also be required alone.
   */
  readonly requirePushedAuthorizationRequests: boolean;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_SCOPES = ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'];

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

type Env = Readonly<Record<string, string | undefined>>;

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `expected a URL (${protocols.map((p) => `${p}//…`).join(' or ')})`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return raw;
}

/** `UPSTREAM_OIDC_*`: one "Sign in with …" provider, ensured at every start. */
export interface UpstreamOidcConfig {
  /** `UPSTREAM_OIDC_ID`, default `upstream`: the slug in `/login/providers/<id>/callback`. */
  readonly id: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** `UPSTREAM_OIDC_NAME`: shown as "Sign in with <name>". */
  readonly displayName: string;
}

/** What an identity provider's id may be: a slug, as it appears in its redirect URI. */
export const IDENTITY_PROVIDER_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Why `raw` cannot be an upstream provider's issuer, or null when it can: an
 * absolute https URL (plain http only on a loopback host, for local use and
 * tests), without query, fragment or credentials (OIDC Discovery §2 / RFC
 * 8414 §2). Kept as written: the provider's metadata must name exactly it.
 * Shared by `UPSTREAM_OIDC_ISSUER` and the admin API.
 */
export function upstreamIssuerProblem(raw: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return 'expected an absolute https URL (http only for localhost)';
  }
  if (raw.length > 500) return 'must be at most 500 characters';
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
    return 'must use https (plain http is allowed only for localhost/loopback)';
  }
  if (parsed.search || parsed.hash || raw.includes('#') || raw.includes('?')) return 'must not contain a query or fragment';
  if (parsed.username || parsed.password) return 'must not contain credentials';
  return null;
}

const UPSTREAM_OIDC_REQUIRED = ['UPSTREAM_OIDC_ISSUER', 'UPSTREAM_OIDC_CLIENT_ID', 'UPSTREAM_OIDC_CLIENT_SECRET', 'UPSTREAM_OIDC_NAME'] as const;

function upstreamOidc(env: Env): UpstreamOidcConfig | undefined {
  const values = UPSTREAM_OIDC_REQUIRED.map((name) => [name, read(env, name)] as const);
  const id = read(env, 'UPSTREAM_OIDC_ID');
  const missing = values.filter(([, value]) => value === undefined).map(([name]) => name);
  if (missing.length === UPSTREAM_OIDC_REQUIRED.length) {
    if (id !== undefined) throw new ConfigError('UPSTREAM_OIDC_ID', `is set but ${UPSTREAM_OIDC_REQUIRED.join(', ')} are not: set all of them, or none`);
    return undefined;
  }
  if (missing.length > 0) throw new ConfigError(missing[0]!, `must be set too: ${UPSTREAM_OIDC_REQUIRED.join(', ')} go together (all or none)`);
  const [issuerValue, clientId, clientSecret, name] = values.map(([, value]) => value!) as [string, string, string, string];
  const problem = upstreamIssuerProblem(issuerValue);
  if (problem) throw new ConfigError('UPSTREAM_OIDC_ISSUER', problem);
  if (id !== undefined && !IDENTITY_PROVIDER_ID.test(id)) throw new ConfigError('UPSTREAM_OIDC_ID', 'expected 1 to 63 lowercase letters, digits and -, starting with a letter or digit (it appears in the redirect URI)');
  if (clientId.length > 255) throw new ConfigError('UPSTREAM_OIDC_CLIENT_ID', 'must be at most 255 characters');
  if (clientSecret.length > 1000) throw new ConfigError('UPSTREAM_OIDC_CLIENT_SECRET', 'must be at most 1000 characters');
  if (name.length > 100) throw new ConfigError('UPSTREAM_OIDC_NAME', 'must be at most 100 characters');
  return { id: id ?? 'upstream', issuer: issuerValue, clientId, clientSecret, displayName: name };
}

export function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

function issuer(env: Env, port: number): string {
  const raw = read(env, 'ISSUER') ?? `http://localhost:${port}`;
  // `localhost:3456` parses as a URL of scheme "localhost:": say what is missing instead.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new ConfigError('ISSUER', `"${raw}" has no scheme: expected an absolute URL such as https://auth.example.com (or http://localhost:${port} for local use)`);
  }
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError('ISSUER', 'expected an absolute https URL (http only for localhost)');
  }
  // The issuer is compared character for character (RFC 8414 §3.3): only characters a URI may
  // hold as they are (RFC 3986 §2: unreserved, reserved, percent-encoded), nothing a parser would
  // percent-encode or a page would escape. The reserved ones that do not belong are named below.
  if (/[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/.test(raw)) {
    throw new ConfigError('ISSUER', 'may only hold the characters of a URI (RFC 3986 §2); percent-encode anything else');
  }
  // RFC 8414 §2: https, no query or fragment.
  if (parsed.search || parsed.hash || raw.includes('#') || raw.includes('?')) {
    throw new ConfigError('ISSUER', 'must not contain a query or fragment (RFC 8414 §2)');
  }
  // Brackets belong only around an IPv6 address as the host (RFC 3986 §3.2.2): http://[::1]:3000.
  if (/[[\]]/.test(raw.replace(/^[a-z][a-z0-9+.-]*:\/\/([^/@]*@)?\[[0-9a-f:.]+\]/i, ''))) {
    throw new ConfigError('ISSUER', 'may hold [ and ] only around an IPv6 address as its host, such as http://[::1]:3000; percent-encode them elsewhere');
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
    throw new ConfigError('ISSUER', 'must use https (plain http is allowed only for localhost/loopback)');
  }
  if (parsed.username || parsed.password) throw new ConfigError('ISSUER', 'must not contain credentials');
  // Used exactly as written (RFC 8414 §3.3 compares it character for character, and every
  // endpoint is the issuer followed by its path): a trailing slash is refused, not dropped.
  if (raw.endsWith('/')) throw new ConfigError('ISSUER', `must not end with a slash (it is used exactly as written, and every endpoint URL is the issuer followed by its path): use ${raw.replace(/\/+$/, '')}`);
  return raw;
}

function scopes(env: Env): string[] {
  const raw = read(env, 'SCOPES');
  if (raw === undefined) return [...DEFAULT_SCOPES];
  const list = [...new Set(raw.split(/\s+/))];
  for (const scope of list) {
    // A comma is allowed in a scope token (RFC 6749 §3.3), but "openid,profile" is two scopes written the wrong way.
    if (scope.includes(',')) throw new ConfigError('SCOPES', `"${scope}" contains a comma: scopes are separated by spaces, e.g. SCOPES="${raw.split(/[\s,]+/).filter(Boolean).join(' ')}"`);
    if (!SCOPE_TOKEN.test(scope)) throw new ConfigError('SCOPES', `"${scope}" is not a valid scope token (RFC 6749 §3.3)`);
    if (scope === 'admin') throw new ConfigError('SCOPES', '"admin" is built in (the admin API\'s scope, granted only to admins through clients registered for it); leave it out');
  }
  return list;
}

function clusterNodes(env: Env): string[] | undefined {
  const raw = read(env, 'REDIS_CLUSTER_NODES');
  if (raw === undefined) return undefined;
  const nodes = raw.split(',').map((n) => n.trim()).filter(Boolean);
  for (const node of nodes) {
    if (!/^[^\s:]+:\d{1,5}$/.test(node)) throw new ConfigError('REDIS_CLUSTER_NODES', `expected host:port[,host:port…], got "${node}"`);
  }
  if (nodes.length === 0) throw new ConfigError('REDIS_CLUSTER_NODES', 'expected host:port[,host:port…]');
  return nodes;
}

function origins(env: Env): string[] {
  const raw = read(env, 'CORS_ORIGINS');
  if (raw === undefined) return [];
  if (raw === '*') return ['*'];
  return raw.split(',').map((o) => {
    const origin = o.trim();
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError('CORS_ORIGINS', `expected * or a comma-separated list of origins, got "${origin}"`);
    }
    if (parsed.origin !== origin) throw new ConfigError('CORS_ORIGINS', `"${origin}" is not an origin (scheme://host[:port], no path)`);
    return origin;
  });
}

function redisKeyPrefix(env: Env): string {
  const raw = read(env, 'REDIS_KEY_PREFIX');
  if (raw === undefined) return 'oauth:';
  if (!/^[\x21-\x7E]{1,64}$/.test(raw)) throw new ConfigError('REDIS_KEY_PREFIX', 'expected 1 to 64 printable ASCII characters without spaces, e.g. "oauth:"');
  return raw;
}

/** 32 random bytes as base64url (43 characters). */
function signingKeyEncryptionKey(env: Env): Uint8Array | undefined {
  const raw = read(env, 'SIGNING_KEY_ENCRYPTION_KEY');
  if (raw === undefined) return undefined;
  const bytes = /^[A-Za-z0-9_-]{43}$/.test(raw) ? Buffer.from(raw, 'base64url') : null;
  if (!bytes || bytes.length !== 32) {
    throw new ConfigError('SIGNING_KEY_ENCRYPTION_KEY', 'expected 32 random bytes as base64url (43 characters), e.g. node -e "console.log(crypto.randomBytes(32).toString(\'base64url\'))"');
  }
  return new Uint8Array(bytes);
}

/** Named ranges of @fastify/proxy-addr, accepted besides addresses and CIDRs. */
const PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

/** An IP address, an IP/prefix-length CIDR, or a named range. */
function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGES.includes(entry)) return true;
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  // No zone index (`fe80::1%eth0`): proxy-addr, which Fastify asks, refuses it.
  const version = address.includes('%') ? 0 : isIP(address);
  if (version === 0) return false;
  if (slash === -1) return true;
  const bits = entry.slice(slash + 1);
  // A /0 would trust every address: that is TRUST_PROXY=true, said plainly.
  return /^\d{1,3}$/.test(bits) && Number(bits) >= 1 && Number(bits) <= (version === 4 ? 32 : 128);
}

function trustProxy(env: Env): TrustProxy {
  const raw = read(env, 'TRUST_PROXY');
  if (raw === undefined) return false;
  const expected = 'expected true, false, a hop count (e.g. 1) or comma-separated proxy addresses/CIDRs (e.g. 10.0.0.0/8,192.0.2.10)';
  if (/^(true|yes)$/i.test(raw)) return true;
  if (/^(false|no)$/i.test(raw)) return false;
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 100) throw new ConfigError('TRUST_PROXY', `${expected}; a hop count is at most 100, got ${raw}`);
    return hops === 0 ? false : hops;
  }
  const entries = raw.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    if (!isProxyAddress(entry)) throw new ConfigError('TRUST_PROXY', `${expected}; "${entry}" is not an IP address or CIDR`);
  }
  return Object.freeze(entries);
}

/**
 * One entry of `RESOURCES` (or `ACCESS_TOKEN_AUDIENCE`): an absolute URI
 * without a fragment (RFC 8707 §2); an https URL (RFC 9728 §1.2), plain http
 * only for loopback like `ISSUER` (bearer tokens must not travel in the
 * clear, RFC 6750 §5.3); no query (RFC 8707 §2 discourages one, and a
 * resource is compared without it) and no credentials. Returns its
 * comparison key.
 */
function resourceIdentifier(name: string, raw: string, context = ''): string {
  const refuse = (problem: string) => new ConfigError(name, `${context}"${raw.slice(0, 200)}" ${problem}`);
  const key = resourceKey(raw);
  if (key === null || !/^https?:\/\//i.test(raw)) throw refuse('is not an absolute http(s) URL without a fragment (RFC 8707 §2)');
  const url = new URL(raw);
  if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) throw refuse('must use https (plain http is allowed only for localhost/loopback)');
  if (url.username || url.password) throw refuse('must not contain credentials');
  if (raw.includes('?')) throw refuse('must not contain a query');
  return key;
}

/** A comma ending an entry of `RESOURCES` or followed by another URL's scheme: a list separated by commas. */
const RESOURCE_LIST_COMMA = /,$|,[a-z][a-z0-9+.-]*:\/\//i;

/**
 * `RESOURCES` and the default resource. `ACCESS_TOKEN_AUDIENCE` (before
 * resource indicators, the one `aud` of every token) names the default
 * resource and must be one of `RESOURCES`. Only when `RESOURCES` is left
 * at its default is an audience outside it added to the front of the list,
 * so a deployment that set only `ACCESS_TOKEN_AUDIENCE` keeps issuing the
 * same `aud` to clients that ask for no resource.
 */
function resources(env: Env, iss: string): { resources: string[]; defaultResource: string } {
  const raw = read(env, 'RESOURCES');
  const list = raw === undefined ? [`${iss}/api`, `${iss}/mcp`] : raw.split(/\s+/);
  const keys = new Map<string, string>();
  for (const entry of list) {
    // A comma may stand in a URL, but "…/api,https://…/mcp" (or "…/api, …") is two resources written the wrong way.
    if (RESOURCE_LIST_COMMA.test(entry)) {
      const spaced = raw!.split(/\s+|,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map((r) => r.replace(/,+$/, '')).filter(Boolean);
      throw new ConfigError('RESOURCES', `"${entry.slice(0, 200)}" contains a comma: resources are separated by spaces, e.g. RESOURCES="${spaced.join(' ')}"`);
    }
    const key = resourceIdentifier('RESOURCES', entry);
    const seen = keys.get(key);
    if (seen !== undefined) throw new ConfigError('RESOURCES', `"${seen}" and "${entry}" name the same resource`);
    keys.set(key, entry);
  }
  const audience = read(env, 'ACCESS_TOKEN_AUDIENCE');
  if (audience === undefined) return { resources: list, defaultResource: list[0]! };
  // Any string used to do; now it names a resource, so the message says why it must look like one.
  const listed = keys.get(resourceIdentifier('ACCESS_TOKEN_AUDIENCE', audience, 'names the default resource now, one of RESOURCES: '));
  if (listed !== undefined) return { resources: list, defaultResource: listed };
  if (raw === undefined) return { resources: [audience, ...list], defaultResource: audience };
  throw new ConfigError('ACCESS_TOKEN_AUDIENCE', `names the default resource, so it must be one of RESOURCES (${list.join(' ')}); got "${audience}"`);
}

/** `SMTP_URL` and `SMTP_FROM`, set together, or neither. */
function smtp(env: Env): Config['smtp'] {
  const smtpUrl = url(env, 'SMTP_URL', ['smtp:', 'smtps:']);
  const from = read(env, 'SMTP_FROM');
  if ((smtpUrl === undefined) !== (from === undefined)) {
    throw new ConfigError(smtpUrl === undefined ? 'SMTP_URL' : 'SMTP_FROM', 'SMTP_URL and SMTP_FROM must be set together');
  }
  if (smtpUrl === undefined || from === undefined) return undefined;
  // A bare address or "Name <address>": nothing that could add a header.
  if (!/^([^<>\r\n"]{0,100} <)?[^\s@<>"]{1,64}@[^\s@<>"]{1,253}>?$/.test(from) || from.includes('<') !== from.endsWith('>')) {
    throw new ConfigError('SMTP_FROM', `expected an email address such as auth@example.com or "Sign-in <auth@example.com>", got "${from.slice(0, 100)}"`);
  }
  return Object.freeze({ url: smtpUrl, from });
}

/** Where the embedded database lives without `DATA_DIR`, relative to the working directory. */
export const DEFAULT_DATA_DIR = './.data';

export function loadConfig(env: Env = {}): Config {
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const iss = issuer(env, port);
  const adminUsername = read(env, 'ADMIN_USERNAME');
  const adminPassword = env.ADMIN_PASSWORD === undefined || env.ADMIN_PASSWORD === '' ? undefined : env.ADMIN_PASSWORD;
  if ((adminUsername === undefined) !== (adminPassword === undefined)) {
    throw new ConfigError(adminUsername === undefined ? 'ADMIN_USERNAME' : 'ADMIN_PASSWORD', 'ADMIN_USERNAME and ADMIN_PASSWORD must be set together');
  }
  // ADMIN_PASSWORD's strength is judged by the password rule when the admin is ensured (users.ensureAdmin).
  const metricsPort = read(env, 'METRICS_PORT') === undefined ? undefined : integer(env, 'METRICS_PORT', 0, 1, 65535);
  const requestTimeoutMs = integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 1_000, 600_000);

  const config: Config = {
    port,
    host: read(env, 'HOST') ?? '127.0.0.1',
    issuer: iss,
    secureCookies: iss.startsWith('https:'),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisClusterNodes: clusterNodes(env),
    dataDir: resolve(read(env, 'DATA_DIR') ?? DEFAULT_DATA_DIR),
    adminUsername,
    adminPassword,
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL', 900, 10, 86_400),
    refreshTokenTtlSeconds: integer(env, 'REFRESH_TOKEN_TTL', 1_209_600, 60, 31_536_000),
    codeTtlSeconds: integer(env, 'CODE_TTL', 60, 5, 600),
    sessionTtlSeconds: integer(env, 'SESSION_TTL', 28_800, 60, 2_592_000),
    adminSessionTtlSeconds: integer(env, 'ADMIN_SESSION_TTL', 1_800, 60, 86_400),
    requireMfaForAdmins: bool(env, 'REQUIRE_MFA_FOR_ADMINS', false),
    registration: oneOf(env, 'REGISTRATION', ['open', 'closed'] as const, 'open'),
    upstreamOidc: upstreamOidc(env),
    scopes: scopes(env),
    refreshReuseGraceSeconds: integer(env, 'REFRESH_REUSE_GRACE', 0, 0, 300),
    accessTokenAlg: oneOf(env, 'ACCESS_TOKEN_ALG', ['ES256', 'RS256', 'EdDSA', 'PS256'] as const, 'ES256'),
    ...resources(env, iss),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    bodyLimitBytes: integer(env, 'BODY_LIMIT', 65_536, 1_024, 10_485_760),
    pgPoolMax: integer(env, 'PG_POOL_MAX', 10, 1, 1_000),
    pgConnectTimeoutMs: integer(env, 'PG_CONNECT_TIMEOUT_MS', 3_000, 100, 600_000),
    pgStatementTimeoutMs: integer(env, 'PG_STATEMENT_TIMEOUT_MS', 10_000, 100, 600_000),
    pgPreparedStatements: oneOf(env, 'PG_PREPARED_STATEMENTS', ['on', 'off'] as const, 'on') === 'on',
    redisCommandTimeoutMs: integer(env, 'REDIS_COMMAND_TIMEOUT_MS', 2_000, 100, 600_000),
    redisKeyPrefix: redisKeyPrefix(env),
    signingKeyEncryptionKey: signingKeyEncryptionKey(env),
    requestTimeoutMs,
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', Math.min(10_000, requestTimeoutMs), 1_000, 600_000),
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 5_000, 1_000, 600_000),
    corsOrigins: origins(env),
    metricsPort,
    swaggerUiClient: bool(env, 'SWAGGER_UI_CLIENT', false),
    trustProxy: trustProxy(env),
    maxFailedAttempts: integer(env, 'MAX_FAILED_ATTEMPTS', 10, 1, 10_000),
    failedAttemptWindowSeconds: integer(env, 'FAILED_ATTEMPT_WINDOW', 300, 1, 86_400),
    auditRetentionDays: integer(env, 'AUDIT_RETENTION_DAYS', 90, 1, 3_650),
    dynamicRegistration: oneOf(env, 'DYNAMIC_REGISTRATION', ['open', 'token', 'off'] as const, 'open'),
    dynamicRegistrationLimit: integer(env, 'DYNAMIC_REGISTRATION_LIMIT', 20, 1, 100_000),
    dynamicRegistrationWindowSeconds: integer(env, 'DYNAMIC_REGISTRATION_WINDOW', 3_600, 1, 604_800),
    dynamicClientIdleDays: integer(env, 'DYNAMIC_CLIENT_IDLE_DAYS', 30, 1, 3_650),
    clientMetadataAllowPrivateNetworks: bool(env, 'CLIENT_METADATA_ALLOW_PRIVATE_NETWORKS', false),
    clientMetadataTimeoutMs: integer(env, 'CLIENT_METADATA_TIMEOUT_MS', 5_000, 100, 60_000),
    smtp: smtp(env),
    requireEmailVerification: bool(env, 'REQUIRE_EMAIL_VERIFICATION', false),
    dpopNonce: bool(env, 'DPOP_NONCE', true),
    requirePushedAuthorizationRequests: bool(env, 'REQUIRE_PAR', false),
  };
  if (config.requireEmailVerification && config.smtp === undefined) {
    throw new ConfigError('REQUIRE_EMAIL_VERIFICATION', 'needs SMTP_URL and SMTP_FROM (the verification link goes out by mail)');
  }
  // Node refuses a headers timeout longer than the request timeout.
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError('HEADERS_TIMEOUT_MS', `must not exceed REQUEST_TIMEOUT_MS (${config.requestTimeoutMs})`);
  }
  // Node's request timeout also runs while the server works on a request: a request waiting on
  // a hung store must get its 503 (after these timeouts) before Node cuts its connection.
  const storeWaitMs = Math.max(config.redisCommandTimeoutMs, config.databaseUrl === undefined ? 0 : Math.max(config.pgConnectTimeoutMs, config.pgStatementTimeoutMs + 2_000));
  if (config.requestTimeoutMs <= storeWaitMs) {
    const longest =
      storeWaitMs === config.redisCommandTimeoutMs ? 'REDIS_COMMAND_TIMEOUT_MS' : storeWaitMs === config.pgConnectTimeoutMs ? 'PG_CONNECT_TIMEOUT_MS' : 'PG_STATEMENT_TIMEOUT_MS + 2000';
    throw new ConfigError(
      'REQUEST_TIMEOUT_MS',
      `must be longer than the longest wait for a store that does not answer (${longest}: ${storeWaitMs} ms), or a request waiting on it is cut off without its 503`,
    );
  }
  if (config.refreshReuseGraceSeconds >= config.refreshTokenTtlSeconds) {
    throw new ConfigError('REFRESH_REUSE_GRACE', 'must be shorter than REFRESH_TOKEN_TTL');
  }
  return Object.freeze(config);
}

/**
 * Whether the issuer is left to its default, `http://localhost:$PORT`, while
 * PORT=0 asks for any free port: it must then name the port the system picks,
 * so `main.ts` picks one first and loads the configuration again with it
 * (`http://localhost:0` would be advertised in metadata and tokens).
 */
export function issuerAwaitsPort(config: Config, env: Env): boolean {
  return config.port === 0 && read(env, 'ISSUER') === undefined;
}

/**
 * The first word of a setting's name with its underscore (`SESSION_` of
 * `SESSION_TTL`, `ISSUER_` of `ISSUER`): an unknown variable that starts like
 * a setting is most likely a misspelt one. Taken from the names `loadConfig`
 * reads, so a new setting's prefix is known with it.
 */
function firstWord(name: string): string {
  const end = name.indexOf('_');
  return `${end === -1 ? name : name.slice(0, end)}_`;
}

/**
 * Variables other software sets that may begin like a setting here: the X
 * session manager's, and Kubernetes' service links for a service named like
 * a setting's first word (`REDIS_SERVICE_HOST`, `REDIS_PORT=tcp://…`,
 * `REDIS_PORT_6379_TCP_ADDR`). Not warned about for their prefix alone.
 */
function isForeign(name: string, value: string | undefined): boolean {
  if (name === 'SESSION_MANAGER') return true;
  if (/_SERVICE_(HOST|PORT(_\w+)?)$|_PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?$/.test(name)) return true;
  return name.endsWith('_PORT') && /^(tcp|udp|sctp):\/\//.test(value ?? '');
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The setting an unknown `name` under `prefix` was most likely meant as: of
 * the settings with that first word (REDIS_PASSWORD: REDIS_URL, not
 * ADMIN_PASSWORD), the one sharing most of its words (REQUIRE_MFA:
 * REQUIRE_MFA_FOR_ADMINS, not the nearer REQUIRE_PAR), then the nearest.
 */
function closestWithPrefix(name: string, prefix: string, known: ReadonlySet<string>): string {
  const words = name.split('_');
  const shared = (k: string) => k.split('_').filter((word) => words.includes(word)).length;
  const ranked = [...known].filter((k) => firstWord(k) === prefix).map((k) => ({ k, shared: shared(k), away: distance(name, k) }));
  ranked.sort((a, b) => b.shared - a.shared || a.away - b.away);
  return ranked[0]!.k;
}

/**
 * Warnings for variables in `env` that look meant for this server but that it
 * does not read: beginning with a known name's first word (`PG_POOL_SIZE`,
 * `SESSION_TIMEOUT`) or a near miss of a known name (`REGISTRATON`), each
 * naming the closest variable it does read. The known names are the ones
 * `loadConfig` reads, so a new variable (and its first word) is known as soon
 * as `loadConfig` reads it (every variable is read on every call, set or
 * not). Pure, like `loadConfig`; `main.ts` prints them at start.
 */
export function unknownVariableWarnings(env: Env): string[] {
  const known = new Set<string>();
  const recording = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') known.add(key);
      return target[key as string];
    },
  });
  try {
    loadConfig(recording);
  } catch {
    // A bad value is reported by loadConfig itself; the variables read up to it are enough here.
  }
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    // Only names in this server's style (upper case), never one it reads.
    if (known.has(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    const prefix = isForeign(name, env[name]) ? undefined : [...known].map(firstWord).find((p) => name.startsWith(p));
    const nearest = (names: string[]) => names.map((k) => [k, distance(name, k)] as const).sort((a, b) => a[1] - b[1])[0];
    const [closestOverall, away] = nearest([...known]) ?? ['', Infinity];
    const nearMiss = away <= (name.length >= 8 ? 2 : 1);
    if (nearMiss || prefix !== undefined) {
      const closest = prefix !== undefined && !nearMiss ? closestWithPrefix(name, prefix, known) : closestOverall;
      warnings.push(`${name} is not a setting of this server and is ignored; did you mean ${closest}? (docs/operations.md lists them all)`);
    }
  }
  return warnings;
}
