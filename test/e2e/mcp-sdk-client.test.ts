/**
 * An MCP client connects the way the MCP authorization specification
 * (2025-11-25) describes, with the MCP TypeScript SDK as the client and
 * nothing but the URL of `/mcp` to start from: `Client` over
 * `StreamableHTTPClientTransport`, whose `auth()` (an `OAuthClientProvider`
 * implemented here) finds the protected resource metadata from the 401,
 * then this server's metadata; the user signs in and consents in headless
 * Chromium on the real pages; the code is redeemed with `resource`; then
 * tools/list, whoami, a refresh the SDK makes by itself when the access
 * token has expired, and step-up: write_note refused without api:write
 * (with what the SDK does about it), then granted after re-authorization
 * with the scope the 403 named.
 *
 * The server listens on a real socket (buildTestApp + listen) on an injected
 * clock, so the access token can expire without waiting.
 *
 * Registration: nobody registers the client beforehand. The provider
 * starts without client information and the SDK registers `CLIENT_METADATA`
 * at the server's `registration_endpoint` itself (RFC 7591, open dynamic
 * registration); the test checks it did.
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { auth, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { chromium, type Browser, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { buildTestApp, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { freePort } from '../helpers/server-process.js';
import { decodePayload } from '../helpers/tokens.js';


const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 10_000;
const chromiumFound = existsSync(CHROMIUM);
if (!chromiumFound && process.env.CI) t.fail(`Chromium not found at ${CHROMIUM}: CI must run the browser tests (apt-get install -y chromium)`);

/** One HTTP exchange the SDK made (its `fetch`), for checking the discovery and token requests. */
interface Exchange {
  method: string;
  url: string;
  status: number;
  wwwAuthenticate: string | null;
  /** The form body of a POST to the token endpoint. */
  form: URLSearchParams | null;
}

/** The MCP client's storage: what a real host keeps between runs, in memory, with what happened to it. */
class TestProvider implements OAuthClientProvider {
  readonly authorizationUrls: URL[] = [];
  readonly registrations: OAuthClientInformationMixed[] = [];
  readonly savedTokens: OAuthTokens[] = [];
  private info: OAuthClientInformationMixed | undefined;
  private current: OAuthTokens | undefined;
  private verifier: string | undefined;
  private lastState = '';

  constructor(
    readonly redirectUrl: string,
    readonly clientMetadata: OAuthClientMetadata,
    preRegistered: OAuthClientInformationMixed | undefined,
  ) {
    this.info = preRegistered;
  }

  state(): string {
    this.lastState = crypto.randomUUID();
    return this.lastState;
  }
  get expectedState(): string {
    return this.lastState;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    // Called after a registration, and once to stamp pre-registered information with the issuer it belongs to.
    if (this.info?.client_id !== info.client_id) this.registrations.push(info);
    this.info = info;
  }
  tokens() {
    return this.current;
  }
  saveTokens(tokens: OAuthTokens) {
    this.savedTokens.push(tokens);
    this.current = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (this.verifier === undefined) throw new Error('no code verifier saved');
    return this.verifier;
  }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery') {
    if (scope === 'all' || scope === 'tokens') this.current = undefined;
    if (scope === 'all' || scope === 'client') this.info = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
  }
}

t.test(
  `an MCP SDK client connects from the /mcp URL alone (${backendName})`,
  { skip: chromiumFound ? false : `no Chromium at ${CHROMIUM} (install it with: apt-get install -y chromium; set CHROMIUM_PATH to use another)` },
  async (t) => {
    // The MCP host's loopback redirect URI (RFC 8252 §7.3), a listener of its own.
    let arrived: ((url: string) => void) | undefined;
    const callback: Server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>MCP host</title><p>Signed in. You can close this window.</p>');
      arrived?.(new URL(req.url!, `http://${req.headers.host}`).toString());
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise((resolve) => callback.close(resolve)));
    const REDIRECT = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;

    // The authorization server and MCP server, on a real socket and a clock the test moves.
    let clock = Date.now();
    const port = await freePort();
    const ISSUER = `http://127.0.0.1:${port}`;
    const { app, services, config } = await buildTestApp(t, { env: { ISSUER, PORT: String(port) }, now: () => clock });
    await app.listen({ port, host: '127.0.0.1' });
    const MCP_URL = new URL(`${ISSUER}/mcp`);
    const RESOURCE = `${ISSUER}/mcp`;
    const erin = await seedUser(services, { username: `erin${Date.now() % 100000}` });

    const CLIENT_METADATA: OAuthClientMetadata = {
      client_name: 'MCP SDK Test Host',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'api:read api:write',
    };

    const provider = new TestProvider(REDIRECT, CLIENT_METADATA, undefined);

    const exchanges: Exchange[] = [];
    const recordingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const request = new Request(input, init);
      const isTokenRequest = request.method === 'POST' && new URL(request.url).pathname === '/token';
      const form = isTokenRequest ? new URLSearchParams(await request.clone().text()) : null;
      const response = await fetch(request);
      exchanges.push({ method: request.method, url: request.url, status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), form });
      return response;
    };
    const newTransport = () => new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider, fetch: recordingFetch });
    const connected: Client[] = [];
    t.teardown(async () => {
      for (const client of connected) await client.close();
    });
    /**
     * A connected client. After `initialized` the SDK opens its optional SSE stream with a GET
     * it does not await; this server answers 405 (no stream). Waiting for that answer keeps
     * the GET from meeting a token the test has just let expire: two refreshes of one refresh
     * token at once would be a reuse (REFRESH_REUSE_GRACE is 0 here).
     */
    async function connect(): Promise<Client> {
      const client = new Client({ name: 'mcp-sdk-e2e', version: '1.0.0' });
      connected.push(client);
      const probes = () => exchanges.filter((e) => e.method === 'GET' && new URL(e.url).pathname === '/mcp').length;
      const before = probes();
      await client.connect(newTransport());
      for (let waited = 0; probes() === before; waited += 10) {
        if (waited > STEP_TIMEOUT_MS) throw new Error('the SDK never opened (or was never refused) its SSE stream');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const probe = exchanges.filter((e) => e.method === 'GET' && new URL(e.url).pathname === '/mcp').at(-1)!;
      if (probe.status !== 405) throw new Error(`the SSE stream's GET got ${probe.status}, not 405`);
      return client;
    }

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    t.teardown(() => browser.close());
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);

    /** The user at the authorization URL the SDK produced: signs in if asked, allows, and the browser lands at the redirect URI. */
    async function authorizeInBrowser(t: Test, url: URL, expect: { signIn: boolean; scopes: string[] }): Promise<URLSearchParams> {
      const landed = new Promise<string>((resolve) => (arrived = resolve));
      await page.goto(url.toString());
      if (expect.signIn) {
        await page.getByRole('heading', { name: 'Sign in' }).waitFor();
        await page.getByLabel('Username').fill(erin.username);
        await page.getByLabel('Password').fill(erin.password);
        await page.getByRole('button', { name: 'Sign in' }).click();
      }
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      const consent = (await page.textContent('main')) ?? '';
      t.match(consent, CLIENT_METADATA.client_name!, 'the consent page names the MCP host');
      for (const scope of ['api:read', 'api:write']) {
        if (expect.scopes.includes(scope)) t.match(consent, scope, `it asks for ${scope}`);
        else t.notMatch(consent, scope, `not for ${scope}`);
      }
      await page.getByRole('button', { name: 'Allow' }).click();
      const at = new URL(await landed);
      t.equal(`${at.origin}${at.pathname}`, REDIRECT, 'back at the loopback redirect URI');
      t.equal(at.searchParams.get('state'), provider.expectedState, 'with the state the SDK sent');
      t.equal(at.searchParams.get('iss'), ISSUER, 'and iss (RFC 9207)');
      return at.searchParams;
    }

    let sub = '';
    let firstRefreshToken = '';

    await t.test('discovery from the 401, the authorization request, sign-in and consent, the code redeemed with resource', async (t) => {
      const first = new Client({ name: 'mcp-sdk-e2e', version: '1.0.0' });
      const transport = newTransport();
      const stopped = await first.connect(transport).then(
        () => null,
        (err: unknown) => err,
      );
      t.ok(stopped instanceof UnauthorizedError, 'the SDK needs the user: it stops at the redirect');

      const path = (e: Exchange) => `${e.method} ${new URL(e.url).pathname}`;
      t.same(exchanges.slice(0, 3).map((e) => [path(e), e.status]), [
        ['POST /mcp', 401],
        ['GET /.well-known/oauth-protected-resource/mcp', 200],
        ['GET /.well-known/oauth-authorization-server', 200],
      ], 'the 401, the resource metadata it points to, then this server’s metadata');
      t.match(exchanges[0]!.wwwAuthenticate, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp", scope="api:read"/);
      t.equal(provider.registrations.length, 1, 'the SDK registered the client itself');
      t.ok(exchanges.some((e) => e.method === 'POST' && e.status === 201), 'at the registration endpoint');

      t.equal(provider.authorizationUrls.length, 1);
      const url = provider.authorizationUrls[0]!;
      t.equal(`${url.origin}${url.pathname}`, `${ISSUER}/authorize`);
      t.equal(url.searchParams.get('resource'), RESOURCE, 'RFC 8707 resource: the MCP server');
      t.equal(url.searchParams.get('scope'), 'api:read', 'the scope the 401 named');
      t.equal(url.searchParams.get('code_challenge_method'), 'S256');
      t.equal(url.searchParams.get('redirect_uri'), REDIRECT);

      const params = await authorizeInBrowser(t, url, { signIn: true, scopes: ['api:read'] });
      await transport.finishAuth(params.get('code')!);
      await first.close();

      const redeem = exchanges.find((e) => e.form?.get('grant_type') === 'authorization_code');
      t.equal(redeem?.status, 200);
      t.equal(redeem?.form?.get('resource'), RESOURCE, 'the code redeemed with resource');
      t.ok(redeem?.form?.get('code_verifier'), 'and the PKCE verifier');
      const tokens = provider.tokens()!;
      const claims = decodePayload(tokens.access_token);
      t.equal(claims.aud, RESOURCE, 'the access token is for /mcp');
      t.equal(claims.scope, 'api:read');
      t.ok(tokens.refresh_token, 'and a refresh token');
      sub = String(claims.sub);
      firstRefreshToken = tokens.refresh_token!;
    });

    await t.test('connected: tools/list and whoami', async (t) => {
      const client = await connect();
      t.equal(client.getServerVersion()?.name, 'oauth-server-sample-mcp');
      const { tools } = await client.listTools();
      t.same(tools.map((tool) => tool.name).sort(), ['whoami', 'write_note']);
      const me = await client.callTool({ name: 'whoami', arguments: {} });
      t.same(me.structuredContent, { sub: erin.id, username: erin.username, client_id: provider.clientInformation()!.client_id, scope: 'api:read' });
      t.equal(sub, erin.id);
    });

    await t.test('the /mcp token is refused by /api/hello (audience), over HTTP', async (t) => {
      const res = await fetch(`${ISSUER}/api/hello`, { headers: { authorization: `Bearer ${provider.tokens()!.access_token}` } });
      t.equal(res.status, 401);
      t.match(res.headers.get('www-authenticate'), /oauth-protected-resource\/api", error="invalid_token"/);
    });

    await t.test('the access token expires: the SDK refreshes it by itself (with resource) and carries on', async (t) => {
      const client = await connect();
      const before = provider.tokens()!.access_token;
      const seen = exchanges.length;
      clock += (config.accessTokenTtlSeconds + 60) * 1000;
      const me = await client.callTool({ name: 'whoami', arguments: {} });
      t.match(me.structuredContent, { sub: erin.id, scope: 'api:read' });
      const since = exchanges.slice(seen);
      t.match(since[0], { method: 'POST', status: 401 }, 'the expired token was refused');
      t.match(since[0]!.wwwAuthenticate, /error="invalid_token"/);
      const refresh = since.find((e) => e.form?.get('grant_type') === 'refresh_token');
      t.equal(refresh?.status, 200, 'then refreshed');
      t.equal(refresh?.form?.get('resource'), RESOURCE, 'for the same resource');
      const after = provider.tokens()!;
      t.not(after.access_token, before, 'a new access token');
      t.not(after.refresh_token, firstRefreshToken, 'the refresh token rotated');
      t.equal(decodePayload(after.access_token).aud, RESOURCE);
    });

    await t.test('step-up: write_note without api:write is refused with 403 naming the scope', async (t) => {
      const client = await connect();
      const seen = exchanges.length;
      // SDK 1.x answers a 403 insufficient_scope by calling auth() with the challenged scope; holding a
      // refresh token, it refreshes (which cannot widen the scope, RFC 6749 §6), gets the same 403 and
      // gives up (typescript-sdk issue #2255). The server's part: the 403, the scope, no widening.
      const error = await client.callTool({ name: 'write_note', arguments: { text: 'from the SDK' } }).then(
        () => null,
        (err: unknown) => err,
      );
      t.ok(error instanceof StreamableHTTPError, 'refused');
      t.equal((error as StreamableHTTPError | null)?.code, 403);
      const refusals = exchanges.slice(seen).filter((e) => e.status === 403);
      t.ok(refusals.length >= 1);
      for (const refusal of refusals) {
        t.match(refusal.wwwAuthenticate, /error="insufficient_scope", error_description="[^"]+", scope="api:read api:write"$/, '403 insufficient_scope naming every scope needed');
        t.match(refusal.wwwAuthenticate, /resource_metadata="[^"]+\/mcp"/);
      }
      t.equal(decodePayload(provider.tokens()!.access_token).scope, 'api:read', 'a refresh never widened the grant');
    });

    await t.test('step-up completed: re-authorization with the scope the 403 named, then write_note works', async (t) => {
      // What the specification asks of the client (and SDK 2.x does): a new authorization request with the challenged scope.
      provider.invalidateCredentials('tokens');
      const result = await auth(provider, { serverUrl: MCP_URL, scope: 'api:read api:write', fetchFn: recordingFetch });
      t.equal(result, 'REDIRECT');
      const url = provider.authorizationUrls.at(-1)!;
      t.equal(url.searchParams.get('scope'), 'api:read api:write');
      t.equal(url.searchParams.get('resource'), RESOURCE);
      const params = await authorizeInBrowser(t, url, { signIn: false, scopes: ['api:read', 'api:write'] });
      t.equal(await auth(provider, { serverUrl: MCP_URL, authorizationCode: params.get('code')!, fetchFn: recordingFetch }), 'AUTHORIZED');
      t.equal(decodePayload(provider.tokens()!.access_token).scope, 'api:read api:write');

      const client = await connect();
      const note = await client.callTool({ name: 'write_note', arguments: { text: 'from the SDK' } });
      t.match(note.structuredContent, { text: 'from the SDK', author: erin.username, sub: erin.id });
      t.match((await client.callTool({ name: 'whoami', arguments: {} })).structuredContent, { scope: 'api:read api:write' });
    });
  },
);
