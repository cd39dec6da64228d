/**
 * Mail the server sends (password reset, email verification), and the queue
 * that sends it out of the request path: a request that leads to a mail
 * answers before the SMTP conversation, so its answer and timing are the same
 * whether or not a mail went out (no way to tell which addresses are known).
 */
import nodemailer from 'nodemailer';

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

/** A mailer over SMTP (`SMTP_URL`, e.g. `smtp://mail:25`), from `SMTP_FROM`. */
export function createSmtpMailer(smtp: { url: string; from: string }): Mailer {
  const transport = nodemailer.createTransport(smtp.url);
  return {
    async send(message) {
      await transport.sendMail({ from: smtp.from, ...message });
    },
    close: () => transport.close(),
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
