/**
 * `Channel` with its kinds attached as static namespaces (`Channel.SingleBuffered.Variable`)
 * and the gem's dispatcher `Channel.create`.
 * @module
 */
import { InvalidArgumentError, LayoutError, OutOfRangeError } from '../errors.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import { Channel, type ChannelOptions } from './channel.js';
import * as K from './kinds.js';
import { H, Kind, Payload } from './layout.js';
import { initOrAttach } from './structure.js';

function create(shm: SharedMemory, options: ChannelOptions & { depth: number; width: number }): Channel {
  const o = checkOptions<ChannelOptions & { depth: number; width: number }>('options', options);
  const { depth, width } = o;
  if (typeof depth !== 'number' || !Number.isSafeInteger(depth)) throw new InvalidArgumentError(`options.depth must be an integer, got ${describe(depth)}`);
  if (typeof width !== 'number' || !Number.isSafeInteger(width)) throw new InvalidArgumentError(`options.width must be an integer, got ${describe(width)}`);
  if (depth < 0) throw new OutOfRangeError(`options.depth must be 0 (Unbuffered), 1 (SingleBuffered) or more (Buffered), got ${depth}`);
  if (Math.abs(width) > K.MAX_WIDTH) throw new OutOfRangeError(`options.width must be from -${K.MAX_WIDTH} to ${K.MAX_WIDTH}, got ${width}`);
  const base = { offset: o.offset, autosize: o.autosize };
  const kind = depth === 0 ? Kind.Unbuffered : depth === 1 ? Kind.SingleBuffered : Kind.Buffered;
  const payload = width === 0 ? Payload.Empty : width > 0 ? Payload.Fixed : Payload.Variable;
  const Cls = K.CLASSES[kind]![payload]!;
  return new Cls(shm, { ...base, depth, width, capacity: -width });
}

function attach(shm: SharedMemory, options?: { offset?: number }): Channel {
  if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`Channel.attach needs a SharedMemory, got ${describe(shm)}`);
  const offset = checkIndex('options.offset', checkOptions<{ offset: number }>('options', options).offset ?? 0);
  if (shm.size < offset + H.SIZE) {
    throw new LayoutError(`no channel at offset ${offset} of shared memory '${shm.name}': the object is only ${shm.size} bytes long`);
  }
  const head = Region.map(shm, offset, H.SIZE);
  let kind: number;
  let payload: number;
  try {
    // Waits for a creator that is still initialising; all zeros or garbage is an error.
    ({ kind, payload } = initOrAttach(head, null, 0));
  } finally {
    head.unmap();
  }
  const Cls = K.CLASSES[kind]?.[payload];
  if (Cls === undefined) throw new LayoutError(`the structure at offset ${offset} of shared memory '${shm.name}' is not a channel (kind ${kind})`);
  return new Cls(shm, K.attachMarker({ offset, autosize: false }));
}

Object.assign(Channel, {
  Unbuffered: { Empty: K.UnbufferedEmpty, Fixed: K.UnbufferedFixed, Variable: K.UnbufferedVariable },
  SingleBuffered: { Empty: K.SingleBufferedEmpty, Fixed: K.SingleBufferedFixed, Variable: K.SingleBufferedVariable },
  Buffered: { Empty: K.BufferedEmpty, Fixed: K.BufferedFixed, Variable: K.BufferedVariable },
  create,
  attach,
});

export { Channel };
export type { ChannelOptions, ChannelStats, Message, RecvOptions, SendOptions } from './channel.js';
export type { DepthOptions, FixedOptions, VariableOptions } from './kinds.js';
export {
  BufferedEmpty,
  BufferedFixed,
  BufferedVariable,
  SingleBufferedEmpty,
  SingleBufferedFixed,
  SingleBufferedVariable,
  UnbufferedEmpty,
  UnbufferedFixed,
  UnbufferedVariable,
  MAX_DEPTH,
  MAX_WIDTH,
} from './kinds.js';
