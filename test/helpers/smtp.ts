/**
 * A real SMTP server for tests (smtp-server on 127.0.0.1, a free port) that
 * keeps every mail it receives, so a test reads the mail the server sent.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  /** The raw message (headers and body), quoted-printable decoded. */
  text: string;
}

export interface TestSmtp {
  /** `smtp://127.0.0.1:<port>` for SMTP_URL. */
  url: string;
  /** Every mail received so far. */
  readonly received: ReceivedMail[];
  /** The next mail not yet returned by an earlier call (waits for it). */
  nextMail(): Promise<ReceivedMail>;
}

/** Undoes quoted-printable soft line breaks and escapes (RFC 2045 §6.7), enough to read a link. */
function decodeQuotedPrintable(raw: string): string {
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export async function startTestSmtp(t: { teardown(fn: () => unknown): void }): Promise<TestSmtp> {
  const received: ReceivedMail[] = [];
  const waiting: Array<(mail: ReceivedMail) => void> = [];
  let read = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const mail = { to: session.envelope.rcptTo.map((r) => r.address), text: decodeQuotedPrintable(Buffer.concat(chunks).toString('utf8')) };
        received.push(mail);
        waiting.shift()?.(mail);
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    nextMail() {
      const index = read++;
      if (index < received.length) return Promise.resolve(received[index]!);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}
