/**
 * The password rule (`users/password-policy.ts`, NIST SP 800-63B §3.1.1.2):
 * length in code points, common and guessable passwords refused with a reason,
 * the account's own username and email count as guessable, no composition
 * rules, and the refusal never repeats the password.
 */
import t from 'tap';
import { OAuthError } from '../../src/errors.js';
import { createPasswordPolicy, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, PASSWORD_RULE, PasswordPolicyError } from '../../src/users/password-policy.js';

const policy = createPasswordPolicy();

/** The error `check` throws, or null when the password passes. */
function refusal(password: string, context?: { username?: string; email?: string | null }): PasswordPolicyError | null {
  try {
    policy.check(password, context);
    return null;
  } catch (err) {
    if (err instanceof PasswordPolicyError) return err;
    throw err;
  }
}

/** `count` code points that follow no pattern (a fixed pseudo-random walk through CJK ideographs). */
function unpatterned(count: number): string {
  let seed = 12345;
  let out = '';
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out += String.fromCodePoint(0x4e00 + (seed % 20_000));
  }
  return out;
}

t.test('common, breached-style and trivially guessable passwords are refused, saying why', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['password', /common password/],
    ['12345678', /common password/],
    ['iloveyou', /common password/],
    ['P@ssw0rd!', /common password/],
    ['passw0rd2024', /common password/],
    ['Summer2024!', /common password/],
    ['1qaz2wsx3edc', /common password/],
    ['        ', /repeats/],
    ['aaaaaaaaaa', /repeats/],
    ['19871987', /repeats/],
    ['abcdefghij', /sequence/],
    ['qwertyuiop[]', /keyboard pattern/],
  ];
  for (const [password, why] of cases) {
    const err = refusal(password);
    t.ok(err, `${JSON.stringify(password)} is refused`);
    t.match(err?.problem, /too easy to guess/, `${JSON.stringify(password)}: what is wrong`);
    t.match(err?.problem, why, `${JSON.stringify(password)}: why`);
  }
});

t.test('a password made of the username or email is refused; the same password is fine for someone else', async (t) => {
  const cases: Array<[string, { username: string; email?: string }]> = [
    ['frederick2024!', { username: 'frederick' }],
    ['Frederick!!', { username: 'frederick' }],
    ['frederickfrederick', { username: 'frederick' }],
    ['frederick-frederick', { username: 'frederick' }],
    ['Frederick2024!!', { username: 'frederick' }],
    ['frederick password', { username: 'frederick' }],
    ['daveadminapi', { username: 'dave-admin-api' }],
    ['fred.smith@example.com', { username: 'x1', email: 'fred.smith@example.com' }],
    ['quintessa.vale', { username: 'x1', email: 'quintessa.vale@example.com' }],
    ['quintessavale', { username: 'x1', email: 'quintessa.vale@example.com' }],
  ];
  for (const [password, context] of cases) {
    t.match(refusal(password, context)?.problem, /username or email|repeats/, `${password} for ${JSON.stringify(context)}`);
  }
  t.match(refusal('frederick2024!', { username: 'frederick' })?.problem, /made from your username or email/);
  for (const password of ['frederick2024!', 'frederick-frederick', 'Frederick2024!!', 'frederick password']) {
    t.equal(refusal(password, { username: 'margot' }), null, `${password} is not too weak in itself`);
  }
  t.match(refusal('quintessa.vale', { username: 'x1', email: 'quintessa.vale@example.com' })?.problem, /made from your username or email/);
  t.equal(refusal('quintessa.vale', { username: 'margot', email: 'margot@example.com' }), null, 'nor quintessa.vale');
});

t.test('length is counted in code points: at least 8, at most 1024', async (t) => {
  t.equal(MIN_PASSWORD_LENGTH, 8);
  t.equal(MAX_PASSWORD_LENGTH, 1024);
  const sevenAstral = '𝒜𝒷𝒸𝒹𝑒𝒻𝑔';
  t.equal(sevenAstral.length, 14, 'fourteen UTF-16 units');
  t.match(refusal(sevenAstral)?.problem, /too short \(7 of at least 8 characters\)/);
  t.equal(refusal('𝒜𝒷𝒸𝒹𝑒𝒻𝑔𝒽'), null, 'eight code points that follow no pattern');
  t.match(refusal('k9#mQ2v')?.problem, /too short/);

  t.equal(refusal(unpatterned(MAX_PASSWORD_LENGTH)), null, '1024 code points');
  const astral = Array.from({ length: MAX_PASSWORD_LENGTH }, (_, i) => String.fromCodePoint(0x1d400 + ((i * 7919) % 1000))).join('');
  t.equal(astral.length, 2 * MAX_PASSWORD_LENGTH);
  t.equal(refusal(astral), null, '1024 astral code points (2048 UTF-16 units) are 1024 characters');
  t.match(refusal(unpatterned(MAX_PASSWORD_LENGTH + 1))?.problem, /too long \(more than 1024 characters\)/);
});

t.test('no composition rules: any 8 characters that follow no pattern, and passphrases, pass', async (t) => {
  for (const password of ['k9#mQ2vL', 'zqkwvmfj', 'correct horse battery staple', 'json password 1', 'new password 12', 'Ünïcödé pässwörd']) {
    t.equal(refusal(password, { username: 'alice', email: 'alice@example.com' }), null, JSON.stringify(password));
  }
});

t.test('a refusal is invalid_request: what is wrong, then the rule, never the password', async (t) => {
  const password = 'zaq12wsxcde3';
  const err = refusal(password, { username: 'alice' });
  t.ok(err instanceof OAuthError);
  t.equal(err?.error, 'invalid_request');
  t.equal(err?.status, 400);
  t.equal(err?.description, `${err?.problem} ${PASSWORD_RULE}`);
  t.match(PASSWORD_RULE, /At least 8 characters/);
  for (const weak of [password, 'margaret1987', 'frederick2024!']) {
    const e = refusal(weak, { username: 'frederick' });
    t.ok(e, `${weak} is refused`);
    t.notOk(e?.description.includes(weak), `${weak} is not in the message`);
    t.notOk(e?.message.includes(weak), `${weak} is not in the error's message`);
  }
});
