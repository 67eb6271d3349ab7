/**
 * Exit codes of the `concurrent-shm` command, and the error that carries one.
 * Scripts may rely on these numbers; `concurrent-shm --help` lists them.
 * @internal
 */

/** Exit codes. */
export const EXIT = {
  /** The command did what was asked. */
  OK: 0,
  /** An operation failed (permission denied, a system call failed, a benchmark transport failed). */
  FAILED: 1,
  /** Bad arguments: unknown command or option, missing or invalid value, a confirmation that cannot be asked. */
  USAGE: 2,
  /** No such shared memory object, or it holds no structure of this library at the offset. */
  NOT_FOUND: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the command reports as one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = EXIT.FAILED) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A usage error (exit code 2); `command` names the help page to point to. */
export class UsageError extends CliError {
  readonly command: string | undefined;
  /** Whether to point to `--help` after the message. */
  readonly hint: boolean;
  constructor(message: string, command?: string, hint = true) {
    super(message, EXIT.USAGE);
    this.name = 'UsageError';
    this.command = command;
    this.hint = hint;
  }
}
