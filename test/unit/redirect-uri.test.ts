import t from 'tap';
import { checkRedirectUri } from '../../src/clients/metadata.js';
import { ClientMetadataError } from '../../src/errors.js';
import { buildRedirect, formActionSource, matchClientRedirectUri, matchRedirectUri } from '../../src/oauth/redirect-uri.js';

const registered = ['https://app.example.com/cb', 'http://127.0.0.1:8080/callback?x=1'];

t.test('only an exact string match is accepted', async (t) => {
  t.equal(matchRedirectUri(registered, 'https://app.example.com/cb'), 'https://app.example.com/cb');
  t.equal(matchRedirectUri(registered, 'http://127.0.0.1:8080/callback?x=1'), 'http://127.0.0.1:8080/callback?x=1');
  for (const variant of [
    'https://app.example.com/cb/',
    'https://app.example.com/c',
    'https://app.example.com/cb/evil',
    'https://app.example.com/cb?x=1',
    'https://APP.example.com/cb',
    'https://app.example.com/CB',
    'https://app.example.com:443/cb',
    'https://app.example.com.evil.com/cb',
    'https://app.example.com/%63b',
    'http://app.example.com/cb',
    'http://127.0.0.1:8080/callback',
    'http://127.0.0.1:8081/callback?x=1',
    '',
  ]) {
    t.equal(matchRedirectUri(registered, variant), null, variant);
  }
});

t.test('an omitted redirect_uri is allowed only with exactly one registered', async (t) => {
  t.equal(matchRedirectUri(['https://a.example/cb'], undefined), 'https://a.example/cb');
  t.equal(matchRedirectUri(registered, undefined), null);
  t.equal(matchRedirectUri([], undefined), null);
});

t.test('response parameters keep the registered query and are encoded', async (t) => {
  t.equal(buildRedirect('https://a.example/cb', { code: 'abc', state: 'x y&z', iss: 'http://localhost:3000' }, 'query'),
    'https://a.example/cb?code=abc&state=x+y%26z&iss=http%3A%2F%2Flocalhost%3A3000');
  t.equal(buildRedirect('https://a.example/cb?app=1', { code: 'abc' }, 'query'), 'https://a.example/cb?app=1&code=abc');
  t.equal(buildRedirect('https://a.example/cb?', { code: 'abc' }, 'query'), 'https://a.example/cb?code=abc');
  t.equal(buildRedirect('https://a.example/cb', { code: 'abc', state: undefined }, 'query'), 'https://a.example/cb?code=abc', 'undefined values are left out');
  t.equal(buildRedirect('https://a.example/cb?q=1', { access_token: 't', state: 's' }, 'fragment'), 'https://a.example/cb?q=1#access_token=t&state=s');
});

t.test('form-action source of a redirect URI', async (t) => {
  t.equal(formActionSource('https://app.example.com:8443/cb?x=1'), 'https://app.example.com:8443');
  t.equal(formActionSource('http://127.0.0.1:9000/cb'), 'http://127.0.0.1:9000');
  t.equal(formActionSource('com.example.app:/oauth'), 'com.example.app:');
  t.equal(formActionSource('not a uri'), null);
});

t.test('RFC 8252 §7.3: a public client loopback IP redirect URI matches with any port, nothing else loosened', async (t) => {
  const loopback = ['http://127.0.0.1/callback', 'http://[::1]:8080/cb?x=1', 'http://localhost/cb', 'https://app.example.com/cb'];
  const any = { anyLoopbackPort: true };
  t.equal(matchRedirectUri(loopback, 'http://127.0.0.1:51234/callback', any), 'http://127.0.0.1:51234/callback', 'the sent URI, with its port, is used');
  t.equal(matchRedirectUri(loopback, 'http://127.0.0.1/callback', any), 'http://127.0.0.1/callback');
  t.equal(matchRedirectUri(loopback, 'http://[::1]:9/cb?x=1', any), 'http://[::1]:9/cb?x=1');
  t.equal(matchRedirectUri(loopback, 'http://[::1]/cb?x=1', any), 'http://[::1]/cb?x=1');
  for (const variant of [
    'http://127.0.0.1:51234/callback/',
    'http://127.0.0.1:51234/Callback',
    'http://127.0.0.1:51234/callback?x=1',
    'http://127.0.0.2:51234/callback',
    'http://[::1]:9/cb',
    'http://127.0.0.1:99999/callback',
    'http://127.0.0.1:51234@evil.example/callback',
    'https://127.0.0.1:51234/callback',
    'http://localhost:5000/cb',
    'https://app.example.com:8443/cb',
  ]) {
    t.equal(matchRedirectUri(loopback, variant, any), null, variant);
  }
  t.equal(matchRedirectUri(loopback, 'http://127.0.0.1:51234/callback'), null, 'not without the option (confidential clients)');
  // A scheme is case-insensitive (RFC 3986 §3.1): registered as written, matched with any port as written.
  t.equal(matchRedirectUri(['HTTP://127.0.0.1/cb'], 'HTTP://127.0.0.1:5000/cb', any), 'HTTP://127.0.0.1:5000/cb', 'an upper-case scheme, the same on both sides');
  t.equal(matchRedirectUri(['HTTP://127.0.0.1/cb'], 'http://127.0.0.1:5000/cb', any), null, 'but still as written: no case folding between them');
});

t.test('matchClientRedirectUri applies the loopback port rule to public clients only', async (t) => {
  const redirectUris = ['http://127.0.0.1/callback'];
  t.equal(matchClientRedirectUri({ redirectUris, tokenEndpointAuthMethod: 'none' }, 'http://127.0.0.1:4000/callback'), 'http://127.0.0.1:4000/callback');
  t.equal(matchClientRedirectUri({ redirectUris, tokenEndpointAuthMethod: 'client_secret_basic' }, 'http://127.0.0.1:4000/callback'), null);
  t.equal(matchClientRedirectUri({ redirectUris, tokenEndpointAuthMethod: 'client_secret_post' }, 'http://127.0.0.1/callback'), 'http://127.0.0.1/callback');
});

t.test('registration: a redirect URI is RFC 3986 syntax as written, not what the URL parser repairs it to', async (t) => {
  for (const uri of [
    'https://app.example.com/cb',
    'https://APP.example.com/cb',
    'https://app.example.com',
    'https://app.example.com:8443/cb?x=1&next=/a:b@c',
    'https://app.example.com/cb?',
    'https://app.example.com/a%20b',
    'http://127.0.0.1:8080/callback?x=1',
    'http://[::1]:8080/cb',
    'http://localhost/cb',
  ]) {
    t.doesNotThrow(() => checkRedirectUri(uri, false), uri);
  }
  t.doesNotThrow(() => checkRedirectUri('com.example.app:/oauth', true), 'RFC 8252 section 7.1 private-use scheme');
  t.doesNotThrow(() => checkRedirectUri('com.example.app://cb', true), 'private-use scheme with an authority');
  for (const [uri, why] of [
    ['https:///cb', /must name a host/],
    ['https://a.example\\@evil.com/cb', /character a URI may not/],
    ['https://user@a.example/cb', /credentials/],
    ['https://@a.example/cb', /credentials/],
    ['https://a.example/c b', /whitespace/],
    ['https://a.example/cb#frag', /fragment/],
    ['https:a.example/cb', /after "\/\/"/],
    ['https:/a.example/cb', /after "\/\/"/],
    ['https://:443/cb', /not an absolute URI/],
    ['https://%61.example/cb', /browsers rewrite \(to "a\.example"\)/],
    ['http://127.1/cb', /browsers rewrite \(to "127\.0\.0\.1"\)/],
    ['https://a.example/c%zzb', /character a URI may not/],
    ['https://a.example/café', /character a URI may not/],
    ['https://a.example/<cb>', /character a URI may not/],
    ['https://a.example/cb?q=[1]', /outside an IP literal/],
  ] as const) {
    t.throws(() => checkRedirectUri(uri, false), ClientMetadataError, uri);
    t.throws(() => checkRedirectUri(uri, false), { error: 'invalid_redirect_uri', message: why }, uri);
  }
  t.throws(() => checkRedirectUri('com.example.app://u@cb', true), { message: /credentials/ }, 'userinfo in a private-use URI too');
});
