/**
 * The Authorization header parsers (`security/authorization-header.ts`):
 * what each accepts, and that no header makes them backtrack. A header that
 * ran into quadratic backtracking stalled the whole event loop (16,000
 * spaces before a tab: 0.4 s per request); the million-space inputs below
 * would take that parser tens of minutes, far past the test's timeout,
 * and take a linear one a millisecond.
 */
import t from 'tap';
import { parseAccessTokenHeader, parseBasic, parseBearer } from '../../src/security/authorization-header.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

t.test('Basic: the scheme in any case, one token between spaces, else another scheme or malformed', async (t) => {
  t.same(parseBasic(`Basic ${b64('a:b')}`), { user: 'a', password: 'b' });
  t.same(parseBasic(`basic   ${b64('a:b')}  `), { user: 'a', password: 'b' }, 'spaces around the token');
  t.equal(parseBasic('Basic'), 'malformed', 'no token');
  t.equal(parseBasic('Basic    '), 'malformed', 'only spaces');
  t.equal(parseBasic(`Basic ${b64('a:b')} extra`), null, 'two tokens: not Basic as RFC 7617 writes it');
  t.equal(parseBasic(`Basic\t${b64('a:b')}`), null, 'a tab is no separator');
  t.equal(parseBasic('Basicx'), null);
  t.equal(parseBasic('Bearer abc'), null);
});

t.test('no header makes a parser backtrack: long runs of spaces before a character that fails the match', async (t) => {
  const spaces = ' '.repeat(1_000_000);
  t.equal(parseBasic(`Basic${spaces}\tx`), null);
  t.equal(parseBasic(`Basic ${'A'.repeat(1_000_000)}${spaces}\tx`), null);
  t.equal(parseBearer(`Bearer${spaces}\tx`), 'malformed');
  t.equal(parseBearer(`Bearer abc${spaces}\tx`), 'malformed');
  t.equal(parseAccessTokenHeader(`DPoP${spaces}\tx`), 'malformed');
});
