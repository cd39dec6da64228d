/** The logout request (OpenID Connect RP-Initiated Logout 1.0 §2, §3) without an app: each check, with its refusals. */
import t, { type Test } from 'tap';
import { OAuthError, UnavailableError } from '../../src/errors.js';
import { validateEndSessionRequest, type EndSessionDeps } from '../../src/oauth/end-session.js';
import type { Client } from '../../src/storage/types.js';
import type { IdTokenHint } from '../../src/tokens/types.js';
import { testClient } from '../helpers/client.js';

const BYE = 'https://app.example.com/bye';
const BYE_WITH_QUERY = 'https://app.example.com/bye?from=op';
/** JWT-shaped strings the fake token service knows. */
const ALICE_AT_WEB = 'eyJhbGciOiJSUzI1NiJ9.YWxpY2U.c2ln';
const ALICE_AT_BOTH = 'eyJhbGciOiJSUzI1NiJ9.Ym90aA.c2ln';
const ALICE_AT_GONE = 'eyJhbGciOiJSUzI1NiJ9.Z29uZQ.c2ln';
const FORGED = 'eyJhbGciOiJSUzI1NiJ9.Zm9yZ2Vk.c2ln';

const client = (clientId: string, postLogoutRedirectUris: string[]): Client =>
  testClient({ clientId, clientSecretHash: null, clientName: clientId, postLogoutRedirectUris, tokenEndpointAuthMethod: 'none' });

const CLIENTS = new Map([
  ['web', client('web', [BYE, BYE_WITH_QUERY, 'http://127.0.0.1:8080/bye'])],
  ['other', client('other', ['https://other.example.com/bye'])],
]);
const HINTS = new Map<string, IdTokenHint>([
  [ALICE_AT_WEB, { sub: 'alice', aud: ['web'] }],
  [ALICE_AT_BOTH, { sub: 'alice', aud: ['web', 'other'] }],
  [ALICE_AT_GONE, { sub: 'alice', aud: ['deleted-since'] }],
]);

const deps: EndSessionDeps = {
  findClient: async (clientId) => CLIENTS.get(clientId) ?? null,
  idTokenHint: async (token) => HINTS.get(token) ?? null,
};

const judge = (params: Record<string, unknown> | null, with_: EndSessionDeps = deps) => validateEndSessionRequest(params, with_);

async function refused(t: Test, params: Record<string, unknown>, why: RegExp, with_: EndSessionDeps = deps) {
  await t.rejects(judge(params, with_), { name: 'OAuthError', error: 'invalid_request', description: why }, JSON.stringify(params).slice(0, 120));
}

t.test('nothing sent: nobody named, nowhere to go (the signed-out page)', async (t) => {
  t.match(await judge({}), { client: null, hintSubject: null, location: null, params: {} });
  t.match(await judge({ client_id: '', post_logout_redirect_uri: '', state: '', id_token_hint: '' }), { client: null, location: null, params: {} }, 'an empty value is no value');
});

t.test('a registered post_logout_redirect_uri with client_id: the location, with state added and an existing query kept', async (t) => {
  const request = await judge({ client_id: 'web', post_logout_redirect_uri: BYE, state: 'xyz 1&2' });
  t.equal(request.client?.clientId, 'web');
  t.equal(request.location, `${BYE}?state=xyz+1%262`);
  t.same(request.params, { client_id: 'web', post_logout_redirect_uri: BYE, state: 'xyz 1&2' });
  t.equal((await judge({ client_id: 'web', post_logout_redirect_uri: BYE_WITH_QUERY, state: 's' })).location, `${BYE_WITH_QUERY}&state=s`);
  t.equal((await judge({ client_id: 'web', post_logout_redirect_uri: BYE })).location, BYE, 'no state: the URI as registered');
  t.equal((await judge({ client_id: 'web', state: 's' })).location, null, 'state alone goes nowhere');
});

t.test('a post_logout_redirect_uri must be registered for the client, exactly; never without a client', async (t) => {
  for (const uri of [
    'https://app.example.com/bye/',
    'https://app.example.com/BYE',
    'https://app.example.com/bye?x=1',
    'https://APP.example.com/bye',
    'https://app.example.com:443/bye',
    'https://app.example.com/byebye',
    'http://127.0.0.1:9999/bye',
    'https://other.example.com/bye',
    'https://evil.example/bye',
  ]) {
    await refused(t, { client_id: 'web', post_logout_redirect_uri: uri }, /not one this client registered/);
  }
  await refused(t, { post_logout_redirect_uri: BYE }, /needs client_id or id_token_hint/);
  await refused(t, { post_logout_redirect_uri: BYE, state: 's' }, /needs client_id or id_token_hint/);
  await refused(t, { client_id: 'nobody', post_logout_redirect_uri: BYE }, /names no client/);
  await refused(t, { client_id: 'nobody' }, /names no client/);
});

t.test('id_token_hint: names the user and the client; with client_id, they must agree', async (t) => {
  const byHint = await judge({ id_token_hint: ALICE_AT_WEB, post_logout_redirect_uri: BYE, state: 's' });
  t.equal(byHint.client?.clientId, 'web', "the hint's aud names the client");
  t.equal(byHint.hintSubject, 'alice');
  t.equal(byHint.location, `${BYE}?state=s`);
  t.equal((await judge({ id_token_hint: ALICE_AT_WEB, client_id: 'web', post_logout_redirect_uri: BYE })).location, BYE, 'both, agreeing');
  await refused(t, { id_token_hint: ALICE_AT_WEB, client_id: 'other' }, /not the client the id_token_hint was issued to/);
  await refused(t, { id_token_hint: ALICE_AT_WEB, client_id: 'other', post_logout_redirect_uri: 'https://other.example.com/bye' }, /not the client the id_token_hint/);
  await refused(t, { id_token_hint: ALICE_AT_WEB, post_logout_redirect_uri: 'https://other.example.com/bye' }, /not one this client registered/);

  // Several audiences: the hint alone names no one client; client_id picks one of them.
  t.equal((await judge({ id_token_hint: ALICE_AT_BOTH })).client, null);
  await refused(t, { id_token_hint: ALICE_AT_BOTH, post_logout_redirect_uri: BYE }, /needs client_id/);
  t.equal((await judge({ id_token_hint: ALICE_AT_BOTH, client_id: 'other', post_logout_redirect_uri: 'https://other.example.com/bye' })).client?.clientId, 'other');

  // The client the hint was issued to is gone: the hint still names the user, but there is nowhere to go.
  t.match(await judge({ id_token_hint: ALICE_AT_GONE }), { client: null, hintSubject: 'alice', location: null });
  await refused(t, { id_token_hint: ALICE_AT_GONE, post_logout_redirect_uri: BYE }, /needs client_id/);
});

t.test('an id_token_hint this server did not issue, or not a JWT at all, is refused', async (t) => {
  for (const hint of [FORGED, 'not-a-jwt', 'a.b', 'a.b.c.d', `${'a'.repeat(5000)}.${'b'.repeat(3000)}.c`]) {
    await refused(t, { id_token_hint: hint, client_id: 'web' }, /not an ID token issued by this server|too long/);
  }
  let asked = 0;
  await refused(t, { id_token_hint: 'not-a-jwt' }, /not an ID token/, { ...deps, idTokenHint: async () => (asked++, null) });
  t.equal(asked, 0, 'a value that is not even JWT-shaped is never verified');
});

t.test('every parameter once, and bounded; logout_hint and ui_locales accepted and not used', async (t) => {
  for (const name of ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'logout_hint', 'ui_locales']) {
    await refused(t, { [name]: ['a', 'b'] }, new RegExp(`${name} must be sent once`));
    await refused(t, { [name]: 'x'.repeat(9000) }, new RegExp(`${name} is too long`));
  }
  await refused(t, { client_id: { nested: 'web' } }, /client_id must be sent once/);
  const ignored = await judge({ client_id: 'web', logout_hint: 'alice@example.com', ui_locales: 'fr de', other: ['x', 'y'] });
  t.same(ignored.params, { client_id: 'web' }, 'only the parameters that decide anything are carried to the confirmation');
  t.equal((await judge({ state: 'x'.repeat(4096) })).location, null, 'the longest state');
  await refused(t, { state: 'x'.repeat(4097) }, /state is too long \(at most 4096/);
  t.match(await judge(null), { client: null }, 'no body');
});

t.test('an unusable metadata document is this request’s error; a store outage stays an outage', async (t) => {
  const documentRefused = { ...deps, findClient: async () => Promise.reject(new OAuthError('invalid_client', 'The client metadata document at https://x cannot be used: it is not JSON.')) };
  await refused(t, { client_id: 'https://x.example/c.json' }, /cannot be used/, documentRefused);
  const down = { ...deps, findClient: async () => Promise.reject(new UnavailableError('database')) };
  await t.rejects(judge({ client_id: 'web' }, down), { name: 'UnavailableError', error: 'temporarily_unavailable' });
  const hintDown = { ...deps, idTokenHint: async () => Promise.reject(new UnavailableError('database')) };
  await t.rejects(judge({ id_token_hint: ALICE_AT_WEB }, hintDown), { name: 'UnavailableError' });
});
