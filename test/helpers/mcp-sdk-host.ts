/**
 * An MCP host for the end-to-end tests that use the MCP TypeScript SDK as
 * the client, and the steps those tests share. mcp-sdk-client.test.ts has the
 * SDK register itself by dynamic registration; mcp-sdk-client-metadata-document.test.ts
 * has it use the URL of a Client ID Metadata Document as its client_id. The
 * host has what a real one has: storage for the SDK (`TestProvider`), a
 * loopback redirect URI of its own (RFC 8252 §7.3), and a browser (headless
 * Chromium) for the user. It also records every HTTP exchange the SDK makes.
 * Given only the URL of `/mcp`, it goes through `Client` over
 * `StreamableHTTPClientTransport`, whose `auth()` calls the provider.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { auth, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { Page } from 'playwright-core';
import type { Test } from 'tap';
import { decodePayload } from './tokens.js';
import { launchChromium } from './chromium.js';

const STEP_TIMEOUT_MS = 10_000;

interface Tap {
  teardown(fn: () => unknown): void;
}


/** One HTTP exchange the SDK made (its `fetch`), for checking the discovery and token requests. */
interface Exchange {
  method: string;
  url: string;
  status: number;
  wwwAuthenticate: string | null;
  /** The form body of a POST to the token endpoint. */
  form: URLSearchParams | null;
}

/** `METHOD /path` of an exchange. */
export const requestLine = (e: Exchange) => `${e.method} ${new URL(e.url).pathname}`;

/** The MCP client's storage: what a real host keeps between runs, in memory, with what happened to it. */
class TestProvider implements OAuthClientProvider {
  readonly authorizationUrls: URL[] = [];
  /** Client information the SDK saved under a client_id it did not have yet: a registration's answer, or the metadata document URL it chose. */
  readonly newClientInformation: OAuthClientInformationMixed[] = [];
  readonly savedTokens: OAuthTokens[] = [];
  private info: OAuthClientInformationMixed | undefined;
  private current: OAuthTokens | undefined;
  private verifier: string | undefined;
  private lastState = '';

  constructor(
    readonly redirectUrl: string,
    readonly clientMetadata: OAuthClientMetadata,
    /** When set, the SDK uses it as the client_id if the server supports metadata documents (SEP-991). */
    readonly clientMetadataUrl: string | undefined,
  ) {}

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
    // Called after a registration, when the SDK takes the metadata document URL as client_id,
    // and once more to stamp information it already had with the issuer it belongs to.
    if (this.info?.client_id !== info.client_id) this.newClientInformation.push(info);
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

/** The host's loopback redirect URI (RFC 8252 §7.3): a listener of its own on 127.0.0.1, closed at teardown. */
interface LoopbackRedirect {
  /** `http://127.0.0.1:<port>/callback` */
  uri: string;
  /** The next URL the browser lands at. */
  next(): Promise<string>;
}

export async function startLoopbackRedirect(t: Tap): Promise<LoopbackRedirect> {
  let arrived: ((url: string) => void) | undefined;
  const callback = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>MCP host</title><p>Signed in. You can close this window.</p>');
    arrived?.(new URL(req.url!, `http://${req.headers.host}`).toString());
  });
  await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => callback.close(resolve)));
  return {
    uri: `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`,
    next: () => new Promise<string>((resolve) => (arrived = resolve)),
  };
}

/** What the host says about itself: registered by the SDK, or published as its metadata document. */
export function hostMetadata(redirectUri: string): OAuthClientMetadata {
  return {
    client_name: 'MCP SDK Test Host',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope: 'api:read api:write',
  };
}

interface McpUser {
  id: string;
  username: string;
  password: string;
}

interface McpHostOptions {
  /** The authorization server (where the browser must come back from). */
  issuer: string;
  /** The MCP server's URL: all the host is told. */
  mcpUrl: URL;
  /** Who signs in. */
  user: McpUser;
  redirect: LoopbackRedirect;
  clientMetadata: OAuthClientMetadata;
  /** The host's Client ID Metadata Document, if it has one. */
  clientMetadataUrl?: string;
  /** What the consent page must say about a client no administrator registered. */
  unregisteredNotice: RegExp;
}

interface McpHost {
  options: McpHostOptions;
  /** `${ISSUER}/mcp`: the resource the tokens are for. */
  resource: string;
  provider: TestProvider;
  exchanges: Exchange[];
  /** The `fetch` the SDK is given: records every exchange. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  newTransport(): StreamableHTTPClientTransport;
  /** A client connected to /mcp with the provider's tokens. */
  connect(): Promise<Client>;
  /** The user at an authorization URL the SDK produced: signs in if asked, allows, and the browser lands at the redirect URI. */
  authorizeInBrowser(t: Test, url: URL, expect: { signIn: boolean; scopes: string[] }): Promise<URLSearchParams>;
}

/** A host with no client information and no tokens, and a browser; closed at teardown. */
export async function openMcpHost(t: Tap, options: McpHostOptions): Promise<McpHost> {
  const { mcpUrl, issuer, user, redirect, clientMetadata } = options;
  const provider = new TestProvider(redirect.uri, clientMetadata, options.clientMetadataUrl);

  const exchanges: Exchange[] = [];
  const recordingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const isTokenRequest = request.method === 'POST' && new URL(request.url).pathname === '/token';
    const form = isTokenRequest ? new URLSearchParams(await request.clone().text()) : null;
    const response = await fetch(request);
    exchanges.push({ method: request.method, url: request.url, status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), form });
    return response;
  };
  const newTransport = () => new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recordingFetch });
  const connected: Client[] = [];
  t.teardown(async () => {
    for (const client of connected) await client.close();
  });
  /**
   * After `initialized` the SDK opens its optional SSE stream with a GET it
   * does not await; this server answers 405 (no stream). Waiting for that
   * answer keeps the GET from meeting a token the test has just let expire:
   * two refreshes of one refresh token at once would be a reuse
   * (REFRESH_REUSE_GRACE is 0 here).
   */
  async function connect(): Promise<Client> {
    const client = new Client({ name: 'mcp-sdk-e2e', version: '1.0.0' });
    connected.push(client);
    const probes = () => exchanges.filter((e) => requestLine(e) === 'GET /mcp').length;
    const before = probes();
    await client.connect(newTransport());
    for (let waited = 0; probes() === before; waited += 10) {
      if (waited > STEP_TIMEOUT_MS) throw new Error('the SDK never opened (or was never refused) its SSE stream');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const probe = exchanges.filter((e) => requestLine(e) === 'GET /mcp').at(-1)!;
    if (probe.status !== 405) throw new Error(`the SSE stream's GET got ${probe.status}, not 405`);
    return client;
  }

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page: Page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);

  async function authorizeInBrowser(t: Test, url: URL, expect: { signIn: boolean; scopes: string[] }): Promise<URLSearchParams> {
    const landed = redirect.next();
    await page.goto(url.toString());
    if (expect.signIn) {
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Username').fill(user.username);
      await page.getByLabel('Password').fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    }
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    const consent = (await page.textContent('main')) ?? '';
    t.match(consent, clientMetadata.client_name!, 'the consent page names the MCP host');
    t.match(consent, options.unregisteredNotice, 'says no administrator registered it');
    t.match(consent, /This application runs on this computer/, 'and warns that its redirect URI is a loopback address');
    for (const scope of ['api:read', 'api:write']) {
      if (expect.scopes.includes(scope)) t.match(consent, scope, `it asks for ${scope}`);
      else t.notMatch(consent, scope, `not for ${scope}`);
    }
    await page.getByRole('button', { name: 'Allow' }).click();
    const at = new URL(await landed);
    t.equal(`${at.origin}${at.pathname}`, redirect.uri, 'back at the loopback redirect URI');
    t.equal(at.searchParams.get('state'), provider.expectedState, 'with the state the SDK sent');
    t.equal(at.searchParams.get('iss'), issuer, 'and iss (RFC 9207)');
    return at.searchParams;
  }

  return { options, resource: `${issuer}/mcp`, provider, exchanges, fetch: recordingFetch, newTransport, connect, authorizeInBrowser };
}

/** The token request of `grant_type` among `exchanges` (the last one). */
export const tokenRequest = (exchanges: readonly Exchange[], grantType: string) => exchanges.findLast((e) => e.form?.get('grant_type') === grantType);

/**
 * Step 1: the SDK, knowing nothing, connects and is refused (401); it finds
 * the protected resource metadata, then the authorization server's, gets a
 * client_id (the `clientSetup` exchanges: registering, or none), and sends the
 * user to /authorize; the user signs in and consents in the browser; the code
 * is redeemed with `resource`.
 */
export async function signInFromTheUrlAlone(t: Test, host: McpHost, clientSetup: Array<[string, number]>): Promise<void> {
  const { provider, exchanges, resource } = host;
  const { issuer, redirect, user } = host.options;
  const first = new Client({ name: 'mcp-sdk-e2e', version: '1.0.0' });
  const transport = host.newTransport();
  const stopped = await first.connect(transport).then(
    () => null,
    (err: unknown) => err,
  );
  t.ok(stopped instanceof UnauthorizedError, 'the SDK needs the user: it stops at the redirect');

  t.same(exchanges.map((e) => [requestLine(e), e.status]), [
    ['POST /mcp', 401],
    ['GET /.well-known/oauth-protected-resource/mcp', 200],
    ['GET /.well-known/oauth-authorization-server', 200],
    ...clientSetup,
  ], 'the 401, the resource metadata it points to, this server’s metadata, then what it takes to have a client_id');
  t.match(exchanges[0]!.wwwAuthenticate, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp", scope="api:read"/);
  const clientId = provider.clientInformation()?.client_id;
  t.ok(clientId, 'the SDK has a client_id');

  t.equal(provider.authorizationUrls.length, 1);
  const url = provider.authorizationUrls[0]!;
  t.equal(`${url.origin}${url.pathname}`, `${issuer}/authorize`);
  t.equal(url.searchParams.get('client_id'), clientId, 'for that client');
  t.equal(url.searchParams.get('resource'), resource, 'RFC 8707 resource: the MCP server');
  t.equal(url.searchParams.get('scope'), 'api:read', 'the scope the 401 named');
  t.equal(url.searchParams.get('code_challenge_method'), 'S256');
  t.equal(url.searchParams.get('redirect_uri'), redirect.uri);

  const params = await host.authorizeInBrowser(t, url, { signIn: true, scopes: ['api:read'] });
  await transport.finishAuth(params.get('code')!);
  await first.close();

  const redeem = tokenRequest(exchanges, 'authorization_code');
  t.equal(redeem?.status, 200);
  t.equal(redeem?.form?.get('client_id'), clientId, 'the code redeemed by that client');
  t.equal(redeem?.form?.get('resource'), resource, 'with resource');
  t.ok(redeem?.form?.get('code_verifier'), 'and the PKCE verifier');
  const tokens = provider.tokens()!;
  const claims = decodePayload(tokens.access_token);
  t.equal(claims.aud, resource, 'the access token is for /mcp');
  t.equal(claims.scope, 'api:read');
  t.equal(claims.client_id, clientId, 'and the client');
  t.equal(claims.sub, user.id, 'the user who signed in');
  t.ok(tokens.refresh_token, 'and a refresh token');
}

/** Step 2: connected, tools/list and whoami. */
export async function toolsAndWhoami(t: Test, host: McpHost): Promise<void> {
  const { user } = host.options;
  const client = await host.connect();
  t.equal(client.getServerVersion()?.name, 'oauth-server-sample-mcp');
  const { tools } = await client.listTools();
  t.same(tools.map((tool) => tool.name).sort(), ['whoami', 'write_note']);
  const me = await client.callTool({ name: 'whoami', arguments: {} });
  t.same(me.structuredContent, { sub: user.id, username: user.username, client_id: host.provider.clientInformation()!.client_id, scope: 'api:read' });
}

/** Step 3: the /mcp token is refused by /api/hello (audience), over HTTP. */
export async function refusedByTheApi(t: Test, host: McpHost): Promise<void> {
  const res = await fetch(`${host.options.issuer}/api/hello`, { headers: { authorization: `Bearer ${host.provider.tokens()!.access_token}` } });
  t.equal(res.status, 401);
  t.match(res.headers.get('www-authenticate'), /oauth-protected-resource\/api", error="invalid_token"/);
}

/** After a refresh: the SDK's refresh request (since exchange `seen`) was for the same resource and client, and the tokens rotated. */
export function checkRefreshed(t: Test, host: McpHost, seen: number, before: OAuthTokens): void {
  const refresh = tokenRequest(host.exchanges.slice(seen), 'refresh_token');
  t.equal(refresh?.status, 200, 'refreshed');
  t.equal(refresh?.form?.get('resource'), host.resource, 'for the same resource');
  t.equal(refresh?.form?.get('client_id'), host.provider.clientInformation()!.client_id, 'by the same client');
  t.equal(refresh?.form?.get('refresh_token'), before.refresh_token, 'with the refresh token it held');
  const after = host.provider.tokens()!;
  t.not(after.access_token, before.access_token, 'a new access token');
  t.not(after.refresh_token, before.refresh_token, 'the refresh token rotated');
  t.equal(decodePayload(after.access_token).aud, host.resource);
}

/** Step-up, first half: write_note without api:write is refused with 403 naming the scope. */
export async function stepUpRefused(t: Test, host: McpHost): Promise<void> {
  const { exchanges, provider } = host;
  const client = await host.connect();
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
    t.match(refusal.wwwAuthenticate, /error="insufficient_scope", error_description="[^"]+", scope="api:read api:write", DPoP algs="[^"]+"$/, '403 insufficient_scope naming every scope needed');
    t.match(refusal.wwwAuthenticate, /resource_metadata="[^"]+\/mcp"/);
  }
  t.equal(decodePayload(provider.tokens()!.access_token).scope, 'api:read', 'a refresh never widened the grant');
}

/** Step-up, second half: re-authorization with the scope the 403 named, then write_note works. */
export async function stepUpCompleted(t: Test, host: McpHost): Promise<void> {
  const { provider, resource } = host;
  const { mcpUrl, user } = host.options;
  // What the specification asks of the client (and SDK 2.x does): a new authorization request with the challenged scope.
  provider.invalidateCredentials('tokens');
  const result = await auth(provider, { serverUrl: mcpUrl, scope: 'api:read api:write', fetchFn: host.fetch });
  t.equal(result, 'REDIRECT');
  const url = provider.authorizationUrls.at(-1)!;
  t.equal(url.searchParams.get('scope'), 'api:read api:write');
  t.equal(url.searchParams.get('resource'), resource);
  t.equal(url.searchParams.get('client_id'), provider.clientInformation()!.client_id, 'the same client');
  const params = await host.authorizeInBrowser(t, url, { signIn: false, scopes: ['api:read', 'api:write'] });
  t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: params.get('code')!, fetchFn: host.fetch }), 'AUTHORIZED');
  t.equal(decodePayload(provider.tokens()!.access_token).scope, 'api:read api:write');

  const client = await host.connect();
  const note = await client.callTool({ name: 'write_note', arguments: { text: 'from the SDK' } });
  t.match(note.structuredContent, { text: 'from the SDK', author: user.username, sub: user.id });
  t.match((await client.callTool({ name: 'whoami', arguments: {} })).structuredContent, { scope: 'api:read api:write' });
}
