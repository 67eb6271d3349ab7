/**
 * What every subcommand provides, and the error mapping they share.
 * @internal
 */
import { CliError, EXIT } from './exit.js';

/** A subcommand of `concurrent-shm`. */
export interface Command {
  /** One line for the top-level help. */
  summary: string;
  /** The text of `concurrent-shm <command> --help`. */
  help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** The exit-code footer of every help text. */
export const EXIT_CODES_HELP = `exit codes:
  0  ok
  1  an operation failed (permission denied, a system call failed)
  2  usage error (unknown command or option, bad value, a confirmation that cannot be asked)
  3  not found: no such object, or no structure of this library in it
`;

/**
 * Turns an error of opening or reading object `name` into a {@link CliError}: not found → 3,
 * permission denied → 1. Library errors keep their message.
 */
export function objectError(name: string, err: unknown): CliError {
  const e = err as NodeJS.ErrnoException & { code?: string };
  switch (e?.code) {
    case 'ENOENT':
    case 'ERR_SHM_NOT_FOUND':
      return new CliError(`no shared memory object '${name}'`, EXIT.NOT_FOUND);
    case 'EACCES':
    case 'EPERM':
    case 'ERR_SHM_PERMISSION':
      return new CliError(`cannot read shared memory '${name}': permission denied`, EXIT.FAILED);
    case 'ERR_SHM_INVALID_ARGUMENT':
      return new CliError((e as Error).message, EXIT.USAGE);
    default:
      return err instanceof CliError ? err : new CliError(`cannot read shared memory '${name}': ${(err as Error)?.message ?? String(err)}`, EXIT.FAILED);
  }
}
