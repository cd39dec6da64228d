/**
 * Lingering close: when the server answers before it has read the request
 * body to its end and then closes the connection, it closes its side first
 * and keeps reading (and discarding) the rest of the body, up to a cap, so
 * the answer reaches the client instead of being wiped out by a TCP reset.
 *
 * What happened without it (measured on Node 20, Fastify 5): a body over
 * BODY_LIMIT is refused before it is read to its end. With a Content-Length
 * over the limit Fastify's body reader (`rawBody` in
 * fastify/lib/content-type-parser.js) refuses on the header alone, without
 * reading a byte; a chunked body is read until the limit is passed. Either
 * way Fastify answers 413 with `Connection: close` (the client may still be
 * sending), and Node, after that last response (`resOnFinish` in
 * lib/_http_server.js), calls `socket.destroySoon()`: FIN once the response
 * is flushed, then the file descriptor is closed at once. Body bytes still in
 * the kernel's receive buffer, or arriving later, make the kernel reset the
 * connection. A client that is still writing the body gets EPIPE/ECONNRESET
 * and, as a reset may drop data it has not read yet, often never sees the
 * 413. nginx is such a client: it sends the whole (buffered) body upstream
 * before it reads the response, so it logged "writev() failed (32: Broken
 * pipe) while sending request to upstream" and answered 502 (for a 1 MiB
 * body 9 times in 10). The same holds for any answer given before the body
 * is read on a connection that closes afterwards (a proxy's HTTP/1.0
 * requests always do): /token refusing a body that is not a form got 502
 * half of the time.
 *
 * RFC 9112 §9.6 names the remedy: close in stages. Half-close (FIN after the
 * response), read on until the client is done, then close. Here "done" is
 * the first of:
 * - the request body has arrived in full: nothing is left unread, so the
 *   close is clean;
 * - the client closes or resets its side (Node then closes ours);
 * - more than `discardLimitBytes` were discarded: the client is sending more
 *   than any proxy in front should let through, so cut it off (a reset, as
 *   before); a Content-Length announcing more than that is cut off at once;
 * - the request's deadline: Node keeps enforcing REQUEST_TIMEOUT_MS until
 *   the body is complete, whether or not the response was sent, so a client
 *   that trickles its body (or sends nothing) after the answer holds the
 *   socket no longer than one that trickles it before (slowloris guard).
 *
 * How: Node closes a connection after its last response through
 * `socket.destroySoon()` (falling back to `socket.end()` for sockets without
 * that method); for each request whose body may still be coming, that method
 * is shadowed on the socket by one that closes lingeringly. It is Node
 * internals, hence the end-to-end test through a real nginx
 * (test/e2e/instances.test.ts) and the socket-level ones
 * (test/e2e/connection-limits.test.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface LingeringCloseOptions {
  /** The most request-body bytes read and thrown away after the answer before the connection is cut off. */
  discardLimitBytes: number;
}

/** Makes every connection of `server` close lingeringly when its last response goes out before the request body was read. */
export function closeConnectionsLingeringly(server: Server, options: LingeringCloseOptions): void {
  // Prepended: runs before Fastify's router can answer (and so before Node can close).
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    // Requests without a body (most of them) have nothing left to read.
    if (req.headers['transfer-encoding'] === undefined && !(Number(req.headers['content-length']) > 0)) return;
    const socket = req.socket;
    const restore = () => Reflect.deleteProperty(socket, 'destroySoon');
    const destroySoon = () => {
      restore();
      closeAfterBody(socket, req, options.discardLimitBytes);
    };
    // An own property shadows net.Socket.prototype.destroySoon, for this response only: Node
    // calls it (or not) from its own 'finish' listener, which was added before this one.
    socket.destroySoon = destroySoon;
    res.once('finish', () => {
      if (socket.destroySoon === destroySoon) restore();
    });
  });
}

function closeAfterBody(socket: Socket, req: IncomingMessage, discardLimitBytes: number): void {
  const announced = Number(req.headers['content-length']); // NaN when chunked
  if (req.complete || socket.destroyed || announced > discardLimitBytes) {
    socket.destroySoon();
    return;
  }
  let discarded = 0;
  const cutOff = () => socket.destroy();
  // Node has resumed the request stream already (or the body reader left it flowing), so the
  // parser goes on consuming the body; what it hands over is counted and dropped.
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > discardLimitBytes) cutOff();
  });
  req.once('end', cutOff);
  req.resume();
  if (socket.writable) socket.end();
}
