// The command line of the bench scripts: strict options, a usage error (exit code 2) and
// --help (exit code 0) handled the same way everywhere.
import { parseArgs } from 'node:util';

/**
 * Parses `argv` against `options` (node:util parseArgs, strict, with `-h/--help` added).
 * Returns the values, or the exit code when the script should stop: 2 after printing the
 * error and `usage` to stderr, 0 after printing `usage` for --help.
 * @returns {Record<string, string | boolean | undefined> | number}
 */
export function parseCommand(argv, options, usage) {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  return values;
}
