/**
 * Test helpers around the token endpoint: form posts through `app.inject()`,
 * Basic credentials, and JWTs signed with the server's own keys (to prove a
 * check refuses a token that is otherwise perfectly signed).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import type { Storage } from '../../src/storage/types.js';

/** RFC 6749 §2.3.1: form-urlencode both parts, then base64. */
export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

/** RFC 7617: `username:password` as UTF-8, then base64, nothing encoded (a user signing in to the admin API). */
export function userBasic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

export function form(params: Record<string, string | string[]>): string {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  return body.toString();
}

export interface PostOptions {
  authorization?: string;
  remoteAddress?: string;
  contentType?: string;
}

/** POSTs a form to `url` (the token, revocation or introspection endpoint). */
export function postForm(app: FastifyInstance, url: string, params: Record<string, string | string[]>, options: PostOptions = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    payload: form(params),
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    headers: {
      'content-type': options.contentType ?? 'application/x-www-form-urlencoded',
      ...(options.authorization ? { authorization: options.authorization } : {}),
    },
  });
}

export function getWithToken(app: FastifyInstance, url: string, token: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
}

/** Signs `payload` with the server's active private key of `alg` (read from the database), with any header. */
export async function signWithServerKey(storage: Pick<Storage, 'signingKeys'>, alg: string, header: Record<string, unknown>, payload: JWTPayload): Promise<string> {
  const record = (await storage.signingKeys.listPublished(new Date())).find((k) => k.alg === alg && k.retiredAt === null);
  if (!record) throw new Error(`no active ${alg} key`);
  const key = await importJWK({ ...record.privateJwk, alg } as never, alg);
  return new SignJWT(payload).setProtectedHeader({ alg, kid: record.kid, ...header }).sign(key);
}

/** Decodes a JWT's payload without verifying it. */
export function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
