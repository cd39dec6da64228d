/**
 * `UPSTREAM_OIDC_*`: one upstream provider for "Sign in with …", all the
 * variables or none, the issuer https (http only on loopback), the id a slug.
 */
import t from 'tap';
import { loadConfig } from '../../src/config.js';

const FULL = {
  UPSTREAM_OIDC_ISSUER: 'https://login.example.com',
  UPSTREAM_OIDC_CLIENT_ID: 'auth-server',
  UPSTREAM_OIDC_CLIENT_SECRET: 'a secret',
  UPSTREAM_OIDC_NAME: 'Example Corp',
};

t.test('unset: no provider; all set: one, with the id upstream by default', async (t) => {
  t.equal(loadConfig({}).upstreamOidc, undefined);
  t.same(loadConfig(FULL).upstreamOidc, { id: 'upstream', issuer: 'https://login.example.com', clientId: 'auth-server', clientSecret: 'a secret', displayName: 'Example Corp' });
  t.equal(loadConfig({ ...FULL, UPSTREAM_OIDC_ID: 'corp' }).upstreamOidc?.id, 'corp');
});

t.test('all or nothing: a missing variable is named', async (t) => {
  for (const name of Object.keys(FULL)) {
    const env: Record<string, string> = { ...FULL };
    delete env[name];
    t.throws(() => loadConfig(env), { name: 'ConfigError', variable: name, message: /all or none/ }, name);
  }
  t.throws(() => loadConfig({ UPSTREAM_OIDC_ID: 'corp' }), { variable: 'UPSTREAM_OIDC_ID', message: /set all of them, or none/ });
});

t.test('the issuer is https, or http on a loopback host; the id is a slug', async (t) => {
  t.throws(() => loadConfig({ ...FULL, UPSTREAM_OIDC_ISSUER: 'http://login.example.com' }), { variable: 'UPSTREAM_OIDC_ISSUER', message: /must use https/ });
  t.throws(() => loadConfig({ ...FULL, UPSTREAM_OIDC_ISSUER: 'https://login.example.com?tenant=1' }), { variable: 'UPSTREAM_OIDC_ISSUER', message: /query or fragment/ });
  t.throws(() => loadConfig({ ...FULL, UPSTREAM_OIDC_ISSUER: 'login.example.com' }), { name: 'ConfigError', variable: 'UPSTREAM_OIDC_ISSUER' });
  t.equal(loadConfig({ ...FULL, UPSTREAM_OIDC_ISSUER: 'http://localhost:9000' }).upstreamOidc?.issuer, 'http://localhost:9000');
  t.throws(() => loadConfig({ ...FULL, UPSTREAM_OIDC_ID: 'Corp_1' }), { variable: 'UPSTREAM_OIDC_ID', message: /lowercase letters, digits and -/ });
});
