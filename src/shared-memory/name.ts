/**
 * Validation of POSIX shared memory names, done before any system call.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import type { OsRules } from '../os-rules.js';
import { describe } from '../validate.js';

/**
 * Checks a name the way portable POSIX wants it: a leading `/`, at least one more
 * character, no other `/`, no NUL, not `/.` or `/..`, and no longer than the OS allows.
 */
export function checkName(name: unknown, rules: OsRules): string {
  if (typeof name !== 'string') {
    throw new InvalidArgumentError(`shared memory name must be a string, got ${describe(name)}`);
  }
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`invalid shared memory name ${describe(name)}: ${why}`);
  };
  if (!name.startsWith('/')) bad("it must start with '/' (for example '/jobs')");
  if (name.length < 2) bad("it needs at least one character after '/'");
  if (name.indexOf('/', 1) !== -1) bad("it may contain no '/' after the first character");
  if (name.includes('\0')) bad('it may not contain a NUL character');
  if (name === '/.' || name === '/..') bad("'.' and '..' are not object names");
  const bytes = Buffer.byteLength(name);
  if (bytes > rules.maxNameLength) {
    bad(`it is ${bytes} bytes long and ${rules.os} allows at most ${rules.maxNameLength} (counting the '/')`);
  }
  return name;
}

/** A fresh name for an anonymous object: short enough for macOS's 31-byte limit. */
export function anonymousName(): string {
  return `/cshm-anon-${process.pid.toString(36)}-${randomBytes(5).toString('hex')}`;
}
