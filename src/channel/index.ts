/**
 * `Channel` with its kinds attached as static namespaces (`Channel.SingleBuffered.Variable`)
 * and the gem's dispatcher `Channel.create`.
 * @module
 */
import { InvalidArgumentError, LayoutError } from '../errors.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import { Channel, openChannel, type ChannelOptions } from './channel.js';
import * as K from './kinds.js';
import { H, Kind, kindName } from './layout.js';
import { initOrAttach } from './structure.js';
import { gemShape } from './shapes.js';

function create(shm: SharedMemory, options: ChannelOptions & { depth: number; width: number }): Channel {
  return new Channel(shm, options);
}

function attach(shm: SharedMemory, options?: { offset?: number }): Channel {
  if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`Channel.attach needs a SharedMemory, got ${describe(shm)}`);
  const offset = checkIndex('options.offset', checkOptions<{ offset: number }>('options', options, ['offset']).offset ?? 0);
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
  if (kind !== Kind.Unbuffered && kind !== Kind.SingleBuffered && kind !== Kind.Buffered) {
    throw new LayoutError(`the structure at offset ${offset} of shared memory '${shm.name}' is not a channel (it is a ${kindName(kind, payload)})`);
  }
  return openChannel(shm, null, { offset, autosize: false });
}

function byteLength(options: { depth: number; width: number }): number {
  const o = checkOptions<{ depth: number; width: number }>('options', options, ['depth', 'width']);
  if (options === undefined) throw new InvalidArgumentError('Channel.byteLength(options) needs options.depth and options.width');
  return gemShape(o.depth, o.width).totalSize;
}

Object.assign(Channel, {
  Unbuffered: { Empty: K.UnbufferedEmpty, Fixed: K.UnbufferedFixed, Variable: K.UnbufferedVariable },
  SingleBuffered: { Empty: K.SingleBufferedEmpty, Fixed: K.SingleBufferedFixed, Variable: K.SingleBufferedVariable },
  Buffered: { Empty: K.BufferedEmpty, Fixed: K.BufferedFixed, Variable: K.BufferedVariable },
  create,
  attach,
  byteLength,
});

export { Channel };
export type { ChannelOptions, ChannelStats, Message, RecvOptions, SendOptions } from './channel.js';
export type { DepthOptions, FixedOptions, VariableOptions } from './kinds.js';
export { CodecChannel, type Codec, type CodecName } from './codec.js';
export { ChannelReadable, ChannelWritable, type ReadableOptions, type WritableOptions } from './streams.js';
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
