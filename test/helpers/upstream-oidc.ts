/**
 * A real upstream OpenID Connect provider for the "Sign in with …" tests:
 * node-oidc-provider on a loopback port of this process, with its
 * development interactions (any login name is an account; `accounts` gives
 * some of them claims) and every grant pre-approved, so a sign-in is its
 * login form and nothing else. `driveUpstream` plays the person at that
 * form over fetch with a cookie jar, and stops at the redirect back to us.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** The little of oidc-provider's request context `loadExistingGrant` reads. */
interface GrantLike {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}
interface KoaContextWithOIDC {
  oidc: {
    session?: { accountId?: string; grantIdFor(clientId: string): string | undefined };
    client?: { clientId: string };
    provider: { Grant: { new (init: { clientId: string; accountId: string }): GrantLike; find(id: string): Promise<GrantLike | undefined> } };
  };
}

export interface UpstreamAccount {
  email?: string;
  email_verified?: boolean;
  preferred_username?: string;
  name?: string;
}

export interface Upstream {
  issuer: string;
  port: number;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

interface Tap {
  teardown(fn: () => unknown): void;
}

export async function startUpstream(
  t: Tap,
  options: { host?: string; redirectUris: string[]; accounts: Record<string, UpstreamAccount> },
): Promise<Upstream> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${options.host ?? 'localhost'}:${port}`;
  const clientId = 'our-auth-server';
  const clientSecret = 'upstream-client-secret-0123456789-abcdefghij';
  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: options.redirectUris, grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    cookies: { keys: ['upstream-test-cookie-key-not-secret'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'name'] },
    findAccount: (_ctx: KoaContextWithOIDC, sub: string) => ({ accountId: sub, claims: () => ({ sub, ...options.accounts[sub] }) }),
    // Every grant pre-approved: the consent step is not what is under test.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const existing = ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
    features: { devInteractions: { enabled: true } },
  });
  // Its warnings about development settings are expected here.
  provider.on('server_error', () => {});
  server.on('request', provider.callback());
  // Connections fetch keeps alive would hold close() up to their timeout.
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  t.teardown(close);
  return { issuer, port, clientId, clientSecret, close };
}

/**
 * Signs `login` in at the provider, starting at its authorization URL, and
 * returns the URL it sends the browser back to (our callback), unvisited.
 * A fresh cookie jar each time: every sign-in asks for the login.
 */
export async function driveUpstream(authorizationUrl: string, login: string, ourIssuer: string): Promise<string> {
  const jar = new Map<string, string>();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res: Response) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
  };
  let url = authorizationUrl;
  let init: RequestInit = {};
  for (let hops = 0; hops < 12; hops++) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string> | undefined), cookie: cookie() } });
    remember(res);
    init = {};
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url).href;
      if (next.startsWith(ourIssuer)) return next;
      url = next;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`upstream answered ${res.status}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`no form at the upstream: ${html.slice(0, 300)}`);
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1] ?? 'login';
    const body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt });
    url = new URL(action, url).href;
    init = { method: 'POST', body: body.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error('too many hops at the upstream');
}
