/**
 * The option and result types of the Watch API.
 * @module
 */
import type { TimeoutError, AbortError } from '../errors.js';

/** Where a Watch lives and how big its value can be. */
export interface WatchOptions {
  /** Largest value in bytes (1 to 2^30). */
  capacity: number;
  /** Byte offset in the object; a multiple of 16. Default 0. */
  offset?: number;
  /** Grow the object to fit when it is too small. Default `true` (on macOS: only a fresh object). */
  autosize?: boolean;
}

/** Options of a wait for a change. */
export interface WatchWaitOptions {
  /** Give up after this many milliseconds with a {@link TimeoutError}. `0`: only check. */
  timeout?: number;
  /** Give up when the signal aborts, with an {@link AbortError} (async only). */
  signal?: AbortSignal;
}

/** A value read, and the version it was published as (see {@link Watch.version}). */
export interface WatchValue<T = Buffer> {
  value: T;
  version: number;
}

/** Constructors of typed arrays `readTyped` can build. */
export type TypedArrayConstructor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;
