/**
 * `GET /`: the landing page (what this server is, where to go next), and the
 * favicon, so that opening the server in a browser meets neither a JSON 404
 * nor a 404 for `/favicon.ico`.
 */
import t from 'tap';
import { buildTestApp } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';

t.test(`the landing page (${backendName})`, async (t) => {
  const { app } = await buildTestApp(t, { env: { ISSUER: "http://localhost:3000/auth&'x" } });
  const res = await app.inject({ url: '/' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/html/);
  const csp = String(res.headers['content-security-policy']);
  t.match(csp, /default-src 'none'/, 'the strict policy of every page');
  t.notMatch(csp, /unsafe-inline|script-src/, 'no inline styles, no scripts at all');
  t.notMatch(res.body, /<script|<style|\sstyle=|\son[a-z]+=/i, 'nothing inline that the policy would block');
  t.match(res.body, /OAuth 2\.0 authorization server/);
  for (const href of ['/docs', '/openapi.json', '/admin', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/jwks.json', '/healthz', '/readyz', '/register']) {
    t.ok(res.body.includes(`href="${href}"`), `links to ${href}`);
  }
  t.ok(res.body.includes('http://localhost:3000/auth&amp;&#39;x'), 'the issuer, escaped');
  t.notOk(res.body.includes("auth&'x"), 'never raw');
  t.match(res.body, /<link rel="icon" href="\/assets\/favicon\.svg"/, 'names its icon');

  const doc = (await app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>();
  t.notOk(doc.paths['/'], 'a page for people, not part of the API document');
});

t.test('no sign-up link when registration is closed', async (t) => {
  const { app } = await buildTestApp(t, { env: { REGISTRATION: 'closed' } });
  t.notOk((await app.inject({ url: '/' })).body.includes('href="/register"'));
});

t.test('the favicon', async (t) => {
  const { app } = await buildTestApp(t);
  const icon = await app.inject({ url: '/assets/favicon.svg' });
  t.equal(icon.statusCode, 200);
  t.equal(icon.headers['content-type'], 'image/svg+xml');
  t.match(icon.body, /^<svg /);
  const ico = await app.inject({ url: '/favicon.ico' });
  t.equal(ico.statusCode, 301, 'what browsers ask for on pages that name no icon');
  t.equal(ico.headers.location, '/assets/favicon.svg');
  t.match((await app.inject({ url: '/login' })).body, /<link rel="icon" href="\/assets\/favicon\.svg"/, 'every page names it');
});

t.test('a mistyped address: the error page for a browser, JSON for an API client', async (t) => {
  const { app } = await buildTestApp(t);
  const browser = await app.inject({ url: '/acount?x=1', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
  t.equal(browser.statusCode, 404);
  t.match(browser.headers['content-type'], /^text\/html/);
  t.match(browser.body, /There is no page at \/acount on this server\./);
  t.match(browser.headers['content-security-policy'], /frame-ancestors 'none'/, 'with the pages\' headers');
  const hostile = await app.inject({ url: '/%3Cscript%3Ealert(1)%3C%2Fscript%3E', headers: { accept: 'text/html' } });
  t.notMatch(hostile.body, /<script>alert/, 'the path is escaped');
  const api = await app.inject({ url: '/acount', headers: { accept: 'application/json' } });
  t.equal(api.statusCode, 404);
  t.same(api.json(), { error: 'not_found', error_description: 'No route GET /acount' });
  t.equal((await app.inject({ method: 'POST', url: '/acount', headers: { accept: 'text/html' } })).headers['content-type'], 'application/json; charset=utf-8', 'only a GET is a navigation');
});
