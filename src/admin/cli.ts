/**
 * `npm run cli -- <group> <command> [options]`: the admin operations from the
 * command line, over the same services and storage as the server (see
 * `cli/run.ts` for where a command runs, `cli/registry.ts` for the groups).
 * This entry point is the only part that touches the process.
 */
import { readHiddenLine } from './cli/prompt.js';
import { runCli } from './cli/run.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return readHiddenLine(process.stdin, process.stderr, 'Type it and press Enter (it is not shown): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

runCli(
  process.argv.slice(2),
  {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readStdin,
  },
  { env: process.env },
).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
