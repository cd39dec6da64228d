/**
 * Driving the browser flows through `app.inject()`: a minimal browser (a
 * cookie jar that honours Set-Cookie, including deletion), HTML form field
 * extraction, PKCE pairs, and `loginAndConsent`, which walks /authorize →
 * /login → /consent the way a person would and returns where the browser
 * ends up.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkcePair(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** A cookie jar over `app.inject()`; no redirects are followed. */
export class InjectBrowser {
  readonly cookies = new Map<string, string>();

  /** `remoteAddress`: the client IP the server sees (per-IP throttling). */
  constructor(
    private readonly app: FastifyInstance,
    private readonly remoteAddress = '127.0.0.1',
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private remember(res: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of res.cookies as Array<{ name: string; value: string; maxAge?: number; expires?: Date }>) {
      const gone = c.value === '' || c.maxAge === 0 || (c.expires !== undefined && c.expires.getTime() <= Date.now());
      if (gone) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return res;
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.remember(await this.app.inject({ method: 'GET', url, remoteAddress: this.remoteAddress, headers: { cookie: this.cookieHeader(), ...headers } }));
  }

  async post(url: string, form: Record<string, string | string[] | undefined>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    }
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        remoteAddress: this.remoteAddress,
        payload: body.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: this.cookieHeader(), ...headers },
      }),
    );
  }

  /** A JSON POST, as a page's script sends it (`fetch` with the session cookie). */
  async postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.remember(
      await this.app.inject({
        method: 'POST',
        url,
        remoteAddress: this.remoteAddress,
        payload: JSON.stringify(body),
        headers: { 'content-type': 'application/json', cookie: this.cookieHeader(), ...headers },
      }),
    );
  }
}

/** Values of the hidden inputs of the first form posting to `action` (or of the page). */
export function hiddenFields(html: string, action?: string): Record<string, string> {
  let scope = html;
  if (action !== undefined) {
    const start = html.indexOf(`action="${action}"`);
    if (start < 0) throw new Error(`no form posting to ${action}`);
    scope = html.slice(start, html.indexOf('</form>', start));
  }
  const fields: Record<string, string> = {};
  for (const m of scope.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = decodeEntities(m[2]!);
  return fields;
}

function decodeEntities(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** `/authorize?…` from parameters (undefined ones left out). */
export function authorizePath(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
  return `/authorize?${q.toString()}`;
}

/** The response parameters of a redirect to the client (query or fragment). */
export function responseParams(location: string): URLSearchParams {
  const url = new URL(location);
  return new URLSearchParams(url.hash ? url.hash.slice(1) : url.search);
}

export interface LoginAndConsentResult {
  /** Where the browser was sent in the end (the client's redirect URI with the response). */
  location: string;
  params: URLSearchParams;
  /** Whether the login and consent pages were shown. */
  sawLogin: boolean;
  sawConsent: boolean;
}

/**
 * Follows an authorization request like a person: signs in when asked,
 * allows (or denies) when asked, and stops at the first redirect that leaves
 * the server.
 */
export async function loginAndConsent(
  browser: InjectBrowser,
  path: string,
  user: { username: string; password: string },
  options: { decision?: 'allow' | 'deny'; issuer?: string } = {},
): Promise<LoginAndConsentResult> {
  let sawLogin = false;
  let sawConsent = false;
  let res = await browser.get(path);
  for (let hops = 0; hops < 10; hops++) {
    if (res.statusCode !== 303 && res.statusCode !== 302) {
      if (res.statusCode !== 200) throw new Error(`unexpected ${res.statusCode} at ${path}: ${res.body.slice(0, 300)}`);
      if (res.body.includes('action="/consent"')) {
        sawConsent = true;
        const fields = hiddenFields(res.body, '/consent');
        res = await browser.post('/consent', { ...fields, decision: options.decision ?? 'allow' });
      } else if (res.body.includes('action="/login"')) {
        sawLogin = true;
        const fields = hiddenFields(res.body, '/login');
        res = await browser.post('/login', { ...fields, username: user.username, password: user.password });
      } else {
        throw new Error(`unexpected page: ${res.body.slice(0, 300)}`);
      }
      continue;
    }
    const location = res.headers.location as string;
    if (location.startsWith('/')) {
      res = await browser.get(location);
      continue;
    }
    return { location, params: responseParams(location), sawLogin, sawConsent };
  }
  throw new Error('too many redirects');
}
