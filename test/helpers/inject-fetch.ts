/**
 * A `fetch` over `app.inject()`, for client libraries that accept a custom
 * fetch (oauth4webapi's `customFetch`): the real HTTP layer of the app, no
 * socket. Only the path and query of the URL are used.
 */
import type { FastifyInstance } from 'fastify';

export interface FetchLikeOptions {
  method?: string;
  headers?: Headers | Record<string, string>;
  body?: unknown;
}

export function injectFetch(app: FastifyInstance, remoteAddress = '127.0.0.1') {
  return async (url: string, options: FetchLikeOptions = {}): Promise<Response> => {
    const target = new URL(url);
    const headers = options.headers instanceof Headers ? Object.fromEntries(options.headers.entries()) : { ...(options.headers ?? {}) };
    let payload: string | undefined;
    if (options.body instanceof URLSearchParams) payload = options.body.toString();
    else if (typeof options.body === 'string') payload = options.body;
    else if (options.body !== undefined && options.body !== null) throw new Error('injectFetch: unsupported body type');
    const res = await app.inject({
      method: (options.method ?? 'GET') as 'GET',
      url: `${target.pathname}${target.search}`,
      headers,
      remoteAddress,
      ...(payload === undefined ? {} : { payload }),
    });
    const out = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
    }
    const empty = res.statusCode === 204 || res.statusCode === 304;
    return new Response(empty ? null : res.rawPayload, { status: res.statusCode, headers: out });
  };
}
