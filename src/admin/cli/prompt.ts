/**
 * One line typed at a terminal, not echoed: what `--password-stdin` (and
 * `--new-key-stdin`) read when standard input is a terminal rather than a
 * pipe, so `npm run cli -- users update admin --password-stdin` typed as it
 * stands asks for the password instead of failing on an empty input.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/** Writes `prompt` to `output`, reads one line from `input` without echoing it; '' on end of input or Ctrl-C. */
export function readHiddenLine(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  output.write(prompt);
  // readline in terminal mode (raw input, its own line editing) echoing into nothing.
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input, output: silent, terminal: true });
  return new Promise((resolve) => {
    let answer = '';
    rl.once('line', (line) => {
      answer = line;
      rl.close();
    });
    rl.once('SIGINT', () => rl.close());
    rl.once('close', () => {
      output.write('\n');
      resolve(answer);
    });
  });
}
