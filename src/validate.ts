/**
 * Argument checks shared by every public entry point. Each runs before any system call
 * and throws an error that names the argument, the value and the rule it breaks.
 * @internal
 */
import { InvalidArgumentError, OutOfRangeError } from './errors.js';

/** Describes a value for an error message, briefly. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`;
  if (typeof value === 'function') return 'a function';
  return String(value);
}

/** A safe non-negative integer (a size, an offset, a length), at least `min`. */
export function checkIndex(what: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError(`${what} must be a safe integer, got ${describe(value)}`);
  }
  if (value < min) {
    throw new OutOfRangeError(`${what} must be ${min === 0 ? 'non-negative' : `at least ${min}`}, got ${value}`);
  }
  return value;
}

/**
 * An optional plain options object whose keys are all among `keys`: a misspelt key
 * (`{ ofset: 4096 }`) is refused with the list of valid ones rather than silently ignored.
 *
 * `keys` is optional only while the channel and mutex code moves over to it; without it,
 * any key is accepted.
 */
export function checkOptions<T extends object>(what: string, value: unknown, keys?: readonly (keyof T & string)[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`${what} must be an object, got ${describe(value)}`);
  }
  if (keys !== undefined) {
    for (const key of Object.keys(value)) {
      if ((keys as readonly string[]).includes(key)) continue;
      const valid = keys.length === 0 ? 'it takes no options' : `the valid ${keys.length === 1 ? 'key is' : 'keys are'} ${keys.map((k) => `'${k}'`).join(', ')}`;
      const near = keys.find((k) => closeTo(key, k));
      throw new InvalidArgumentError(`${what} has an unknown key ${describe(key)}${near ? ` (did you mean '${near}'?)` : ''}: ${valid}`);
    }
  }
  return value as Partial<T>;
}

/** `true` when `a` is `b` with one letter changed, added, dropped or swapped with the next, or differs only in case. */
function closeTo(a: string, b: string): boolean {
  if (a.toLowerCase() === b.toLowerCase()) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const rest = (x: string, n: number): string => x.slice(i + n);
  return (
    rest(a, 1) === rest(b, 1) || // changed
    rest(a, 0) === rest(b, 1) || // dropped
    rest(a, 1) === rest(b, 0) || // added
    (a[i] === b[i + 1] && a[i + 1] === b[i] && rest(a, 2) === rest(b, 2)) // swapped
  );
}

/** One of a fixed set of strings. */
export function checkChoice<T extends string>(what: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${what} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

/** The `performance.now()` time a wait of `timeout` ms ends (Infinity without one); `timeout` must be a non-negative number. */
export function deadlineOf(timeout: unknown): number {
  if (timeout === undefined) return Infinity;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw new InvalidArgumentError(`options.timeout must be a non-negative number of milliseconds, got ${describe(timeout)}`);
  }
  return performance.now() + timeout;
}

/** An optional Buffer encoding name. */
export function checkEncoding(encoding: unknown): BufferEncoding | undefined {
  if (encoding === undefined) return undefined;
  if (typeof encoding !== 'string' || !Buffer.isEncoding(encoding)) {
    throw new InvalidArgumentError(`options.encoding must be a Buffer encoding such as 'utf8', got ${describe(encoding)}`);
  }
  return encoding;
}
