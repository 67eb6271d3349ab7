/**
 * Names given on the command line. The command accepts `/jobs` or `jobs` and nothing that
 * could reach outside the shared memory namespace: no other `/`, no `..`, no NUL.
 * @internal
 */
import { UsageError } from './exit.js';

/** Longest object name after the `/` (Linux `NAME_MAX`; macOS allows fewer, and the library checks that). */
const MAX_NAME_BYTES = 255;

/** `'jobs'` or `'/jobs'` → `'/jobs'`; a {@link UsageError} for anything else. */
export function toShmName(arg: string, command: string): string {
  const bare = arg.startsWith('/') ? arg.slice(1) : arg;
  const bad = (why: string): never => {
    throw new UsageError(`invalid shared memory name '${arg}': ${why}`, command);
  };
  if (bare.length === 0) bad('it is empty');
  if (bare.includes('/')) bad("a name is '/name' or 'name', with no other '/'");
  if (bare.includes('..')) bad("it may not contain '..'");
  if (bare === '.') bad("'.' is not an object name");
  if (bare.includes('\0')) bad('it may not contain a NUL character');
  if (Buffer.byteLength(bare) > MAX_NAME_BYTES) bad(`it is longer than ${MAX_NAME_BYTES} bytes`);
  return `/${bare}`;
}
