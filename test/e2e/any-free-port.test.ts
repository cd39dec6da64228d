/**
 * PORT=0 (any free port) without ISSUER: the default issuer,
 * `http://localhost:$PORT`, names the port the server listens on, in its
 * metadata, its banner and its tokens, never `http://localhost:0`.
 */
import t from 'tap';
import { startServer } from '../helpers/server-process.js';

t.test('PORT=0 without ISSUER: the issuer names the port picked', async (t) => {
  const server = await startServer(t); // PORT=0, ISSUER unset
  const issuer = `http://localhost:${server.port}`;
  const metadata = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as { issuer: string; token_endpoint: string };
  t.equal(metadata.issuer, issuer);
  t.equal(metadata.token_endpoint, `${issuer}/token`);
  t.match(server.stdout(), `OAuth 2.0 authorization server listening at ${issuer}\n`, 'the banner says where');
});

t.test('PORT=0 with ISSUER: the issuer is ISSUER, as written', async (t) => {
  const server = await startServer(t, { env: { ISSUER: 'https://auth.example.com' } });
  const metadata = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as { issuer: string };
  t.equal(metadata.issuer, 'https://auth.example.com');
});
