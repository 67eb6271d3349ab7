/**
 * The header a channel of each kind will have, from the options a user passes: the
 * kinds' `width` / `capacity` / `depth`, and the gem's `depth` / `width` table. Every
 * check runs before anything is mapped or written.
 * @internal
 */
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import { describe } from '../validate.js';
import { Kind, MAX_CHUNKED_CAPACITY, MAX_MESSAGE, MIN_CHUNKED_CAPACITY, Payload, SLOTS_OFFSET, slotStride, type HeaderInfo } from './layout.js';

/** Largest message width or capacity: 1 GiB. */
export const MAX_WIDTH = 2 ** 30;
/** Largest depth of a Buffered channel. */
export const MAX_DEPTH = 2 ** 20;
/** Largest channel: the header's size field is 32 bits. */
const MAX_TOTAL = 2 ** 32 - 1;

/** An integer option within [min, max]. */
export function count(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError(`${what} must be an integer, got ${describe(value)}`);
  if (value < min || value > max) throw new OutOfRangeError(`${what} must be from ${min} to ${max}, got ${value}`);
  return value;
}

/** The header a kind will have. */
export function shape(kind: Kind, payload: Payload, depth: number, width: number): HeaderInfo {
  const w = payload === Payload.Empty ? 0 : width;
  const stride = slotStride(payload, w);
  const totalSize = SLOTS_OFFSET + depth * stride;
  if (totalSize > MAX_TOTAL) throw new OutOfRangeError(`a channel of depth ${depth} and width ${width} would need ${totalSize} bytes; at most ${MAX_TOTAL} are supported`);
  return { kind, payload, depth, width: w, stride, totalSize };
}

/** The gem's table: depth 0 Unbuffered, 1 SingleBuffered, 2+ Buffered; width 0 Empty, > 0 Fixed, < 0 Variable of capacity -width. */
export function gemShape(depth: unknown, width: unknown): HeaderInfo {
  if (typeof depth !== 'number' || !Number.isSafeInteger(depth)) throw new InvalidArgumentError(`options.depth must be an integer, got ${describe(depth)}`);
  if (typeof width !== 'number' || !Number.isSafeInteger(width)) throw new InvalidArgumentError(`options.width must be an integer, got ${describe(width)}`);
  if (depth < 0 || depth > MAX_DEPTH) throw new OutOfRangeError(`options.depth must be 0 (Unbuffered), 1 (SingleBuffered) or 2 to ${MAX_DEPTH} (Buffered), got ${depth}`);
  if (Math.abs(width) > MAX_WIDTH) throw new OutOfRangeError(`options.width must be from -${MAX_WIDTH} to ${MAX_WIDTH}, got ${width}`);
  const kind = depth === 0 ? Kind.Unbuffered : depth === 1 ? Kind.SingleBuffered : Kind.Buffered;
  const payload = width === 0 ? Payload.Empty : width > 0 ? Payload.Fixed : Payload.Variable;
  return shape(kind, payload, Math.max(1, depth), Math.abs(width));
}

/**
 * The header of a Variable channel that carries messages of up to `maxMessage` bytes, in
 * chunks of its capacity (`undefined` or equal to the capacity: an ordinary channel).
 * Checked before anything is mapped.
 */
export function withMaxMessage(info: HeaderInfo, maxMessage: unknown): HeaderInfo {
  if (maxMessage === undefined) return info;
  if (typeof maxMessage !== 'number' || !Number.isSafeInteger(maxMessage)) throw new InvalidArgumentError(`options.maxMessage must be an integer (bytes), got ${describe(maxMessage)}`);
  if (info.payload !== Payload.Variable) {
    throw new InvalidArgumentError(`options.maxMessage applies to Variable channels only (their messages keep their length); this is a ${info.payload === Payload.Fixed ? 'Fixed' : 'Empty'} channel`);
  }
  if (maxMessage < info.width) throw new OutOfRangeError(`options.maxMessage must be at least the capacity (${info.width}), got ${maxMessage}`);
  if (maxMessage > MAX_MESSAGE) throw new OutOfRangeError(`options.maxMessage must be at most ${MAX_MESSAGE} (the total length is a 32-bit field), got ${maxMessage}`);
  if (maxMessage === info.width) return info;
  if (info.width < MIN_CHUNKED_CAPACITY || info.width > MAX_CHUNKED_CAPACITY) {
    throw new OutOfRangeError(`a channel with maxMessage above its capacity needs a capacity from ${MIN_CHUNKED_CAPACITY} to ${MAX_CHUNKED_CAPACITY} bytes (its chunks), got ${info.width}`);
  }
  return { ...info, maxMessage };
}
