/**
 * Argument parsing on top of Node's `util.parseArgs`: its errors become one-line usage
 * errors that name the command, and numbers are checked here.
 * @internal
 */
import { UsageError } from './exit.js';

/** `true` when `--help` or `-h` appears before any `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** Runs a `parseArgs` call, turning its errors into a {@link UsageError} for `command`. */
export function parseOrUsage<T>(command: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError(describeParseError(err), command);
  }
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = String(e?.message ?? err);
  let m: RegExpExecArray | null;
  switch (e?.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      if ((m = /Unknown option '([^']+)'/.exec(message))) return `unknown option '${m[1]}'`;
      break;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      if ((m = /Unexpected argument '([^']*)'/.exec(message))) return `unexpected argument '${m[1]}'`;
      break;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if ((m = /Option '(-[^' ]+)[^']*' argument missing/.exec(message))) return `option '${m[1]}' needs a value`;
      if ((m = /Option '(-[^' ]+)[^']*' does not take an argument/.exec(message))) return `option '${m[1]}' takes no value`;
      if ((m = /Option '(-[^' ]+)[^']*' argument is ambiguous/.exec(message))) {
        return `option '${m[1]}' needs a value (to pass a value starting with '-', write ${m[1]}=VALUE)`;
      }
      break;
  }
  // Unknown shape: keep the first sentence of Node's message.
  return message.split(/\.\s/)[0]!.replace(/\.$/, '');
}

/** A non-negative integer option such as `--offset 4096`; `multipleOf` adds an alignment rule. */
export function parseInteger(option: string, value: string, command: string, { min = 0, max = Number.MAX_SAFE_INTEGER, multipleOf = 1 } = {}): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${option} must be a whole number, got '${value}'`, command);
  if (n < min || n > max) throw new UsageError(`${option} must be from ${min} to ${max}, got ${n}`, command);
  if (n % multipleOf !== 0) throw new UsageError(`${option} must be a multiple of ${multipleOf}, got ${n}`, command);
  return n;
}
