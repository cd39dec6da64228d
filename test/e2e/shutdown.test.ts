/**
 * Graceful shutdown of the real server process: on SIGTERM it stops
 * accepting connections, lets the request in flight finish, closes its
 * stores and exits 0; a second signal exits at once.
 */
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { backendName } from '../helpers/backend.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

/** Fastify's log line for a request it has started to handle. */
const INCOMING_REGISTER = /^(?=.*"msg":"incoming request")(?=.*"url":"\/register").*$/m;

/** Opens a raw connection and sends a POST's headers and the first part of its JSON body. */
async function startSlowPost(server: ServerProcess, body: string, firstPart: number): Promise<{ socket: Socket; response: Promise<string> }> {
  const socket = connect(server.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  // The whole exchange, once the server closes the connection (it is shutting down).
  const response = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  socket.write(
    `POST /register HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body.slice(0, firstPart),
  );
  return { socket, response };
}

/** Resolves once a new connection is refused, i.e. the server no longer accepts. */
async function refusedAfterClose(port: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

// Both servers start together: a first start of the embedded database takes seconds.
// debug: the "incoming request" line is the sign a request is in flight, whatever level routes log it at.
const [first, second] = await Promise.all([startServer(t, { env: { LOG_LEVEL: 'debug' } }), startServer(t, { env: { LOG_LEVEL: 'debug' } })]);

t.test(`SIGTERM finishes the request in flight, then exits 0 (${backendName})`, async (t) => {
  const server = first;
  const body = JSON.stringify({ username: 'inflight', password: 'correct horse battery staple' });
  const { socket, response } = await startSlowPost(server, body, 10);
  // The server has the request once it logs it; only then is it "in flight".
  await server.waitForOutput(INCOMING_REGISTER);

  server.child.kill('SIGTERM');
  await server.waitForOutput(/shutting down: finishing in-flight requests/);
  t.ok(await refusedAfterClose(server.port), 'new connections are refused once shutting down');

  // write, not end: a half-closed client socket would end the exchange (no half-open HTTP).
  socket.write(body.slice(10));
  const raw = await response;
  t.match(raw, /^HTTP\/1\.1 201 /, 'the in-flight request completed');
  t.match(raw, /"username":"inflight"/);
  t.equal(await server.exited, 0, 'exit code 0');
  t.match(server.stdout(), /shut down cleanly/);
  t.notMatch(server.stderr(), /Error/);
});

t.test('a second signal exits at once, without waiting', async (t) => {
  const server = second;
  const body = JSON.stringify({ username: 'stuck', password: 'correct horse battery staple' });
  // A request that will never finish: its body never arrives.
  const { socket } = await startSlowPost(server, body, 5);
  t.teardown(() => socket.destroy());
  await server.waitForOutput(INCOMING_REGISTER);

  server.child.kill('SIGTERM');
  await server.waitForOutput(/shutting down: finishing in-flight requests/);
  server.child.kill('SIGINT');
  t.equal(await server.exited, 1, 'exit code 1: not a clean shutdown');
  t.match(server.stdout(), /second signal: exiting without waiting/);
});
