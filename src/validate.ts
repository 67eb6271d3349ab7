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

/** An optional plain options object. */
export function checkOptions<T extends object>(what: string, value: unknown): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`${what} must be an object, got ${describe(value)}`);
  }
  return value as Partial<T>;
}

/** One of a fixed set of strings. */
export function checkChoice<T extends string>(what: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${what} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}
