/**
 * Resource indicators (RFC 8707) end to end: the `resource` parameter at
 * `/authorize` and `/token` for every grant, `invalid_target`, the binding
 * through the code and the refresh token (narrowing, never widening), the
 * audience each resource route accepts, and `aud` in introspection.
 */
import type { LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { hashRefreshToken } from '../../src/tokens/refresh-tokens.js';
import { buildTestApp, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { InjectBrowser, loginAndConsent, pkcePair, responseParams } from '../helpers/browser-flow.js';
import { basic, decodePayload, getWithToken, postForm } from '../helpers/tokens.js';

const ISSUER = 'http://localhost:3000';
const API = `${ISSUER}/api`;
const MCP = `${ISSUER}/mcp`;
const REDIRECT = 'http://127.0.0.1:7010/cb';

t.test(`resource indicators (${backendName})`, async (t) => {
  const { app, services, storage } = await buildTestApp(t, { env: { ISSUER } });
  const machine = await seedClient(services, { grant_types: ['client_credentials'], scope: 'api:read api:write' });
  const legacy = await seedClient(services, { grant_types: ['password', 'refresh_token'], scope: 'openid profile api:read admin' });
  const web = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'implicit'], response_types: ['code', 'token'], scope: 'openid api:read' });
  const alice = await seedUser(services, { username: 'alice', roles: ['admin'] });
  const machineAuth = basic(machine.clientId, machine.clientSecret!);
  const legacyAuth = basic(legacy.clientId, legacy.clientSecret!);
  const webAuth = basic(web.clientId, web.clientSecret!);
  const browser = new InjectBrowser(app);

  const token = (authorization: string, params: Record<string, string | string[]>) => postForm(app, '/token', params, { authorization });
  const accessToken = async (res: LightMyRequestResponse) => {
    if (res.statusCode !== 200) throw new Error(`token request failed: ${res.body}`);
    return res.json() as { access_token: string; refresh_token?: string; scope: string };
  };
  const audOf = (res: { access_token: string }) => decodePayload(res.access_token).aud;
  const isInvalidTarget = (t: Test, res: LightMyRequestResponse, description?: RegExp) => {
    t.equal(res.statusCode, 400);
    t.equal(res.json().error, 'invalid_target');
    t.equal(res.headers['cache-control'], 'no-store');
    if (description) t.match(res.json().error_description, description);
  };
  const password = (resource?: string | string[], scope = 'openid api:read') =>
    token(legacyAuth, { grant_type: 'password', username: alice.username, password: alice.password, scope, ...(resource === undefined ? {} : { resource }) });

  /** Signs in (once), consents (once), and returns the code of an authorization request naming `resources`. */
  async function authorize(resources: string[], extra: Record<string, string> = {}) {
    const pkce = pkcePair();
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: web.clientId,
      redirect_uri: REDIRECT,
      scope: 'openid api:read',
      state: 'st',
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    for (const resource of resources) query.append('resource', resource);
    const result = await loginAndConsent(browser, `/authorize?${query.toString()}`, alice);
    return { ...result, code: result.params.get('code'), verifier: pkce.verifier };
  }
  const redeem = (code: string, verifier: string, resource?: string) =>
    token(webAuth, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, ...(resource === undefined ? {} : { resource }) });
  const refresh = (authorization: string, refreshToken: string, resource?: string) =>
    token(authorization, { grant_type: 'refresh_token', refresh_token: refreshToken, ...(resource === undefined ? {} : { resource }) });

  t.test('client credentials and password: aud is the resource asked for, the default otherwise', async (t) => {
    const plain = await accessToken(await token(machineAuth, { grant_type: 'client_credentials' }));
    t.equal(audOf(plain), API, 'no resource: the default resource, as before');
    t.equal((await getWithToken(app, '/api/hello', plain.access_token)).statusCode, 200);

    const mcp = await accessToken(await token(machineAuth, { grant_type: 'client_credentials', resource: MCP }));
    t.equal(audOf(mcp), MCP);
    const refused = await getWithToken(app, '/api/hello', mcp.access_token);
    t.equal(refused.statusCode, 401, 'an /mcp token is refused by /api/hello');
    t.equal(refused.json().error, 'invalid_token');
    t.match(refused.json().error_description, /aud/);

    const spelled = await accessToken(await token(machineAuth, { grant_type: 'client_credentials', resource: 'HTTP://LOCALHOST:3000/mcp/' }));
    t.equal(audOf(spelled), MCP, 'an upper-case host and a trailing slash name the same resource; aud is spelled as configured');
    t.equal(audOf(await accessToken(await password('http://localhost:3000/api/'))), API, 'the password grant too');

    isInvalidTarget(t, await token(machineAuth, { grant_type: 'client_credentials', resource: 'https://elsewhere.example/api' }), /not a resource this server issues tokens for/);
    isInvalidTarget(t, await token(machineAuth, { grant_type: 'client_credentials', resource: '/mcp' }), /absolute URI/);
    isInvalidTarget(t, await token(machineAuth, { grant_type: 'client_credentials', resource: `${MCP}#x` }), /fragment/);
    isInvalidTarget(t, await token(machineAuth, { grant_type: 'client_credentials', resource: [API, MCP] }), /one resource per token request/);
    // Checked before the password, so it costs no attempt: a wrong password with an unknown resource is invalid_target.
    const wrong = await token(legacyAuth, { grant_type: 'password', username: alice.username, password: 'wrong password', resource: 'https://elsewhere.example' });
    isInvalidTarget(t, wrong);
  });

  t.test('verifyAccessToken checks the audience locally; each resource accepts only its own tokens', async (t) => {
    const api = (await accessToken(await token(machineAuth, { grant_type: 'client_credentials' }))).access_token;
    const mcp = (await accessToken(await token(machineAuth, { grant_type: 'client_credentials', resource: MCP }))).access_token;
    const { tokens } = services;
    t.equal((await tokens.verifyAccessToken(mcp, { resource: MCP })).aud, MCP, 'an /mcp token for /mcp');
    t.equal((await tokens.verifyAccessToken(mcp, { resource: 'http://LOCALHOST:3000/mcp/' })).aud, MCP, 'named in any spelling of the resource');
    await t.rejects(tokens.verifyAccessToken(api, { resource: MCP }), { error: 'invalid_token', message: /aud/ }, 'an /api token is refused for /mcp');
    await t.rejects(tokens.verifyAccessToken(mcp, { resource: API }), { error: 'invalid_token', message: /aud/ }, 'and the other way round');
    t.equal((await tokens.verifyAccessToken(api, { anyResource: true })).aud, API, 'the server’s own endpoints accept any of its resources');
    t.equal((await tokens.verifyAccessToken(mcp, { anyResource: true })).aud, MCP);
    await t.rejects(tokens.verifyAccessToken(mcp, { resource: 'https://elsewhere.example/mcp' }), { message: /not one of RESOURCES/ }, 'naming a resource the server does not know is a programming error');
  });

  t.test('UserInfo and the admin API take a token for any resource, gated by scope', async (t) => {
    const forMcp = await accessToken(await password(MCP, 'openid admin'));
    t.equal(audOf(forMcp), MCP);
    const info = await getWithToken(app, '/userinfo', forMcp.access_token);
    t.equal(info.statusCode, 200, '/userinfo: any of our tokens with scope openid');
    t.equal(info.json().sub, alice.id);
    t.equal((await getWithToken(app, '/admin/users', forMcp.access_token)).statusCode, 200, 'the admin API: any of our tokens with scope admin');
    const noAdmin = await accessToken(await password(MCP, 'openid'));
    t.equal((await getWithToken(app, '/admin/users', noAdmin.access_token)).statusCode, 403, 'still not without the admin scope');
  });

  t.test('introspection returns aud', async (t) => {
    const forMcp = await accessToken(await password(MCP));
    const res = await postForm(app, '/introspect', { token: forMcp.access_token }, { authorization: legacyAuth });
    t.equal(res.statusCode, 200);
    t.match(res.json(), { active: true, aud: MCP, client_id: legacy.clientId, sub: alice.id });
  });

  t.test('authorization code: the code keeps its resources; the token request may narrow, never widen', async (t) => {
    const both = await authorize([MCP, API]);
    t.ok(both.code);
    const first = await accessToken(await redeem(both.code!, both.verifier));
    t.equal(audOf(first), MCP, 'no resource at the token endpoint: the first one authorized');
    t.equal((await getWithToken(app, '/api/hello', first.access_token)).statusCode, 401, 'so /api/hello refuses it');

    const narrowed = await authorize([MCP, API]);
    t.equal(audOf(await accessToken(await redeem(narrowed.code!, narrowed.verifier, API))), API, 'narrowed to the other resource authorized');

    const spelled = await authorize(['HTTP://LOCALHOST:3000/mcp/']);
    t.equal(audOf(await accessToken(await redeem(spelled.code!, spelled.verifier, 'http://localhost:3000/mcp'))), MCP, 'spellings of one resource at both endpoints');

    const onlyMcp = await authorize([MCP]);
    isInvalidTarget(t, await redeem(onlyMcp.code!, onlyMcp.verifier, API), /was not granted/);
    t.equal(audOf(await accessToken(await redeem(onlyMcp.code!, onlyMcp.verifier))), MCP, 'a resource the code does not cover is refused before the code is used up');
    const none = await authorize([]);
    isInvalidTarget(t, await redeem(none.code!, none.verifier, MCP), /was not granted/);

    const kept = await authorize([MCP]);
    isInvalidTarget(t, await redeem(kept.code!, kept.verifier, 'https://elsewhere.example'), /not a resource this server issues/);
    t.equal(audOf(await accessToken(await redeem(kept.code!, kept.verifier))), MCP, 'an unknown resource is refused before the code is used up');
  });

  t.test('authorization endpoint: an unknown or malformed resource is invalid_target at the redirect URI', async (t) => {
    for (const resource of ['https://elsewhere.example/api', 'not-absolute', `${API}#frag`]) {
      const result = await authorize([resource]);
      t.equal(result.code, null, resource);
      t.equal(result.params.get('error'), 'invalid_target', resource);
      t.equal(result.params.get('state'), 'st');
      t.equal(result.params.get('iss'), ISSUER);
      t.ok(result.location.startsWith(REDIRECT), 'sent back to the registered redirect URI');
    }
    const implicit = await authorize([MCP], { response_type: 'token', nonce: 'n' });
    const fragment = responseParams(implicit.location);
    t.equal(decodePayload(fragment.get('access_token')!).aud, MCP, 'the implicit grant’s token is for its resource');
  });

  t.test('refresh: the refresh token keeps the grant’s resources; a refresh may narrow, never widen', async (t) => {
    const grant = await authorize([MCP, API]);
    const tokens = await accessToken(await redeem(grant.code!, grant.verifier));
    const toApi = await accessToken(await refresh(webAuth, tokens.refresh_token!, API));
    t.equal(audOf(toApi), API, 'narrowed to /api');
    const back = await accessToken(await refresh(webAuth, toApi.refresh_token!, MCP));
    t.equal(audOf(back), MCP, 'the successor still covers both: narrowing the access token narrows not the grant');
    t.equal(audOf(await accessToken(await refresh(webAuth, back.refresh_token!))), MCP, 'none named: the first resource authorized');

    const single = await accessToken(await password(MCP));
    isInvalidTarget(t, await refresh(legacyAuth, single.refresh_token!, API), /was not granted/);
    isInvalidTarget(t, await refresh(legacyAuth, single.refresh_token!, 'https://elsewhere.example'));
    const after = await accessToken(await refresh(legacyAuth, single.refresh_token!));
    t.equal(audOf(after), MCP, 'a refused refresh leaves the refresh token usable, and its resource bound');
    const row = await storage.refreshTokens.findByHash(hashRefreshToken(after.refresh_token!));
    t.same(row?.resources, [MCP], 'stored with the successor');
  });

  t.test('a refresh token from before resources were bound covers the default resource only', async (t) => {
    const old = await accessToken(await password());
    await storage.db.query('UPDATE refresh_tokens SET resources = NULL WHERE token_hash = $1', [hashRefreshToken(old.refresh_token!)]);
    isInvalidTarget(t, await refresh(legacyAuth, old.refresh_token!, MCP), /was not granted/);
    const renewed = await accessToken(await refresh(legacyAuth, old.refresh_token!));
    t.equal(audOf(renewed), API, 'the aud it always had');
    t.same((await storage.refreshTokens.findByHash(hashRefreshToken(renewed.refresh_token!)))?.resources, [API], 'its successor names it');
  });

  t.test('consent is remembered per resource: one not yet allowed asks again', async (t) => {
    const photos = await seedClient(services, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid api:read' });
    const own = new InjectBrowser(app);
    const ask = (resources: string[], extra: Record<string, string> = {}) => {
      const query = new URLSearchParams({ response_type: 'code', client_id: photos.clientId, redirect_uri: REDIRECT, scope: 'api:read', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', ...extra });
      for (const resource of resources) query.append('resource', resource);
      return loginAndConsent(own, `/authorize?${query.toString()}`, alice);
    };
    t.ok((await ask([API])).sawConsent, 'the first time: asked');
    t.notOk((await ask([API])).sawConsent, 'the same resource again: remembered');
    t.notOk((await ask([])).sawConsent, 'none named: the default resource, the one allowed');
    const silent = await ask([MCP], { prompt: 'none' });
    t.equal(silent.params.get('error'), 'consent_required', 'another resource is not taken as allowed');
    t.ok((await ask([MCP])).sawConsent, 'another resource: asked again');
    t.notOk((await ask([API, MCP])).sawConsent, 'both are remembered now');
    t.same((await services.consents.find(alice.id, photos.clientId))?.resources, [API, MCP]);
    // The consent page names what the permissions are for.
    const query = new URLSearchParams({ response_type: 'code', client_id: photos.clientId, redirect_uri: REDIRECT, scope: 'api:read', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', prompt: 'consent' });
    query.append('resource', API);
    query.append('resource', MCP);
    const toConsent = await own.get(`/authorize?${query.toString()}`);
    const page = await own.get(toConsent.headers.location as string);
    t.match(page.body, `<p class="muted" id="consent-resources">At <code>${API}</code> and <code>${MCP}</code>.</p>`);

    // A consent remembered before resources were recorded covers the default resource only.
    await storage.db.query('UPDATE consents SET resources = NULL WHERE user_id = $1 AND client_id = $2', [alice.id, photos.clientId]);
    t.notOk((await ask([API])).sawConsent, 'the default resource: covered');
    t.ok((await ask([MCP])).sawConsent, 'any other: asked');
  });
});
