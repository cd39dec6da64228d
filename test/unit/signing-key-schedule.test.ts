/**
 * Which key signs at a given instant (`signersAt`): a pure function of the
 * stored activation and retirement instants, so every instance that reads
 * the same rows at the same time chooses the same key.
 */
import t from 'tap';
import { signersAt } from '../../src/tokens/key-schedule.js';

const key = (kid: string, alg: string, activatesAtMs: number, retiresAtMs = Infinity) => ({ kid, alg, activatesAtMs, retiresAtMs });
/** Latest activation first, as the repository lists them. */
const ordered = <T extends { activatesAtMs: number }>(...keys: T[]) => [...keys].sort((a, b) => b.activatesAtMs - a.activatesAtMs);
const kids = (map: Map<string, { kid: string }>) => Object.fromEntries([...map].map(([alg, k]) => [alg, k.kid]));

t.test('a rotation: the old key up to the instant, the new one from it', async (t) => {
  const keys = ordered(key('old', 'ES256', 0, 1_000), key('new', 'ES256', 1_000), key('id', 'RS256', 0));
  t.same(kids(signersAt(keys, 999)), { ES256: 'old', RS256: 'id' });
  t.same(kids(signersAt(keys, 1_000)), { ES256: 'new', RS256: 'id' });
});

t.test('two rotations in one window: each key in turn', async (t) => {
  const keys = ordered(key('k1', 'ES256', 0, 1_000), key('k2', 'ES256', 1_000, 1_500), key('k3', 'ES256', 1_500));
  t.same([500, 1_000, 1_499, 1_500].map((at) => signersAt(keys, at).get('ES256')!.kid), ['k1', 'k2', 'k2', 'k3']);
});

t.test('the first key of an algorithm signs at once; retired keys never', async (t) => {
  const keys = ordered(key('es', 'ES256', 0), key('ps-later', 'PS256', 5_000), key('ps-first', 'PS256', 2_000), key('gone', 'EdDSA', 0, 10));
  const chosen = kids(signersAt(keys, 100));
  t.equal(chosen.PS256, 'ps-first', 'no PS256 key is active yet: the earliest pending one signs');
  t.notOk('EdDSA' in chosen, 'an algorithm whose only key is retired has no signer');
  t.equal(signersAt(keys, 5_000).get('PS256')!.kid, 'ps-later', 'then the later one from its instant');
});
