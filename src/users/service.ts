/**
 * Users: self-registration, admin management, sign-in (`sign-in.ts`) and
 * the admin bootstrap. Passwords are hashed with argon2id (`password.ts`)
 * and never returned or logged.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { userActor, type AuditRecorder, type ChangeContext } from '../audit/events.js';
import { ConfigError, type Config } from '../config.js';
import { conflict, invalidRequest, notFound, OAuthError } from '../errors.js';
import type { LoginFailureSource } from '../observability/metrics.js';
import { throttleKeys, type Throttle } from '../security/throttle.js';
import type { Page, User, UserPatch, UserRepo } from '../storage/types.js';
import { ADMIN_ROLE, hasPassword, isEnabled } from './account.js';
import { auditUserChanges } from './audit.js';
import { hashPassword, MAX_PASSWORD_LENGTH, needsRehash, NO_PASSWORD, verifyPassword } from './password.js';
import { PasswordPolicyError, type PasswordContext, type PasswordPolicy } from './password-policy.js';
import { createSignIn, type SignIn, type SignInAttempt } from './sign-in.js';
import { BOOTSTRAP_ADMIN_USERNAME } from './unseen-password.js';

export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$';
export const ROLE_PATTERN = '^[a-z][a-z0-9_:.-]{0,63}$';
export const MAX_ROLES = 32;
const USERNAME = new RegExp(USERNAME_PATTERN);
const ROLE = new RegExp(ROLE_PATTERN);
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,253}$/;

export interface NewUserInput {
  username: string;
  /** Null: no password (an account created at an upstream sign-in; `NO_PASSWORD`). */
  password: string | null;
  email?: string | null | undefined;
  /**
   * Whether `email` is known to be the user's already: an upstream
   * provider's `email_verified` (`identity-providers/accounts.ts`). Default
   * false: an address is verified by the mailed link.
   */
  emailVerified?: boolean | undefined;
  roles?: string[] | undefined;
}

export interface UserPatchInput {
  email?: string | null | undefined;
  password?: string | undefined;
  roles?: string[] | undefined;
  disabled?: boolean | undefined;
}

export interface UserServiceDeps {
  repo: UserRepo;
  /** The rule every new password must pass (built once at start: `createPasswordPolicy`). */
  passwordPolicy: PasswordPolicy;
  /** Failed-attempt counters shared by every instance (sign-in, self-registration). */
  throttle: Throttle;
  now?: () => number;
  metrics?: { loginFailed(source: LoginFailureSource): void };
  /** Waits out the sign-in slow-down (default: a timer; `sign-in.ts`). */
  sleep?: (ms: number) => Promise<void>;
  /** Told about every sign-in attempt and the throttle's decision (`sign-in.ts`). */
  onSignInAttempt?: (attempt: SignInAttempt) => void;
  /**
   * Called after a user's password changes, or the user is disabled or
   * deleted, so the token service can revoke what they hold.
   */
  onCredentialsChanged?: (userId: string) => Promise<void>;
  /** Where changes to users are recorded (`audit.ts`). */
  audit?: AuditRecorder;
}

/**
 * The outcome of `changeOwnPassword`: the user after the change; or the
 * current password was wrong; or, for an account without one, the sign-in
 * is too old to set the first.
 */
export type ChangePasswordResult = { ok: true; user: User } | { ok: false; reason: 'wrong_password' | 'sign_in_again' };

/** How recent a sign-in must be to give an account without a password its first one (the session is then the only proof). */
export const FIRST_PASSWORD_SIGN_IN_MAX_AGE_MS = 10 * 60_000;

/** At most this many accounts share an address for a password reset (the column is not unique). */
const MAX_ACCOUNTS_PER_EMAIL = 5;

export interface AdminBootstrap {
  user: User;
  /** Set only when this call created the admin with a random password. */
  generatedPassword: string | null;
  /**
   * True when an earlier start created this admin with a generated password
   * that has since been neither changed nor used to sign in, so perhaps
   * nobody has it (`unseen-password.ts`; set by `services.bootstrap`).
   */
  passwordMayBeUnseen?: boolean;
}

export interface UserService {
  /**
   * Creates a user; 400 `invalid_request` (a `PasswordPolicyError` for the
   * password) for bad input, 409 `conflict` when the username is taken
   * (case-insensitively). `context`: who asks and from where, for the audit
   * trail (none: the system).
   */
  create(input: NewUserInput, context?: ChangeContext): Promise<User>;
  /**
   * Throws `PasswordPolicyError` (400 `invalid_request`) when `password` may
   * not be set for an account with this username and email. `create` and
   * `update` apply it themselves; a form calls it to show every field's
   * problem at once.
   */
  checkNewPassword(password: string, context: PasswordContext): void;
  get(id: string): Promise<User>;
  findByUsername(username: string): Promise<User | null>;
  /** The enabled users with this email address (case-insensitive; a few at most). */
  findByEmail(email: string): Promise<User[]>;
  /**
   * A signed-in user changes their own password. The current one is checked
   * through `signIn` (throttled and counted like any guess: 429
   * `too_many_requests` past the limit), so this form is no way around the
   * login page's limits. Then the new one must pass the password rule
   * (`PasswordPolicyError`) and is set like any change of credentials: the
   * user's refresh tokens are revoked, every session signed in before now is
   * over, and `user.password_changed` is recorded with `context`. An account
   * without a password (made by an upstream sign-in) gets its first one
   * without `currentPassword` when the session signed in (`signedInAt`, epoch
   * ms) within `FIRST_PASSWORD_SIGN_IN_MAX_AGE_MS`.
   */
  changeOwnPassword(userId: string, currentPassword: string, newPassword: string, context: { ip: string; signedInAt: number | null }): Promise<ChangePasswordResult>;
  /** Users whose verified email is this address (case-insensitively); linking by email reads it. */
  findByVerifiedEmail(email: string): Promise<User[]>;
  list(page: Page): Promise<{ users: User[]; total: number }>;
  update(id: string, patch: UserPatchInput, context?: ChangeContext): Promise<User>;
  delete(id: string, context?: ChangeContext): Promise<void>;
  /**
   * Ends what the user is signed in with, as a change of credentials does:
   * every browser session (login pages and console) signed in before now,
   * and their refresh tokens. For a credential kept elsewhere: an admin's
   * reset of the second factor (`second-factor.ts`). 404 for an unknown user.
   */
  endSignIns(id: string): Promise<void>;
  /** The user when it exists and is enabled, else null (grants, tokens: `account.ts`). */
  findEnabled(id: string): Promise<User | null>;
  /**
   * The user a browser session is signed in as: enabled, and with no change
   * of credentials (a new password, the account disabled) since the session
   * signed in. Null when the session is signed out or over.
   */
  findSignedIn(session: { userId: string | null; signedInAt?: number | null | undefined }): Promise<User | null>;
  /**
   * Checks a password, throttled: every password check of the server goes
   * through here (`sign-in.ts`). Throws 429 `too_many_requests` when this
   * account and address have used up their attempts; slowed down (a capped
   * delay) when the account or the address has many failures. Costs one
   * argon2 verification whether or not the user exists.
   */
  signIn: SignIn;
  /**
   * Counts one self-registration attempt from `ip` (each costs a password
   * hash), atomically; throws 429 `too_many_requests` once the address has
   * used up `MAX_FAILED_ATTEMPTS` in the window.
   */
  countRegistrationAttempt(ip: string): Promise<void>;
  /**
   * Ensures an admin exists (SPEC: ADMIN_USERNAME / ADMIN_PASSWORD). Throws
   * `ConfigError` naming ADMIN_PASSWORD when that password breaks the
   * password rule, even for an admin who already has it: the server should
   * not start with a guessable admin password.
   */
  ensureAdmin(config: Pick<Config, 'adminUsername' | 'adminPassword'>): Promise<AdminBootstrap | null>;
}

function checkUsername(username: string): void {
  if (!USERNAME.test(username)) {
    throw invalidRequest('username must be 1 to 64 characters: letters, digits and . _ @ -, starting with a letter or digit');
  }
}

function checkEmail(email: string | null | undefined): string | null {
  if (email === undefined || email === null || email === '') return null;
  if (email.length > 254 || !EMAIL.test(email)) throw invalidRequest('email is not a valid address');
  return email;
}

function checkRoles(roles: string[] | undefined): string[] {
  const list = [...new Set(roles ?? [])];
  if (list.length > MAX_ROLES) throw invalidRequest(`at most ${MAX_ROLES} roles`);
  for (const role of list) {
    if (!ROLE.test(role)) throw invalidRequest(`role "${role}" is invalid: lowercase letters, digits and _ : . -, starting with a letter`);
  }
  return list.sort();
}

export function createUserService(deps: UserServiceDeps): UserService {
  const { repo, throttle, passwordPolicy } = deps;
  const now = deps.now ?? Date.now;
  const changed = deps.onCredentialsChanged ?? (async () => {});

  const get = async (id: string) => {
    const user = await repo.findById(id);
    if (!user) throw notFound(`no user "${id}"`);
    return user;
  };

  const create = async (input: NewUserInput) => {
    checkUsername(input.username);
    const email = checkEmail(input.email);
    if (input.password !== null) passwordPolicy.check(input.password, { username: input.username, email });
    const roles = checkRoles(input.roles);
    const passwordHash = input.password === null ? NO_PASSWORD : await hashPassword(input.password);
    const user = await repo.create({ id: randomUUID(), username: input.username, email, emailVerified: email !== null && input.emailVerified === true, roles, passwordHash });
    if (!user) throw conflict(`username "${input.username}" is taken`);
    return user;
  };

  /**
   * Refuses to delete, disable or demote the last enabled admin: nobody could
   * use the admin API or console afterwards. (Two admins removing each other
   * at the same instant can still both succeed; ADMIN_USERNAME/ADMIN_PASSWORD
   * or the next start's bootstrap admin is the way back.)
   */
  const keepAnAdmin = async (id: string) => {
    const user = await repo.findById(id);
    if (!user || user.disabled || !user.roles.includes(ADMIN_ROLE)) return;
    if (!(await repo.existsWithRole(ADMIN_ROLE, id))) {
      throw conflict('This is the last enabled admin: make another user an admin first.');
    }
  };

  const update = async (id: string, input: UserPatchInput) => {
    const patch: UserPatch = {};
    if (input.email !== undefined) patch.email = checkEmail(input.email);
    if (input.roles !== undefined) patch.roles = checkRoles(input.roles);
    if (input.disabled !== undefined) patch.disabled = input.disabled;
    if (patch.disabled === true || (patch.roles !== undefined && !patch.roles.includes(ADMIN_ROLE))) await keepAnAdmin(id);
    if (input.password !== undefined) {
      // Judged against the account's username and its email after this change.
      const current = await get(id);
      passwordPolicy.check(input.password, { username: current.username, email: patch.email !== undefined ? patch.email : current.email });
      patch.passwordHash = await hashPassword(input.password);
    }
    // Every browser session signed in before now is over (`findSignedIn`).
    if (patch.passwordHash !== undefined || patch.disabled === true) patch.credentialsChangedAt = new Date(now());
    const user = await repo.update(id, patch);
    if (!user) throw notFound(`no user "${id}"`);
    if (patch.passwordHash !== undefined || patch.disabled === true) await changed(id);
    return user;
  };

  const remove = async (id: string) => {
    await keepAnAdmin(id);
    await changed(id);
    if (!(await repo.delete(id))) throw notFound(`no user "${id}"`);
  };

  // Each change that succeeds is recorded in the audit trail, with its context.
  const audited = auditUserChanges({ create, update, delete: remove }, { repo, audit: deps.audit });

  const signIn = createSignIn({
    verifyCredentials,
    throttle,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.onSignInAttempt ? { onAttempt: deps.onSignInAttempt } : {}),
  });

  return {
    create: audited.create,
    checkNewPassword: (password, context) => passwordPolicy.check(password, context),
    get,
    findByUsername: (username) => repo.findByUsername(username),
    async findByEmail(email) {
      if (!EMAIL.test(email) || email.length > 254) return [];
      return (await repo.findByEmail(email, MAX_ACCOUNTS_PER_EMAIL)).filter(isEnabled);
    },
    async changeOwnPassword(userId, currentPassword, newPassword, { ip, signedInAt }) {
      const user = await get(userId);
      // An account made by an upstream provider's sign-in has no password to
      // confirm: a recent sign-in stands in for it, so a session left open
      // somewhere cannot quietly add a second way in.
      if (!hasPassword(user)) {
        if (signedInAt === null || now() - signedInAt > FIRST_PASSWORD_SIGN_IN_MAX_AGE_MS) return { ok: false, reason: 'sign_in_again' };
        return { ok: true, user: await audited.update(user.id, { password: newPassword }, { actor: userActor(user), ip }) };
      }
      const checked = await signIn(user.username, currentPassword, { ip, source: 'account_page' });
      if (!checked.ok || checked.user.id !== user.id) return { ok: false, reason: 'wrong_password' };
      const updated = await audited.update(user.id, { password: newPassword }, { actor: userActor(user), ip });
      return { ok: true, user: updated };
    },
    findByVerifiedEmail: (email) => repo.findByVerifiedEmail(email),
    async list(page) {
      const [users, total] = await Promise.all([repo.list(page), repo.count()]);
      return { users, total };
    },
    update: audited.update,
    delete: audited.delete,
    async endSignIns(id) {
      // Every browser session signed in before now is over (`findSignedIn`).
      if (!(await repo.update(id, { credentialsChangedAt: new Date(now()) }))) throw notFound(`no user "${id}"`);
      await changed(id);
    },
    async findEnabled(id) {
      const user = await repo.findById(id);
      return isEnabled(user) ? user : null;
    },
    async findSignedIn(session) {
      if (session.userId === null) return null;
      const user = await repo.findById(session.userId);
      if (!isEnabled(user)) return null;
      const changed = user.credentialsChangedAt?.getTime();
      return changed === undefined || (session.signedInAt ?? 0) >= changed ? user : null;
    },
    signIn,
    async countRegistrationAttempt(ip) {
      // Reserved before anything else (and never given back), so even
      // malformed attempts use up the allowance, and a burst cannot overrun it.
      await throttle.reserve(throttleKeys.registration(ip));
    },
    async ensureAdmin(config) {
      if (config.adminUsername !== undefined && config.adminPassword !== undefined) {
        try {
          passwordPolicy.check(config.adminPassword, { username: config.adminUsername });
        } catch (err) {
          if (err instanceof PasswordPolicyError) throw new ConfigError('ADMIN_PASSWORD', `refused for ADMIN_USERNAME "${config.adminUsername}". ${err.description}`);
          throw err;
        }
        const existing = await repo.findByUsername(config.adminUsername);
        if (!existing) return { user: await createRacing(config.adminUsername, config.adminPassword), generatedPassword: null };
        const patch: UserPatchInput = {};
        if (!existing.roles.includes(ADMIN_ROLE)) patch.roles = [...existing.roles, ADMIN_ROLE];
        if (existing.disabled) patch.disabled = false;
        if (!(await verifyPassword(existing.passwordHash, config.adminPassword))) patch.password = config.adminPassword;
        const user = Object.keys(patch).length > 0 ? await audited.update(existing.id, patch) : existing;
        return { user, generatedPassword: null };
      }
      if (await repo.existsWithRole(ADMIN_ROLE)) return null;
      const password = randomBytes(18).toString('base64url');
      const taken = await repo.findByUsername(BOOTSTRAP_ADMIN_USERNAME);
      const username = taken ? `${BOOTSTRAP_ADMIN_USERNAME}-${randomBytes(3).toString('hex')}` : BOOTSTRAP_ADMIN_USERNAME;
      try {
        return { user: await audited.create({ username, password, roles: [ADMIN_ROLE] }), generatedPassword: password };
      } catch (err) {
        // Another instance starting at the same moment created it first.
        if (err instanceof OAuthError && err.error === 'conflict') return null;
        throw err;
      }
    },
  };

  async function verifyCredentials(username: string, password: string): Promise<User | null> {
    // Malformed input is simply "wrong credentials", at the same cost.
    const user = USERNAME.test(username) && password.length <= MAX_PASSWORD_LENGTH ? await repo.findByUsername(username) : null;
    const ok = await verifyPassword(user?.passwordHash ?? null, password.slice(0, MAX_PASSWORD_LENGTH));
    if (!user || !ok) return null;
    if (!user.disabled && needsRehash(user.passwordHash)) {
      await repo.update(user.id, { passwordHash: await hashPassword(password) }).catch(() => {});
    }
    return user;
  }

  async function createRacing(username: string, password: string): Promise<User> {
    try {
      return await audited.create({ username, password, roles: [ADMIN_ROLE] });
    } catch (err) {
      const existing = err instanceof OAuthError && err.error === 'conflict' ? await repo.findByUsername(username) : null;
      if (existing) return existing;
      throw err;
    }
  }
}
