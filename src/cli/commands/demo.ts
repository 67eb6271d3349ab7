/**
 * `concurrent-shm demo`: runs examples/producer-consumer/main.js (shipped in the package)
 * with this terminal, and exits with its exit code.
 * @internal
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseOrUsage } from '../args.js';
import { type Command } from '../command.js';
import { CliError, EXIT } from '../exit.js';
import { packageFile } from '../paths.js';

const EXAMPLE = 'examples/producer-consumer/main.js';

const help = `usage: concurrent-shm demo [ARGS...]

Runs the producer/consumer example (${EXAMPLE} in the package): a parent process
sends lines through a SingleBuffered.Variable channel in shared memory to a child,
which prints each one as 'received! "..."'. The lines come from standard input, or
are built in when standard input is a terminal or empty:

  printf 'hello\\nworld\\n' | concurrent-shm demo

ARGS are passed to the example. The exit code is the example's.

options:
  -h, --help       this text
`;

async function run(argv: string[]): Promise<number> {
  const { positionals } = parseOrUsage('demo', () =>
    parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true }),
  );
  const script = fileURLToPath(packageFile(EXAMPLE));
  if (!existsSync(script)) throw new CliError(`the demo is not installed: ${script} is missing`, EXIT.FAILED);
  const child = spawn(process.execPath, [script, ...positionals], { stdio: 'inherit' });
  // Ctrl-C reaches the example too (same process group): let it decide how to end.
  const ignore = (): void => {};
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new CliError(`cannot start the demo: ${err.message}`, EXIT.FAILED)));
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    });
  } finally {
    process.off('SIGINT', ignore);
  }
}

export const demo: Command = { summary: 'run the producer/consumer example', help, run };
