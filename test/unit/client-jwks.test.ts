/**
 * What a private_key_jwt client's JWK Set may hold (`clients/jwks.ts`): the
 * registered set is held to every rule; a set fetched from a jwks_uri skips
 * keys this server does not use but is refused whole for a private key.
 */
import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { checkJwksUri, parseClientJwks, parseFetchedJwks } from '../../src/clients/jwks.js';
import { errorCode } from '../helpers/errors.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecPublic = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec', alg: 'ES256' };
const ecPrivate = { ...ec.privateKey.export({ format: 'jwk' }), kid: 'ec' };
const smallRsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });

t.test('a registered set: public asymmetric signing keys only, each importable', async (t) => {
  t.same(parseClientJwks({ keys: [ecPublic] }).keys, [ecPublic]);
  t.equal(errorCode(() => parseClientJwks({ keys: [ecPrivate] })), 'invalid_client_metadata', 'a private key');
  t.equal(errorCode(() => parseClientJwks({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] })), 'invalid_client_metadata', 'a symmetric key');
  t.equal(errorCode(() => parseClientJwks({ keys: [smallRsa] })), 'invalid_client_metadata', 'RSA under 2048 bits');
  t.equal(errorCode(() => parseClientJwks({ keys: [{ ...ecPublic, use: 'enc' }] })), 'invalid_client_metadata', 'an encryption key');
  t.equal(errorCode(() => parseClientJwks({ keys: [{ ...ecPublic, alg: 'none' }] })), 'invalid_client_metadata', 'alg none');
  t.equal(errorCode(() => parseClientJwks({ keys: [] })), 'invalid_client_metadata', 'no keys');
  t.equal(errorCode(() => parseClientJwks([ecPublic])), 'invalid_client_metadata', 'not a JWK Set');
  t.equal(errorCode(() => parseClientJwks({ keys: Array.from({ length: 11 }, () => ecPublic) })), 'invalid_client_metadata', 'too many keys');
});

t.test('a jwks_uri: https, no credentials, no fragment', async (t) => {
  t.equal(checkJwksUri('https://keys.example/jwks.json'), 'https://keys.example/jwks.json');
  for (const bad of ['http://keys.example/jwks.json', 'https://u:p@keys.example/jwks.json', 'https://keys.example/jwks.json#x', 'jwks.json']) {
    t.equal(errorCode(() => checkJwksUri(bad)), 'invalid_client_metadata', bad);
  }
});

t.test('a fetched set: unusable keys are skipped, a private key refuses it whole', async (t) => {
  t.same(parseFetchedJwks(JSON.stringify({ keys: [{ ...ecPublic, use: 'enc', kid: 'enc' }, smallRsa, ecPublic] })).keys, [ecPublic]);
  t.throws(() => parseFetchedJwks(JSON.stringify({ keys: [ecPublic, ecPrivate] })), /private or symmetric/);
  t.throws(() => parseFetchedJwks(JSON.stringify({ keys: [{ ...ecPublic, use: 'enc' }] })), /no usable signing key/);
  t.throws(() => parseFetchedJwks('<html>'), /not JSON/);
});
