/**
 * GET/POST /authorize over HTTP: which errors are shown and which are sent
 * back to the client, what the redirect carries, and the headers and
 * escaping of the pages.
 */
import t from 'tap';
import { buildTestApp, seedClient } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, pkcePair, responseParams } from '../helpers/browser-flow.js';

const REDIRECT = 'http://127.0.0.1:7001/cb';
const OTHER = 'https://app.example.com/callback';

t.test(`authorization endpoint (${backendName})`, async (t) => {
  const { app, services, config } = await buildTestApp(t);
  const client = await seedClient(services, {
    client_name: '<script>alert(1)</script> & Co',
    redirect_uris: [REDIRECT, OTHER],
    grant_types: ['authorization_code', 'implicit', 'refresh_token'],
    scope: 'openid profile api:read',
  });
  const codeOnly = await seedClient(services, { redirect_uris: [REDIRECT], scope: 'profile' });
  const pkce = pkcePair();
  const valid = {
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: REDIRECT,
    scope: 'openid profile',
    state: 'state-123',
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
  };
  const get = (params: Record<string, string | undefined>) => app.inject({ method: 'GET', url: authorizePath(params) });

  t.test('an unknown client gets the error page, never a redirect', async (t) => {
    const res = await get({ ...valid, client_id: 'no-such-client', redirect_uri: 'https://evil.example/cb' });
    t.equal(res.statusCode, 400);
    t.match(res.headers['content-type'], /^text\/html/);
    t.equal(res.headers.location, undefined);
    t.notMatch(res.body, /evil\.example/, 'the unverified URI is not even shown');
    const missing = await get({ ...valid, client_id: undefined });
    t.equal(missing.statusCode, 400);
    t.equal(missing.headers.location, undefined);
  });

  t.test('a redirect_uri that is not exactly registered gets the error page, never a redirect', async (t) => {
    for (const uri of [
      `${REDIRECT}/`,
      `${REDIRECT}x`,
      REDIRECT.slice(0, -1),
      `${REDIRECT}?next=https://evil.example`,
      REDIRECT.replace('cb', 'CB'),
      'HTTP://127.0.0.1:7001/cb',
      'http://127.0.0.1:7002/cb',
      `${OTHER}/`,
      'https://evil.example/cb',
    ]) {
      const res = await get({ ...valid, redirect_uri: uri });
      t.equal(res.statusCode, 400, uri);
      t.equal(res.headers.location, undefined, `${uri}: no redirect`);
      t.match(res.headers['content-type'], /^text\/html/);
    }
    const twoRegistered = await get({ ...valid, redirect_uri: undefined, scope: 'profile' });
    t.equal(twoRegistered.statusCode, 400, 'omitted while two are registered');
    t.equal(twoRegistered.headers.location, undefined);
  });

  t.test('later errors go back to the client with error, error_description, state and iss (RFC 9207)', async (t) => {
    const res = await get({ ...valid, code_challenge: undefined, code_challenge_method: undefined });
    t.equal(res.statusCode, 303);
    const location = res.headers.location as string;
    t.ok(location.startsWith(`${REDIRECT}?`), 'to the registered URI, in the query');
    const params = responseParams(location);
    t.equal(params.get('error'), 'invalid_request');
    t.match(params.get('error_description'), /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/, 'in the characters RFC 6749 §4.1.2.1 allows');
    t.match(params.get('error_description'), /RFC 7636 section 4\.4|PKCE/);
    t.equal(params.get('state'), 'state-123');
    t.equal(params.get('iss'), config.issuer);
    t.same([...params.keys()].sort(), ['error', 'error_description', 'iss', 'state'], 'nothing else the client sent is reflected');
  });

  t.test('PKCE plain is refused', async (t) => {
    const res = await get({ ...valid, code_challenge: pkce.verifier, code_challenge_method: 'plain' });
    t.equal(res.statusCode, 303);
    t.equal(responseParams(res.headers.location as string).get('error'), 'invalid_request');
  });

  t.test('response_type must be supported and registered for the client', async (t) => {
    const unknown = await get({ ...valid, response_type: 'id_token' });
    t.equal(responseParams(unknown.headers.location as string).get('error'), 'unsupported_response_type');
    const unregistered = await get({ ...valid, client_id: codeOnly.clientId, response_type: 'token', scope: 'profile' });
    const location = unregistered.headers.location as string;
    t.ok(location.startsWith(`${REDIRECT}#`), 'a token request is answered in the fragment');
    const params = responseParams(location);
    t.equal(params.get('error'), 'unauthorized_client');
    t.equal(params.get('iss'), config.issuer);
    t.equal(params.get('state'), 'state-123');
  });

  t.test('implicit errors are sent in the fragment', async (t) => {
    const res = await get({ ...valid, response_type: 'token', response_mode: 'query', code_challenge: undefined, code_challenge_method: undefined });
    const location = res.headers.location as string;
    t.ok(location.startsWith(`${REDIRECT}#`));
    t.equal(responseParams(location).get('error'), 'invalid_request', 'a token is never sent in the query');
    t.equal(responseParams(location).get('iss'), config.issuer);
  });

  t.test('a repeated parameter is invalid_request', async (t) => {
    const res = await app.inject({ method: 'GET', url: `${authorizePath(valid)}&scope=api:read` });
    t.equal(res.statusCode, 303);
    t.equal(responseParams(res.headers.location as string).get('error'), 'invalid_request');
    const twoClients = await app.inject({ method: 'GET', url: `${authorizePath(valid)}&client_id=${codeOnly.clientId}` });
    t.equal(twoClients.statusCode, 400, 'a repeated client_id is shown, not redirected');
    t.equal(twoClients.headers.location, undefined);
  });

  t.test('a valid request leads to the login page, which sends the protective headers', async (t) => {
    const browser = new InjectBrowser(app);
    const res = await browser.get(authorizePath({ ...valid, login_hint: '"><script>alert(2)</script>' }));
    t.equal(res.statusCode, 303);
    t.match(res.headers.location, /^\/login\?rid=[\w-]{43}$/);
    const page = await browser.get(res.headers.location as string);
    t.equal(page.statusCode, 200);
    t.equal(page.headers['x-frame-options'], 'DENY');
    t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/);
    t.match(page.headers['content-security-policy'], /default-src 'none'/);
    t.notMatch(page.headers['content-security-policy'], /unsafe-inline/);
    t.equal(page.headers['referrer-policy'], 'no-referrer');
    t.equal(page.headers['cache-control'], 'no-store');
    t.equal(page.headers['x-content-type-options'], 'nosniff');

    // Escaping: the client's name and the login hint are shown, never as markup.
    t.match(page.body, '&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co');
    t.notMatch(page.body, '<script>alert(1)');
    t.notMatch(page.body, '<script>alert(2)');
    t.match(page.body, 'value="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"');
    t.notMatch(page.body, 'state-123', 'state only ever goes into the redirect');
  });

  t.test('the error page sends the protective headers too', async (t) => {
    const res = await get({ ...valid, client_id: 'nope' });
    t.equal(res.headers['x-frame-options'], 'DENY');
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/);
    t.equal(res.headers['referrer-policy'], 'no-referrer');
  });

  t.test('the authorization endpoint also accepts POST (OIDC Core §3.1.2.1)', async (t) => {
    const res = await app.inject({
      method: 'POST',
      url: '/authorize',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(valid as Record<string, string>).toString(),
    });
    t.equal(res.statusCode, 303);
    t.match(res.headers.location, /^\/login\?rid=/);
  });

  t.test('POST /authorize takes forms only: a JSON body is 415, never a 500 or a non-string nonce', async (t) => {
    for (const extra of [{ scope: { a: 1 } }, { nonce: { a: 1 } }, { state: ['a', { b: 2 }] }, { response_mode: null }, { request_uri: [{}] }]) {
      const res = await app.inject({ method: 'POST', url: '/authorize', payload: { ...valid, ...extra } });
      t.equal(res.statusCode, 415, JSON.stringify(extra));
      t.match(res.headers['content-type'], /^text\/html/);
      t.equal(res.headers.location, undefined);
    }
    const text = await app.inject({ method: 'POST', url: '/authorize', headers: { 'content-type': 'text/plain' }, payload: 'client_id=x' });
    t.equal(text.statusCode, 415);
  });
});
