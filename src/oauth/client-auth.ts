/**
 * Client authentication at the token, revocation and introspection
 * endpoints (RFC 6749 §2.3), and wherever else a client authenticates:
 * `client_secret_basic`, `client_secret_post`, `private_key_jwt` (a JWT
 * client assertion, RFC 7523 §2.2, checked by `client-assertion.ts`), and
 * `none` (a public client identifies itself by `client_id`, §2.1).
 *
 * Rules enforced here:
 * - exactly one method per request (§2.3: "MUST NOT use more than one"), else
 *   `invalid_request`;
 * - the method used must be the one the client registered
 *   (`token_endpoint_auth_method`), else `invalid_client`;
 * - Basic credentials are form-urlencoded before base64 (§2.3.1), so secrets
 *   with `:`, `%` or `+` work;
 * - secrets are compared in constant time (`verifyClientSecret`);
 * - bad secrets are counted per client and IP in the shared failed-attempt
 *   store; at the limit that client is locked out for that IP (429 with
 *   `Retry-After`). Per IP, so nobody can lock a client out by knowing its id.
 *
 * The success path costs no I/O beyond the cached client lookup: a lockout
 * is mirrored into each instance's memory when it starts (the instance that
 * sees the limit reached publishes it on the `client-lockouts` channel), so
 * a correct secret is checked against memory, never the TTL store.
 *
 * No burst outruns the count on an instance: the secret check is synchronous,
 * and a failure is counted in memory in the same tick, before anything is
 * awaited, so once an instance has seen `MAX_FAILED_ATTEMPTS` bad secrets for
 * a client and IP it checks none until the window ends, however many arrive
 * at once. Across instances the shared count and the lockout announcement
 * take a round trip, so a burst spread over N instances at the same instant
 * gets at most N × `MAX_FAILED_ATTEMPTS` checks (of a 256-bit secret);
 * passwords, which can be guessed, are counted exactly in the store before
 * each check instead (`users/sign-in.ts`).
 *
 * A refused client assertion counts the same way (a wrong key, wrong claims,
 * a replay), except when the client's keys could not be had (its `jwks_uri`
 * is down: not the caller's failure). Its check awaits (jose, the `jti`
 * store), so a burst on one instance is bounded only once the count is
 * reached; a signature cannot be guessed anyway.
 */
import type { Metrics } from '../observability/metrics.js';
import type { ClientService } from '../clients/service.js';
import { verifyClientSecret } from '../clients/secret.js';
import { invalidClient, invalidRequest, tooManyRequests } from '../errors.js';
import { parseBasic } from '../security/authorization-header.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { Client, KvStore } from '../storage/types.js';
import { assertionClientId, type ClientAssertionVerifier } from './client-assertion.js';
import { JWT_BEARER_ASSERTION_TYPE, type TokenEndpointAuthMethod } from './protocol.js';

export const LOCKOUTS_CHANNEL = 'client-lockouts';

/** The challenge sent with every `invalid_client` 401 (RFC 6749 §5.2, RFC 9110 §11.6.1). */
export const CLIENT_CHALLENGE = 'Basic realm="oauth", charset="UTF-8"';

export interface ClientCredentials {
  method: TokenEndpointAuthMethod;
  clientId: string;
  /** The secret of `client_secret_basic` and `client_secret_post`; null otherwise. */
  secret: string | null;
  /** The JWT of `private_key_jwt` (not verified yet); null otherwise. */
  assertion: string | null;
}

type Params = Readonly<Record<string, string | undefined>>;

/** The form parameters a client authenticates with (RFC 6749 §2.3.1, RFC 7521 §4.2). */
export const CLIENT_AUTHENTICATION_PARAMETERS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'] as const;

/** application/x-www-form-urlencoded decoding of one Basic component (RFC 6749 §2.3.1, Appendix B). */
function formDecode(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/**
 * Parses `Authorization: Basic …` for a client (RFC 6749 §2.3.1): base64 of
 * `urlencode(client_id) ":" urlencode(client_secret)`. Null when the header
 * is not Basic; throws `invalid_client` when it is Basic but malformed.
 */
export function parseClientBasic(header: string): { clientId: string; secret: string } | null {
  const basic = parseBasic(header);
  if (basic === null) return null;
  if (basic === 'malformed') throw invalidClient('Malformed Basic credentials.');
  const clientId = formDecode(basic.user);
  const secret = formDecode(basic.password);
  if (!clientId || secret === null) throw invalidClient('Malformed Basic credentials (RFC 6749 §2.3.1: form-urlencode client_id and secret).');
  return { clientId, secret };
}

/**
 * Which method the request uses and with which credentials. Throws
 * `invalid_request` for more than one method, `invalid_client` for none or
 * an unsupported one.
 */
export function extractClientCredentials(authorization: string | undefined, params: Params): ClientCredentials {
  let basic: { clientId: string; secret: string } | null = null;
  if (authorization !== undefined) {
    basic = parseClientBasic(authorization);
    if (!basic) throw invalidClient('Unsupported Authorization scheme: use HTTP Basic (client_secret_basic) or client_secret_post.');
  }
  if (params.client_assertion !== undefined || params.client_assertion_type !== undefined) {
    if (basic || params.client_secret !== undefined) throw invalidRequest('Use exactly one client authentication method per request (RFC 6749 §2.3).');
    return assertionCredentials(params);
  }
  if (basic) {
    if (params.client_secret !== undefined) throw invalidRequest('Use exactly one client authentication method per request (RFC 6749 §2.3).');
    if (params.client_id !== undefined && params.client_id !== basic.clientId) {
      throw invalidRequest('client_id in the body differs from the one in the Authorization header.');
    }
    return { method: 'client_secret_basic', clientId: basic.clientId, secret: basic.secret, assertion: null };
  }
  if (params.client_secret !== undefined) {
    if (params.client_id === undefined) throw invalidRequest('client_secret needs client_id (RFC 6749 §2.3.1).');
    return { method: 'client_secret_post', clientId: params.client_id, secret: params.client_secret, assertion: null };
  }
  if (params.client_id !== undefined) return { method: 'none', clientId: params.client_id, secret: null, assertion: null };
  throw invalidClient('Client authentication is required (HTTP Basic, client_secret_post, a client assertion, or client_id for a public client).');
}

/**
 * `client_assertion_type` + `client_assertion` (RFC 7521 §4.2): a JWT
 * bearer assertion (RFC 7523 §2.2) is the only type. The client is the one
 * its `sub` names; `client_id` is optional, and must be that one if sent.
 */
function assertionCredentials(params: Params): ClientCredentials {
  if (params.client_assertion_type !== JWT_BEARER_ASSERTION_TYPE) {
    throw invalidClient(`Unsupported client_assertion_type: the only one is ${JWT_BEARER_ASSERTION_TYPE} (RFC 7523 §2.2).`);
  }
  if (params.client_assertion === undefined) throw invalidClient('client_assertion is required with client_assertion_type (RFC 7521 §4.2).');
  const clientId = assertionClientId(params.client_assertion);
  if (params.client_id !== undefined && params.client_id !== clientId) {
    throw invalidClient('client_id differs from the client assertion\'s "sub" (RFC 7521 §4.2).');
  }
  return { method: 'private_key_jwt', clientId, secret: null, assertion: params.client_assertion };
}

export interface ClientAuthenticatorDeps {
  clients: Pick<ClientService, 'find'>;
  throttle: Throttle;
  kv: KvStore;
  now: () => number;
  metrics?: Pick<Metrics, 'loginFailed'>;
  /** Checks `private_key_jwt` assertions; without it they are refused. */
  assertions?: ClientAssertionVerifier;
}

export interface ClientAuthenticator {
  /**
   * The authenticated (or, for `none`, identified) client; throws
   * `invalid_client`, `invalid_request` or 429. `endpointPath` is where the
   * request was sent, under the issuer (default `/token`): a client
   * assertion may name that URL as its audience.
   */
  authenticate(authorization: string | undefined, params: Params, ip: string, endpointPath?: string): Promise<Client>;
  /** Subscribes to lockouts announced by other instances; returns the unsubscribe. */
  start(): Promise<() => Promise<void>>;
}

export function createClientAuthenticator(deps: ClientAuthenticatorDeps): ClientAuthenticator {
  const { clients, throttle, kv, now } = deps;
  /** throttle key (client and IP) → locked until (ms). */
  const lockouts = new Map<string, number>();
  /** throttle key → bad secrets this instance has seen in its window (see the file comment). */
  const seenHere = new Map<string, { count: number; untilMs: number }>();

  const sweep = <V>(map: Map<string, V>, until: (value: V) => number) => {
    if (map.size <= 10_000) return;
    const t = now();
    for (const [id, value] of map) if (until(value) <= t) map.delete(id);
  };

  const lock = (key: string, untilMs: number) => {
    sweep(lockouts, (until) => until);
    lockouts.set(key, Math.max(untilMs, lockouts.get(key) ?? 0));
  };

  /**
   * Synchronous: runs in the tick of the failed check, before anything is
   * awaited. True when this failure used up the last attempt here.
   */
  const countHere = (key: string): boolean => {
    const t = now();
    let seen = seenHere.get(key);
    if (seen === undefined || seen.untilMs <= t) {
      sweep(seenHere, (value) => value.untilMs);
      seen = { count: 0, untilMs: t + throttle.windowSeconds * 1000 };
      seenHere.set(key, seen);
    }
    seen.count += 1;
    if (seen.count < throttle.maxAttempts) return false;
    lock(key, seen.untilMs);
    return true;
  };

  const onFailure = async (key: string) => {
    const lastHere = countHere(key);
    deps.metrics?.loginFailed('client_auth');
    const [shared] = await throttle.fail(key);
    const lastShared = shared !== undefined && shared.count >= throttle.maxAttempts;
    if (lastShared) {
      const until = now() + shared.ttlSeconds * 1000;
      lock(key, until);
      await kv.publish(LOCKOUTS_CHANNEL, JSON.stringify({ k: key, u: until })).catch(() => {});
    }
    // The failure that uses up the last attempt already answers 429.
    const left = (lockouts.get(key) ?? 0) - now();
    if ((lastHere || lastShared) && left > 0) throw tooManyRequests(Math.ceil(left / 1000));
  };

  return {
    async authenticate(authorization, params, ip, endpointPath = '/token') {
      const credentials = extractClientCredentials(authorization, params);
      const client = await clients.find(credentials.clientId);
      if (!client) throw invalidClient();
      if (client.tokenEndpointAuthMethod !== credentials.method) {
        throw invalidClient(`This client is registered for token_endpoint_auth_method "${client.tokenEndpointAuthMethod}", not "${credentials.method}".`);
      }
      if (credentials.secret === null && credentials.assertion === null) return client;
      const key = throttleKeys.client(client.clientId, ip);
      const until = lockouts.get(key);
      if (until !== undefined) {
        const left = until - now();
        if (left > 0) throw tooManyRequests(Math.ceil(left / 1000));
        lockouts.delete(key);
      }
      if (credentials.assertion !== null) {
        if (!deps.assertions) throw invalidClient('Client assertions are not accepted here.');
        const outcome = await deps.assertions.verify(client, credentials.assertion, endpointPath);
        if (outcome.ok) return client;
        if (outcome.counted) await onFailure(key);
        throw outcome.error;
      }
      if (client.clientSecretHash === null || !verifyClientSecret(credentials.secret!, client.clientSecretHash)) {
        // No await between the lockout check above, the (synchronous) check and the count.
        await onFailure(key);
        throw invalidClient();
      }
      return client;
    },
    async start() {
      return kv.subscribe(LOCKOUTS_CHANNEL, (raw) => {
        try {
          const message = JSON.parse(raw) as { k?: unknown; u?: unknown };
          if (typeof message.k === 'string' && typeof message.u === 'number') lock(message.k, message.u);
        } catch {
          // A malformed message is ignored.
        }
      });
    },
  };
}
