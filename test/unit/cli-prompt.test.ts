/**
 * `--password-stdin` typed in a terminal asks for the password (not shown)
 * instead of failing on an empty input: `readHiddenLine`, over streams that
 * stand in for the terminal.
 */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { readHiddenLine } from '../../src/admin/cli/prompt.js';

function terminal() {
  const input = new PassThrough();
  const output = new PassThrough();
  let shown = '';
  output.setEncoding('utf8').on('data', (chunk: string) => (shown += chunk));
  return { input, output, shown: () => shown };
}

t.test('asks, reads one line, never echoes it', async (t) => {
  const term = terminal();
  const answer = readHiddenLine(term.input, term.output, 'Password: ');
  term.input.write('a long passphrase\r');
  t.equal(await answer, 'a long passphrase');
  t.equal(term.shown(), 'Password: \n', 'the prompt, then a new line; not the password');
});

t.test('end of input or Ctrl-C: an empty answer', async (t) => {
  const ended = terminal();
  const nothing = readHiddenLine(ended.input, ended.output, 'Password: ');
  ended.input.end();
  t.equal(await nothing, '');

  const interrupted = terminal();
  const cancelled = readHiddenLine(interrupted.input, interrupted.output, 'Password: ');
  interrupted.input.write('half a pass\x03');
  t.equal(await cancelled, '');
  t.notMatch(interrupted.shown(), /half/);
});
