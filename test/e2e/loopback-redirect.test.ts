/**
 * RFC 8252 §7.3 end to end: a public client's loopback IP redirect URI
 * matches with any port, through /authorize, the consent page and the code
 * exchange; a confidential client's does not.
 */
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, authorizePath, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { basic, postForm } from '../helpers/tokens.js';

t.test(`loopback redirect URIs with any port (${backendName})`, async (t) => {
  const { app, services } = await buildTestApp(t);
  const user = await seedUser(services);
  const registered = 'http://127.0.0.1/callback';
  const used = 'http://127.0.0.1:49152/callback';

  t.test('a public client: the port the app listens on now is accepted and the code goes there', async (t) => {
    const { clientId } = await seedClient(services, { redirect_uris: [registered], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
    const pkce = pkcePair();
    const browser = new InjectBrowser(app);
    const path = authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: used, scope: 'api:read', state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256' });
    const result = await loginAndConsent(browser, path, user);
    t.ok(result.location.startsWith(`${used}?`), result.location);
    const code = result.params.get('code');
    t.ok(code);
    const token = await postForm(app, '/token', { grant_type: 'authorization_code', code: code!, redirect_uri: used, client_id: clientId, code_verifier: pkce.verifier });
    t.equal(token.statusCode, 200, token.body);
  });

  t.test('a confidential client: only the registered URI, exactly', async (t) => {
    const { clientId, clientSecret } = await seedClient(services, { redirect_uris: [registered], grant_types: ['authorization_code'] });
    const pkce = pkcePair();
    const browser = new InjectBrowser(app);
    const params = { response_type: 'code', client_id: clientId, scope: 'api:read', code_challenge: pkce.challenge, code_challenge_method: 'S256' };
    const refused = await browser.get(authorizePath({ ...params, redirect_uri: used }));
    t.equal(refused.statusCode, 400, 'the error page, never a redirect');
    t.match(refused.body, /does not match any URI registered/);
    const result = await loginAndConsent(browser, authorizePath({ ...params, redirect_uri: registered }), user);
    t.ok(result.location.startsWith(`${registered}?`));
    const token = await postForm(
      app,
      '/token',
      { grant_type: 'authorization_code', code: result.params.get('code')!, redirect_uri: registered, code_verifier: pkce.verifier },
      { authorization: basic(clientId, clientSecret!) },
    );
    t.equal(token.statusCode, 200, token.body);
  });
});
