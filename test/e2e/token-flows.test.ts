/**
 * The token service's happy paths with an independent client library
 * (oauth4webapi) over a real socket: discovery, client credentials (Basic and
 * post), password, refresh, revocation, introspection, UserInfo, and
 * validation of our access tokens as a resource server would do it. Every
 * token after the first is signed by the signing worker
 * (`src/tokens/signing-worker.ts`), started here at the first token, so the
 * client library checks the worker's tokens, ID tokens included.
 */
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { hashClientSecret } from '../../src/clients/secret.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { listenForClient } from '../helpers/oauth-client.js';
import { eventually } from '../helpers/wait.js';

const ISSUER = 'http://localhost:3000';
const AUDIENCE = `${ISSUER}/api`;

t.test(`token flows through oauth4webapi (${backendName})`, async (t) => {
  const { app, services, storage } = await buildTestApp(t, {
    env: { ISSUER },
    serviceOptions: { tokenTimings: { signingWorker: { startAtPerSecond: 0, idleMs: 600_000 } } },
  });
  const { as, options, baseUrl } = await listenForClient(app, ISSUER);

  const machine = await seedClient(services, { client_name: 'Machine', grant_types: ['client_credentials'], scope: 'api:read api:write' });
  const legacy = await seedClient(services, {
    client_name: 'Legacy app',
    grant_types: ['password', 'refresh_token'],
    scope: 'openid profile email api:read',
  });
  const alice = await seedUser(services, { username: 'alice', email: 'alice@example.com', roles: ['admin'] });

  const hello = (token: string, path = '/api/hello') => fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });

  // The first token starts the worker (it is signed on the event loop, as every token is until the worker answers).
  await oauth.processClientCredentialsResponse(
    as,
    { client_id: machine.clientId },
    await oauth.clientCredentialsGrantRequest(as, { client_id: machine.clientId }, oauth.ClientSecretBasic(machine.clientSecret!), new URLSearchParams(), options),
  );
  const signing = () => services.tokens.signingWorker()!;
  if (!(await eventually(10_000, async () => signing().ready))) throw new Error('the signing worker did not start');
  const signedHereBefore = signing().signedHere;

  t.test('discovery describes what is supported', async (t) => {
    t.equal(as.issuer, ISSUER);
    t.equal(as.token_endpoint, `${ISSUER}/token`);
    t.equal(as.jwks_uri, `${ISSUER}/jwks.json`);
    t.same(as.grant_types_supported, ['authorization_code', 'implicit', 'password', 'client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:token-exchange']);
    t.equal(as.device_authorization_endpoint, `${ISSUER}/device_authorization`);
    t.equal(as.pushed_authorization_request_endpoint, `${ISSUER}/par`);
    t.same(as.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
    t.same(as.introspection_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    t.same(as.code_challenge_methods_supported, ['S256']);
    t.same(as.id_token_signing_alg_values_supported, ['RS256']);
    t.same(as.scopes_supported, services.config.scopes);
    t.equal(as.authorization_response_iss_parameter_supported, true);
    t.same(as.access_token_signing_alg_values_supported, [services.config.accessTokenAlg], 'the access-token algorithm is published');
    t.same(as.prompt_values_supported, ['none', 'login', 'consent', 'select_account']);
    const oidc = await (await fetch(`${baseUrl}/.well-known/openid-configuration`)).json();
    t.same(oidc, as, 'both discovery documents are the same');
    const jwks = (await (await fetch(`${baseUrl}/jwks.json`)).json()) as { keys: Array<Record<string, unknown>> };
    t.same(jwks.keys.map((k) => k.alg).sort(), ['ES256', 'RS256']);
    for (const key of jwks.keys) {
      t.notOk('d' in key || 'p' in key || 'q' in key, 'no private parts published');
      t.equal(key.use, 'sig');
    }
  });

  t.test('client credentials with client_secret_basic', async (t) => {
    const client: oauth.Client = { client_id: machine.clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(machine.clientSecret!), new URLSearchParams({ scope: 'api:read' }), options);
    t.equal(response.headers.get('cache-control'), 'no-store');
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    t.equal(result.token_type, 'bearer');
    t.equal(result.expires_in, 900);
    t.equal(result.scope, 'api:read');
    t.notOk(result.refresh_token, 'never a refresh token for client credentials');

    const claims = await oauth.validateJwtAccessToken(as, new Request(`${ISSUER}/api/hello`, { headers: { authorization: `Bearer ${result.access_token}` } }), AUDIENCE, options);
    t.equal(claims.sub, machine.clientId, 'sub is the client itself');
    t.equal(claims.client_id, machine.clientId);
    t.equal(claims.scope, 'api:read');
    t.equal(claims.iss, ISSUER);
    t.equal(claims.aud, AUDIENCE);
    t.notOk('roles' in claims);

    const res = await hello(result.access_token);
    t.equal(res.status, 200);
    t.same(await res.json(), { message: `Hello, ${machine.clientId}!`, sub: machine.clientId, client_id: machine.clientId, scope: 'api:read' });
  });

  t.test('client credentials with client_secret_post, no scope requested: all registered scopes', async (t) => {
    const poster = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read api:write', token_endpoint_auth_method: 'client_secret_post' });
    const client: oauth.Client = { client_id: poster.clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost(poster.clientSecret!), new URLSearchParams(), options);
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    t.equal(result.scope, 'api:read api:write');
  });

  t.test('client_secret_basic with ":" "%" "+" in the secret (RFC 6749 §2.3.1 form-encoding)', async (t) => {
    const odd = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read' });
    const secret = 'pa:ss%20w+rd:%:';
    await storage.clients.update(odd.clientId, { clientSecretHash: hashClientSecret(secret) });
    const client: oauth.Client = { client_id: odd.clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(secret), new URLSearchParams(), options);
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    t.equal(result.scope, 'api:read');
  });

  t.test('password grant, refresh, userinfo, introspection, revocation', async (t) => {
    const client: oauth.Client = { client_id: legacy.clientId };
    const auth = oauth.ClientSecretBasic(legacy.clientSecret!);
    const response = await oauth.genericTokenEndpointRequest(as, client, auth, 'password', new URLSearchParams({ username: 'alice', password: alice.password, scope: 'openid profile email api:read' }), options);
    const tokens = await oauth.processGenericTokenEndpointResponse(as, client, response);
    t.ok(tokens.refresh_token, 'refresh token: the client is registered for refresh_token');
    t.equal(tokens.scope, 'openid profile email api:read');

    const claims = await oauth.validateJwtAccessToken(as, new Request(`${ISSUER}/api/hello`, { headers: { authorization: `Bearer ${tokens.access_token}` } }), AUDIENCE, options);
    t.equal(claims.sub, alice.id);
    t.same(claims.roles, ['admin']);
    t.equal(claims.client_id, legacy.clientId);
    t.type(claims.jti, 'string');

    const res = await hello(tokens.access_token);
    t.same(await res.json(), { message: 'Hello, alice!', sub: alice.id, client_id: legacy.clientId, scope: 'openid profile email api:read' });
    const admin = await hello(tokens.access_token, '/api/admin/hello');
    t.equal(admin.status, 200);
    t.equal(((await admin.json()) as { message: string }).message, 'Hello, admin alice!');

    const info = await oauth.processUserInfoResponse(as, client, alice.id, await oauth.userInfoRequest(as, client, tokens.access_token, options));
    t.same(info, { sub: alice.id, preferred_username: 'alice', name: 'alice', updated_at: info.updated_at, email: 'alice@example.com', email_verified: false });

    const introspected = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, tokens.access_token, options));
    t.equal(introspected.active, true);
    t.equal(introspected.token_type, 'Bearer');
    t.equal(introspected.sub, alice.id);
    t.equal(introspected.username, 'alice');
    t.equal(introspected.client_id, legacy.clientId);
    t.equal(introspected.scope, 'openid profile email api:read');
    const introspectedRefresh = await oauth.processIntrospectionResponse(
      as,
      client,
      await oauth.introspectionRequest(as, client, auth, tokens.refresh_token!, { ...options, additionalParameters: { token_type_hint: 'refresh_token' } }),
    );
    t.equal(introspectedRefresh.active, true);
    t.equal(introspectedRefresh.token_type, 'refresh_token');

    // Refresh, narrowing the scope: a new access token and a new refresh token.
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, { ...options, additionalParameters: { scope: 'openid api:read' } }),
    );
    t.ok(refreshed.refresh_token);
    t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated');
    t.equal(refreshed.scope, 'openid api:read');
    t.ok(refreshed.id_token, 'an ID token on refresh when openid was granted (OIDC Core §12.2)');
    const idClaims = oauth.getValidatedIdTokenClaims(refreshed)!;
    t.equal(idClaims.sub, alice.id);
    t.equal(idClaims.aud, legacy.clientId);
    t.same([idClaims.amr, idClaims.acr], [['pwd'], 'urn:oauth-server:acr:pwd'], 'how alice signed in: a password');

    // The old refresh token is used up.
    const stale = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, tokens.refresh_token!, options));
    t.same(stale, { active: false });

    // A narrowed refresh still carries the original grant: the next refresh may ask for all of it again.
    const again = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token!, options));
    t.equal(again.scope, 'openid profile email api:read');

    // Revocation of the refresh token revokes its grant, with the access token issued alongside it.
    const revoked = await oauth.revocationRequest(as, client, auth, again.refresh_token!, options);
    await oauth.processRevocationResponse(revoked);
    t.equal(revoked.status, 200);
    const after = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, again.access_token, options));
    t.same(after, { active: false });
    t.equal((await hello(again.access_token)).status, 401);
    const refused = await oauth
      .processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, again.refresh_token!, options))
      .then(() => null, (err: unknown) => err as { error?: string });
    t.equal(refused?.error, 'invalid_grant', 'the revoked refresh token is refused');
  });

  t.test('revoking an access token (RFC 7009 by jti): refused at once, inactive at introspection', async (t) => {
    const client: oauth.Client = { client_id: machine.clientId };
    const auth = oauth.ClientSecretBasic(machine.clientSecret!);
    const tokens = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams(), options));
    t.equal((await hello(tokens.access_token)).status, 200);
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, tokens.access_token, { ...options, additionalParameters: { token_type_hint: 'access_token' } }));
    const res = await hello(tokens.access_token);
    t.equal(res.status, 401);
    t.match(res.headers.get('www-authenticate'), /error="invalid_token"/);
    const introspected = await oauth.introspectionRequest(as, client, auth, tokens.access_token, options);
    t.same(await introspected.json(), { active: false }, 'exactly {"active":false}');
  });

  t.test('every token above was signed by the signing worker', async (t) => {
    const stats = signing();
    t.equal(stats.signedHere, signedHereBefore, 'none on the event loop');
    t.ok(stats.signedInWorker >= 8, `${stats.signedInWorker} in the worker`);
    const { body } = await services.metrics.render();
    t.match(body, new RegExp(`oauth_tokens_signed_total\\{signer="worker"\\} ${stats.signedInWorker}\n`), '/metrics counts them');
    t.match(body, new RegExp(`oauth_tokens_signed_total\\{signer="event_loop"\\} ${stats.signedHere}\n`));
    t.match(body, /oauth_signing_worker_running 1\n/);
    t.match(body, /oauth_signing_worker_starts_total 1\n/);
  });
});
