/**
 * The SSRF guard: how the server fetches a URL that someone else chose (a
 * Client ID Metadata Document today, a client's `jwks_uri` later) without
 * being turned against its own network.
 *
 * - https only, no credentials in the URL;
 * - the address connected to must be public (`ip-address.ts`). It is checked
 *   where the connection is made: an IP literal before connecting, a name in
 *   the `lookup` hook of the request, which is the one resolution the socket
 *   then uses, so a name that answers differently the second time (DNS
 *   rebinding) cannot slip past a check made earlier. Every address a name
 *   resolves to must be public. The connected socket's peer address is
 *   checked once more;
 * - redirects are never followed (a 3xx is refused), so a public URL cannot
 *   send the server on to a private one;
 * - only 200 is accepted; the body is limited (`maxBytes`, by
 *   `Content-Length` and while reading), and so is the whole exchange in
 *   time (`timeoutMs`, from before the name is resolved to the last byte),
 *   after which the request is destroyed: nothing is left hanging;
 * - `allowPrivateNetworks` lifts the address rule only (development and
 *   tests); everything else holds.
 *
 * The same rules hold for the one other kind of request, a POST of a small
 * form (`createOutboundPost`: back-channel logout tokens), which accepts any
 * 2xx answer.
 *
 * Node's own `https` and `dns`; TLS is verified against the system's trust
 * store (plus `NODE_EXTRA_CA_CERTS`), or the given extra CAs.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request } from 'node:https';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { rootCertificates } from 'node:tls';
import { nonPublicReason } from './ip-address.js';

/** Why a fetch was refused. */
export type OutboundFetchRefusal = 'url' | 'address' | 'redirect' | 'status' | 'too_large' | 'timeout' | 'network';

export class OutboundFetchError extends Error {
  constructor(
    readonly reason: OutboundFetchRefusal,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'OutboundFetchError';
    if (options?.status !== undefined) this.status = options.status;
  }

  /** The status of the answer, for `redirect` and `status`. */
  readonly status?: number;
}

/** Name resolution: every address of `hostname`. */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

export interface OutboundFetchOptions {
  /** Connect to private, loopback, link-local… addresses too (development and tests only). */
  allowPrivateNetworks: boolean;
  /** The whole exchange, from resolving the name to the last byte, ms. */
  timeoutMs: number;
  /** Largest body accepted, bytes. */
  maxBytes: number;
  /** PEM certificates trusted besides Node's bundled roots (tests); unset: the default trust store. */
  extraCaCerts?: readonly string[];
  /** Name resolution (default `dns.lookup`, all addresses); tests inject one. */
  resolve?: ResolveHost;
  userAgent?: string;
  /**
   * Also plain http (an administrator's own service: `createOutboundPost`
   * for back-channel logout of admin-registered clients). Default false.
   */
  allowHttp?: boolean;
}

export interface FetchedDocument {
  headers: IncomingHttpHeaders;
  /** UTF-8 text. */
  body: string;
}

/** GETs `url` under the rules above; rejects with `OutboundFetchError`. */
export type OutboundFetch = (url: string, accept: string) => Promise<FetchedDocument>;

const defaultResolve: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });

/** The address rule: throws unless every address is public. */
function checkAddresses(hostname: string, addresses: readonly LookupAddress[]): void {
  if (addresses.length === 0) throw new OutboundFetchError('address', `${hostname} has no address`);
  for (const { address } of addresses) {
    const why = nonPublicReason(address);
    if (why !== null) throw new OutboundFetchError('address', `${hostname} resolves to ${address}, which is not a public address (${why})`);
  }
}

/** What one exchange sends, and which answers it accepts. */
interface Exchange {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** Whether a status (other than a redirect, always refused) is an answer; others are refused as `status`. */
  accepts(status: number): boolean;
  /** Says which statuses are accepted, for the refusal. */
  expected: string;
}

/** The exchange behind `createOutboundFetch` and `createOutboundPost`: every rule above, one request. */
function createExchanger(options: OutboundFetchOptions): (raw: string, exchange: Exchange) => Promise<FetchedDocument & { status: number }> {
  const resolveHost = options.resolve ?? defaultResolve;
  const ca = options.extraCaCerts && options.extraCaCerts.length > 0 ? [...rootCertificates, ...options.extraCaCerts] : undefined;
  const guarded = !options.allowPrivateNetworks;

  /**
   * The request's `lookup` hook (net.connect calls it, with `all: true` when
   * it tries several addresses): resolves once, checks what it got, and
   * hands exactly that to the socket.
   */
  const lookup = (
    hostname: string,
    lookupOptions: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    resolveHost(hostname).then(
      (all) => {
        try {
          const family = lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : 0;
          const addresses = family === 0 ? all : all.filter((a) => a.family === family);
          if (guarded) checkAddresses(hostname, addresses);
          else if (addresses.length === 0) throw new OutboundFetchError('address', `${hostname} has no address`);
          if (lookupOptions.all) callback(null, addresses);
          else callback(null, addresses[0]!.address, addresses[0]!.family);
        } catch (err) {
          callback(err as NodeJS.ErrnoException, '');
        }
      },
      (err: unknown) => callback(new OutboundFetchError('network', `${hostname} could not be resolved`, { cause: err }), ''),
    );
  };

  return (raw, exchange) =>
    new Promise((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        reject(new OutboundFetchError('url', 'not an absolute URL'));
        return;
      }
      const http = url.protocol === 'http:' && options.allowHttp === true;
      if (url.protocol !== 'https:' && !http) return reject(new OutboundFetchError('url', 'only https URLs are fetched'));
      if (url.username || url.password) return reject(new OutboundFetchError('url', 'the URL must not contain credentials'));
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      // An IP literal is connected to without a lookup: judged here.
      if (guarded && isIP(host) !== 0) {
        const why = nonPublicReason(host);
        if (why !== null) return reject(new OutboundFetchError('address', `${host} is not a public address (${why})`));
      }

      let settled = false;
      const finish = (err: OutboundFetchError | null, value?: FetchedDocument & { status: number }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value!);
      };
      const timer = setTimeout(() => finish(new OutboundFetchError('timeout', `no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);

      const body = exchange.body === undefined ? undefined : Buffer.from(exchange.body, 'utf8');
      const req = (http ? httpRequest : request)(url, {
        method: exchange.method,
        agent: false,
        lookup,
        ...(ca && !http ? { ca } : {}),
        headers: {
          ...exchange.headers,
          'accept-encoding': 'identity',
          'user-agent': options.userAgent ?? 'oauth-server',
          ...(body === undefined ? {} : { 'content-length': String(body.length) }),
        },
      });
      req.on('socket', (socket: Socket) => {
        socket.once('connect', () => {
          // Belt and braces: the peer actually connected to.
          const peer = socket.remoteAddress;
          const why = guarded && peer !== undefined ? nonPublicReason(peer) : null;
          if (why !== null) finish(new OutboundFetchError('address', `connected to ${peer}, which is not a public address (${why})`));
        });
      });
      req.on('error', (err) => {
        finish(err instanceof OutboundFetchError ? err : new OutboundFetchError('network', `the request failed (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err }));
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return finish(new OutboundFetchError('redirect', `answered ${status}: redirects are not followed`, { status }));
        if (!exchange.accepts(status)) return finish(new OutboundFetchError('status', `answered ${status}, not ${exchange.expected}`, { status }));
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBytes) {
          return finish(new OutboundFetchError('too_large', `the document is larger than ${options.maxBytes} bytes`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) finish(new OutboundFetchError('too_large', `the document is larger than ${options.maxBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => finish(null, { status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => finish(new OutboundFetchError('network', 'the answer was cut off', { cause: err })));
      });
      req.end(body);
    });
}

export function createOutboundFetch(options: OutboundFetchOptions): OutboundFetch {
  const exchange = createExchanger(options);
  return async (raw, accept) => {
    const { headers, body } = await exchange(raw, { method: 'GET', headers: { accept }, accepts: (status) => status === 200, expected: '200' });
    return { headers, body };
  };
}

/**
 * POSTs a small `application/x-www-form-urlencoded` body to `url` under the
 * same rules (address, no redirects, time and size of the answer); resolves
 * with the status of a 2xx answer, whose body is read (within `maxBytes`)
 * and dropped. Rejects with `OutboundFetchError`.
 */
export type OutboundPost = (url: string, form: URLSearchParams) => Promise<{ status: number }>;

export function createOutboundPost(options: OutboundFetchOptions): OutboundPost {
  const exchange = createExchanger(options);
  return async (raw, form) => {
    const { status } = await exchange(raw, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: '*/*' },
      body: form.toString(),
      accepts: (code) => code >= 200 && code < 300,
      expected: '2xx',
    });
    return { status };
  };
}
