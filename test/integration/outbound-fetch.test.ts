/**
 * The SSRF guard over real TLS: an https server on 127.0.0.1 with a
 * throwaway certificate, names resolved by an injected resolver (the test
 * cannot control real DNS). Every refusal ends the fetch with its reason,
 * without hanging: the slow answer within a short timeout setting.
 */
import type { LookupAddress } from 'node:dns';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { createOutboundFetch, createOutboundPost, OutboundFetchError, type OutboundFetchOptions } from '../../src/security/outbound-fetch.js';
import { json, makeTestCertificates, startHttpsServer } from '../helpers/tls.js';

const certs = await makeTestCertificates(t, ['metadata.test', 'rebind.test']);
const server = await startHttpsServer(t, certs);

/** What the injected resolver answers; "metadata.test" is the test server. */
const dns: Record<string, LookupAddress[]> = {
  'metadata.test': [{ address: '127.0.0.1', family: 4 }],
  'loopback.test': [{ address: '127.0.0.1', family: 4 }],
  'ten.test': [{ address: '10.1.2.3', family: 4 }],
  'cloud-metadata.test': [{ address: '169.254.169.254', family: 4 }],
  'v6-loopback.test': [{ address: '::1', family: 6 }],
  'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
  'mixed.test': [
    { address: '93.184.215.14', family: 4 },
    { address: '10.0.0.7', family: 4 },
  ],
};
const lookups: string[] = [];
const resolve = async (hostname: string) => {
  lookups.push(hostname);
  const answer = dns[hostname];
  if (!answer) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return answer;
};

const base: OutboundFetchOptions = { allowPrivateNetworks: false, timeoutMs: 2_000, maxBytes: 5_120, extraCaCerts: [certs.caPem], resolve };
const guarded = createOutboundFetch(base);
const open = createOutboundFetch({ ...base, allowPrivateNetworks: true });

server.on('/doc.json', json({ hello: 'world' }, { 'cache-control': 'max-age=60' }));

async function refusal(t: Test, promise: Promise<unknown>, reason: OutboundFetchError['reason'], message?: RegExp) {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof OutboundFetchError, `refused (${String(err)})`);
  if (err instanceof OutboundFetchError) {
    t.equal(err.reason, reason);
    if (message) t.match(err.message, message);
  }
}

t.test('with the address rule lifted, the document is fetched through the injected resolution over verified TLS', async (t) => {
  const doc = await open(`${server.origin('metadata.test')}/doc.json`, 'application/json');
  t.same(JSON.parse(doc.body), { hello: 'world' });
  t.equal(doc.headers['cache-control'], 'max-age=60');
  t.ok(lookups.includes('metadata.test'), 'the name was resolved by the hook on the request');
});

t.test('names resolving to loopback, private, link-local (169.254.169.254), ::1 or IPv4-mapped loopback are refused', async (t) => {
  const hits = server.hits('/doc.json');
  for (const [name, why] of [
    ['loopback.test', /127\.0\.0\.1.*loopback/],
    ['metadata.test', /127\.0\.0\.1.*loopback/],
    ['ten.test', /10\.1\.2\.3.*private/],
    ['cloud-metadata.test', /169\.254\.169\.254.*link-local/],
    ['v6-loopback.test', /::1.*loopback/],
    ['mapped.test', /IPv4-mapped 127\.0\.0\.1/],
    ['mixed.test', /10\.0\.0\.7.*private/],
  ] as const) {
    await refusal(t, guarded(`https://${name}:${server.port}/doc.json`, 'application/json'), 'address', why);
  }
  t.equal(server.hits('/doc.json'), hits, 'the server was never reached');
});

t.test('IP literals are judged without a lookup', async (t) => {
  for (const url of [`https://127.0.0.1:${server.port}/doc.json`, 'https://[::1]/doc.json', 'https://10.0.0.1/x', 'https://169.254.169.254/latest/meta-data/', 'https://[::ffff:127.0.0.1]/x', 'https://2130706433/x']) {
    await refusal(t, guarded(url, 'application/json'), 'address');
  }
  t.notOk(lookups.some((name) => /^\[?[\d:.]+\]?$/.test(name)), 'no lookup for an IP literal');
});

t.test('https only, no credentials', async (t) => {
  await refusal(t, open(`http://metadata.test:${server.port}/doc.json`, 'application/json'), 'url');
  await refusal(t, open(`https://user:pw@metadata.test:${server.port}/doc.json`, 'application/json'), 'url');
  await refusal(t, open('not a url', 'application/json'), 'url');
});

t.test('a redirect is not followed, to a private address or anywhere', async (t) => {
  server.on('/redirect', (_req, res) => res.writeHead(302, { location: 'https://127.0.0.1/doc.json' }).end());
  server.on('/redirect-public', (_req, res) => res.writeHead(301, { location: `${server.origin('metadata.test')}/doc.json` }).end());
  const hits = server.hits('/doc.json');
  await refusal(t, open(`${server.origin('metadata.test')}/redirect`, 'application/json'), 'redirect', /302/);
  await refusal(t, open(`${server.origin('metadata.test')}/redirect-public`, 'application/json'), 'redirect', /301/);
  t.equal(server.hits('/doc.json'), hits, 'the target was never fetched');
});

t.test('a body over the limit is refused, declared or streamed', async (t) => {
  server.on('/big', json({ padding: 'x'.repeat(6_000) }));
  server.on('/big-chunked', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let i = 0; i < 12; i++) res.write('x'.repeat(512));
    res.end();
  });
  server.on('/exactly', (_req, res) => res.writeHead(200).end('y'.repeat(5_120)));
  await refusal(t, open(`${server.origin('metadata.test')}/big`, 'application/json'), 'too_large');
  await refusal(t, open(`${server.origin('metadata.test')}/big-chunked`, 'application/json'), 'too_large');
  t.equal((await open(`${server.origin('metadata.test')}/exactly`, 'application/json')).body.length, 5_120, 'the limit itself is allowed');
});

t.test('a slow answer is cut off at the timeout setting, and so is a server that never answers', async (t) => {
  const quick = createOutboundFetch({ ...base, allowPrivateNetworks: true, timeoutMs: 300 });
  server.on('/never', () => {
    // Holds the request open; the test server closes it at teardown.
  });
  server.on('/trickle', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"a":');
    // Never ends.
  });
  await refusal(t, quick(`${server.origin('metadata.test')}/never`, 'application/json'), 'timeout');
  await refusal(t, quick(`${server.origin('metadata.test')}/trickle`, 'application/json'), 'timeout');
});

t.test('other failures: not 200, unknown name, an untrusted certificate', async (t) => {
  server.on('/gone', (_req, res) => res.writeHead(404).end());
  await refusal(t, open(`${server.origin('metadata.test')}/gone`, 'application/json'), 'status', /404/);
  await refusal(t, open('https://nowhere.test/doc.json', 'application/json'), 'network');
  const untrusting = createOutboundFetch({ ...base, allowPrivateNetworks: true, extraCaCerts: [] });
  await refusal(t, untrusting(`${server.origin('metadata.test')}/doc.json`, 'application/json'), 'network');
});

t.test('DNS rebinding: the name is resolved once, where the socket connects, so a second answer cannot be slipped in', async (t) => {
  // A guard that checked one resolution and let the socket resolve again would
  // pass the public first answer, then connect to 127.0.0.1 (this test server).
  let calls = 0;
  const rebinding = createOutboundFetch({
    ...base,
    timeoutMs: 1_000,
    resolve: async () => (++calls === 1 ? [{ address: '93.184.215.14', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]),
  });
  const hits = server.hits('/doc.json');
  const outcome = await rebinding(`${server.origin('rebind.test')}/doc.json`, 'application/json').then(
    () => 'fetched',
    (err: unknown) => (err instanceof OutboundFetchError ? err.reason : 'other'),
  );
  t.not(outcome, 'fetched');
  t.equal(calls, 1, 'one resolution, the one connected to');
  t.equal(server.hits('/doc.json'), hits, 'the loopback server was never reached');
});

t.test('a POST of a form (logout tokens): the body arrives, any 2xx is an answer, under the same address, redirect and https rules', async (t) => {
  const received: Array<{ method: string; type: string | undefined; body: string }> = [];
  const record = (status: number, headers: Record<string, string> = {}) => (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method ?? '', type: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status, headers).end();
    });
  };
  server.on('/bc', record(200));
  server.on('/bc-204', record(204));
  server.on('/bc-moved', record(307, { location: `${server.origin('metadata.test')}/bc` }));
  server.on('/bc-400', record(400));
  const postOpen = createOutboundPost({ ...base, allowPrivateNetworks: true });
  const postGuarded = createOutboundPost(base);
  const form = new URLSearchParams({ logout_token: 'a.b.c' });

  t.same(await postOpen(`${server.origin('metadata.test')}/bc`, form), { status: 200 });
  t.same(received, [{ method: 'POST', type: 'application/x-www-form-urlencoded', body: 'logout_token=a.b.c' }]);
  t.same(await postOpen(`${server.origin('metadata.test')}/bc-204`, form), { status: 204 });
  received.splice(0);
  await refusal(t, postOpen(`${server.origin('metadata.test')}/bc-moved`, form), 'redirect');
  t.equal(received.length, 1, 'the redirect was not followed');
  await refusal(t, postOpen(`${server.origin('metadata.test')}/bc-400`, form), 'status', /answered 400, not 2xx/);
  received.splice(0);
  await refusal(t, postGuarded(`${server.origin('metadata.test')}/bc`, form), 'address', /not a public address/);
  await refusal(t, postGuarded(`https://10.0.0.1:${server.port}/bc`, form), 'address');
  await refusal(t, postOpen(`http://127.0.0.1:${server.port}/bc`, form), 'url', /only https/);
  t.equal(received.length, 0, 'nothing sent where the rules refuse');
});

t.test('allowHttp: plain http too (an administrator\'s own service), nothing else changes', async (t) => {
  const plain = createServer((req, res) => {
    if (req.url === '/moved') res.writeHead(302, { location: '/bc' }).end();
    else res.writeHead(200).end();
  });
  await new Promise<void>((done) => plain.listen(0, '127.0.0.1', done));
  t.teardown(() => new Promise<void>((done) => plain.close(() => done())));
  const port = (plain.address() as AddressInfo).port;
  const post = createOutboundPost({ ...base, allowPrivateNetworks: true, allowHttp: true });
  const form = new URLSearchParams({ logout_token: 'x' });
  t.same(await post(`http://127.0.0.1:${port}/bc`, form), { status: 200 });
  await refusal(t, post(`http://127.0.0.1:${port}/moved`, form), 'redirect');
  await refusal(t, createOutboundPost({ ...base, allowHttp: true })(`http://127.0.0.1:${port}/bc`, form), 'address', /not a public address/);
});
