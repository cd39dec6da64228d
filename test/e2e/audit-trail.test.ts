/**
 * The audit trail end to end (SPEC "Accounts and brute force", issue 11):
 * each kind of event appears with the right actor, subject, outcome and
 * address after the action, whether it came through the admin API, the
 * console (over inject), the CLI or the OAuth and browser endpoints; the
 * filters and paging of `GET /admin/events`, the console page and `events
 * list`; no secret in any stored event; a failing insert that does not fail
 * the request; pruning on an injected clock.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Secret, TOTP } from 'otpauth';
import t, { type Test } from 'tap';
import { AUDIT_EVENT_TYPES } from '../../src/audit/events.js';
import { runCli } from '../../src/admin/cli/run.js';
import { handleControlRequest } from '../../src/admin/control.js';
import type { Services } from '../../src/services.js';
import { hashRefreshToken } from '../../src/tokens/refresh-tokens.js';
import { buildTestApp, enrolSecondFactor, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { authorizePath, hiddenFields, InjectBrowser, loginAndConsent, pkcePair } from '../helpers/browser-flow.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';
import { basic, postForm, userBasic } from '../helpers/tokens.js';

interface WireEvent {
  id: string;
  occurred_at: string;
  type: string;
  outcome: string;
  actor: { type: string; id: string | null; username: string | null };
  subject: { type: string; id: string } | null;
  client_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}
interface EventList {
  items: WireEvent[];
  total: number;
  limit: number;
  offset: number;
}

const ROOT_PASSWORD = 'root admin passphrase 1';
const ERIN_PASSWORD = 'erin passphrase is long';
const ADMIN_IP = '203.0.113.7';
/** Where the tests read the trail from: each read is an admin sign-in (recorded) of its own. */
const READER_IP = '203.0.113.99';
const REDIRECT = 'https://app.example/cb';

async function cli(services: Services, argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), readStdin: async () => '' }, { services });
  return { code, stdout, stderr };
}

t.test(`audit trail (${backendName})`, async (t) => {
  const slept: number[] = [];
  const { app, services, storage } = await buildTestApp(t, {
    env: { MAX_FAILED_ATTEMPTS: '3' },
    // The slow-down is recorded, not waited out.
    serviceOptions: { sleep: async (ms) => void slept.push(ms) },
  });
  const root = await seedUser(services, { username: 'root', password: ROOT_PASSWORD, roles: ['admin'] });
  const erin = await seedUser(services, { username: 'erin', password: ERIN_PASSWORD });
  const rootActor = { type: 'user', id: root.id, username: 'root' };
  /** Every secret the tests see: none may appear in any stored event. */
  const secrets = new Set<string>([ROOT_PASSWORD, ERIN_PASSWORD]);

  const api = (method: string, url: string, payload?: unknown, remoteAddress = ADMIN_IP) =>
    app.inject({ method: method as 'GET', url, remoteAddress, headers: { authorization: userBasic('root', ROOT_PASSWORD) }, ...(payload === undefined ? {} : { payload: payload as string }) });
  /** `GET /admin/events` (after the background writes of sign-ins are in). */
  const read = async (query: Record<string, string> = {}): Promise<EventList> => {
    await services.audit.flush();
    const res = await api('GET', `/admin/events?${new URLSearchParams({ limit: '200', ...query }).toString()}`, undefined, READER_IP);
    if (res.statusCode !== 200) throw new Error(`GET /admin/events: ${res.statusCode} ${res.body}`);
    return res.json<EventList>();
  };
  const events = read;
  const types = (list: EventList) => list.items.map((e) => e.type);

  let clientId = '';
  /** The client's current secret (after its rotation). */
  let clientSecret = '';

  await t.test('admin API: a client registered, changed, its secret rotated, as the admin from their address', async (t) => {
    const created = await api('POST', '/admin/clients', {
      client_name: 'Audit app',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token', 'password'],
      scope: 'openid api:read',
    });
    t.equal(created.statusCode, 201);
    clientId = created.json<{ client_id: string; client_secret: string }>().client_id;
    secrets.add(created.json<{ client_secret: string }>().client_secret);
    t.equal((await api('PATCH', `/admin/clients/${clientId}`, { redirect_uris: [REDIRECT, 'https://app.example/cb2'] })).statusCode, 200);
    t.equal((await api('PATCH', `/admin/clients/${clientId}`, { client_name: 'Audit app' })).statusCode, 200, 'a change that changes nothing');
    const rotated = await api('POST', `/admin/clients/${clientId}/secret`);
    t.equal(rotated.statusCode, 200);
    clientSecret = rotated.json<{ client_secret: string }>().client_secret;
    secrets.add(clientSecret);

    const list = await events({ subject: clientId });
    t.same(types(list), ['client.secret_rotated', 'client.updated', 'client.created'], 'newest first; the empty change is not recorded');
    for (const e of list.items) {
      t.match(e, { outcome: 'success', actor: rootActor, subject: { type: 'client', id: clientId }, client_id: clientId, ip: ADMIN_IP });
    }
    t.same(list.items[1]!.details, { client_name: 'Audit app', fields: ['redirect_uris'] });
    t.match(list.items[2]!.details, { client_name: 'Audit app', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token', 'password'] });
  });

  await t.test('initial access tokens created and revoked by the admin; a client registering itself is anonymous, from its address', async (t) => {
    const created = await api('POST', '/admin/initial-access-tokens', { description: 'for a partner', max_uses: 3 });
    t.equal(created.statusCode, 201);
    const { id, token } = created.json<{ id: string; token: string }>();
    secrets.add(token);
    t.equal((await api('DELETE', `/admin/initial-access-tokens/${id}`)).statusCode, 204);
    const list = await events({ subject: id });
    t.same(types(list), ['initial_access_token.revoked', 'initial_access_token.created']);
    for (const e of list.items) t.match(e, { actor: rootActor, subject: { type: 'initial_access_token', id }, ip: ADMIN_IP, details: { description: 'for a partner' } });
    t.match(list.items[1]!.details, { max_uses: 3 });

    const registered = await app.inject({ method: 'POST', url: '/oauth/register', remoteAddress: '10.9.9.9', payload: { client_name: 'Self-registered', redirect_uris: ['https://self.example/cb'] } });
    t.equal(registered.statusCode, 201);
    const { client_id: selfId, registration_access_token: rat } = registered.json<{ client_id: string; registration_access_token: string }>();
    secrets.add(rat);
    const own = await events({ subject: selfId });
    t.match(own.items, [{ type: 'client.created', actor: { type: 'anonymous', id: null, username: null }, ip: '10.9.9.9', details: { origin: 'dynamic', client_name: 'Self-registered' } }]);
  });

  await t.test('admin API: a user created, changed (which fields), password changed, disabled, enabled, deleted', async (t) => {
    const created = await api('POST', '/admin/users', { username: 'audited', password: 'first password of audited', roles: ['support'] });
    t.equal(created.statusCode, 201);
    secrets.add('first password of audited');
    const id = created.json<{ id: string }>().id;
    const patched = await api('PATCH', `/admin/users/${id}`, { email: 'audited@example.com', roles: ['auditor', 'support'], password: 'second password of audited', disabled: true });
    t.equal(patched.statusCode, 200);
    secrets.add('second password of audited');
    t.equal((await api('PATCH', `/admin/users/${id}`, { disabled: false })).statusCode, 200);
    t.equal((await api('PATCH', `/admin/users/${id}`, { disabled: false })).statusCode, 200, 'enabling an enabled user changes nothing');
    t.equal((await api('DELETE', `/admin/users/${id}`)).statusCode, 204);

    const list = await events({ subject: id });
    t.same(types(list), ['user.deleted', 'user.enabled', 'user.disabled', 'user.password_changed', 'user.updated', 'user.created']);
    for (const e of list.items) t.match(e, { outcome: 'success', actor: rootActor, subject: { type: 'user', id }, ip: ADMIN_IP, details: { username: 'audited' } });
    t.same(list.items[4]!.details, { username: 'audited', fields: ['email', 'roles'], roles: ['auditor', 'support'] }, 'the fields, the new roles; not the email');
    t.same(list.items[5]!.details, { username: 'audited', roles: ['support'] });
  });

  await t.test('sign-ins: success and failure on every path, throttling and the slow-down', async (t) => {
    const browser = new InjectBrowser(app, '198.51.100.1');
    const form = await browser.get('/login');
    t.equal((await browser.post('/login', { ...hiddenFields(form.body, '/login'), username: 'erin', password: 'wrong password 1' })).statusCode, 400);
    secrets.add('wrong password 1');
    const [failed] = (await events({ type: 'sign_in.failed', actor: 'erin' })).items;
    t.match(failed, {
      outcome: 'failure',
      actor: { type: 'user', id: null, username: 'erin' },
      subject: null,
      client_id: null,
      ip: '198.51.100.1',
      details: { source: 'login_form', reason: 'invalid_credentials' },
    });

    // Unknown, long and marked-up usernames at the admin API: recorded as typed, cut to 64 characters.
    for (const username of ['x'.repeat(100), '<b>bold</b>']) {
      const res = await app.inject({ method: 'GET', url: '/admin/users', remoteAddress: '198.51.100.2', headers: { authorization: userBasic(username, 'nope nope nope') } });
      t.equal(res.statusCode, 401);
    }
    const typed = (await events({ type: 'sign_in.failed' })).items.filter((e) => e.ip === '198.51.100.2');
    t.same(typed.map((e) => e.actor.username), ['<b>bold</b>', 'x'.repeat(64)]);
    t.same(typed.map((e) => e.details.source), ['admin_api', 'admin_api']);

    const granted = await postForm(app, '/token', { grant_type: 'password', username: 'erin', password: ERIN_PASSWORD, scope: 'api:read' }, {
      authorization: basic(clientId, clientSecret),
      remoteAddress: '198.51.100.3',
    });
    t.equal(granted.statusCode, 200);
    const [grant] = (await events({ type: 'sign_in.succeeded', actor: erin.id })).items;
    t.match(grant, {
      outcome: 'success',
      actor: { type: 'user', id: erin.id, username: 'erin' },
      subject: { type: 'user', id: erin.id },
      client_id: clientId,
      ip: '198.51.100.3',
      details: { source: 'password_grant' },
    });
    t.notOk('slowed_ms' in grant!.details);

    const adminBasic = (await events({ type: 'sign_in.succeeded', actor: 'root' })).items.find((e) => e.ip === ADMIN_IP);
    t.match(adminBasic, { actor: rootActor, details: { source: 'admin_api' } });

    const dora = await seedUser(services, { username: 'dora', password: 'dora passphrase long' });
    await services.users.update(dora.id, { disabled: true });
    const doraLogin = new InjectBrowser(app, '198.51.100.4');
    const doraForm = await doraLogin.get('/login');
    await doraLogin.post('/login', { ...hiddenFields(doraForm.body, '/login'), username: 'dora', password: 'dora passphrase long' });
    t.match((await events({ type: 'sign_in.failed', actor: dora.id })).items, [{ actor: { id: dora.id }, subject: { type: 'user', id: dora.id }, details: { reason: 'disabled' } }]);

    // Three wrong passwords from one address use up its attempts at erin; the fourth is refused
    // unchecked. The third is already slowed down: erin has three failures in the window by then.
    const guesser = new InjectBrowser(app, '198.51.100.5');
    for (let i = 0; i < 4; i++) {
      const page = await guesser.get('/login');
      const res = await guesser.post('/login', { ...hiddenFields(page.body, '/login'), username: 'erin', password: `guess ${i} of many` });
      secrets.add(`guess ${i} of many`);
      t.equal(res.statusCode, i < 3 ? 400 : 429);
    }
    t.match((await events({ type: 'sign_in.throttled' })).items, [{ outcome: 'failure', actor: { id: null, username: 'erin' }, ip: '198.51.100.5', details: { source: 'login_form' } }]);
    const guesses = (await events({ type: 'sign_in.failed', actor: 'erin' })).items.filter((e) => e.ip === '198.51.100.5');
    t.same(guesses.map((e) => e.details.slowed_ms), [250, undefined, undefined], 'newest first: the third guess waited 250 ms');

    // Four failures at erin in the window: the next check, from anywhere, is slowed down (and says so).
    const real = new InjectBrowser(app, '198.51.100.6');
    const page = await real.get('/login');
    t.equal((await real.post('/login', { ...hiddenFields(page.body, '/login'), username: 'erin', password: ERIN_PASSWORD })).statusCode, 303);
    const [slowed] = (await events({ type: 'sign_in.succeeded', actor: 'erin' })).items;
    t.match(slowed, { ip: '198.51.100.6', details: { source: 'login_form', slowed_ms: 500 } });
    t.same(slept, [250, 500], 'the delays recorded are the delays applied');
  });

  await t.test('consent granted on the consent page (the person, their address); revoked through the admin API (the admin)', async (t) => {
    const browser = new InjectBrowser(app, '198.51.100.7');
    const pkce = pkcePair();
    const path = authorizePath({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid api:read', state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256' });
    const result = await loginAndConsent(browser, path, { username: 'erin', password: ERIN_PASSWORD });
    t.ok(result.sawConsent);
    secrets.add(result.params.get('code')!);
    t.match((await events({ type: 'consent.granted' })).items, [
      { actor: { type: 'user', id: erin.id, username: 'erin' }, subject: { type: 'user', id: erin.id }, client_id: clientId, ip: '198.51.100.7', details: { scopes: ['openid', 'api:read'] } },
    ]);
    t.equal((await api('DELETE', `/admin/users/${erin.id}/consents/${clientId}`)).statusCode, 204);
    t.match((await events({ type: 'consent.' })).items, [{ type: 'consent.revoked', actor: rootActor, subject: { type: 'user', id: erin.id }, client_id: clientId, ip: ADMIN_IP }, { type: 'consent.granted' }]);
  });

  await t.test('refresh-token reuse: the family revoked, recorded with the client, the address and the user', async (t) => {
    const auth = { authorization: basic(clientId, clientSecret), remoteAddress: '198.51.100.8' };
    const first = await postForm(app, '/token', { grant_type: 'password', username: 'erin', password: ERIN_PASSWORD, scope: 'api:read' }, auth);
    t.equal(first.statusCode, 200);
    const tokens = first.json<{ access_token: string; refresh_token: string }>();
    const second = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, auth);
    t.equal(second.statusCode, 200);
    const reuse = await postForm(app, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, auth);
    t.equal(reuse.statusCode, 400);
    for (const v of [tokens.access_token, tokens.refresh_token, second.json<{ access_token: string }>().access_token, second.json<{ refresh_token: string }>().refresh_token]) secrets.add(v);
    const familyId = (await storage.refreshTokens.findByHash(hashRefreshToken(tokens.refresh_token)))!.familyId;
    t.match((await events({ type: 'refresh_token.reuse_detected' })).items, [
      { outcome: 'failure', actor: { type: 'system', id: null, username: null }, subject: { type: 'family', id: familyId }, client_id: clientId, ip: '198.51.100.8', details: { user_id: erin.id } },
    ]);
  });

  await t.test('token exchange: the delegation recorded with the acting client, the user, the scope and the audience', async (t) => {
    const subject = await postForm(app, '/token', { grant_type: 'password', username: 'erin', password: ERIN_PASSWORD, scope: 'api:read' }, { authorization: basic(clientId, clientSecret) });
    const { client: agent, clientSecret: agentSecret } = await services.clients.register({ client_name: 'Agent', grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange'], scope: 'api:read' });
    const audience = `${services.config.issuer}/mcp`;
    const exchanged = await postForm(
      app,
      '/token',
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subject.json<{ access_token: string }>().access_token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        resource: audience,
      },
      { authorization: basic(agent.clientId, agentSecret!), remoteAddress: '198.51.100.10' },
    );
    t.equal(exchanged.statusCode, 200, exchanged.body);
    for (const v of [subject.json<{ access_token: string }>().access_token, exchanged.json<{ access_token: string }>().access_token, agentSecret!]) secrets.add(v);
    t.match((await events({ type: 'token.exchanged' })).items, [
      { outcome: 'success', actor: { type: 'anonymous' }, subject: { type: 'user', id: erin.id }, client_id: agent.clientId, ip: '198.51.100.10', details: { scope: 'api:read', resource: audience, actors: [] } },
    ]);
  });

  await t.test('the console: changes recorded as the signed-in admin; the Events page filters, escapes and pages', async (t) => {
    const browser = new InjectBrowser(app, '198.51.100.9');
    const form = await browser.get('/admin/console/sign-in');
    t.equal((await browser.post('/admin/console/sign-in', { ...hiddenFields(form.body), username: 'root', password: ROOT_PASSWORD })).statusCode, 303);
    t.match((await events({ type: 'sign_in.succeeded', actor: 'root' })).items.find((e) => e.ip === '198.51.100.9'), { details: { source: 'admin_console' } });

    const newForm = await browser.get('/admin/console/clients/new');
    const registered = await browser.post('/admin/console/clients', {
      ...hiddenFields(newForm.body, '/admin/console/clients'),
      client_name: 'Console app',
      redirect_uris: 'https://console.example/cb',
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: ['openid'],
    });
    t.equal(registered.statusCode, 201);
    const consoleClient = /id="client-id">([^<]+)</.exec(registered.body)![1]!;
    secrets.add(/id="client-secret">([^<]+)</.exec(registered.body)![1]!);
    const settings = await browser.get(`/admin/console/clients/${consoleClient}`);
    const rotated = await browser.post(`/admin/console/clients/${consoleClient}/secret`, hiddenFields(settings.body, `/admin/console/clients/${consoleClient}/secret`));
    t.equal(rotated.statusCode, 200);
    secrets.add(/id="client-secret">([^<]+)</.exec(rotated.body)![1]!);
    const userPage = await browser.get(`/admin/console/users/${erin.id}`);
    t.equal((await browser.post(`/admin/console/users/${erin.id}/roles`, { ...hiddenFields(userPage.body, `/admin/console/users/${erin.id}/roles`), roles: 'support' })).statusCode, 303);
    t.equal((await browser.post(`/admin/console/users/${erin.id}/status`, { ...hiddenFields(userPage.body, `/admin/console/users/${erin.id}/status`), disabled: 'true' })).statusCode, 303);

    const consoleIp = { actor: rootActor, ip: '198.51.100.9' };
    t.match((await events({ client_id: consoleClient })).items, [
      { type: 'client.secret_rotated', ...consoleIp },
      { type: 'client.created', ...consoleIp, details: { client_name: 'Console app' } },
    ]);
    t.match((await events({ subject: erin.id, type: 'user.' })).items, [
      { type: 'user.disabled', ...consoleIp },
      { type: 'user.updated', ...consoleIp, details: { fields: ['roles'], roles: ['support'] } },
    ]);

    const page = await browser.get('/admin/console/events?type=client.&outcome=success');
    t.equal(page.statusCode, 200);
    t.match(page.body, /<a href="\/admin\/console\/events">Events<\/a>/, 'in the nav');
    t.match(page.body, /client\.secret_rotated/);
    t.notMatch(page.body, /type=user\.disabled">user\.disabled</, 'filtered');
    t.match(page.body, /<option value="success" selected>/, 'the filters are kept in the form');
    const failures = await browser.get('/admin/console/events?type=sign_in.failed');
    t.ok(failures.body.includes('&lt;b&gt;bold&lt;/b&gt;'), 'a typed username is escaped');
    t.notOk(failures.body.includes('<b>bold</b>'));

    for (let i = 0; i < 55; i++) await services.audit.record({ type: 'key.rotated', actor: { type: 'system' }, subject: { type: 'key', id: `paging-${i}` } });
    const first = await browser.get('/admin/console/events?type=key.rotated&subject=');
    t.match(first.body, /Page 1 of 2 \(55\)/);
    t.match(first.body, /paging-54/, 'newest first');
    const next = /href="([^"]+)" rel="next"/.exec(first.body)![1]!.replace(/&amp;/g, '&');
    t.same(Object.fromEntries(new URL(next, 'http://x').searchParams), { type: 'key.rotated', page: '2' }, 'the next page keeps the filter');
    const second = await browser.get(next);
    t.match(second.body, /paging-0</);
    t.notMatch(second.body, /paging-54</);

    const bad = await browser.get('/admin/console/events?since=last+tuesday');
    t.equal(bad.statusCode, 400);
    t.match(bad.body, /since must be an ISO 8601 date/);
    t.match(bad.body, /value="last tuesday"/, 'what was typed is kept');
    const impossible = await browser.get('/admin/console/events?since=2026-02-30');
    t.equal(impossible.statusCode, 400, 'a day the month does not have is refused, not rolled over');
    t.match(impossible.body, /since is not a valid date/);
  });

  await t.test('the CLI: changes recorded as cli; events list', async (t) => {
    const created = await cli(services, ['clients', 'create', '--name', 'CLI app', '--grant', 'client_credentials', '--scope', 'api:read', '--json']);
    t.equal(created.code, 0, created.stderr);
    const cliClient = JSON.parse(created.stdout) as { client_id: string; client_secret: string };
    secrets.add(cliClient.client_secret);
    const rotated = await cli(services, ['clients', 'rotate-secret', cliClient.client_id, '--json']);
    secrets.add((JSON.parse(rotated.stdout) as { client_secret: string }).client_secret);
    t.equal((await cli(services, ['clients', 'delete', cliClient.client_id])).code, 0);
    t.equal((await cli(services, ['users', 'create', '--username', 'cliuser', '--password', 'cli user passphrase'])).code, 0);
    secrets.add('cli user passphrase');
    t.equal((await cli(services, ['users', 'update', 'cliuser', '--password', 'cli user passphrase 2', '--disable'])).code, 0);
    secrets.add('cli user passphrase 2');
    t.equal((await cli(services, ['users', 'delete', 'cliuser'])).code, 0);
    const key = await cli(services, ['keys', 'rotate', '--json']);
    t.equal(key.code, 0, key.stderr);
    const kid = (JSON.parse(key.stdout) as { kid: string }).kid;

    const cliActor = { type: 'cli', id: null, username: null };
    t.match((await events({ client_id: cliClient.client_id })).items, [
      { type: 'client.deleted', actor: cliActor, ip: null },
      { type: 'client.secret_rotated', actor: cliActor },
      { type: 'client.created', actor: cliActor },
    ]);
    t.same(types(await events({ actor: 'cliuser', type: 'user.' })), [], 'the CLI acted, not the user');
    const keyEvents = await cli(services, ['events', 'list', '--type', 'key.', `--subject=${kid}`, '--json']);
    t.equal(keyEvents.code, 0, keyEvents.stderr);
    t.match(JSON.parse(keyEvents.stdout), { total: 1, items: [{ type: 'key.rotated', actor: cliActor, subject: { type: 'key', id: kid }, details: { alg: 'ES256' } }] });

    const text = await cli(services, ['events', 'list', '--type', 'user.', '--limit', '3']);
    t.equal(text.code, 0, text.stderr);
    t.match(text.stdout, /^TIME\s+TYPE\s+OUTCOME\s+ACTOR\s+SUBJECT\s+CLIENT\s+IP\s+DETAILS\n/);
    t.match(text.stdout, /user\.deleted\s+success\s+cli\s+user:\S+\s+-\s+-\s+username=cliuser/);
    t.match(text.stdout, /\n3 of \d+ event\(s\)\n$/);
    const bad = await cli(services, ['events', 'list', '--since', 'soon']);
    t.equal(bad.code, 2, 'a malformed filter is a usage error');
    t.match(bad.stderr, /since must be an ISO 8601 date/);
    const impossible = await cli(services, ['events', 'list', '--since', '2026-02-30']);
    t.equal(impossible.code, 2, 'so is an impossible date');
    t.match(impossible.stderr, /since is not a valid date/);

    // While a server holds the embedded database, the CLI's commands run inside it (control socket): still the CLI's.
    const token = 'control-token';
    const viaServer = await handleControlRequest(services, token, JSON.stringify({ token, group: 'keys', command: 'rotate', args: { values: { alg: 'RS256' }, positionals: [] } }));
    t.equal(viaServer.ok, true);
    const listed = await handleControlRequest(services, token, JSON.stringify({ token, group: 'events', command: 'list', args: { values: { type: 'key.rotated', limit: '1' }, positionals: [] } }));
    t.match(listed, { ok: true, result: { data: { items: [{ type: 'key.rotated', actor: cliActor, details: { alg: 'RS256' } }] } } }, 'the newest key event');
  });

  await t.test('sign-up: the new account is its own creator; the bootstrap admin is the system', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/register', remoteAddress: '198.51.100.10', payload: { username: 'newcomer', password: 'newcomer passphrase' } });
    t.equal(res.statusCode, 201);
    secrets.add('newcomer passphrase');
    const id = res.json<{ id: string }>().id;
    t.match((await events({ subject: id })).items, [{ type: 'user.created', actor: { type: 'user', id, username: 'newcomer' }, ip: '198.51.100.10', details: { username: 'newcomer', roles: [] } }]);

    const boot = await services.users.ensureAdmin({ adminUsername: 'bootadmin', adminPassword: 'boot admin passphrase' });
    secrets.add('boot admin passphrase');
    await services.users.ensureAdmin({ adminUsername: 'bootadmin', adminPassword: 'boot admin passphrase 2' });
    secrets.add('boot admin passphrase 2');
    t.match((await events({ subject: boot!.user.id })).items, [
      { type: 'user.password_changed', actor: { type: 'system', id: null, username: null }, ip: null },
      { type: 'user.created', actor: { type: 'system' }, details: { roles: ['admin'] } },
    ]);
  });

  await t.test('the account page: the user signs out their other sessions (user.sessions_ended, as the user)', async (t) => {
    const person = await seedUser(services, { username: 'sessionful', password: 'sessionful passphrase' });
    secrets.add('sessionful passphrase');
    const signIn = async (ip: string) => {
      const browser = new InjectBrowser(app, ip);
      const form = await browser.get('/login');
      await browser.post('/login', { ...hiddenFields(form.body, '/login'), username: 'sessionful', password: 'sessionful passphrase' });
      return browser;
    };
    await signIn('198.51.100.21');
    const here = await signIn('198.51.100.22');
    const page = await here.get('/account');
    t.equal((await here.post('/account/sessions/end-others', { csrf_token: hiddenFields(page.body, '/account/sessions/end-others').csrf_token! })).statusCode, 303);
    t.match((await events({ subject: person.id, type: 'user.sessions_ended' })).items, [
      { type: 'user.sessions_ended', actor: { type: 'user', id: person.id, username: 'sessionful' }, ip: '198.51.100.22', details: { username: 'sessionful', reason: 'signed_out_elsewhere' } },
    ]);
  });

  await t.test('passkeys: added, used, a clone detected, removed; as the person, from their address', async (t) => {
    const ip = '198.51.100.20';
    const frank = await seedUser(services, { username: 'frank', password: 'frank passphrase is long' });
    secrets.add('frank passphrase is long');
    const browser = new InjectBrowser(app, ip);
    const login = await browser.get('/login');
    t.equal((await browser.post('/login', { ...hiddenFields(login.body, '/login'), username: 'frank', password: 'frank passphrase is long' })).statusCode, 303);
    const csrf = hiddenFields((await browser.get('/account')).body, '/logout').csrf_token!;
    const authenticator = new SoftAuthenticator('http://localhost:3000');
    const options = await browser.postJson('/account/passkeys/options', {}, { 'x-csrf-token': csrf });
    const { credential, response } = authenticator.create(options.json());
    const added = await browser.postJson('/account/passkeys', { response, name: 'Frank phone' }, { 'x-csrf-token': csrf });
    t.equal(added.statusCode, 201);
    const signIn = async (signCount: number) => {
      const other = new InjectBrowser(app, ip);
      const token = hiddenFields((await other.get('/login')).body, '/login').csrf_token!;
      const opts = await other.postJson('/login/passkey/options', {}, { 'x-csrf-token': token });
      return other.postJson('/login/passkey', { response: authenticator.get(opts.json(), credential, { signCount }) }, { 'x-csrf-token': token });
    };
    t.equal((await signIn(2)).statusCode, 200);
    t.equal((await signIn(1)).statusCode, 403);
    t.equal((await browser.post(`/account/passkeys/${added.json<{ id: string }>().id}/remove`, { csrf_token: csrf })).statusCode, 303);

    const frankActor = { type: 'user', id: frank.id, username: 'frank' };
    const passkey = { passkey_name: 'Frank phone', credential_id: credential.id };
    t.match((await events({ subject: frank.id, since: new Date(Date.now() - 60_000).toISOString() })).items.filter((e) => e.type.startsWith('passkey.') || e.details.source === 'passkey'), [
      { type: 'passkey.removed', actor: frankActor, ip, details: passkey },
      { type: 'sign_in.failed', outcome: 'failure', actor: frankActor, ip, details: { source: 'passkey', reason: 'counter_went_back', ...passkey } },
      { type: 'passkey.clone_detected', outcome: 'failure', actor: frankActor, details: { stored_counter: 2, presented_counter: 1, ...passkey } },
      { type: 'sign_in.succeeded', actor: frankActor, ip, details: { source: 'passkey', ...passkey } },
      { type: 'passkey.added', actor: frankActor, ip, subject: { type: 'user', id: frank.id }, details: { username: 'frank', ...passkey } },
    ]);
  });

  await t.test('the second factor: set up, a recovery code used, new codes, removed by its user; reset by the admin and the CLI; wrong codes and the throttle', async (t) => {
    const ip = '198.51.100.30';
    const password = 'gwen passphrase is long';
    const gwen = await seedUser(services, { username: 'gwen', password });
    secrets.add(password);
    const signIn = async () => {
      const browser = new InjectBrowser(app, ip);
      const login = await browser.get('/login');
      return { browser, res: await browser.post('/login', { ...hiddenFields(login.body, '/login'), username: 'gwen', password }) };
    };
    const { browser } = await signIn();
    const setup = await browser.get('/account/authenticator');
    const secret = /<code id="totp-secret">([A-Z2-7]+)<\/code>/.exec(setup.body)![1]!;
    secrets.add(secret);
    const codeAt = (ms: number) => new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: ms });
    const enrolled = await browser.post('/account/authenticator', { ...hiddenFields(setup.body, '/account/authenticator'), code: codeAt(Date.now()) });
    const recoveryCodes = [...enrolled.body.matchAll(/<code class="recovery-code">([A-Z2-7-]+)<\/code>/g)].map((m) => m[1]!);
    t.equal(recoveryCodes.length, 10);
    for (const code of recoveryCodes) secrets.add(code).add(code.replace(/-/g, ''));

    // Signing in with a recovery code: the password first, then the code.
    const other = await signIn();
    const codePage = await other.browser.get(other.res.headers.location as string);
    t.equal((await other.browser.post('/login/second-factor', { ...hiddenFields(codePage.body, '/login/second-factor'), code: recoveryCodes[0]! })).statusCode, 303);

    // New codes with a code of the next time step (the enrolment used up this one), then removed with the password.
    const account = await browser.get('/account');
    const regenerated = await browser.post('/account/authenticator/recovery-codes', { ...hiddenFields(account.body, '/account/authenticator/recovery-codes'), code: codeAt(Date.now() + 30_000) });
    t.equal(regenerated.statusCode, 200);
    for (const [, code] of regenerated.body.matchAll(/<code class="recovery-code">([A-Z2-7-]+)<\/code>/g)) secrets.add(code!).add(code!.replace(/-/g, ''));
    t.equal((await browser.post('/account/authenticator/remove', { ...hiddenFields(account.body, '/account/authenticator/remove'), password })).statusCode, 303);

    // Lost: reset by the admin (API), then, set up again, by the CLI.
    secrets.add((await enrolSecondFactor(services, gwen.id)).secret);
    t.equal((await api('DELETE', `/admin/users/${gwen.id}/second-factor`)).statusCode, 204);
    secrets.add((await enrolSecondFactor(services, gwen.id)).secret);
    t.equal((await cli(services, ['users', 'reset-second-factor', 'gwen'])).code, 0);

    // Set up once more; someone with the password guesses codes from elsewhere: three wrong
    // (MAX_FAILED_ATTEMPTS=3 here), then refused before any check.
    secrets.add((await enrolSecondFactor(services, gwen.id)).secret);
    const guesserIp = '198.51.100.31';
    const guesser = new InjectBrowser(app, guesserIp);
    const guessLogin = await guesser.get('/login');
    const guessCodePage = await guesser.get((await guesser.post('/login', { ...hiddenFields(guessLogin.body, '/login'), username: 'gwen', password })).headers.location as string);
    const guess = () => guesser.post('/login/second-factor', { ...hiddenFields(guessCodePage.body, '/login/second-factor'), code: '000000' });
    for (let i = 0; i < 3; i++) t.equal((await guess()).statusCode, 400, 'a wrong code');
    t.equal((await guess()).statusCode, 429, 'then refused');

    const gwenActor = { type: 'user', id: gwen.id, username: 'gwen' };
    const subject = { type: 'user', id: gwen.id };
    const details = { username: 'gwen' };
    const list = await events({ subject: gwen.id, type: 'second_factor.' });
    const guessed = { actor: gwenActor, ip: guesserIp, subject, details, outcome: 'failure' };
    t.match(list.items, [
      { type: 'second_factor.throttled', ...guessed },
      { type: 'second_factor.failed', ...guessed },
      { type: 'second_factor.failed', ...guessed },
      { type: 'second_factor.failed', ...guessed },
      { type: 'second_factor.added', actor: gwenActor },
      { type: 'second_factor.reset', actor: { type: 'cli', id: null, username: null }, ip: null, subject, details },
      { type: 'second_factor.added', actor: gwenActor },
      { type: 'second_factor.reset', outcome: 'success', actor: rootActor, ip: ADMIN_IP, subject, details },
      { type: 'second_factor.added', actor: gwenActor },
      { type: 'second_factor.removed', outcome: 'success', actor: gwenActor, ip, subject, details },
      { type: 'second_factor.recovery_codes_regenerated', outcome: 'success', actor: gwenActor, ip, subject, details },
      { type: 'second_factor.recovery_code_used', outcome: 'success', actor: gwenActor, ip, subject, details: { username: 'gwen', recovery_codes_left: 9 } },
      { type: 'second_factor.added', outcome: 'success', actor: gwenActor, ip, subject, details },
    ]);
    t.equal(list.items.length, 13);
    for (const e of list.items) t.same(Object.keys(e.details).sort(), e.type === 'second_factor.recovery_code_used' ? ['recovery_codes_left', 'username'] : ['username'], `${e.type}: no code, no secret`);
  });

  await t.test('identity providers changed by the admin; an upstream account linked and unlinked by its user', async (t) => {
    const providerSecret = 'upstream client secret of the audit test';
    secrets.add(providerSecret);
    t.equal((await api('POST', '/admin/identity-providers', { id: 'audited', issuer: 'https://login.example.com', client_id: 'us', client_secret: providerSecret, display_name: 'Audited' })).statusCode, 201);
    t.equal((await api('PATCH', '/admin/identity-providers/audited', { client_secret: `${providerSecret} 2`, display_name: 'Audited Corp' })).statusCode, 200);
    secrets.add(`${providerSecret} 2`);
    t.match((await events({ subject: 'audited' })).items, [
      { type: 'identity_provider.updated', actor: rootActor, ip: ADMIN_IP, details: { provider: 'audited', fields: ['client_secret', 'display_name'] } },
      { type: 'identity_provider.created', actor: rootActor, details: { provider: 'audited', issuer: 'https://login.example.com', display_name: 'Audited' } },
    ]);
    // What the relying party hands over once the provider's answer passed every check (identity-providers/relying-party.ts).
    const provider = await services.identityProviders.get('audited');
    const identity = { provider, subject: 'upstream-sub-1', email: null, emailVerified: false, preferredUsername: 'linked-one', returnTo: { rid: null, next: null } };
    const { user } = await services.linkedAccounts.resolve(identity, '198.51.100.20');
    t.match((await events({ type: 'identity.' })).items, [{ type: 'identity.linked', actor: { type: 'user', id: user.id }, ip: '198.51.100.20', details: { provider: 'audited', reason: 'created' } }]);
    await services.users.update(user.id, { password: 'now with a password 55' });
    secrets.add('now with a password 55');
    await services.linkedAccounts.unlink((await services.users.get(user.id)), 'audited', 'upstream-sub-1', '198.51.100.20');
    t.equal((await events({ type: 'identity.unlinked' })).items[0]?.details.provider, 'audited');
    t.equal((await api('DELETE', '/admin/identity-providers/audited')).statusCode, 204);
    t.equal((await events({ subject: 'audited' })).items[0]?.type, 'identity_provider.deleted');
  });

  await t.test('GET /admin/events: filters, paging, errors, and exactly the listed fields', async (t) => {
    // Reading the trail adds sign-ins to it: look at what happened before now.
    await services.audit.flush();
    const before = new Date(Date.now() + 1).toISOString();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const events = (query: Record<string, string>) => read({ until: before, ...query });
    const all = await events({ limit: '200' });
    t.ok(all.total >= 60);
    const times = all.items.map((e) => Date.parse(e.occurred_at));
    t.same(times, [...times].sort((a, b) => b - a), 'newest first');
    for (const e of all.items) t.same(Object.keys(e).sort(), ['actor', 'client_id', 'details', 'id', 'ip', 'occurred_at', 'outcome', 'subject', 'type']);

    const check = async (query: Record<string, string>, holds: (e: WireEvent) => boolean, what: string) => {
      const list = await events(query);
      t.ok(list.items.length > 0, `${what}: something matches`);
      t.ok(list.items.every(holds), `${what}: only matching events`);
      t.equal(list.total, all.items.filter(holds).length, `${what}: the total counts every match`);
    };
    await check({ type: 'sign_in.failed' }, (e) => e.type === 'sign_in.failed', 'exact type');
    await check({ type: 'user.' }, (e) => e.type.startsWith('user.'), 'type prefix');
    await check({ actor: root.id }, (e) => e.actor.id === root.id, 'actor by id');
    await check({ actor: 'ERIN' }, (e) => e.actor.username === 'erin', 'actor by username, any case');
    await check({ client_id: clientId }, (e) => e.client_id === clientId, 'client');
    await check({ outcome: 'failure' }, (e) => e.outcome === 'failure', 'outcome');
    await check({ subject: erin.id, outcome: 'success' }, (e) => e.subject?.id === erin.id && e.outcome === 'success', 'combined');
    const middle = all.items[Math.floor(all.items.length / 2)]!.occurred_at;
    await check({ since: middle }, (e) => e.occurred_at >= middle, 'since');
    await check({ until: middle }, (e) => e.occurred_at < middle, 'until');

    const a = await events({ limit: '3', offset: '0' });
    const b = await events({ limit: '3', offset: '3' });
    const ab = await events({ limit: '6', offset: '0' });
    t.same([...a.items, ...b.items].map((e) => e.id), ab.items.map((e) => e.id), 'pages follow each other');
    t.match(b, { limit: 3, offset: 3, total: ab.total });

    for (const [query, error] of [
      ['since=tomorrow', /since must be an ISO 8601/],
      ['since=2026-02-30', /since is not a valid date/],
      ['type=User', /must match pattern/],
      ['outcome=maybe', /must be equal to one of the allowed values/],
      ['limit=0', /must be >= 1/],
    ] as const) {
      const res = await api('GET', `/admin/events?${query}`);
      t.equal(res.statusCode, 400, query);
      t.match(res.json(), { error: 'invalid_request', error_description: error }, query);
    }
    t.equal((await app.inject({ method: 'GET', url: '/admin/events' })).statusCode, 401, 'same authentication as the rest');
  });

  await t.test('a device approved and another denied at /device (the person, their address)', async (t) => {
    const created = await api('POST', '/admin/clients', {
      client_name: 'Audit TV',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
      token_endpoint_auth_method: 'none',
      scope: 'api:read',
    });
    const tv = created.json<{ client_id: string }>().client_id;
    const dana = await seedUser(services, { username: 'dana', password: 'dana passphrase is long' });
    secrets.add(dana.password);
    const browser = new InjectBrowser(app, '198.51.100.12');
    const login = await browser.get((await browser.get('/device')).headers.location as string);
    await browser.post('/login', { ...hiddenFields(login.body, '/login'), username: 'dana', password: dana.password });
    for (const decision of ['allow', 'deny']) {
      const started = await app.inject({ method: 'POST', url: '/device_authorization', payload: `client_id=${tv}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      const { device_code, user_code } = started.json<{ device_code: string; user_code: string }>();
      secrets.add(device_code);
      secrets.add(user_code);
      const form = await browser.get('/device');
      const consent = await browser.post('/device', { ...hiddenFields(form.body, '/device'), user_code });
      t.equal((await browser.post('/device', { ...hiddenFields(consent.body, '/device'), decision })).statusCode, 200, decision);
    }
    const actor = { type: 'user', id: dana.id, username: 'dana' };
    const recorded = (await events({ type: 'device_authorization.' })).items.sort((x, y) => x.type.localeCompare(y.type));
    t.match(recorded, [
      { type: 'device_authorization.approved', actor, subject: { type: 'user', id: dana.id }, client_id: tv, ip: '198.51.100.12', details: { scopes: ['api:read'] } },
      { type: 'device_authorization.denied', actor, subject: { type: 'user', id: dana.id }, client_id: tv, ip: '198.51.100.12', details: { scopes: ['api:read'] } },
    ]);
    t.equal(recorded.length, 2);
  });

  await t.test('a logout token that could not be delivered (back-channel logout): the system, the user, the client, why', async (t) => {
    // A port nothing listens on: bound, then closed.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const created = await api('POST', '/admin/clients', {
      client_name: 'Audit RP',
      redirect_uris: ['http://127.0.0.1:7033/cb'],
      token_endpoint_auth_method: 'none',
      scope: 'openid',
      backchannel_logout_uri: `http://127.0.0.1:${port}/bc`,
    });
    const rp = created.json<{ client_id: string }>().client_id;
    const fay = await seedUser(services, { username: 'fay', password: 'fay passphrase is long' });
    secrets.add(fay.password);
    const browser = new InjectBrowser(app, '198.51.100.13');
    const pkce = pkcePair();
    await loginAndConsent(
      browser,
      authorizePath({ response_type: 'code', client_id: rp, redirect_uri: 'http://127.0.0.1:7033/cb', scope: 'openid', state: 's', code_challenge: pkce.challenge, code_challenge_method: 'S256' }),
      fay,
    );
    const account = await browser.get('/account');
    t.equal((await browser.post('/logout', { csrf_token: hiddenFields(account.body, '/logout').csrf_token! })).statusCode, 303);
    await services.backchannelLogout.idle();
    await services.audit.flush();
    const recorded = (await events({ type: 'backchannel_logout.sent' })).items;
    t.match(recorded, [{ outcome: 'failure', actor: { type: 'system' }, subject: { type: 'user', id: fay.id }, client_id: rp, details: { reason: /ECONNREFUSED/ } }]);
  });

  await t.test('every kind of event was recorded, and no secret is in any of them', async (t) => {
    t.equal((await api('DELETE', `/admin/clients/${clientId}`)).statusCode, 204);
    await services.audit.flush();
    const stored = await storage.auditEvents.list({}, { limit: 10_000, offset: 0 });
    const seen = new Set(stored.map((e) => e.type));
    for (const type of AUDIT_EVENT_TYPES) t.ok(seen.has(type), `${type} was recorded`);

    const everything = JSON.stringify(stored);
    const hashes = [
      ...(await storage.users.list({ limit: 1000, offset: 0 })).map((u) => u.passwordHash),
      ...(await storage.clients.list({ limit: 1000, offset: 0 })).map((c) => c.clientSecretHash).filter((h): h is string => h !== null),
    ];
    t.ok(secrets.size >= 20 && hashes.length >= 4, `${secrets.size} secrets and ${hashes.length} hashes to look for`);
    for (const secret of [...secrets, ...hashes]) t.notOk(everything.includes(secret), `not stored: ${secret.slice(0, 6)}…`);
    const listed = await api('GET', '/admin/events?limit=200', undefined, READER_IP);
    for (const secret of [...secrets, ...hashes]) t.notOk(listed.body.includes(secret), `not listed: ${secret.slice(0, 6)}…`);
  });
});

t.test(`a failing audit insert does not fail the request (${backendName})`, async (t) => {
  const failures: string[] = [];
  const { app, services, storage } = await buildTestApp(t, { serviceOptions: { onAuditError: (_err, what) => failures.push(what) } });
  await seedUser(services, { username: 'root', password: ROOT_PASSWORD, roles: ['admin'] });
  await services.audit.flush();
  await storage.db.query('ALTER TABLE audit_events RENAME TO audit_events_away');
  t.teardown(() => storage.db.query('ALTER TABLE audit_events_away RENAME TO audit_events'));

  const res = await app.inject({ method: 'POST', url: '/admin/users', headers: { authorization: userBasic('root', ROOT_PASSWORD) }, payload: { username: 'still-created', password: 'long enough password' } });
  t.equal(res.statusCode, 201, 'the change is made and answered');
  t.ok(await services.users.findByUsername('still-created'));
  const login = new InjectBrowser(app);
  const form = await login.get('/login');
  t.equal((await login.post('/login', { ...hiddenFields(form.body, '/login'), username: 'root', password: ROOT_PASSWORD })).statusCode, 303, 'a sign-in goes on');
  await services.audit.flush();
  t.ok(failures.includes('writing audit event user.created'), 'the lost change event is reported');
  t.equal(failures.filter((f) => f === 'writing audit event sign_in.succeeded').length, 2, 'so are the sign-ins (admin Basic, login page)');
});

t.test(`pruning: events past AUDIT_RETENTION_DAYS go, by the timer, on an injected clock (${backendName})`, async (t: Test) => {
  const DAY = 86_400_000;
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const { services } = await buildTestApp(t, { env: { AUDIT_RETENTION_DAYS: '30' }, now: () => clock, serviceOptions: { auditPruneIntervalMs: 20 } });
  const cli = { actor: { type: 'cli' as const } };
  await services.users.create({ username: 'old-one', password: 'long enough password' }, cli);
  clock += 20 * DAY;
  await services.users.create({ username: 'newer-one', password: 'long enough password' }, cli);
  const names = async () => (await services.audit.list({ type: 'user.created' }, { limit: 10, offset: 0 })).events.map((e) => e.details.username);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(await names(), ['newer-one', 'old-one'], 'nothing is 30 days old yet');
  clock += 11 * DAY;
  const deadline = Date.now() + 10_000;
  while ((await names()).length > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(await names(), ['newer-one'], 'the event 31 days old was deleted; the one 11 days old stays');

  // On demand, on a server of its own whose timer waits an hour after its first run at start (on
  // the one above, the timer could take the event first and leave prune() nothing to delete).
  let later = clock;
  const other = await buildTestApp(t, { env: { AUDIT_RETENTION_DAYS: '30' }, now: () => later });
  await other.services.users.create({ username: 'old-one', password: 'long enough password' }, cli);
  await other.services.audit.flush();
  later += 31 * DAY;
  t.equal(await other.services.audit.prune(), 1, 'prune() on demand, as of the clock');
  t.same((await other.services.audit.list({ type: 'user.created' }, { limit: 10, offset: 0 })).events, [], 'and the event is gone');
});
