/**
 * The nine channel kinds of the gem's table (plus Buffered.Variable, which the gem lacks):
 * Unbuffered (a rendezvous: a send completes when a receiver has taken the message),
 * SingleBuffered (one slot) and Buffered (`depth` slots), each carrying Empty (a signal),
 * Fixed (exactly `width` bytes, zero-padded) or Variable (up to `capacity` bytes) messages.
 * @module
 */
import { InvalidArgumentError, OutOfRangeError } from '../errors.js';
import type { SharedMemory } from '../shared-memory/shared-memory.js';
import { checkOptions, describe } from '../validate.js';
import { Channel, type ChannelOptions } from './channel.js';
import { Kind, Payload, SLOTS_OFFSET, slotStride, type HeaderInfo } from './layout.js';

/** Largest message width or capacity: 1 GiB. */
export const MAX_WIDTH = 2 ** 30;
/** Largest depth of a Buffered channel. */
export const MAX_DEPTH = 2 ** 20;
/** Largest channel: the header's size field is 32 bits. */
const MAX_TOTAL = 2 ** 32 - 1;

function count(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError(`${what} must be an integer, got ${describe(value)}`);
  if (value < min || value > max) throw new OutOfRangeError(`${what} must be from ${min} to ${max}, got ${value}`);
  return value;
}

/** The header a kind will have. */
export function shape(kind: Kind, payload: Payload, depth: number, width: number): HeaderInfo {
  const stride = slotStride(payload === Payload.Empty ? 0 : width);
  const totalSize = SLOTS_OFFSET + depth * stride;
  if (totalSize > MAX_TOTAL) throw new OutOfRangeError(`a channel of depth ${depth} and width ${width} would need ${totalSize} bytes; at most ${MAX_TOTAL} are supported`);
  return { kind, payload, depth, width: payload === Payload.Empty ? 0 : width, stride, totalSize };
}

/** Options of a Fixed channel: `width` is the exact size of every message. */
export interface FixedOptions extends ChannelOptions {
  /** Bytes per message (shorter messages are zero-padded). */
  width: number;
}
/** Options of a Variable channel: `capacity` is the largest message. */
export interface VariableOptions extends ChannelOptions {
  /** Largest message in bytes. */
  capacity: number;
}
/** Options of a Buffered channel. */
export interface DepthOptions {
  /** Number of messages the channel holds (at least 2; use SingleBuffered for 1). */
  depth: number;
}

function depthOf(o: Partial<DepthOptions>): number {
  return count('options.depth', o.depth, 2, MAX_DEPTH);
}
function widthOf(o: Partial<FixedOptions>): number {
  return count('options.width', o.width, 1, MAX_WIDTH);
}
function capacityOf(o: Partial<VariableOptions>): number {
  return count('options.capacity', o.capacity, 1, MAX_WIDTH);
}

/** Constructs a channel of a known shape, or attaches (`wanted` null). Not exported: use the kinds. */
abstract class KindBase extends Channel {
  protected constructor(shm: SharedMemory, wanted: HeaderInfo | null, options: ChannelOptions | undefined) {
    super(shm, wanted, options);
  }
}

const ATTACH: unique symbol = Symbol('attach');
/** @internal Marker passed instead of options by Channel.attach. */
export type AttachMarker = { [ATTACH]: ChannelOptions };
/** @internal */
export function attachMarker(options: ChannelOptions): AttachMarker {
  return { [ATTACH]: options };
}
function isAttach(o: unknown): o is AttachMarker {
  return typeof o === 'object' && o !== null && ATTACH in o;
}

function make(kind: Kind, payload: Payload, options: unknown, sizes: (o: any) => [number, number]): [HeaderInfo | null, ChannelOptions | undefined] {
  if (isAttach(options)) return [null, options[ATTACH]];
  const o = checkOptions<FixedOptions & VariableOptions & DepthOptions>('options', options);
  const [depth, width] = sizes(o);
  return [shape(kind, payload, depth, width), o];
}

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Unbuffered, Empty: a rendezvous signal. `sendSync()` returns when a receiver has taken it. */
export class UnbufferedEmpty extends KindBase {
  constructor(shm: SharedMemory, options?: ChannelOptions) {
    super(shm, ...make(Kind.Unbuffered, Payload.Empty, options, () => [1, 0]));
  }
}
/** Unbuffered, Fixed: `width`-byte messages handed over directly. */
export class UnbufferedFixed extends KindBase {
  constructor(shm: SharedMemory, options: FixedOptions) {
    super(shm, ...make(Kind.Unbuffered, Payload.Fixed, options, (o) => [1, widthOf(o)]));
  }
}
/** Unbuffered, Variable: messages of up to `capacity` bytes handed over directly. */
export class UnbufferedVariable extends KindBase {
  constructor(shm: SharedMemory, options: VariableOptions) {
    super(shm, ...make(Kind.Unbuffered, Payload.Variable, options, (o) => [1, capacityOf(o)]));
  }
}
/** SingleBuffered, Empty: a one-slot signal. */
export class SingleBufferedEmpty extends KindBase {
  constructor(shm: SharedMemory, options?: ChannelOptions) {
    super(shm, ...make(Kind.SingleBuffered, Payload.Empty, options, () => [1, 0]));
  }
}
/** SingleBuffered, Fixed: one slot of `width` bytes. */
export class SingleBufferedFixed extends KindBase {
  constructor(shm: SharedMemory, options: FixedOptions) {
    super(shm, ...make(Kind.SingleBuffered, Payload.Fixed, options, (o) => [1, widthOf(o)]));
  }
}
/** SingleBuffered, Variable: one slot of up to `capacity` bytes (the gem's README example). */
export class SingleBufferedVariable extends KindBase {
  constructor(shm: SharedMemory, options: VariableOptions) {
    super(shm, ...make(Kind.SingleBuffered, Payload.Variable, options, (o) => [1, capacityOf(o)]));
  }
}
/** Buffered, Empty: a counting signal of up to `depth` pending signals. */
export class BufferedEmpty extends KindBase {
  constructor(shm: SharedMemory, options: ChannelOptions & DepthOptions) {
    super(shm, ...make(Kind.Buffered, Payload.Empty, options, (o) => [depthOf(o), 0]));
  }
}
/** Buffered, Fixed: a ring of `depth` slots of `width` bytes. */
export class BufferedFixed extends KindBase {
  constructor(shm: SharedMemory, options: FixedOptions & DepthOptions) {
    super(shm, ...make(Kind.Buffered, Payload.Fixed, options, (o) => [depthOf(o), widthOf(o)]));
  }
}
/** Buffered, Variable: a ring of `depth` slots of up to `capacity` bytes (not in the gem). */
export class BufferedVariable extends KindBase {
  constructor(shm: SharedMemory, options: VariableOptions & DepthOptions) {
    super(shm, ...make(Kind.Buffered, Payload.Variable, options, (o) => [depthOf(o), capacityOf(o)]));
  }
}

/** The class of each kind and payload. @internal */
export const CLASSES: Record<number, Record<number, new (shm: SharedMemory, options: any) => Channel>> = {
  [Kind.Unbuffered]: { [Payload.Empty]: UnbufferedEmpty, [Payload.Fixed]: UnbufferedFixed, [Payload.Variable]: UnbufferedVariable },
  [Kind.SingleBuffered]: { [Payload.Empty]: SingleBufferedEmpty, [Payload.Fixed]: SingleBufferedFixed, [Payload.Variable]: SingleBufferedVariable },
  [Kind.Buffered]: { [Payload.Empty]: BufferedEmpty, [Payload.Fixed]: BufferedFixed, [Payload.Variable]: BufferedVariable },
};
