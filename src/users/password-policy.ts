/**
 * The password rule (SPEC "Accounts and brute force"; NIST SP 800-63B
 * §3.1.1.2), applied wherever a password is set: self-registration, the
 * admin API, the CLI and the `ADMIN_PASSWORD` bootstrap (all through the user
 * service). Passwords typed to sign in are never judged, only verified.
 *
 * - Length in Unicode code points, not UTF-16 units: 8 at least, and up to
 *   MAX_PASSWORD_LENGTH (NIST asks for at least 64).
 * - No composition rules (no "one digit, one symbol"); spaces and any
 *   Unicode are fine.
 * - Refused when guessable: common and breached-style passwords, keyboard
 *   walks, repeats and sequences, dates, and anything built from the user's
 *   own username or email. The judge is zxcvbn-ts with the common-password
 *   dictionary of @zxcvbn-ts/language-common; the password must need at least
 *   10^8 guesses (MIN_GUESSES_LOG10; see there for why).
 *
 * Measured on a busy 2-core machine: importing zxcvbn-ts and the dictionaries
 * takes about 90 ms (and some 15 MB of memory) and turning them into lookup
 * tables 35 to 95 ms more, once. That happens at the first check, not at
 * start: a server that sets no password after it started (no sign-up, no
 * ADMIN_PASSWORD to check) never pays it. The first check is the full check;
 * it only takes that much longer, once. A check then costs about 1 ms for an
 * ordinary password and 5 to 8 ms at worst, however long the password
 * (ESTIMATED_LENGTH, l33tMaxSubstitutions). It is synchronous, on the event
 * loop, so it must stay that cheap.
 * Neither the password nor anything derived from it ever appears in an error
 * message.
 */
import { createRequire } from 'node:module';
import type * as ZxcvbnCore from '@zxcvbn-ts/core';
import type { MatchExtended, ZxcvbnResult } from '@zxcvbn-ts/core';
import type * as ZxcvbnCommon from '@zxcvbn-ts/language-common';
import { OAuthError } from '../errors.js';
import { MAX_PASSWORD_LENGTH } from './password.js';

export { MAX_PASSWORD_LENGTH };
export const MIN_PASSWORD_LENGTH = 8;

/**
 * The least number of guesses (log10) an attacker with zxcvbn's model must
 * need: 10^8, the top of zxcvbn's score 2. Score 3 starts just above 10^8,
 * which every 8-character password misses (8 random characters are estimated
 * at exactly 10^8), so "at least 8 characters" would be a lie on the form.
 * Score 2 starts at 10^6 and lets through "Summer2024!" or the username plus
 * a year. 10^8 refuses those and accepts any 8 characters that follow no
 * pattern. Online guessing is throttled (MAX_FAILED_ATTEMPTS per window), and
 * stored hashes are argon2id, so 10^8 guesses is far out of reach online and
 * slow offline.
 */
export const MIN_GUESSES_LOG10 = 8;

/**
 * Only this many leading characters are estimated: the estimate's cost grows
 * faster than the length (zxcvbn's own default, 256, costs up to 90 ms on one
 * core), and a 64-character prefix that is hard to guess makes the whole
 * password hard to guess.
 */
const ESTIMATED_LENGTH = 64;

/** The rule in one sentence, as the form shows it and every refusal repeats it. */
export const PASSWORD_RULE =
  `At least ${MIN_PASSWORD_LENGTH} characters, and not easy to guess: not a common password, ` +
  'a keyboard pattern like qwerty, a repeat or sequence like aaaa or 1234, a date, or your username or email. ' +
  'Spaces and any characters are allowed; a few unrelated words make a good password.';

/** What the password is checked against besides the dictionaries. */
export interface PasswordContext {
  username?: string | null | undefined;
  email?: string | null | undefined;
}

/** A password was refused: `invalid_request`, with what is wrong (`problem`) and the rule. */
export class PasswordPolicyError extends OAuthError {
  constructor(readonly problem: string) {
    super('invalid_request', `${problem} ${PASSWORD_RULE}`);
    this.name = 'PasswordPolicyError';
  }
}

export interface PasswordPolicy {
  /**
   * Throws `PasswordPolicyError` when `password` breaks the rule; `context`
   * (the account's username and email) counts as guessable.
   */
  check(password: string, context?: PasswordContext): void;
}

// zxcvbn-ts ships CommonJS: required synchronously, so `check` stays synchronous for its callers.
const require = createRequire(import.meta.url);

/** zxcvbn-ts with its dictionaries, as the rule uses it. */
function buildZxcvbn(): ZxcvbnCore.ZxcvbnFactory {
  const { ZxcvbnFactory } = require('@zxcvbn-ts/core') as typeof ZxcvbnCore;
  const { adjacencyGraphs, dictionary } = require('@zxcvbn-ts/language-common') as typeof ZxcvbnCommon;
  return new ZxcvbnFactory({
    dictionary,
    graphs: adjacencyGraphs,
    maxLength: ESTIMATED_LENGTH,
    // The l33t matcher tries every combination of substitutions: capped (from
    // 100) it costs a quarter as much on symbol-heavy passwords, and a
    // password needing more than 16 substitutions is not a disguised word.
    l33tMaxSubstitutions: 16,
    // Off: it multiplies the cost of a check by 20 to 50 (blocking the event
    // loop), and the l33t, reverse and common-suffix matching already catch
    // the near-misses that matter (P@ssw0rd!, password1).
    useLevenshteinDistance: false,
  });
}

let built: ZxcvbnCore.ZxcvbnFactory | undefined;

/**
 * Prepares the dictionaries now rather than at the first check: for a start
 * that will check a password (ADMIN_PASSWORD), while the database opens and
 * the main thread would wait anyway.
 */
export function preparePasswordRule(): void {
  built ??= buildZxcvbn();
}

/** Builds the policy (the dictionaries are prepared at the first check, or by `preparePasswordRule`, once per process). */
export function createPasswordPolicy(): PasswordPolicy {
  return {
    check(password, context = {}) {
      const length = codePoints(password);
      if (length < MIN_PASSWORD_LENGTH) throw new PasswordPolicyError(`This password is too short (${length} of at least ${MIN_PASSWORD_LENGTH} characters).`);
      if (length > MAX_PASSWORD_LENGTH) throw new PasswordPolicyError(`This password is too long (more than ${MAX_PASSWORD_LENGTH} characters).`);
      const zxcvbn = (built ??= buildZxcvbn());
      const inputs = userInputs(context);
      const result = zxcvbn.check(password, inputs);
      if (result.guessesLog10 < MIN_GUESSES_LOG10) throw new PasswordPolicyError(`This password is too easy to guess: ${weakness(result)}.`);
      // zxcvbn charges a fixed price for each extra piece, so "alice-alice" or
      // "Alice2024!!" reach 10^8 for the user alice. What is left once the
      // username and email are taken out must be hard to guess on its own.
      const rest = withoutUserInputs(password, inputs);
      if (rest !== password && zxcvbn.check(rest).guessesLog10 < MIN_GUESSES_LOG10) {
        throw new PasswordPolicyError(`This password is too easy to guess: ${WEAKNESS.userInputs}.`);
      }
    },
  };
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/**
 * The username and email, whole, without their separators and in parts
 * (alice.smith@example.com → alicesmithexamplecom, alice.smith, alice, smith,
 * example), so neither they nor a reshuffle of their words pass.
 */
function userInputs(context: PasswordContext): string[] {
  const SEPARATORS = /[@._+-]/;
  const whole = [context.username, context.email].filter((s): s is string => typeof s === 'string' && s !== '');
  const local = context.email?.split('@')[0];
  const joined = whole.map((s) => s.split(SEPARATORS).join(''));
  const parts = whole.flatMap((s) => s.split(SEPARATORS)).filter((s) => s.length >= 3);
  return [...new Set([...whole, ...(local ? [local] : []), ...joined, ...parts].map((s) => s.toLowerCase()))];
}

/** `password` with every occurrence of the user inputs (3 characters or more, longest first) removed, ignoring case. */
function withoutUserInputs(password: string, inputs: string[]): string {
  let rest = password;
  for (const input of inputs.filter((s) => s.length >= 3).sort((a, b) => b.length - a.length)) {
    rest = rest.replace(new RegExp(input.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'giu'), '');
  }
  return rest;
}

const COMMON = 'it is a common password, or close to one';
const WEAKNESS: Record<string, string> = {
  topTen: COMMON,
  topHundred: COMMON,
  common: COMMON,
  similarToCommon: COMMON,
  pwned: COMMON,
  wordByItself: COMMON,
  userInputs: 'it is made from your username or email',
  straightRow: 'it is a keyboard pattern',
  keyPattern: 'it is a keyboard pattern',
  simpleRepeat: 'it repeats characters or words',
  extendedRepeat: 'it repeats characters or words',
  sequences: 'it is a simple sequence',
  recentYears: 'it is mostly a date or year',
  dates: 'it is mostly a date or year',
};

/** Why zxcvbn finds it guessable, in words (its feedback keys, mapped; never the password itself). */
function weakness(result: ZxcvbnResult): string {
  const fromUser = result.sequence.some((m: MatchExtended) => m.pattern === 'dictionary' && m.dictionaryName === 'userInputs');
  if (fromUser) return WEAKNESS.userInputs!;
  return (result.feedback.warning && WEAKNESS[result.feedback.warning]) || 'it is short and follows a common pattern';
}
