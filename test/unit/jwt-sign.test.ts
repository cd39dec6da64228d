/**
 * `signJwt` on the keys `keys.ts` generates and imports, for every algorithm
 * a key can have: the token verifies with the public key as published in the
 * JWKS, header and payload come back as given (non-ASCII included), a token
 * signed by another key of the same algorithm is refused, and signatures have
 * the length of their algorithm (ES256: the 64-byte R || S form, RFC 7518 §3.4).
 */
import { compactVerify, importJWK, type CryptoKey, type JWK } from 'jose';
import t from 'tap';
import { signJwt } from '../../src/tokens/jwt.js';
import { generateSigningKey } from '../../src/tokens/keys.js';

const ALGS = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const;
const SIGNATURE_BYTES: Record<string, number> = { ES256: 64, RS256: 256, PS256: 256, EdDSA: 64 };

async function keyPair(alg: string) {
  const generated = await generateSigningKey(alg);
  // As keys.ts imports them: the private JWK for signing, the public one for verification.
  const privateKey = (await importJWK({ ...generated.privateJwk, alg } as JWK, alg)) as CryptoKey;
  const publicKey = (await importJWK(generated.publicJwk, alg)) as CryptoKey;
  return { kid: generated.kid, privateKey, publicKey };
}

const payload = { iss: 'https://issuer.example', sub: 'user-1', aud: 'https://issuer.example/api', scope: 'api:read', name: 'Zoë ✓', iat: 1_700_000_000, exp: 1_700_000_900, jti: 'abc' };

for (const alg of ALGS) {
  t.test(`${alg}: verifies with the published key, and only with it`, async (t) => {
    const { kid, privateKey, publicKey } = await keyPair(alg);
    const header = { alg, typ: 'at+jwt', kid };
    const token = await signJwt(payload, privateKey, header);

    const verified = await compactVerify(token, publicKey, { algorithms: [alg] });
    t.same(verified.protectedHeader, header, 'protected header');
    t.same(JSON.parse(new TextDecoder().decode(verified.payload)), payload, 'payload, non-ASCII included');

    t.equal(Buffer.from(token.split('.')[2]!, 'base64url').length, SIGNATURE_BYTES[alg], 'signature length of the algorithm');

    const other = await keyPair(alg);
    await t.rejects(compactVerify(token, other.publicKey, { algorithms: [alg] }), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' }, 'another key does not verify it');

    const again = await signJwt({ ...payload, jti: 'def' }, privateKey, header);
    t.not(again, token, 'a second token from the same key and header differs');
    await compactVerify(again, publicKey, { algorithms: [alg] });
  });
}
