import t from 'tap';
import { isCodeVerifier, isS256Challenge, s256Challenge, verifyS256 } from '../../src/oauth/pkce.js';

t.test('S256 challenge matches the RFC 7636 appendix B example', async (t) => {
  // RFC 7636 Appendix B.
  const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  t.equal(s256Challenge(verifier), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  t.ok(verifyS256(verifier, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'));
});

t.test('a wrong verifier does not match', async (t) => {
  const challenge = s256Challenge('a'.repeat(43));
  t.notOk(verifyS256('b'.repeat(43), challenge));
  t.notOk(verifyS256(`${'a'.repeat(43)}x`, challenge));
});

t.test('plain (the verifier itself as challenge) never matches', async (t) => {
  // A client that sends the verifier as its own challenge ("plain") must not pass.
  const verifier = 'x'.repeat(43);
  t.notOk(verifyS256(verifier, verifier));
});

t.test('verifier syntax per RFC 7636 §4.1', async (t) => {
  t.ok(isCodeVerifier('A'.repeat(43)));
  t.ok(isCodeVerifier('a-._~'.repeat(20).slice(0, 128)));
  t.notOk(isCodeVerifier('A'.repeat(42)), 'too short');
  t.notOk(isCodeVerifier('A'.repeat(129)), 'too long');
  t.notOk(isCodeVerifier(`${'A'.repeat(42)}+`), 'outside the unreserved set');
  t.notOk(isCodeVerifier(undefined));
  t.notOk(verifyS256(`${'A'.repeat(42)}+`, s256Challenge(`${'A'.repeat(42)}+`)), 'malformed verifier never matches, even with its own digest');
});

t.test('challenge syntax: exactly 43 base64url characters', async (t) => {
  t.ok(isS256Challenge(s256Challenge('z'.repeat(50))));
  t.notOk(isS256Challenge('A'.repeat(44)));
  t.notOk(isS256Challenge(`${'A'.repeat(42)}=`));
  t.notOk(isS256Challenge(`${'A'.repeat(42)}/`));
  t.notOk(verifyS256('A'.repeat(43), 'short'));
});
