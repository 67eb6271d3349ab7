/**
 * Turns an errno from a failed call into the right {@link ShmSystemError} subclass with
 * a message of the form "cannot {what} '{name}': {why} ({ERRNO})".
 * @internal
 */
import { getSystemErrorMap } from 'node:util';
import {
  ShmExistsError,
  ShmNoSpaceError,
  ShmNotFoundError,
  ShmPermissionError,
  ShmSystemError,
  type SystemErrorInfo,
} from './errors.js';

const REASONS: Readonly<Record<string, string>> = {
  EEXIST: 'it already exists',
  ENOENT: 'it does not exist',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left for shared memory (is /dev/shm full?)',
  ENOMEM: 'not enough memory',
  EFBIG: 'the size is larger than the system allows',
  EINVAL: 'the system rejected the arguments',
  EMFILE: 'this process has too many open files',
  ENFILE: 'the system has too many open files',
  ENAMETOOLONG: 'the name is too long for this system',
  EBADF: 'the descriptor is not open',
  ENODEV: 'the descriptor cannot be mapped',
};

const systemErrors = getSystemErrorMap();

/** The name of an errno value on this platform (`EEXIST`), or `E<number>` when unknown. */
export function errnoName(errno: number): string {
  return systemErrors.get(-errno)?.[0] ?? `E${errno}`;
}

/** Builds the error for a failed `syscall` with `errno`; `what` says what was attempted ("open shared memory"). */
export function systemError(what: string, syscall: string, errno: number, shmName?: string): ShmSystemError {
  const name = errnoName(errno);
  const why = REASONS[name] ?? systemErrors.get(-errno)?.[1] ?? 'unknown error';
  const target = shmName === undefined ? '' : ` '${shmName}'`;
  const info: SystemErrorInfo = { syscall, errno, errnoName: name, shmName };
  const message = `cannot ${what}${target}: ${why} (${name})`;
  switch (name) {
    case 'EEXIST':
      return new ShmExistsError(message, info);
    case 'ENOENT':
      return new ShmNotFoundError(message, info);
    case 'EACCES':
    case 'EPERM':
      return new ShmPermissionError(message, info);
    case 'ENOSPC':
    case 'ENOMEM':
    case 'EFBIG':
      return new ShmNoSpaceError(message, info);
    default:
      return new ShmSystemError(message, info);
  }
}

/** Converts an error thrown by Node's `fs` (which carries `code` and a negative `errno`) into a {@link ShmSystemError}. */
export function fromNodeError(what: string, err: unknown, shmName?: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number' && typeof e.syscall === 'string') {
    return systemError(what, e.syscall, Math.abs(e.errno), shmName);
  }
  return err;
}
