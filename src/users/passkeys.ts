/**
 * Passkeys (WebAuthn, via @simplewebauthn/server): registering one on the
 * account page and signing in with one, username-less (discoverable
 * credentials), from the login page.
 *
 * - The relying party is the issuer: RP ID = `ISSUER`'s hostname, expected
 *   origin = `ISSUER`'s origin. A passkey is bound to that host by the
 *   authenticator, so a passkey registered under one host never works under
 *   another (changing `ISSUER`'s host orphans every passkey). An IP address
 *   cannot be an RP ID (WebAuthn §5.1.4.1), so with an issuer like
 *   `http://127.0.0.1:3000` passkeys are unavailable (`available` false).
 * - Each challenge is kept in the TTL store under the browser session that
 *   asked for it and taken atomically when an answer signed over it comes
 *   back: single use, and never usable from another session.
 * - User verification is required (PIN, biometrics): a passkey replaces the
 *   password, so it must be more than possession.
 * - Signature counters (WebAuthn §6.1.1): a verified assertion must carry a
 *   counter greater than the stored one, unless both are 0 (an
 *   authenticator that keeps none, as synced passkeys do). One that does not
 *   means two copies of the key exist: refused and recorded as
 *   `passkey.clone_detected`. The check runs after the signature is verified
 *   (so nobody can raise the alarm with a forged assertion) and the store
 *   applies it atomically (`PasskeyRepo.recordUse`).
 * - The user handle the authenticator returns must name the credential's
 *   owner: a credential stored for one account never signs in another.
 * - Failed assertions are throttled per address (`throttleKeys.passkey`),
 *   with the server's failed-attempt limit and window; every attempt is a
 *   `sign_in.*` audit event with `source: passkey`.
 *
 * Authentication methods (RFC 8176, the session's and ID token's `amr`):
 * `hwk` for a device-bound key (the authenticator reports it backup-
 * ineligible, `singleDevice`: the private key cannot leave it), `swk` for a
 * key that may be synced between devices (`multiDevice`, backed up or not),
 * as it is then held in software by a sync service.
 */
import { createHash, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type * as WebAuthnServer from '@simplewebauthn/server';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type * as WebAuthnHelpers from '@simplewebauthn/server/helpers';
import { ANONYMOUS_ACTOR, userActor, type AuditActor, type AuditEventInput, type AuditRecorder } from '../audit/events.js';
import type { Config } from '../config.js';
import { accessDenied, conflict, invalidRequest, isOAuthError } from '../errors.js';
import { constantTimeEqual } from '../security/constant-time.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { KvStore, Passkey, PasskeyDeviceType, PasskeyRepo, User, UserRepo } from '../storage/types.js';
import { isEnabled } from './account.js';

type WebAuthn = typeof WebAuthnServer & typeof WebAuthnHelpers;
let webAuthn: Promise<WebAuthn> | undefined;
/**
 * @simplewebauthn/server, loaded at the first ceremony rather than at start:
 * importing it costs about 150 ms and 20 MB of memory (bench/startup.ts),
 * which a server whose users never use passkeys need not pay.
 */
function loadWebAuthn(): Promise<WebAuthn> {
  webAuthn ??= Promise.all([import('@simplewebauthn/server'), import('@simplewebauthn/server/helpers')]).then(([server, helpers]) => ({ ...server, ...helpers }));
  return webAuthn;
}

/** How long a ceremony may take, from its options to its answer, seconds. */
export const CHALLENGE_TTL_SECONDS = 300;
/** Passkeys one account may hold. */
export const MAX_PASSKEYS = 20;
export const MAX_PASSKEY_NAME_LENGTH = 64;

/** One generic answer for every refused assertion: it must not tell an attacker which check failed. */
const NOT_VERIFIED = 'This passkey could not be verified. Try again, or sign in with your password.';
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

type Ceremony = 'registration' | 'authentication';

/** The RFC 8176 method a passkey stands for (see the file's comment). */
export type PasskeyAmr = 'hwk' | 'swk';

export function passkeyAmr(deviceType: PasskeyDeviceType): PasskeyAmr {
  return deviceType === 'singleDevice' ? 'hwk' : 'swk';
}

/** Whatever binds a ceremony: the browser session's raw id (only its hash is used). */
export interface CeremonySession {
  readonly id: string;
}

export interface PasskeySignIn {
  user: User;
  passkey: Passkey;
  /** `['hwk']` or `['swk']`, for `sessions.signIn`. */
  amr: [PasskeyAmr];
}

export interface PasskeyService {
  /** False when the issuer's host cannot be an RP ID (an IP address): no passkey can be made or used. */
  readonly available: boolean;
  /** The user's passkeys, oldest first. */
  list(userId: string): Promise<Passkey[]>;
  /** Options for `navigator.credentials.create()`; remembers the challenge for this session. */
  registrationOptions(user: User, session: CeremonySession): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /**
   * Verifies the browser's answer to this session's registration challenge
   * (taken: single use) and stores the passkey. 400 `invalid_request` when it
   * does not verify; 409 `conflict` when the credential is already stored
   * (for this account or another) or the account holds `MAX_PASSKEYS`.
   */
  register(user: User, session: CeremonySession, response: unknown, name: string | undefined, ip: string | null): Promise<Passkey>;
  /** Options for `navigator.credentials.get()` (no allowCredentials: discoverable credentials only). */
  authenticationOptions(session: CeremonySession): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /**
   * Verifies an assertion against this session's challenge (taken: single
   * use) and the stored credential. 429 when the address used up its failed
   * attempts; 403 `access_denied` (one message for every reason) when it does
   * not verify, the credential is unknown or another user's, the account is
   * disabled, or the counter went back.
   */
  authenticate(session: CeremonySession, response: unknown, ip: string): Promise<PasskeySignIn>;
  /** Removes one of the user's passkeys; false when the user has none with this id. */
  remove(user: User, id: string, ip: string | null): Promise<boolean>;
}

export interface PasskeyServiceDeps {
  repo: PasskeyRepo;
  users: Pick<UserRepo, 'findById'>;
  kv: KvStore;
  throttle: Throttle;
  config: Pick<Config, 'issuer'>;
  audit?: AuditRecorder;
  now?: () => number;
}

/** A refused assertion, with what the audit trail should say about it. */
class Refusal extends Error {
  constructor(
    readonly reason: string,
    readonly passkey: Passkey | null = null,
    readonly user: User | null = null,
    cause?: unknown,
  ) {
    super(reason, { cause });
  }
}

function cleanName(name: string | undefined, fallback: string): string {
  const clean = (name ?? '').replace(CONTROL, '').trim().slice(0, MAX_PASSKEY_NAME_LENGTH);
  return clean === '' ? fallback : clean;
}

/** The challenge in an answer's client data (what the authenticator signed over), if it looks like one of ours. */
function challengeOf(response: unknown, { decodeClientDataJSON, isoBase64URL }: WebAuthn): string | null {
  const clientDataJSON = typeof response === 'object' && response !== null ? (response as { response?: { clientDataJSON?: unknown } }).response?.clientDataJSON : undefined;
  if (typeof clientDataJSON !== 'string' || clientDataJSON.length > 4096 || !isoBase64URL.isBase64URL(clientDataJSON)) return null;
  try {
    const { challenge } = decodeClientDataJSON(clientDataJSON);
    return typeof challenge === 'string' && /^[\w-]{16,128}$/.test(challenge) ? challenge : null;
  } catch {
    return null;
  }
}

/** The id of the credential an answer names, if it is a plausible base64url string. */
function credentialIdOf(response: unknown, { isoBase64URL }: WebAuthn): string | null {
  const id = typeof response === 'object' && response !== null ? (response as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length > 0 && id.length <= 1400 && isoBase64URL.isBase64URL(id) ? id : null;
}

export function createPasskeyService(deps: PasskeyServiceDeps): PasskeyService {
  const { repo, kv, throttle, audit } = deps;
  const now = deps.now ?? Date.now;
  const issuer = new URL(deps.config.issuer);
  const rpID = issuer.hostname;
  const origin = issuer.origin;
  const available = isIP(rpID.replace(/^\[|\]$/g, '')) === 0;

  // One entry per challenge, under the session's hash: a session may have
  // several ceremonies under way (the autofill's and the button's), each
  // answer names its challenge, and each challenge is taken once.
  const challengeKey = (ceremony: Ceremony, session: CeremonySession, challenge: string) =>
    `passkey-challenge:${ceremony}:${createHash('sha256').update(session.id).digest('base64url')}:${challenge}`;

  async function remember(ceremony: Ceremony, session: CeremonySession, challenge: string): Promise<void> {
    await kv.set(challengeKey(ceremony, session, challenge), '1', CHALLENGE_TTL_SECONDS);
  }

  /**
   * The challenge the answer signed, if this session asked for it and it was
   * not used yet: taken out of the store atomically (null otherwise).
   */
  async function takeChallenge(ceremony: Ceremony, session: CeremonySession, response: unknown): Promise<string | null> {
    const challenge = challengeOf(response, await loadWebAuthn());
    if (challenge === null) return null;
    return (await kv.take(challengeKey(ceremony, session, challenge))) === null ? null : challenge;
  }

  const record = (event: AuditEventInput) => audit?.record(event) ?? Promise.resolve();

  function ensureAvailable(): void {
    if (!available) throw invalidRequest(`Passkeys need the issuer's host to be a domain name, not an IP address (${rpID}).`);
  }

  async function registrationOptions(user: User, session: CeremonySession) {
    ensureAvailable();
    const [existing, { generateRegistrationOptions }] = await Promise.all([repo.listForUser(user.id), loadWebAuthn()]);
    const options = await generateRegistrationOptions({
      rpName: issuer.host,
      rpID,
      userName: user.username,
      // The user handle: the account's id (an opaque UUID, no personal data), so a sign-in can be checked against the owner.
      userID: new TextEncoder().encode(user.id),
      attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    await remember('registration', session, options.challenge);
    return options;
  }

  async function register(user: User, session: CeremonySession, response: unknown, name: string | undefined, ip: string | null) {
    ensureAvailable();
    const challenge = await takeChallenge('registration', session, response);
    if (challenge === null) throw invalidRequest('This passkey request has expired or was already used. Try again.');
    const { verifyRegistrationResponse, isoBase64URL } = await loadWebAuthn();
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: (received) => constantTimeEqual(received, challenge),
        expectedOrigin: origin,
        expectedRPID: rpID,
        requireUserVerification: true,
      });
    } catch (err) {
      // The library throws on anything malformed or wrong: the caller's mistake, never a 500.
      throw invalidRequest('The new passkey could not be verified. Try again.', err);
    }
    if (!verified.verified) throw invalidRequest('The new passkey could not be verified. Try again.');
    const info = verified.registrationInfo;
    const existing = await repo.listForUser(user.id);
    if (existing.length >= MAX_PASSKEYS) throw conflict(`An account holds at most ${MAX_PASSKEYS} passkeys; remove one first.`);
    const passkey = await repo.create({
      id: randomUUID(),
      userId: user.id,
      credentialId: info.credential.id,
      publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
      counter: info.credential.counter,
      transports: (info.credential.transports ?? []).slice(0, 10).map(String),
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      name: cleanName(name, `Passkey ${existing.length + 1}`),
    });
    if (!passkey) throw conflict('This passkey is already registered.');
    await record({
      type: 'passkey.added',
      actor: userActor(user),
      ip,
      subject: { type: 'user', id: user.id },
      details: { username: user.username, passkey_name: passkey.name, credential_id: passkey.credentialId },
    });
    return passkey;
  }

  async function authenticationOptions(session: CeremonySession) {
    ensureAvailable();
    const { generateAuthenticationOptions } = await loadWebAuthn();
    const options = await generateAuthenticationOptions({ rpID, userVerification: 'required', timeout: CHALLENGE_TTL_SECONDS * 1000 });
    await remember('authentication', session, options.challenge);
    return options;
  }

  /** Every check of an assertion; throws `Refusal` naming the first that failed. */
  async function verifyAssertion(session: CeremonySession, response: unknown): Promise<PasskeySignIn> {
    const challenge = await takeChallenge('authentication', session, response);
    if (challenge === null) throw new Refusal('no_challenge');
    const webAuthn = await loadWebAuthn();
    const { isoBase64URL, verifyAuthenticationResponse } = webAuthn;
    const credentialId = credentialIdOf(response, webAuthn);
    const passkey = credentialId === null ? null : await repo.findByCredentialId(credentialId);
    if (!passkey) throw new Refusal('unknown_credential');
    const user = await deps.users.findById(passkey.userId);
    if (!user) throw new Refusal('unknown_credential', passkey);
    const userHandle = (response as { response?: { userHandle?: unknown } }).response?.userHandle;
    if (typeof userHandle === 'string' && !constantTimeEqual(userHandle, isoBase64URL.fromUTF8String(user.id))) {
      throw new Refusal('other_user', passkey, user);
    }
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: response as AuthenticationResponseJSON,
        expectedChallenge: (received) => constantTimeEqual(received, challenge),
        expectedOrigin: origin,
        expectedRPID: rpID,
        // Counter 0 here: the library would compare counters before the
        // signature; ours is compared below, once the signature is known good.
        credential: { id: passkey.credentialId, publicKey: isoBase64URL.toBuffer(passkey.publicKey), counter: 0, transports: passkey.transports },
        requireUserVerification: true,
      });
    } catch (err) {
      throw new Refusal('invalid_assertion', passkey, user, err);
    }
    if (!verified.verified) throw new Refusal('invalid_assertion', passkey, user);
    const { newCounter, credentialDeviceType, credentialBackedUp } = verified.authenticationInfo;
    const movedForward = newCounter > passkey.counter || (newCounter === 0 && passkey.counter === 0);
    const stored = movedForward && (await repo.recordUse(passkey.id, { counter: newCounter, deviceType: credentialDeviceType, backedUp: credentialBackedUp, usedAt: new Date(now()) }));
    if (!stored) {
      await record({
        type: 'passkey.clone_detected',
        outcome: 'failure',
        actor: userActor(user),
        subject: { type: 'user', id: user.id },
        details: { username: user.username, passkey_name: passkey.name, credential_id: passkey.credentialId, stored_counter: passkey.counter, presented_counter: newCounter },
      });
      throw new Refusal('counter_went_back', passkey, user);
    }
    if (!isEnabled(user)) throw new Refusal('disabled', passkey, user);
    return { user, passkey: { ...passkey, counter: newCounter, deviceType: credentialDeviceType, backedUp: credentialBackedUp }, amr: [passkeyAmr(credentialDeviceType)] };
  }

  async function authenticate(session: CeremonySession, response: unknown, ip: string): Promise<PasskeySignIn> {
    ensureAvailable();
    const attempts = throttleKeys.passkey(ip);
    try {
      await throttle.reserve(attempts);
    } catch (err) {
      if (isOAuthError(err) && err.error === 'too_many_requests') {
        await record({ type: 'sign_in.throttled', outcome: 'failure', actor: ANONYMOUS_ACTOR, ip, details: { source: 'passkey' } });
      }
      throw err;
    }
    let result: PasskeySignIn;
    try {
      result = await verifyAssertion(session, response);
    } catch (err) {
      if (!(err instanceof Refusal)) {
        // Nothing was decided (a store is down): not a failure.
        await throttle.release(attempts).catch(() => {});
        throw err;
      }
      const actor: AuditActor = err.user ? userActor(err.user) : ANONYMOUS_ACTOR;
      await record({
        type: 'sign_in.failed',
        outcome: 'failure',
        actor,
        ip,
        subject: err.user ? { type: 'user', id: err.user.id } : null,
        details: { source: 'passkey', reason: err.reason, ...(err.passkey ? { passkey_name: err.passkey.name, credential_id: err.passkey.credentialId } : {}) },
      });
      throw accessDenied(NOT_VERIFIED);
    }
    await throttle.release(attempts);
    const { user, passkey } = result;
    await record({
      type: 'sign_in.succeeded',
      actor: userActor(user),
      ip,
      subject: { type: 'user', id: user.id },
      details: { source: 'passkey', passkey_name: passkey.name, credential_id: passkey.credentialId },
    });
    return result;
  }

  async function remove(user: User, id: string, ip: string | null): Promise<boolean> {
    const removed = await repo.delete(user.id, id);
    if (!removed) return false;
    await record({
      type: 'passkey.removed',
      actor: userActor(user),
      ip,
      subject: { type: 'user', id: user.id },
      details: { username: user.username, passkey_name: removed.name, credential_id: removed.credentialId },
    });
    return true;
  }

  return {
    available,
    list: (userId) => repo.listForUser(userId),
    registrationOptions,
    register,
    authenticationOptions,
    authenticate,
    remove,
  };
}
