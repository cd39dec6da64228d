/**
 * Throwaway TLS for tests: a certificate authority made for the test and a
 * server certificate it signs, generated with Debian's `openssl` (no
 * dependency), and small https servers on 127.0.0.1 with per-path handlers
 * (client metadata documents, and misbehaving servers for the SSRF guard).
 * Everything is removed in `t.teardown`.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dir.js';

const run = promisify(execFile);

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface TestCertificates {
  /** The test CA's certificate (PEM): what a client must trust. */
  caPem: string;
  /** Its path, for `NODE_EXTRA_CA_CERTS`. */
  caFile: string;
  /** The server certificate (PEM) for `names` and its key. */
  certPem: string;
  keyPem: string;
}

/** A CA and a server certificate for `dnsNames` and 127.0.0.1, valid for a day. */
export async function makeTestCertificates(t: Tap, dnsNames: readonly string[]): Promise<TestCertificates> {
  const dir = await tempDir(t, 'test-tls-');
  const file = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=Throwaway test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${dnsNames[0] ?? 'localhost'}`]);
  const san = [...dnsNames.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  await writeFile(file('server.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('server.pem'),
    '-days', '1', '-extfile', file('server.ext')]);
  return {
    caPem: await readFile(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    certPem: await readFile(file('server.pem'), 'utf8'),
    keyPem: await readFile(file('server.key'), 'utf8'),
  };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface TestHttpsServer {
  server: Server;
  port: number;
  /** `https://<host>:<port>` */
  origin(host: string): string;
  /** Answers requests for `path` with `handler` (replacing an earlier one). */
  on(path: string, handler: Handler): void;
  /** Requests received per path. */
  hits(path: string): number;
}

/** An https server on 127.0.0.1 (a free port) with the given certificate; unknown paths answer 404. */
export async function startHttpsServer(t: Tap, certs: Pick<TestCertificates, 'certPem' | 'keyPem'>): Promise<TestHttpsServer> {
  const handlers = new Map<string, Handler>();
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server = createServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const handler = handlers.get(path);
    if (handler) handler(req, res);
    else res.writeHead(404).end();
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        // Slow handlers hold their sockets open: close them all.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    origin: (host) => `https://${host}:${port}`,
    on: (path, handler) => handlers.set(path, handler),
    hits: (path) => counts.get(path) ?? 0,
  };
}

/** A handler answering `body` as JSON with `headers`. */
export function json(body: unknown, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}
