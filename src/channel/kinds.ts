/**
 * The nine channel kinds of the gem's table (plus Buffered.Variable, which the gem lacks):
 * Unbuffered (a rendezvous: a send completes when a receiver has taken the message),
 * SingleBuffered (one slot) and Buffered (`depth` slots), each carrying Empty (a signal),
 * Fixed (exactly `width` bytes, zero-padded) or Variable (up to `capacity` bytes) messages.
 *
 * Each kind's constructor returns a {@link Channel} (one class for all kinds, so a process
 * using every kind still runs one monomorphic hot path); `instanceof` a kind still works.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { SharedMemory } from '../shared-memory/shared-memory.js';
import { checkOptions } from '../validate.js';
import { Channel, openChannel, type ChannelOptions } from './channel.js';
import { Kind, kindName, Payload, type HeaderInfo } from './layout.js';
import { count, MAX_DEPTH, MAX_WIDTH, shape, withMaxMessage } from './shapes.js';

export { MAX_DEPTH, MAX_WIDTH } from './shapes.js';

/** Options of a Fixed channel: `width` is the exact size of every message. */
export interface FixedOptions extends ChannelOptions {
  /** Bytes per message (shorter messages are zero-padded). */
  width: number;
}
/** Options of a Variable channel: `capacity` is the largest message. */
export interface VariableOptions extends ChannelOptions {
  /** Bytes of one slot: the largest message, unless `maxMessage` is larger. */
  capacity: number;
  /**
   * Largest message in bytes, up to 2^32 − 1; default `capacity`. A larger value makes a
   * chunked channel: a message longer than the capacity is sent as consecutive chunks of
   * at most `capacity` bytes and received whole (see docs/api/channel.md, "Messages larger
   * than a slot"). Every process attaching must agree (it is stored in the header).
   */
  maxMessage?: number;
}
/** Options of a Buffered channel. */
export interface DepthOptions {
  /** Number of messages the channel holds (at least 2; use SingleBuffered for 1). */
  depth: number;
}

type AnyOptions = Partial<FixedOptions & VariableOptions & DepthOptions>;

/** Opens the channel of one kind: validates the options (unknown keys refused), then creates or attaches. */
function open(kind: Kind, payload: Payload, shm: SharedMemory, options: unknown): Channel {
  const keys: (keyof AnyOptions)[] = ['offset', 'autosize'];
  if (kind === Kind.Buffered) keys.push('depth');
  if (payload === Payload.Fixed) keys.push('width');
  if (payload === Payload.Variable) keys.push('capacity', 'maxMessage');
  // maxMessage on a Fixed or Empty kind: say why rather than "unknown option".
  if (payload !== Payload.Variable && options !== null && typeof options === 'object' && 'maxMessage' in options) {
    throw new InvalidArgumentError(`options.maxMessage applies to Variable channels only (their messages keep their length); ${kindName(kind, payload)} has no capacity to exceed`);
  }
  const o = checkOptions<AnyOptions>('options', options, keys);
  const depth = kind === Kind.Buffered ? count('options.depth', o.depth, 2, MAX_DEPTH) : 1;
  const width = payload === Payload.Fixed ? count('options.width', o.width, 1, MAX_WIDTH) : payload === Payload.Variable ? count('options.capacity', o.capacity, 1, MAX_WIDTH) : 0;
  const wanted: HeaderInfo = withMaxMessage(shape(kind, payload, depth, width), o.maxMessage);
  return openChannel(shm, wanted, { offset: o.offset, autosize: o.autosize });
}

/** `instanceof Kind` is true for a channel of that kind. */
function isKind(kind: Kind, payload: Payload): (value: unknown) => boolean {
  const name = kindName(kind, payload);
  return (value) => value instanceof Channel && value.kind === name;
}

/* eslint-disable @typescript-eslint/no-unsafe-declaration-merging */

/** Unbuffered, Empty: a rendezvous signal. `sendSync()` returns when a receiver has taken it. */
export interface UnbufferedEmpty extends Channel {}
export class UnbufferedEmpty {
  constructor(shm: SharedMemory, options?: ChannelOptions) {
    return open(Kind.Unbuffered, Payload.Empty, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.Unbuffered, Payload.Empty);
}
/** Unbuffered, Fixed: `width`-byte messages handed over directly. */
export interface UnbufferedFixed extends Channel {}
export class UnbufferedFixed {
  constructor(shm: SharedMemory, options: FixedOptions) {
    return open(Kind.Unbuffered, Payload.Fixed, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.Unbuffered, Payload.Fixed);
}
/** Unbuffered, Variable: messages of up to `capacity` bytes handed over directly. */
export interface UnbufferedVariable extends Channel {}
export class UnbufferedVariable {
  constructor(shm: SharedMemory, options: VariableOptions) {
    return open(Kind.Unbuffered, Payload.Variable, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.Unbuffered, Payload.Variable);
}
/** SingleBuffered, Empty: a one-slot signal. */
export interface SingleBufferedEmpty extends Channel {}
export class SingleBufferedEmpty {
  constructor(shm: SharedMemory, options?: ChannelOptions) {
    return open(Kind.SingleBuffered, Payload.Empty, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.SingleBuffered, Payload.Empty);
}
/** SingleBuffered, Fixed: one slot of `width` bytes. */
export interface SingleBufferedFixed extends Channel {}
export class SingleBufferedFixed {
  constructor(shm: SharedMemory, options: FixedOptions) {
    return open(Kind.SingleBuffered, Payload.Fixed, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.SingleBuffered, Payload.Fixed);
}
/** SingleBuffered, Variable: one slot of up to `capacity` bytes (the gem's README example). */
export interface SingleBufferedVariable extends Channel {}
export class SingleBufferedVariable {
  constructor(shm: SharedMemory, options: VariableOptions) {
    return open(Kind.SingleBuffered, Payload.Variable, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.SingleBuffered, Payload.Variable);
}
/** Buffered, Empty: a counting signal of up to `depth` pending signals. */
export interface BufferedEmpty extends Channel {}
export class BufferedEmpty {
  constructor(shm: SharedMemory, options: ChannelOptions & DepthOptions) {
    return open(Kind.Buffered, Payload.Empty, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.Buffered, Payload.Empty);
}
/** Buffered, Fixed: a ring of `depth` slots of `width` bytes. */
export interface BufferedFixed extends Channel {}
export class BufferedFixed {
  constructor(shm: SharedMemory, options: FixedOptions & DepthOptions) {
    return open(Kind.Buffered, Payload.Fixed, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.Buffered, Payload.Fixed);
}
/** Buffered, Variable: a ring of `depth` slots of up to `capacity` bytes (not in the gem). */
export interface BufferedVariable extends Channel {}
export class BufferedVariable {
  constructor(shm: SharedMemory, options: VariableOptions & DepthOptions) {
    return open(Kind.Buffered, Payload.Variable, shm, options);
  }
  static [Symbol.hasInstance] = isKind(Kind.Buffered, Payload.Variable);
}
