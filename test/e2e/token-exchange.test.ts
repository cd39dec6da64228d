/**
 * Token exchange for delegation (RFC 8693), with oauth4webapi as the client
 * over `app.inject()`: an agent registered for the grant exchanges a user's
 * access token for one to another resource of RESOURCES that says who acts
 * (`act`, verified with jose against the JWKS), and a second agent exchanges
 * that one again (nested `act`). Refused: a wider scope, an unknown
 * resource or audience, a revoked subject token, a client's own token, other
 * token types, and a client not registered for the grant.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oauth from 'oauth4webapi';
import t from 'tap';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { injectFetch } from '../helpers/inject-fetch.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

t.test(`token exchange (${backendName})`, async (t) => {
  const { app, services, config } = await buildTestApp(t);
  const API = `${config.issuer}/api`;
  const MCP = `${config.issuer}/mcp`;
  const issuer = new URL(config.issuer);
  const options = { [oauth.customFetch]: injectFetch(app), [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' }));
  const jwks = createLocalJWKSet((await app.inject({ method: 'GET', url: '/jwks.json' })).json<JSONWebKeySet>());

  const alice = await seedUser(services, { username: 'alice' });
  // The app the user signed in to (the password grant stands in for any user-facing grant here).
  const app1 = await seedClient(services, { client_name: 'Mail app', grant_types: ['password'], scope: 'openid api:read api:write' });
  const agent = await seedClient(services, { client_name: 'Agent', grant_types: [GRANT], scope: 'api:read api:write' });
  const subAgent = await seedClient(services, { client_name: 'Sub-agent', grant_types: [GRANT], scope: 'api:read' });
  const outsider = await seedClient(services, { client_name: 'Not registered', grant_types: ['client_credentials'], scope: 'api:read' });

  const userToken = async (scope = 'openid api:read api:write') => {
    const client = { client_id: app1.clientId };
    const response = await oauth.genericTokenEndpointRequest(as, client, oauth.ClientSecretBasic(app1.clientSecret!), 'password', { username: 'alice', password: alice.password, scope }, options);
    return (await oauth.processGenericTokenEndpointResponse(as, client, response)).access_token;
  };
  const exchange = (who: { clientId: string; clientSecret: string | null }, parameters: Record<string, string>) =>
    oauth.genericTokenEndpointRequest(as, { client_id: who.clientId }, oauth.ClientSecretBasic(who.clientSecret!), GRANT, parameters, options);
  const refused = async (response: Response) => ({ status: response.status, ...((await response.json()) as { error: string; error_description: string }) });

  t.test('metadata lists the grant', async (t) => {
    t.ok(as.grant_types_supported?.includes(GRANT));
  });

  t.test('an agent exchanges a user token for another resource; the token names it in act', async (t) => {
    const subject = await userToken();
    const response = await exchange(agent, { subject_token: subject, subject_token_type: ACCESS_TOKEN, resource: MCP, scope: 'api:read' });
    const result = await oauth.processGenericTokenEndpointResponse(as, { client_id: agent.clientId }, response);
    t.equal(result.token_type, 'bearer');
    t.equal(result.issued_token_type, ACCESS_TOKEN);
    t.equal(result.scope, 'api:read');
    t.notOk(result.refresh_token, 'no refresh token: the agent exchanges again');
    const { payload, protectedHeader } = await jwtVerify(result.access_token, jwks, { issuer: config.issuer, audience: MCP, typ: 'at+jwt' });
    t.equal(protectedHeader.typ, 'at+jwt');
    t.match(payload, { sub: alice.id, aud: MCP, client_id: agent.clientId, scope: 'api:read', act: { sub: agent.clientId } });
    t.notOk((payload.act as Record<string, unknown>).act, 'no earlier actor');
    // The resource accepts it like any token for it.
    const claims = await services.tokens.verifyAccessToken(result.access_token, { resource: MCP });
    t.equal(claims.sub, alice.id);
    // The delegation is in the audit trail.
    await services.audit.flush();
    const { events } = await services.audit.list({ type: 'token.exchanged' }, { limit: 10, offset: 0 });
    t.match(events[0], { subject: { type: 'user', id: alice.id }, clientId: agent.clientId, details: { scope: 'api:read', resource: MCP, actors: [] } });
  });

  t.test('a delegated token exchanged again nests the actors; audience names the target too', async (t) => {
    const first = await oauth.processGenericTokenEndpointResponse(
      as,
      { client_id: agent.clientId },
      await exchange(agent, { subject_token: await userToken(), subject_token_type: ACCESS_TOKEN, audience: API }),
    );
    t.equal(first.scope, 'api:read api:write', 'default: the subject token’s scope the agent is registered for');
    const second = await oauth.processGenericTokenEndpointResponse(
      as,
      { client_id: subAgent.clientId },
      await exchange(subAgent, { subject_token: first.access_token, subject_token_type: ACCESS_TOKEN, resource: MCP, audience: MCP }),
    );
    const { payload } = await jwtVerify(second.access_token, jwks, { issuer: config.issuer, audience: MCP });
    t.match(payload, { sub: alice.id, client_id: subAgent.clientId, scope: 'api:read', act: { sub: subAgent.clientId, act: { sub: agent.clientId } } });
    // RFC 8693 §7.2: introspection tells who acts, as the token does.
    const introspected = await oauth.processIntrospectionResponse(
      as,
      { client_id: subAgent.clientId },
      await oauth.introspectionRequest(as, { client_id: subAgent.clientId }, oauth.ClientSecretBasic(subAgent.clientSecret!), second.access_token, options),
    );
    t.same(introspected.act, { sub: subAgent.clientId, act: { sub: agent.clientId } });
  });

  t.test('a DPoP-bound subject token is exchanged only with a proof by its key, and stays bound (RFC 9449 §7)', async (t) => {
    /** One oauth4webapi request, again when the server asks for its nonce (RFC 9449 §8). */
    const withNonce = async <T>(attempt: () => Promise<T>): Promise<T> => {
      try {
        return await attempt();
      } catch (err) {
        if (!oauth.isDPoPNonceError(err)) throw err;
        return attempt();
      }
    };
    const pair = await oauth.generateKeyPair('ES256');
    const userKey = oauth.DPoP({ client_id: app1.clientId } as oauth.Client, pair);
    const bound = await withNonce(async () =>
      oauth.processGenericTokenEndpointResponse(
        as,
        { client_id: app1.clientId },
        await oauth.genericTokenEndpointRequest(as, { client_id: app1.clientId }, oauth.ClientSecretBasic(app1.clientSecret!), 'password', { username: 'alice', password: alice.password, scope: 'api:read' }, { ...options, DPoP: userKey }),
      ),
    );
    const jkt = await userKey.calculateThumbprint();
    const params = { subject_token: bound.access_token, subject_token_type: ACCESS_TOKEN, resource: MCP };
    const bare = await refused(await exchange(agent, params));
    t.equal(bare.error, 'invalid_request', 'without a proof: refused, never turned into a bearer token');
    t.match(bare.error_description, /DPoP-bound/);
    const exchangeWith = (DPoP: oauth.DPoPHandle) => () =>
      oauth.genericTokenEndpointRequest(as, { client_id: agent.clientId }, oauth.ClientSecretBasic(agent.clientSecret!), GRANT, params, { ...options, DPoP }).then((response) =>
        oauth.processGenericTokenEndpointResponse(as, { client_id: agent.clientId }, response),
      );
    const otherKey = oauth.DPoP({ client_id: agent.clientId } as oauth.Client, await oauth.generateKeyPair('ES256'));
    await t.rejects(withNonce(exchangeWith(otherKey)), { name: 'ResponseBodyError', error: 'invalid_request' }, 'a proof by another key: refused');
    const result = await withNonce(exchangeWith(oauth.DPoP({ client_id: agent.clientId } as oauth.Client, pair)));
    t.equal(result.token_type, 'dpop', 'with a proof by its key: a DPoP token');
    const { payload } = await jwtVerify(result.access_token, jwks, { issuer: config.issuer, audience: MCP });
    t.same(payload.cnf, { jkt }, 'bound to the same key');
    t.match(payload, { act: { sub: agent.clientId } });
  });

  t.test('a scope wider than the subject token is refused', async (t) => {
    const narrow = await userToken('api:read');
    t.match(await refused(await exchange(agent, { subject_token: narrow, subject_token_type: ACCESS_TOKEN, scope: 'api:read api:write' })), {
      status: 400,
      error: 'invalid_scope',
      error_description: /wider than the subject token.*api:write/,
    });
  });

  t.test('an unknown resource or audience, or two different ones, is invalid_target', async (t) => {
    const subject = await userToken();
    for (const target of [
      { resource: 'https://elsewhere.example/api' }, { audience: 'https://elsewhere.example/api' }, { audience: 'payroll' }, { resource: API, audience: MCP },
    ] as Array<Record<string, string>>) {
      t.match(await refused(await exchange(agent, { subject_token: subject, subject_token_type: ACCESS_TOKEN, ...target })), { status: 400, error: 'invalid_target' }, JSON.stringify(target));
    }
  });

  t.test('a revoked subject token is refused', async (t) => {
    const subject = await userToken();
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, { client_id: app1.clientId }, oauth.ClientSecretBasic(app1.clientSecret!), subject, options));
    t.match(await refused(await exchange(agent, { subject_token: subject, subject_token_type: ACCESS_TOKEN })), {
      status: 400,
      error: 'invalid_request',
      error_description: /not an active access token/,
    });
  });

  t.test('a disabled user’s token is refused; so is a client’s own token', async (t) => {
    const bob = await seedUser(services, { username: 'bob' });
    const client = { client_id: app1.clientId };
    const bobs = await oauth.processGenericTokenEndpointResponse(
      as,
      client,
      await oauth.genericTokenEndpointRequest(as, client, oauth.ClientSecretBasic(app1.clientSecret!), 'password', { username: 'bob', password: bob.password, scope: 'api:read' }, options),
    );
    await services.users.update(bob.id, { disabled: true });
    t.match(await refused(await exchange(agent, { subject_token: bobs.access_token, subject_token_type: ACCESS_TOKEN })), { error: 'invalid_request' });

    const own = await oauth.processClientCredentialsResponse(
      as,
      { client_id: outsider.clientId },
      await oauth.clientCredentialsGrantRequest(as, { client_id: outsider.clientId }, oauth.ClientSecretBasic(outsider.clientSecret!), new URLSearchParams(), options),
    );
    t.match(await refused(await exchange(agent, { subject_token: own.access_token, subject_token_type: ACCESS_TOKEN })), {
      error: 'invalid_request',
      error_description: /user's access token/,
    });
  });

  t.test('other token types and actor tokens are refused as unsupported', async (t) => {
    const subject = await userToken();
    for (const [extra, message] of [
      [{ subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /subject_token_type .* is not supported/],
      [{ subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, /subject_token_type .* is not supported/],
      [{ subject_token_type: ACCESS_TOKEN, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /requested_token_type .* is not supported/],
      [{ subject_token_type: ACCESS_TOKEN, actor_token: subject, actor_token_type: ACCESS_TOKEN }, /actor_token is not supported/],
      [{}, /subject_token_type is required/],
    ] as const) {
      t.match(await refused(await exchange(agent, { subject_token: subject, ...extra })), { status: 400, error: 'invalid_request', error_description: message });
    }
  });

  t.test('a client not registered for the grant is refused', async (t) => {
    const subject = await userToken();
    t.match(await refused(await exchange(outsider, { subject_token: subject, subject_token_type: ACCESS_TOKEN })), { status: 400, error: 'unauthorized_client' });
    // A public client cannot be registered for it at all.
    const publicAgent = await services.clients.register({ client_name: 'Public agent', grant_types: [GRANT], token_endpoint_auth_method: 'none' }).catch((err: unknown) => err);
    t.match(publicAgent, { error: 'invalid_client_metadata', description: /needs a confidential client/ });
  });
});

t.test(`an exchanged token never outlives its subject token, however often the agent re-exchanges (${backendName})`, async (t) => {
  let now = Date.now();
  const { app, services, config } = await buildTestApp(t, { now: () => now });
  const alice = await seedUser(services, { username: 'alice' });
  const app1 = await seedClient(services, { grant_types: ['password'], scope: 'api:read' });
  const agent = await seedClient(services, { grant_types: [GRANT], scope: 'api:read' });
  const post = async (who: { clientId: string; clientSecret: string | null }, form: Record<string, string>) => {
    const response = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { authorization: `Basic ${Buffer.from(`${who.clientId}:${who.clientSecret!}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString(),
    });
    t.equal(response.statusCode, 200, response.body);
    return response.json<{ access_token: string; expires_in: number }>();
  };
  const expOf = async (token: string) => (await services.tokens.verifyAccessToken(token, { resource: `${config.issuer}/api` })).exp;

  const subject = await post(app1, { grant_type: 'password', username: 'alice', password: alice.password, scope: 'api:read' });
  t.equal(subject.expires_in, config.accessTokenTtlSeconds);
  const subjectExp = await expOf(subject.access_token);
  let elapsed = 600;
  now += elapsed * 1000;
  let token = subject.access_token;
  for (const step of [1, 2, 3]) {
    const exchanged = await post(agent, { grant_type: GRANT, subject_token: token, subject_token_type: ACCESS_TOKEN });
    t.equal(await expOf(exchanged.access_token), subjectExp, `exchange ${step}: expires with the subject token`);
    t.ok(Math.abs(exchanged.expires_in - (config.accessTokenTtlSeconds - elapsed)) <= 1, `exchange ${step}: expires_in says what is left (${exchanged.expires_in} s)`);
    token = exchanged.access_token;
    elapsed += 60;
    now += 60_000;
  }
});
