#!/usr/bin/env node
/**
 * The `concurrent-shm` command: inspect and manage shared memory objects and the
 * structures of this library in them (`ls`, `inspect`, `rm`), run the benchmark
 * (`bench`) and the example (`demo`). Arguments are parsed with Node's `util.parseArgs`.
 * Errors are one line on stderr (a stack trace only with CONCURRENT_SHM_DEBUG=1) and
 * an exit code from exit.ts.
 * @module
 */
import { wantsHelp } from './args.js';
import { EXIT_CODES_HELP, type Command } from './command.js';
import { bench } from './commands/bench.js';
import { demo } from './commands/demo.js';
import { inspect } from './commands/inspect.js';
import { ls } from './commands/ls.js';
import { rm } from './commands/rm.js';
import { CliError, EXIT, UsageError } from './exit.js';
import { packageVersion } from './paths.js';

const COMMANDS: Record<string, Command> = { ls, inspect, rm, bench, demo };

function topHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const list = Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}   ${c.summary}`)
    .join('\n');
  return `usage: concurrent-shm <command> [options]

Inspects and manages POSIX shared memory objects, and the structures of concurrent-shm
in them (channels, mutexes, Watches, Broadcasts, heaps).

commands:
${list}

  concurrent-shm <command> --help    help on a command
  concurrent-shm --version           the version of concurrent-shm

${EXIT_CODES_HELP}
environment:
  CONCURRENT_SHM_DEBUG=1   print the stack trace of an error
`;
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(topHelp());
    return EXIT.USAGE;
  }
  if (first === '--help' || first === '-h') {
    process.stdout.write(topHelp());
    return EXIT.OK;
  }
  if (first === '--version' || first === '-V' || first === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT.OK;
  }
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) {
      process.stdout.write(topHelp());
      return EXIT.OK;
    }
    const command = COMMANDS[topic];
    if (command === undefined) throw unknownCommand(topic);
    process.stdout.write(command.help);
    return EXIT.OK;
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}' (options go after the command)`);
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (command === undefined) throw unknownCommand(first);
  if (wantsHelp(rest)) {
    process.stdout.write(command.help);
    return EXIT.OK;
  }
  return command.run(rest);
}

function unknownCommand(name: string): UsageError {
  return new UsageError(`unknown command '${name}'; the commands are ${Object.keys(COMMANDS).join(', ')}`);
}

/** One line for an error; the exit code it maps to. */
function report(err: unknown): number {
  const debug = process.env.CONCURRENT_SHM_DEBUG === '1';
  if (err instanceof UsageError) {
    const where = err.command === undefined ? 'concurrent-shm' : `concurrent-shm ${err.command}`;
    process.stderr.write(`${where}: ${err.message}${err.hint ? ` (see '${where} --help')` : ''}\n`);
  } else if (err instanceof CliError) {
    process.stderr.write(`concurrent-shm: ${err.message}\n`);
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`concurrent-shm: ${message}${debug ? '' : ' (set CONCURRENT_SHM_DEBUG=1 for details)'}\n`);
  }
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return err instanceof CliError ? err.exitCode : EXIT.FAILED;
}

// A reader that went away (`concurrent-shm ls | head`) ends the output, not the command with a trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.OK);
  throw err;
});

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.exitCode = report(err);
}
