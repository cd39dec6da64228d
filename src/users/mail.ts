/**
 * Mail the server sends (password reset, email verification), and the queue
 * that sends it out of the request path: a request that leads to a mail
 * answers before the SMTP conversation, so its answer and timing are the same
 * whether or not a mail went out (no way to tell which addresses are known).
 */
import type { Transporter } from 'nodemailer';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  /** Sends one message; rejects when the SMTP server refuses it or cannot be reached. */
  send(message: MailMessage): Promise<void>;
  close(): void;
}

/**
 * A mailer over SMTP (`SMTP_URL`, e.g. `smtp://mail:25`), from `SMTP_FROM`.
 * nodemailer is loaded with the first message, not at start (about 50 ms and
 * 10 MB that a server sending no mail need not pay).
 */
export function createSmtpMailer(smtp: { url: string; from: string }): Mailer {
  let transport: Promise<Transporter> | undefined;
  const open = () => (transport ??= import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport(smtp.url)));
  return {
    async send(message) {
      await (await open()).sendMail({ from: smtp.from, ...message });
    },
    close: () => {
      void transport?.then(
        (t) => t.close(),
        () => {},
      );
    },
  };
}

export interface MailQueue {
  /** Hands the message to the mailer after the current request; never rejects (failures go to `onError`). */
  enqueue(message: MailMessage): void;
  /** Waits for the messages still being sent, then closes the mailer. */
  close(): Promise<void>;
}

export function createMailQueue(mailer: Mailer, onError: (err: unknown) => void): MailQueue {
  const sending = new Set<Promise<void>>();
  return {
    enqueue(message) {
      const sent: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => mailer.send(message))
        .catch(onError)
        .finally(() => sending.delete(sent));
      sending.add(sent);
    },
    async close() {
      await Promise.allSettled([...sending]);
      mailer.close();
    },
  };
}
