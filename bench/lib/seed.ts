/**
 * What the benchmark needs on our server before it measures, created over
 * HTTP the way an operator and clients would: clients and users through the
 * admin API, then tokens through the token endpoint, and signed-in browser
 * sessions through the login form.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface ClientCreds {
  clientId: string;
  secret: string;
}

export interface BenchUser {
  username: string;
  password: string;
}

export interface Seed {
  /** Confidential client registered for client_credentials only. */
  machine: ClientCreds;
  /** Confidential client for authorization_code (+PKCE), password and refresh_token. */
  app: ClientCreds & { redirectUri: string };
  users: BenchUser[];
  /** Distinct valid access tokens of users (RFC 9068, with roles and preferred_username). */
  accessTokens: string[];
  /** Live refresh tokens, one per family. */
  refreshTokens: string[];
}

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const MACHINE_SCOPE = 'api:read';
/** Scope of the password grant and so of the refresh families: no openid, so refreshes sign no ID token. */
export const USER_SCOPE = 'api:read';
/** Scope of the browser flow in the soak: an OIDC login (ID token, RS256). */
export const CODE_SCOPE = 'openid profile api:read';

/** RFC 6749 §2.3.1: form-urlencoded, then base64. */
export function basicAuth(client: ClientCreds): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
}

export function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function expectJson(res: Response, what: string, status = 200): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

export interface TokenAnswer {
  access_token: string;
  refresh_token?: string;
}

export async function postToken(baseUrl: string, client: ClientCreds, params: Record<string, string>): Promise<TokenAnswer> {
  const res = await fetch(`${baseUrl}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(client), 'content-type': 'application/x-www-form-urlencoded' },
    body: form(params),
  });
  return (await expectJson(res, `POST /token ${params.grant_type}`)) as unknown as TokenAnswer;
}

async function admin(baseUrl: string, auth: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return expectJson(res, `POST ${path}`, 201);
}

export interface SeedOptions {
  baseUrl: string;
  adminUser: BenchUser;
  /** Distinct access tokens wanted. */
  pool: number;
  /** Refresh-token families wanted. */
  families: number;
  userCount: number;
}

export async function seed(options: SeedOptions): Promise<Seed> {
  const { baseUrl } = options;
  const adminAuth = `Basic ${Buffer.from(`${options.adminUser.username}:${options.adminUser.password}`).toString('base64')}`;
  const suffix = randomBytes(3).toString('hex');

  const machineReg = await admin(baseUrl, adminAuth, '/admin/clients', {
    client_name: 'bench machine client',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read api:write',
  });
  const appReg = await admin(baseUrl, adminAuth, '/admin/clients', {
    client_name: 'bench web app',
    grant_types: ['authorization_code', 'refresh_token', 'password'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile api:read api:write offline_access',
  });
  const machine = { clientId: String(machineReg.client_id), secret: String(machineReg.client_secret) };
  const app = { clientId: String(appReg.client_id), secret: String(appReg.client_secret), redirectUri: REDIRECT_URI };

  // Admin calls are argon2-bound (Basic auth and hashing): a few at a time.
  const users = Array.from({ length: options.userCount }, (_, i) => ({ username: `bench-${suffix}-${i}`, password: `bench-password-${randomBytes(9).toString('base64url')}` }));
  await mapLimit(users, 4, (user) => admin(baseUrl, adminAuth, '/admin/users', { ...user, roles: ['user'] }));

  const { accessTokens, refreshTokens } = await userTokens(baseUrl, app, users, options.pool, options.families);
  return { machine, app, users, accessTokens, refreshTokens };
}

/**
 * `count` distinct access tokens of `users` at `app`: one password grant per
 * family (argon2-bound), then refresh chains until there are enough. Also
 * the latest refresh token of each family.
 */
export async function userTokens(baseUrl: string, app: ClientCreds, users: readonly BenchUser[], count: number, families: number): Promise<{ accessTokens: string[]; refreshTokens: string[] }> {
  const first = await mapLimit(Array.from({ length: families }), 4, (_, i) => {
    const user = users[i % users.length]!;
    return postToken(baseUrl, app, { grant_type: 'password', username: user.username, password: user.password, scope: USER_SCOPE });
  });
  const accessTokens = first.map((t) => t.access_token);
  const refreshTokens = first.map((t) => t.refresh_token!);
  let wanted = count - accessTokens.length;
  await mapLimit(refreshTokens, 16, async (_, family) => {
    while (wanted > 0) {
      wanted--;
      const next = await postToken(baseUrl, app, { grant_type: 'refresh_token', refresh_token: refreshTokens[family]! });
      refreshTokens[family] = next.refresh_token!;
      accessTokens.push(next.access_token);
    }
  });
  return { accessTokens, refreshTokens };
}

/** The value of `name` among a response's Set-Cookie headers. */
function cookieValue(res: Response, name: string): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';', 1);
    const eq = pair!.indexOf('=');
    if (pair!.slice(0, eq).trim() === name) return pair!.slice(eq + 1);
  }
  return undefined;
}

/** Hidden inputs of an HTML form, as the login and consent pages render them. */
export function hiddenFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = m[2]!;
  return fields;
}

export function authorizePath(app: Seed['app'], challenge: string, state: string, scope = CODE_SCOPE, promptConsent = true): string {
  return `/authorize?${form({
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: app.redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    // Every run through the flow shows the consent page (OIDC Core §3.1.2.1), so each posts a decision with CSRF.
    ...(promptConsent ? { prompt: 'consent' } : {}),
  })}`;
}

/**
 * Signs `user` in through the login form and returns the session cookie
 * value. One authorization request is started on the session, so its flow
 * key exists before connections share it.
 */
export async function signIn(baseUrl: string, user: BenchUser, app: Seed['app']): Promise<string> {
  const page = await fetch(`${baseUrl}/login`, { redirect: 'manual' });
  const anonymous = cookieValue(page, 'sid');
  const { csrf_token: csrf } = hiddenFields(await page.text());
  if (!anonymous || !csrf) throw new Error('GET /login: no session cookie or CSRF token');
  const login = await fetch(`${baseUrl}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: `sid=${anonymous}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ username: user.username, password: user.password, csrf_token: csrf }),
  });
  await login.arrayBuffer();
  const sid = cookieValue(login, 'sid');
  if (login.status !== 303 || !sid) throw new Error(`POST /login: expected 303 with a new session, got ${login.status}`);
  const start = await fetch(baseUrl + authorizePath(app, pkcePair().challenge, 'prime'), { redirect: 'manual', headers: { cookie: `sid=${sid}` } });
  await start.arrayBuffer();
  if (start.status !== 303 || !start.headers.get('location')?.startsWith('/consent')) throw new Error(`GET /authorize: expected 303 to /consent, got ${start.status}`);
  return sid;
}

/** `count` access tokens of `client` by client credentials (`params` added to the request), `limit` requests in flight. */
export function clientTokens(baseUrl: string, client: ClientCreds, count: number, limit = 16, params: Record<string, string> = {}): Promise<string[]> {
  return mapLimit(Array.from({ length: count }), limit, async () => (await postToken(baseUrl, client, { grant_type: 'client_credentials', scope: MACHINE_SCOPE, ...params })).access_token);
}

/** The code of a 303 from /authorize or /consent to the client, with the state checked. */
function codeOf(res: Response, state: string, what: string): string {
  const location = res.headers.get('location') ?? '';
  const params = location.startsWith('http') ? new URL(location).searchParams : null;
  const code = params?.get('code');
  if (res.status !== 303 || !code || params!.get('state') !== state) throw new Error(`${what}: expected 303 to the client with the code, got ${res.status} ${location.slice(0, 120)}`);
  return code;
}

/**
 * `count` refresh-token families of the app client, each its own grant, by
 * the authorization code flow of one signed-in user (no argon2 per family,
 * unlike the password grant): consent once, then each `GET /authorize` is
 * answered with a code at once (consent remembered), exchanged at /token.
 */
export async function codeFamilies(baseUrl: string, user: BenchUser, app: Seed['app'], count: number, limit = 16): Promise<string[]> {
  const sid = await signIn(baseUrl, user, app);
  const cookie = `sid=${sid}`;
  const consentState = randomBytes(8).toString('base64url');
  const asked = await fetch(baseUrl + authorizePath(app, pkcePair().challenge, consentState, USER_SCOPE), { redirect: 'manual', headers: { cookie } });
  await asked.arrayBuffer();
  const consentPath = asked.headers.get('location') ?? '';
  if (asked.status !== 303 || !consentPath.startsWith('/consent')) throw new Error(`GET /authorize: expected 303 to /consent, got ${asked.status}`);
  const fields = hiddenFields(await (await fetch(baseUrl + consentPath, { headers: { cookie } })).text());
  const allowed = await fetch(`${baseUrl}/consent`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ csrf_token: fields.csrf_token ?? '', rid: fields.rid ?? '', ticket: fields.ticket ?? '', decision: 'allow' }),
  });
  await allowed.arrayBuffer();
  codeOf(allowed, consentState, 'POST /consent allow');
  return mapLimit(Array.from({ length: count }), limit, async () => {
    const pkce = pkcePair();
    const state = randomBytes(8).toString('base64url');
    const res = await fetch(baseUrl + authorizePath(app, pkce.challenge, state, USER_SCOPE, false), { redirect: 'manual', headers: { cookie } });
    await res.arrayBuffer();
    const code = codeOf(res, state, 'GET /authorize (consent remembered)');
    const answer = await postToken(baseUrl, app, { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, code_verifier: pkce.verifier });
    if (!answer.refresh_token) throw new Error('authorization_code: no refresh token');
    return answer.refresh_token;
  });
}
