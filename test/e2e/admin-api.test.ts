/**
 * The admin JSON API end to end (SPEC "Admin API", issue 2): authentication
 * (401 + WWW-Authenticate, 403, throttling), every client and user
 * operation, and every bad-input path answering the right 4xx in the
 * `{error, error_description}` shape. One app for the file; subtests use
 * their own clients, users and (where they fail on purpose) their own IPs.
 */
import t, { type Test } from 'tap';
import { verifyClientSecret } from '../../src/clients/secret.js';
import { PASSWORD_RULE } from '../../src/users/password-policy.js';
import { buildTestApp, enrolSecondFactor, seedClient, seedUser } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';
import { userBasic } from '../helpers/tokens.js';

const MAX_FAILED = 5;

t.test(`admin API (${backendName})`, async (t) => {
  const { app, services, storage, config } = await buildTestApp(t, { env: { MAX_FAILED_ATTEMPTS: String(MAX_FAILED) } });
  const admin = await seedUser(services, { username: 'root-admin', password: 'root: pässword 1', roles: ['admin'] });
  const auth = userBasic(admin.username, admin.password);
  /** The WWW-Authenticate challenges of an answer (Basic always; Bearer once the token service accepts admin tokens). */
  const challenges = (res: { headers: Record<string, unknown> }) => {
    const value = res.headers['www-authenticate'];
    return Array.isArray(value) ? value.map((v) => String(v as string)) : value === undefined ? [] : [String(value as string)];
  };
  const BASIC = 'Basic realm="admin", charset="UTF-8"';
  let ipCounter = 0;
  const freshIp = () => `198.51.100.${++ipCounter}`;

  /** Every answer of `call`, checked at the end: never a hash, never cacheable. */
  const answers: Array<{ what: string; status: number; body: string; cacheControl: unknown }> = [];
  const call = async (method: string, url: string, options: { payload?: unknown; headers?: Record<string, string>; remoteAddress?: string } = {}) => {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: auth, ...options.headers },
      ...(options.payload === undefined ? {} : { payload: options.payload as string }),
      ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    });
    answers.push({ what: `${method} ${url}`, status: res.statusCode, body: res.body, cacheControl: res.headers['cache-control'] });
    return res;
  };
  const expectError = (t: Test, res: { statusCode: number; json(): unknown }, status: number, error?: string) => {
    t.equal(res.statusCode, status);
    const body = res.json() as { error: string; error_description: string };
    t.type(body.error, 'string');
    t.type(body.error_description, 'string');
    if (error) t.equal(body.error, error);
    return body;
  };

  t.test('authentication', async (t) => {
    t.test('no credentials: 401 with a Basic challenge', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/admin/clients' });
      expectError(t, res, 401, 'unauthorized');
      t.equal(challenges(res)[0], BASIC, 'Basic first (RFC 7617 §2), with its realm and charset');
      const post = await app.inject({ method: 'POST', url: '/admin/users', payload: { username: 'x', password: 'y' } });
      t.equal(post.statusCode, 401, 'nothing is read before authentication');
    });

    t.test('malformed Authorization headers are 401, never 500', async (t) => {
      const headers = [
        'Basic',
        'Basic !!!!',
        'Basic abc', // not a multiple of 4
        `Basic ${Buffer.from('no-colon-here').toString('base64')}`,
        `Basic ${Buffer.from(':password-without-user').toString('base64')}`,
        `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`, // not UTF-8
        `Basic ${Buffer.from('root-admin:with\u0000nul').toString('base64')}`,
        'Digest username="root-admin"',
        'Bearer',
        'Bearer not-a-token',
        '',
      ];
      for (const header of headers) {
        const res = await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: header }, remoteAddress: freshIp() });
        t.equal(res.statusCode, 401, JSON.stringify(header));
        t.ok(challenges(res).includes(BASIC), 'with the Basic challenge');
      }
    });

    t.test('wrong password or unknown user: 401', async (t) => {
      const ip = freshIp();
      const wrong = await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(admin.username, 'nope') }, remoteAddress: ip });
      const body = expectError(t, wrong, 401, 'unauthorized');
      t.ok(challenges(wrong).includes(BASIC));
      const unknown = await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic('ghost', 'whatever1') }, remoteAddress: ip });
      t.same(expectError(t, unknown, 401, 'unauthorized'), body, 'same answer: no hint whether the user exists');
    });

    t.test('a password with a colon and non-ASCII characters works (split at the first colon, UTF-8)', async (t) => {
      t.equal((await call('GET', '/admin/users')).statusCode, 200);
    });

    t.test('an authenticated non-admin or a disabled admin: 403', async (t) => {
      const user = await seedUser(services, { roles: ['auditor'] });
      expectError(t, await app.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: userBasic(user.username, user.password) } }), 403, 'forbidden');
      const off = await seedUser(services, { roles: ['admin'] });
      await services.users.update(off.id, { disabled: true });
      const res = await app.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: userBasic(off.username, off.password) } });
      t.match(expectError(t, res, 403, 'forbidden').error_description, /disabled/);
    });

    t.test('repeated failures for one username from one IP: 429 with Retry-After there, even with the right password; not elsewhere', async (t) => {
      const victim = await seedUser(services, { roles: ['admin'] });
      const ip = freshIp();
      for (let i = 0; i < MAX_FAILED; i++) {
        const res = await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(victim.username, `guess${i}`) }, remoteAddress: ip });
        t.equal(res.statusCode, 401);
      }
      const res = await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(victim.username, victim.password) }, remoteAddress: ip });
      expectError(t, res, 429, 'too_many_requests');
      const retryAfter = Number(res.headers['retry-after']);
      t.ok(retryAfter > 0 && retryAfter <= config.failedAttemptWindowSeconds, 'Retry-After: what is left of the window');
      // SPEC: an attacker's failures never lock the admin out at another address.
      const elsewhere = await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(victim.username, victim.password) }, remoteAddress: freshIp() });
      t.equal(elsewhere.statusCode, 200);
    });

    t.test('repeated failures from one IP at many usernames: slowed down, the admin still gets in from it', async (t) => {
      const ip = freshIp();
      for (let i = 0; i < MAX_FAILED; i++) {
        await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(`nobody${i}`, 'guess1234') }, remoteAddress: ip });
      }
      t.equal((await call('GET', '/admin/users', { remoteAddress: ip })).statusCode, 200);
    });
  });

  t.test('clients', async (t) => {
    t.test('register a confidential client: 201, secret shown once, stored hashed', async (t) => {
      const res = await call('POST', '/admin/clients', {
        payload: {
          client_name: 'Demo',
          redirect_uris: ['http://localhost:8080/cb'],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid profile api:read',
        },
      });
      t.equal(res.statusCode, 201);
      const body = res.json();
      t.match(body, {
        client_id: String,
        client_secret: String,
        client_secret_expires_at: 0,
        client_id_issued_at: Number,
        client_name: 'Demo',
        redirect_uris: ['http://localhost:8080/cb'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid profile api:read',
      });
      t.ok(body.client_secret.length >= 43, '≥ 256 bits');
      t.equal(res.headers.location, `/admin/clients/${body.client_id}`);
      const stored = await storage.clients.findById(body.client_id);
      t.not(stored!.clientSecretHash, body.client_secret, 'not stored in the clear');
      t.ok(verifyClientSecret(body.client_secret, stored!.clientSecretHash!));

      const read = await call('GET', `/admin/clients/${body.client_id}`);
      t.equal(read.statusCode, 200);
      t.notOk('client_secret' in read.json(), 'never shown again');
      t.equal(read.json().client_name, 'Demo');
    });

    t.test('defaults (RFC 7591 §2) and public clients', async (t) => {
      const res = await call('POST', '/admin/clients', { payload: { client_name: 'Defaults', redirect_uris: ['https://app.example.com/cb'] } });
      t.equal(res.statusCode, 201);
      t.match(res.json(), { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', scope: config.scopes.join(' ') });
      const pub = await call('POST', '/admin/clients', {
        payload: { client_name: 'SPA', redirect_uris: ['https://spa.example.com/cb'], token_endpoint_auth_method: 'none' },
      });
      t.equal(pub.statusCode, 201);
      t.notOk('client_secret' in pub.json(), 'a public client has no secret');
      const machine = await call('POST', '/admin/clients', { payload: { client_name: 'Batch', grant_types: ['client_credentials'], scope: 'api:read' } });
      t.equal(machine.statusCode, 201);
      t.same(machine.json().redirect_uris, []);
      t.same(machine.json().post_logout_redirect_uris, [], 'no post-logout redirect URI unless registered');
    });

    t.test('post_logout_redirect_uris (RP-Initiated Logout §3.1): registered, changed and cleared; held to the rules of redirect_uris', async (t) => {
      const res = await call('POST', '/admin/clients', {
        payload: { client_name: 'RP', redirect_uris: ['https://rp.example.com/cb'], post_logout_redirect_uris: ['https://rp.example.com/bye', 'https://rp.example.com/bye', 'http://127.0.0.1:9000/bye'] },
      });
      t.equal(res.statusCode, 201, res.body);
      t.same(res.json().post_logout_redirect_uris, ['https://rp.example.com/bye', 'http://127.0.0.1:9000/bye'], 'duplicates dropped, order kept');
      const clientId = res.json().client_id as string;
      t.same((await storage.clients.findById(clientId))!.postLogoutRedirectUris, ['https://rp.example.com/bye', 'http://127.0.0.1:9000/bye'], 'stored');
      t.same((await call('GET', `/admin/clients/${clientId}`)).json().post_logout_redirect_uris, ['https://rp.example.com/bye', 'http://127.0.0.1:9000/bye']);
      const renamed = await call('PATCH', `/admin/clients/${clientId}`, { payload: { client_name: 'RP 2' } });
      t.same(renamed.json().post_logout_redirect_uris, ['https://rp.example.com/bye', 'http://127.0.0.1:9000/bye'], 'a patch without the field keeps it');
      const changed = await call('PATCH', `/admin/clients/${clientId}`, { payload: { post_logout_redirect_uris: ['https://rp.example.com/logged-out?from=op'] } });
      t.same(changed.json().post_logout_redirect_uris, ['https://rp.example.com/logged-out?from=op']);
      const cases: Array<[string, string[], RegExp]> = [
        ['a wildcard', ['https://*.example.com/bye'], /there are no wildcards; register each post-logout redirect URI exactly/],
        ['a fragment', ['https://rp.example.com/bye#x'], /fragment/],
        ['relative', ['/bye'], /absolute/],
        ['http on a public host', ['http://rp.example.com/bye'], /https/],
        ['javascript:', ['javascript:alert(1)'], /not allowed/],
        ['not RFC 3986 as written', ['https://a.example\\@evil.com/bye'], /character a URI may not/],
        ['no host', ['https:///bye'], /must name a host/],
      ];
      for (const [name, uris, why] of cases) {
        const body = expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: { post_logout_redirect_uris: uris } }), 400, 'invalid_client_metadata');
        t.match(body.error_description, why, name);
      }
      const tooMany = Array.from({ length: 21 }, (_, i) => `https://rp.example.com/bye/${i}`);
      expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: { post_logout_redirect_uris: tooMany } }), 400, 'invalid_request');
      t.same((await call('GET', `/admin/clients/${clientId}`)).json().post_logout_redirect_uris, ['https://rp.example.com/logged-out?from=op'], 'a refused patch changes nothing');
      const cleared = await call('PATCH', `/admin/clients/${clientId}`, { payload: { post_logout_redirect_uris: [] } });
      t.same(cleared.json().post_logout_redirect_uris, []);
    });

    t.test('backchannel_logout_uri (Back-Channel Logout §2.2): none by default; https or http (an internal service), absolute, no fragment, RFC 3986 as written', async (t) => {
      const res = await call('POST', '/admin/clients', { payload: { client_name: 'BC', redirect_uris: ['https://rp.example.com/cb'] } });
      t.equal(res.statusCode, 201, res.body);
      t.equal(res.json().backchannel_logout_uri, null, 'none by default');
      t.equal(res.json().backchannel_logout_session_required, false);
      const clientId = res.json().client_id as string;
      const set = await call('PATCH', `/admin/clients/${clientId}`, { payload: { backchannel_logout_uri: 'http://10.0.0.7:8080/logout?x=1', backchannel_logout_session_required: true } });
      t.equal(set.statusCode, 200, set.body);
      t.equal(set.json().backchannel_logout_uri, 'http://10.0.0.7:8080/logout?x=1', 'an admin may register http on a private address');
      t.equal(set.json().backchannel_logout_session_required, true);
      const stored = (await storage.clients.findById(clientId))!;
      t.equal(stored.backchannelLogoutUri, 'http://10.0.0.7:8080/logout?x=1');
      t.equal(stored.backchannelLogoutSessionRequired, true);
      const renamed = await call('PATCH', `/admin/clients/${clientId}`, { payload: { client_name: 'BC 2' } });
      t.equal(renamed.json().backchannel_logout_uri, 'http://10.0.0.7:8080/logout?x=1', 'a patch without the field keeps it');
      const cases: Array<[string, string, RegExp]> = [
        ['a fragment', 'https://rp.example.com/logout#x', /fragment/],
        ['relative', '/logout', /absolute/],
        ['javascript:', 'javascript:alert(1)', /https or http/],
        ['another scheme', 'ftp://rp.example.com/logout', /https or http/],
        ['not RFC 3986 as written', 'https://a.example\\@evil.com/logout', /character a URI may not/],
        ['no host', 'https:///logout', /must name a host/],
        ['credentials', 'https://u:p@rp.example.com/logout', /credentials/],
      ];
      for (const [name, uri, why] of cases) {
        const body = expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: { backchannel_logout_uri: uri } }), 400, 'invalid_client_metadata');
        t.match(body.error_description, why, name);
        t.match(body.error_description, /back-channel logout URI/, `${name}: the field is named`);
      }
      t.equal((await storage.clients.findById(clientId))!.backchannelLogoutUri, 'http://10.0.0.7:8080/logout?x=1', 'a refused patch changes nothing');
      const cleared = await call('PATCH', `/admin/clients/${clientId}`, { payload: { backchannel_logout_uri: null } });
      t.equal(cleared.json().backchannel_logout_uri, null, 'null clears it');
    });

    t.test('bad metadata: 400 with the RFC 7591 error codes', async (t) => {
      const cases: Array<[string, Record<string, unknown>, string, RegExp?]> = [
        ['relative redirect URI', { redirect_uris: ['/cb'] }, 'invalid_redirect_uri', /absolute/],
        ['fragment', { redirect_uris: ['https://app.example.com/cb#frag'] }, 'invalid_redirect_uri', /fragment/],
        ['http on a public host', { redirect_uris: ['http://app.example.com/cb'] }, 'invalid_redirect_uri', /https/],
        ['javascript: scheme', { redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
        ['a wildcard host', { redirect_uris: ['https://*.example.com/cb'] }, 'invalid_redirect_uri', /there are no wildcards; register each redirect URI exactly/],
        ['a wildcard path', { redirect_uris: ['https://app.example.com/*'] }, 'invalid_redirect_uri', /there are no wildcards/],
        ['no redirect URI for the code grant', { redirect_uris: [] }, 'invalid_redirect_uri'],
        ['no host (the URL parser would read "cb" as one)', { redirect_uris: ['https:///cb'] }, 'invalid_redirect_uri', /must name a host/],
        ['a backslash in the authority', { redirect_uris: ['https://a.example\\@evil.com/cb'] }, 'invalid_redirect_uri', /character a URI may not/],
        ['an empty userinfo', { redirect_uris: ['https://@app.example.com/cb'] }, 'invalid_redirect_uri', /credentials/],
        ['implicit without response type token', { grant_types: ['implicit'], response_types: [] }, 'invalid_client_metadata', /token/],
        ['response type token without implicit', { response_types: ['code', 'token'] }, 'invalid_client_metadata', /implicit/],
        ['unknown grant type', { grant_types: ['magic'] }, 'invalid_client_metadata', /magic/],
        ['unknown response type', { response_types: ['id_token'] }, 'invalid_client_metadata'],
        ['unknown scope', { scope: 'openid root' }, 'invalid_client_metadata', /root/],
        ['unknown auth method', { token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata', /private_key_jwt/],
        ['client credentials for a public client', { grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, 'invalid_client_metadata'],
        ['an unknown property (typo)', { redirect_uri: 'https://app.example.com/cb' }, 'invalid_request', /redirect_uri/],
        ['a wrongly typed property', { redirect_uris: { a: 1 } }, 'invalid_request'],
        ['an empty name', { client_name: '' }, 'invalid_request'],
      ];
      for (const [name, patch, error, description] of cases) {
        const res = await call('POST', '/admin/clients', { payload: { client_name: 'Bad', redirect_uris: ['https://app.example.com/cb'], ...patch } });
        const body = expectError(t, res, 400, error);
        if (description) t.match(body.error_description, description, name);
      }
      expectError(t, await call('POST', '/admin/clients', { payload: { redirect_uris: ['https://app.example.com/cb'] } }), 400, 'invalid_request');
    });

    t.test('malformed bodies: 400, 413, 415', async (t) => {
      const json = { 'content-type': 'application/json' };
      expectError(t, await call('POST', '/admin/clients', { payload: '{"client_name": "x",', headers: json }), 400, 'invalid_request');
      expectError(t, await call('POST', '/admin/clients', { payload: '', headers: json }), 400);
      expectError(t, await call('POST', '/admin/clients', { payload: '[1, 2]', headers: json }), 400);
      expectError(t, await call('POST', '/admin/clients', { payload: '{"__proto__": {"x": 1}, "client_name": "p"}', headers: json }), 400);
      const huge = JSON.stringify({ client_name: 'x'.repeat(config.bodyLimitBytes + 10) });
      expectError(t, await call('POST', '/admin/clients', { payload: huge, headers: json }), 413);
      // Forms and text/plain could be posted cross-site with remembered Basic credentials: refused.
      expectError(t, await call('POST', '/admin/clients', { payload: 'client_name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415);
      expectError(t, await call('POST', '/admin/clients', { payload: '{"client_name":"x"}', headers: { 'content-type': 'text/plain' } }), 415);
    });

    t.test('list with pagination', async (t) => {
      for (let i = 0; i < 3; i++) await seedClient(services, { client_name: `Paged ${i}`, redirect_uris: ['https://app.example.com/cb'] });
      const all = await call('GET', '/admin/clients?limit=200');
      t.equal(all.statusCode, 200);
      const { items, total, limit, offset } = all.json();
      t.equal(items.length, total);
      t.same([limit, offset], [200, 0]);
      const page = await call('GET', '/admin/clients?limit=2&offset=1');
      t.same(
        page.json().items.map((c: { client_id: string }) => c.client_id),
        items.slice(1, 3).map((c: { client_id: string }) => c.client_id),
      );
      t.equal(page.json().total, total);
      t.equal((await call('GET', '/admin/clients')).json().limit, 50, 'default page size');
      for (const query of ['limit=0', 'limit=201', 'limit=ten', 'offset=-1']) expectError(t, await call('GET', `/admin/clients?${query}`), 400, 'invalid_request');
    });

    t.test('read, change, delete; 404 for unknown ids', async (t) => {
      const { clientId } = await seedClient(services, { client_name: 'Mutable', redirect_uris: ['https://app.example.com/cb'], scope: 'openid' });
      const patched = await call('PATCH', `/admin/clients/${clientId}`, { payload: { redirect_uris: ['https://a.example.com/cb', 'http://127.0.0.1:9000/cb'], client_name: 'Changed' } });
      t.equal(patched.statusCode, 200);
      t.match(patched.json(), { client_name: 'Changed', redirect_uris: ['https://a.example.com/cb', 'http://127.0.0.1:9000/cb'], scope: 'openid' });
      t.notOk('client_secret' in patched.json());
      expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: { redirect_uris: ['http://evil.example.com/cb'] } }), 400, 'invalid_redirect_uri');
      t.equal((await call('GET', `/admin/clients/${clientId}`)).json().client_name, 'Changed', 'a refused patch changes nothing');
      expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: {} }), 400, 'invalid_request');
      expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: { client_secret: 'mine' } }), 400, 'invalid_request');

      // Public ↔ confidential: the secret appears once, or goes away.
      const toPublic = await call('PATCH', `/admin/clients/${clientId}`, { payload: { token_endpoint_auth_method: 'none' } });
      t.notOk('client_secret' in toPublic.json());
      t.equal((await storage.clients.findById(clientId))!.clientSecretHash, null);
      const toConfidential = await call('PATCH', `/admin/clients/${clientId}`, { payload: { token_endpoint_auth_method: 'client_secret_post' } });
      t.type(toConfidential.json().client_secret, 'string', 'a new secret, shown in this answer');

      t.equal((await call('DELETE', `/admin/clients/${clientId}`)).statusCode, 204);
      expectError(t, await call('GET', `/admin/clients/${clientId}`), 404, 'not_found');
      expectError(t, await call('DELETE', `/admin/clients/${clientId}`), 404, 'not_found');
      expectError(t, await call('PATCH', `/admin/clients/${clientId}`, { payload: { client_name: 'x' } }), 404, 'not_found');
      expectError(t, await call('POST', `/admin/clients/${clientId}/secret`), 404, 'not_found');
      expectError(t, await call('GET', `/admin/clients/${'x'.repeat(150)}`), 404, 'not_found');
    });

    t.test('rotating the secret: the old one stops working at once', async (t) => {
      const created = await call('POST', '/admin/clients', { payload: { client_name: 'Rotating', grant_types: ['client_credentials'], scope: 'api:read' } });
      const { client_id: clientId, client_secret: oldSecret } = created.json();
      const rotated = await call('POST', `/admin/clients/${clientId}/secret`);
      t.equal(rotated.statusCode, 200);
      const newSecret = rotated.json().client_secret as string;
      t.type(newSecret, 'string');
      t.not(newSecret, oldSecret);
      const stored = (await storage.clients.findById(clientId))!.clientSecretHash!;
      t.notOk(verifyClientSecret(oldSecret, stored), 'old secret no longer matches');
      t.ok(verifyClientSecret(newSecret, stored), 'new secret matches');

      if (app.hasRoute({ method: 'POST', url: '/token' })) {
        const token = (secret: string) =>
          app.inject({
            method: 'POST',
            url: '/token',
            headers: { authorization: userBasic(clientId, secret), 'content-type': 'application/x-www-form-urlencoded' },
            payload: 'grant_type=client_credentials&scope=api%3Aread',
            remoteAddress: freshIp(),
          });
        t.equal((await token(oldSecret)).statusCode, 401, 'the token endpoint refuses the old secret');
        t.equal((await token(newSecret)).statusCode, 200, 'and accepts the new one');
      }

      const pub = await seedClient(services, { client_name: 'Public', redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none' });
      expectError(t, await call('POST', `/admin/clients/${pub.clientId}/secret`), 409, 'conflict');
    });
  });

  t.test('users', async (t) => {
    t.test('create: 201 with id; never the password or its hash', async (t) => {
      const res = await call('POST', '/admin/users', { payload: { username: 'Carol', password: 'bees in the orchard', email: 'carol@example.com', roles: ['admin', 'auditor'] } });
      t.equal(res.statusCode, 201);
      const body = res.json();
      t.match(body, { id: String, username: 'Carol', email: 'carol@example.com', roles: ['admin', 'auditor'], disabled: false, created_at: String });
      t.notOk('password' in body);
      t.equal(res.headers.location, `/admin/users/${body.id}`);
      t.equal((await app.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: userBasic('carol', 'bees in the orchard') } })).statusCode, 200, 'the new admin can sign in (username case-insensitive)');
    });

    t.test('duplicate username, in any case: 409', async (t) => {
      await seedUser(services, { username: 'dupe-user' });
      const res = await call('POST', '/admin/users', { payload: { username: 'DUPE-USER', password: 'another password' } });
      expectError(t, res, 409, 'conflict');
    });

    t.test('bad input: 400', async (t) => {
      const cases: Array<Record<string, unknown>> = [
        { username: 'has space', password: 'long enough' },
        { username: '', password: 'long enough' },
        { username: 'short-pw', password: 'short' },
        { username: 'no-password' },
        { password: 'no username' },
        { username: 'bad-role', password: 'long enough', roles: ['Admin!'] },
        { username: 'bad-email', password: 'long enough', email: 'not-an-email' },
        { username: 'extra', password: 'long enough', is_admin: true },
        { username: 'x'.repeat(65), password: 'long enough' },
      ];
      for (const payload of cases) expectError(t, await call('POST', '/admin/users', { payload }), 400, 'invalid_request');
    });

    t.test('weak passwords: 400 invalid_request saying what is wrong and the rule, on create and on change', async (t) => {
      const refused = (t: Test, res: { statusCode: number; body: string; json(): { error: string; error_description: string } }, why: RegExp, password: string) => {
        t.equal(res.statusCode, 400);
        t.equal(res.json().error, 'invalid_request');
        t.match(res.json().error_description, why, 'what is wrong');
        t.ok(res.json().error_description.endsWith(PASSWORD_RULE), 'and the rule');
        if (password !== 'password') t.notOk(res.body.includes(password), 'never the password');
      };
      const cases: Array<[string, string, RegExp]> = [
        ['weak-api-common', 'password', /too easy to guess: it is a common password/],
        ['weak-api-digits', '12345678', /too easy to guess: it is a common password/],
        ['weak-api-spaces', '        ', /too easy to guess: it repeats characters or words/],
        ['weak-api-walk', 'qwertyuiop[]', /too easy to guess: it is a keyboard pattern/],
        ['eleanor-api', 'eleanor-api2024', /too easy to guess: it is made from your username or email/],
      ];
      for (const [username, password, why] of cases) {
        refused(t, await call('POST', '/admin/users', { payload: { username, password } }), why, password);
        t.equal(await services.users.findByUsername(username), null, `${username} not created`);
      }

      const eleanor = await seedUser(services, { username: 'eleanor-rigby', email: 'eleanor@example.com' });
      const patch = (payload: Record<string, unknown>) => call('PATCH', `/admin/users/${eleanor.id}`, { payload });
      refused(t, await patch({ password: 'eleanor-rigby1' }), /made from your username or email/, 'eleanor-rigby1');
      refused(t, await patch({ password: 'eleanor@example.com' }), /made from your username or email/, 'eleanor@example.com');
      refused(t, await patch({ email: 'lonely.people@example.com', password: 'lonely.people' }), /made from your username or email/, 'lonely.people');
      refused(t, await patch({ password: 'zxcvbnm,./' }), /keyboard pattern/, 'zxcvbnm,./');
      const still = await services.users.get(eleanor.id);
      t.equal(still.email, 'eleanor@example.com', 'a refused change changes nothing');
      t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(eleanor.username, eleanor.password) } })).statusCode, 403, 'the old password still works (403: not an admin)');
      t.equal((await patch({ password: 'lonely.people' })).statusCode, 200, 'lonely.people is fine while the email is not lonely.people@…');
    });

    t.test('list, read, change, delete', async (t) => {
      const dave = await seedUser(services, { username: 'dave-admin-api', email: 'dave@example.com' });
      const list = await call('GET', '/admin/users?limit=200');
      t.ok(list.json().items.some((u: { id: string }) => u.id === dave.id));
      t.equal(list.json().total, list.json().items.length);
      t.equal((await call('GET', `/admin/users/${dave.id}`)).json().username, 'dave-admin-api');

      const patched = await call('PATCH', `/admin/users/${dave.id}`, { payload: { roles: ['admin'], email: null } });
      t.match(patched.json(), { roles: ['admin'], email: null, disabled: false });
      const newPassword = 'a brand new password';
      t.equal((await call('PATCH', `/admin/users/${dave.id}`, { payload: { password: newPassword } })).statusCode, 200);
      t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(dave.username, newPassword) } })).statusCode, 200, 'new password works');
      t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(dave.username, dave.password) }, remoteAddress: freshIp() })).statusCode, 401, 'old one does not');
      t.equal((await call('PATCH', `/admin/users/${dave.id}`, { payload: { disabled: true } })).json().disabled, true);
      t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: userBasic(dave.username, newPassword) } })).statusCode, 403, 'disabled');

      expectError(t, await call('PATCH', `/admin/users/${dave.id}`, { payload: {} }), 400, 'invalid_request');
      expectError(t, await call('PATCH', `/admin/users/${dave.id}`, { payload: { username: 'rename' } }), 400, 'invalid_request');
      expectError(t, await call('PATCH', `/admin/users/${dave.id}`, { payload: { password: 'short' } }), 400, 'invalid_request');

      t.equal((await call('DELETE', `/admin/users/${dave.id}`)).statusCode, 204);
      expectError(t, await call('GET', `/admin/users/${dave.id}`), 404, 'not_found');
      expectError(t, await call('DELETE', `/admin/users/${dave.id}`), 404, 'not_found');
      expectError(t, await call('PATCH', `/admin/users/${dave.id}`, { payload: { disabled: false } }), 404, 'not_found');
    });

    t.test("a user's remembered consents: list and revoke", async (t) => {
      const erin = await seedUser(services);
      const { clientId } = await seedClient(services, { client_name: 'Consented', redirect_uris: ['https://app.example.com/cb'] });
      await services.consents.grant(erin.id, clientId, ['openid', 'api:read'], [`${services.config.issuer}/api`]);
      const list = await call('GET', `/admin/users/${erin.id}/consents`);
      t.equal(list.statusCode, 200);
      t.match(list.json(), { items: [{ client_id: clientId, client_name: 'Consented', scopes: ['api:read', 'openid'], resources: [`${services.config.issuer}/api`] }], total: 1 });
      t.equal((await call('DELETE', `/admin/users/${erin.id}/consents/${clientId}`)).statusCode, 204);
      t.equal(await services.consents.find(erin.id, clientId), null);
      expectError(t, await call('DELETE', `/admin/users/${erin.id}/consents/${clientId}`), 404, 'not_found');
      expectError(t, await call('GET', '/admin/users/no-such-user/consents'), 404, 'not_found');
    });

    t.test("a user's second factor: shown on the user; DELETE resets a lost one (204), so an admin's Basic works again; 404 when there is none", async (t) => {
      const gail = await seedUser(services, { username: 'gail-lost-phone', roles: ['admin'] });
      const gailBasic = { authorization: userBasic(gail.username, gail.password) };
      t.equal((await call('GET', `/admin/users/${gail.id}`)).json().second_factor, false);
      expectError(t, await call('DELETE', `/admin/users/${gail.id}/second-factor`), 404, 'not_found');

      await enrolSecondFactor(services, gail.id);
      t.equal((await call('GET', `/admin/users/${gail.id}`)).json().second_factor, true);
      t.equal((await call('PATCH', `/admin/users/${gail.id}`, { payload: { email: 'gail@example.com' } })).json().second_factor, true, 'also in the answer to a change');
      const listed = (await call('GET', '/admin/users?limit=200')).json().items as Array<Record<string, unknown>>;
      t.notOk(listed.some((u) => 'second_factor' in u), 'not in lists');
      t.equal((await call('GET', '/admin/users', { headers: gailBasic })).statusCode, 403, 'with an app, her password alone does not open the API');

      const reset = await call('DELETE', `/admin/users/${gail.id}/second-factor`);
      t.equal(reset.statusCode, 204);
      t.equal(reset.body, '');
      t.notOk(await services.secondFactor.isEnrolled(gail.id));
      t.equal((await call('GET', `/admin/users/${gail.id}`)).json().second_factor, false);
      t.equal((await call('GET', '/admin/users', { headers: gailBasic })).statusCode, 200, 'her password opens the API again');

      expectError(t, await call('DELETE', `/admin/users/${gail.id}/second-factor`), 404, 'not_found');
      expectError(t, await call('DELETE', '/admin/users/no-such-user/second-factor'), 404, 'not_found');
      const anonymous = await app.inject({ method: 'DELETE', url: `/admin/users/${gail.id}/second-factor` });
      t.equal(anonymous.statusCode, 401, 'admins only');
      const plain = await seedUser(services);
      t.equal((await call('DELETE', `/admin/users/${gail.id}/second-factor`, { headers: { authorization: userBasic(plain.username, plain.password) } })).statusCode, 403);

      const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
      t.same(Object.keys(openapi.paths['/admin/users/{id}/second-factor'].delete.responses).sort(), ['204', '401', '403', '404', '429'], 'documented like its neighbours');
      t.ok(openapi.paths['/admin/users/{id}'].get.responses['200'].content['application/json'].schema.properties.second_factor);
    });

    t.test('the last enabled admin cannot be deleted, disabled or demoted: 409', async (t) => {
      // Leave root-admin as the only enabled admin.
      const all = (await call('GET', '/admin/users?limit=200')).json().items as Array<{ id: string; username: string; roles: string[]; disabled: boolean }>;
      for (const u of all) {
        if (u.id !== admin.id && u.roles.includes('admin') && !u.disabled) {
          t.equal((await call('PATCH', `/admin/users/${u.id}`, { payload: { disabled: true } })).statusCode, 200, `${u.username} disabled while root-admin remains`);
        }
      }
      expectError(t, await call('DELETE', `/admin/users/${admin.id}`), 409, 'conflict');
      expectError(t, await call('PATCH', `/admin/users/${admin.id}`, { payload: { disabled: true } }), 409, 'conflict');
      expectError(t, await call('PATCH', `/admin/users/${admin.id}`, { payload: { roles: ['user'] } }), 409, 'conflict');
      t.equal((await call('PATCH', `/admin/users/${admin.id}`, { payload: { roles: ['admin', 'ops'] } })).statusCode, 200, 'a change that keeps the role is fine');
      t.equal((await call('GET', '/admin/users')).statusCode, 200, 'root-admin still signs in');

      // With a second enabled admin, either one may go.
      const second = await seedUser(services, { username: 'second-admin', roles: ['admin'] });
      t.equal((await call('PATCH', `/admin/users/${admin.id}`, { payload: { roles: ['ops'] } })).statusCode, 200, 'demoted while another admin exists');
      const asSecond = { authorization: userBasic(second.username, second.password) };
      expectError(t, await call('DELETE', `/admin/users/${second.id}`, { headers: asSecond }), 409, 'conflict');
      t.equal((await call('PATCH', `/admin/users/${admin.id}`, { payload: { roles: ['admin'] }, headers: asSecond })).statusCode, 200, 'promoted again');
      t.equal((await call('DELETE', `/admin/users/${second.id}`)).statusCode, 204, 'and then the other admin may go');
    });
  });

  t.test('no admin answer shows a hash; every one is no-store', async (t) => {
    t.ok(answers.length > 50);
    for (const a of answers) {
      t.notMatch(a.body, /hash|argon2|sha256\$/i, `${a.what}: no hash`);
      if (a.status !== 204) t.equal(a.cacheControl, 'no-store', `${a.what}: no-store`);
    }
  });
});
