/**
 * A slow or idle client cannot hold a connection forever, and cannot starve
 * others: over a real socket, with short limits (HEADERS_TIMEOUT_MS=1000,
 * REQUEST_TIMEOUT_MS=3000, KEEP_ALIVE_TIMEOUT_MS=1000, BODY_LIMIT=4096; the store timeouts
 * short enough for that request timeout),
 * headers trickled byte by byte, a body trickled after complete headers, a
 * connection that sends nothing, and an idle keep-alive connection are each
 * closed by the server (408 where a request was started) within a bound;
 * meanwhile other clients are served; a body over the limit is refused with
 * 413 without waiting for the rest of it. A client that goes on sending that
 * body after the answer, as a proxy does, has it read and discarded (lingering
 * close, src/http/lingering-close.ts) instead of being reset, but no more than
 * BODY_LIMIT + 1 MiB of it and no longer than the request timeout.
 */
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { buildTestApp } from '../helpers/app.js';
import { backendName } from '../helpers/backend.js';

const HEADERS_TIMEOUT_MS = 1_000;
const BODY_LIMIT = 4_096;
/** What the server reads and discards of a refused body at most (src/app.ts). */
const DISCARD_LIMIT = BODY_LIMIT + 1_048_576;
const FORM = 'Content-Type: application/x-www-form-urlencoded\r\n';
const REQUEST_TIMEOUT_MS = 3_000;
const KEEP_ALIVE_TIMEOUT_MS = 1_000;
/** Node checks the deadlines once a second (see app.ts); allow that plus generous slack on a loaded machine. */
const SLACK_MS = 1_000 + 2_500;

interface Outcome {
  /** What the server sent before closing. */
  received: string;
  /** Milliseconds from connecting until the server closed the connection. */
  closedAfterMs: number;
}

/**
 * Connects, runs `drive` (which writes slowly), and resolves when the server
 * closes the connection; rejects if it is still open after `giveUpMs`.
 */
function holdOpen(port: number, drive: (socket: Socket) => () => void, giveUpMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let stop: () => void = () => {};
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {});
    socket.once('connect', () => {
      stop = drive(socket);
    });
    const timer = setTimeout(() => {
      stop();
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${giveUpMs} ms; received: ${received.slice(0, 200)}`));
    }, giveUpMs);
    socket.once('close', () => {
      clearTimeout(timer);
      stop();
      resolve({ received, closedAfterMs: Date.now() - started });
    });
  });
}

interface Relay {
  /** What the server sent. */
  received: string;
  /** Bytes written after the server's answer without a write failing. */
  written: number;
  /** The first socket error (EPIPE, ECONNRESET: the server reset the connection), or null. */
  error: string | null;
}

/**
 * Sends `head`, and once the server has answered and closed its side (FIN),
 * goes on writing `pieces` one after another, `everyMs` apart, like a proxy
 * relaying a body it has already started (nginx sends the whole body before
 * it reads the answer). Stops at the first failed write, then ends its own
 * side; resolves when the connection is closed, rejects if it is still open
 * after `giveUpMs`.
 */
function relayAfterAnswer(port: number, head: string, pieces: Iterable<string>, giveUpMs: number, everyMs = 0): Promise<Relay> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    let written = 0;
    let error: string | null = null;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the connection was still open after ${giveUpMs} ms (${written} bytes written); received: ${received.slice(0, 200)}`));
    }, giveUpMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ received, written, error });
    });
    socket.once('connect', () => socket.write(head));
    // The server's FIN: go on sending the body, as a proxy would.
    const sendRest = async () => {
      for (const piece of pieces) {
        const ok = await new Promise<boolean>((done) => socket.write(piece, (err) => done(!err)));
        if (!ok || socket.destroyed) break;
        written += piece.length;
        if (everyMs > 0) await sleep(everyMs);
      }
      socket.end();
    };
    socket.once('end', () => void sendRest().catch(reject));
  });
}

/** `count` pieces of `size` bytes, each as a chunk of a chunked body when `chunked`. */
function* bodyPieces(count: number, size: number, chunked: boolean): Generator<string> {
  const data = 'a'.repeat(size);
  for (let i = 0; i < count; i++) yield chunked ? `${size.toString(16)}\r\n${data}\r\n` : data;
}

/** Writes `first`, then `drip` every `everyMs` until stopped (or the socket is gone). */
const trickle = (first: string, drip: string, everyMs = 150) => (socket: Socket) => {
  socket.write(first);
  const interval = setInterval(() => {
    if (!socket.destroyed && drip) socket.write(drip);
  }, everyMs);
  return () => clearInterval(interval);
};

t.test(`slow and idle clients are cut off (${backendName})`, async (t) => {
  const { app } = await buildTestApp(t, {
    env: {
      HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      // A request timeout must outlast the longest wait for a store (config.ts): 500 + 2000 ms here.
      PG_STATEMENT_TIMEOUT_MS: '500',
      PG_CONNECT_TIMEOUT_MS: '500',
      REDIS_COMMAND_TIMEOUT_MS: '500',
      KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS),
      BODY_LIMIT: String(BODY_LIMIT),
    },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;

  // The slow clients all start together (each subtest then waits for its own), so the file
  // waits for the longest deadline once instead of for each in turn.
  const later = <T>(promise: Promise<T>) => {
    promise.catch(() => {}); // awaited (and reported) by its subtest
    return promise;
  };
  const slowloris = later(holdOpen(port, trickle('GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'), HEADERS_TIMEOUT_MS + SLACK_MS));
  const slowBody = later(
    holdOpen(
      port,
      trickle('POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n', 'a'),
      REQUEST_TIMEOUT_MS + SLACK_MS,
    ),
  );
  // Headers and part of the body, then nothing: the request timeout answers it, not the idle socket timeout.
  const stalledBody = later(
    holdOpen(port, trickle('POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=', ''), REQUEST_TIMEOUT_MS + SLACK_MS),
  );
  const silent = later(holdOpen(port, () => () => {}, REQUEST_TIMEOUT_MS + SLACK_MS));
  const idle = later(holdOpen(port, trickle('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n', ''), KEEP_ALIVE_TIMEOUT_MS + SLACK_MS));
  // After its 413, a client trickles the rest of the announced body (a byte every 150 ms, 10 000 bytes to go).
  const trickledAfter413 = later(
    relayAfterAnswer(port, `POST /token HTTP/1.1\r\nHost: x\r\n${FORM}Content-Length: 10000\r\n\r\n`, bodyPieces(10_000, 1, false), REQUEST_TIMEOUT_MS + SLACK_MS, 150),
  );

  t.test('headers trickled forever (slowloris): 408 and closed after the headers timeout', async (t) => {
    const outcome = await slowloris;
    t.match(outcome.received, /^HTTP\/1\.1 408 /, '408 Request Timeout');
    t.notMatch(outcome.received, /"statusCode":\s*5\d\d/);
    t.comment(`closed after ${outcome.closedAfterMs} ms`);
  });

  t.test('a body trickled after complete headers: 408 and closed after the request timeout', async (t) => {
    const outcome = await slowBody;
    t.match(outcome.received, /^HTTP\/1\.1 408 /);
    t.comment(`closed after ${outcome.closedAfterMs} ms`);
  });

  t.test('a body that stops halfway: 408, not a silent close', async (t) => {
    const outcome = await stalledBody;
    t.match(outcome.received, /^HTTP\/1\.1 408 /);
    t.match(outcome.received, /"error":"invalid_request"/, 'in this server\'s dialect');
    t.comment(`closed after ${outcome.closedAfterMs} ms`);
  });

  t.test('a connection that never sends a byte is closed', async (t) => {
    const outcome = await silent;
    t.comment(`closed after ${outcome.closedAfterMs} ms; received ${JSON.stringify(outcome.received.slice(0, 40))}`);
    t.notMatch(outcome.received, /^HTTP\/1\.1 5/);
  });

  t.test('an idle keep-alive connection is closed after the keep-alive timeout', async (t) => {
    const outcome = await idle;
    t.match(outcome.received, /^HTTP\/1\.1 200 /, 'the request was answered');
    t.match(outcome.received, /keep-alive/i, 'and the connection kept alive at first');
    t.comment(`closed after ${outcome.closedAfterMs} ms`);
  });

  t.test('while 30 slow clients hold connections, others are served', async (t) => {
    const slow = Array.from({ length: 30 }, () => holdOpen(port, trickle('POST /token HTTP/1.1\r\nHost: x\r\n', 'X: y\r\n'), HEADERS_TIMEOUT_MS + SLACK_MS));
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    t.equal(res.status, 200, 'a normal request is answered meanwhile');
    const outcomes = await Promise.all(slow);
    t.ok(outcomes.every((o) => /^HTTP\/1\.1 408 /.test(o.received)), 'every slow client got 408 and was closed');
  });

  t.test('a body over BODY_LIMIT is refused with 413 without reading it', async (t) => {
    // Announced length over the limit: refused at once, though the body never comes.
    const announced = await holdOpen(
      port,
      trickle('POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n', ''),
      REQUEST_TIMEOUT_MS + SLACK_MS,
    );
    t.match(announced.received, /^HTTP\/1\.1 413 /);
    t.ok(announced.closedAfterMs < REQUEST_TIMEOUT_MS, 'answered before any timeout');
    // Chunked, no length announced: refused once the limit is passed.
    const chunk = 'a'.repeat(1_000);
    const chunked = await holdOpen(
      port,
      trickle(
        'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
        `${chunk.length.toString(16)}\r\n${chunk}\r\n`,
        20,
      ),
      REQUEST_TIMEOUT_MS + SLACK_MS,
    );
    t.match(chunked.received, /^HTTP\/1\.1 413 /);
    t.match(chunked.received, /"error":"invalid_request"/);
  });

  t.test('a client that goes on sending a refused body (as a proxy does) has it read, not reset', async (t) => {
    // 1 MiB in 64 KiB pieces, written after the 413 and the server's FIN arrived.
    const announced = await relayAfterAnswer(
      port,
      `POST /token HTTP/1.1\r\nHost: x\r\n${FORM}Content-Length: ${16 * 65_536}\r\nConnection: close\r\n\r\n`,
      bodyPieces(16, 65_536, false),
      REQUEST_TIMEOUT_MS + SLACK_MS,
    );
    t.match(announced.received, /^HTTP\/1\.1 413 /);
    t.match(announced.received, /"error":"invalid_request"/);
    t.equal(announced.error, null, 'no reset while the body was still being sent');
    t.equal(announced.written, 16 * 65_536, 'the whole body was accepted');
    // Chunked: refused once the first 8 KiB chunk passes the limit; the rest, and the last chunk, follow.
    const rest = [...bodyPieces(16, 65_536, true), '0\r\n\r\n'];
    const chunked = await relayAfterAnswer(
      port,
      `POST /token HTTP/1.1\r\nHost: x\r\n${FORM}Transfer-Encoding: chunked\r\n\r\n${[...bodyPieces(1, 8_192, true)][0]}`,
      rest,
      REQUEST_TIMEOUT_MS + SLACK_MS,
    );
    t.match(chunked.received, /^HTTP\/1\.1 413 /);
    t.equal(chunked.error, null, 'no reset while the body was still being sent');
    t.equal(chunked.written, rest.join('').length, 'the whole body was accepted');
  });

  t.test('but no more than BODY_LIMIT + 1 MiB of it', async (t) => {
    // An endless chunked body at full speed: the server resets the connection past the cap
    // (long before 64 MiB, and well before the request timeout could have ended it).
    const endless = await relayAfterAnswer(
      port,
      `POST /token HTTP/1.1\r\nHost: x\r\n${FORM}Transfer-Encoding: chunked\r\n\r\n${[...bodyPieces(1, 8_192, true)][0]}`,
      bodyPieces(1_024, 65_536, true),
      REQUEST_TIMEOUT_MS + SLACK_MS,
    );
    t.match(endless.received, /^HTTP\/1\.1 413 /);
    t.ok(endless.error, `cut off (${endless.error}) after ${endless.written} bytes`);
    t.ok(endless.written < 1_024 * 65_536, 'before 64 MiB');
    // A length announced beyond the cap is not read at all: cut off at once, as before lingering.
    const huge = await relayAfterAnswer(
      port,
      `POST /token HTTP/1.1\r\nHost: x\r\n${FORM}Content-Length: ${DISCARD_LIMIT + 1}\r\n\r\n`,
      bodyPieces(32, 65_536, false),
      REQUEST_TIMEOUT_MS + SLACK_MS,
    );
    t.match(huge.received, /^HTTP\/1\.1 413 /);
    t.ok(huge.error, `cut off (${huge.error}) after ${huge.written} bytes`);
    t.ok(huge.written < DISCARD_LIMIT, 'without reading up to the cap');
  });

  t.test('and no longer than the request timeout: a refused body trickled after the answer is cut off', async (t) => {
    const outcome = await trickledAfter413;
    t.match(outcome.received, /^HTTP\/1\.1 413 /);
    t.ok(outcome.error, `cut off (${outcome.error}) after ${outcome.written} of 10000 bytes`);
    t.ok(outcome.written < 10_000, 'before the body was complete');
  });

  t.test('the server answers normally afterwards', async (t) => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    t.equal(res.status, 200);
  });
});
