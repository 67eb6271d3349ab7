/**
 * concurrent-shm: POSIX shared memory for Node.js.
 * @module
 */
export * from './errors.js';
export { LINUX_RULES, MACOS_RULES, currentRules, type OsRules } from './os-rules.js';
export { SharedMemory, pageSize, type OpenMode, type OpenOptions, type SetSizeOptions } from './shared-memory/shared-memory.js';
export { Region, type MapOptions } from './region/region.js';
export {
  Int8Ptr,
  Int16Ptr,
  Int32Ptr,
  Int64Ptr,
  UInt8Ptr,
  UInt16Ptr,
  UInt32Ptr,
  UInt64Ptr,
  Float32Ptr,
  Float64Ptr,
  type SmallIntPtr,
  type BigIntPtr,
  type FloatPtr,
  type PointerBase,
} from './pointer/pointer.js';
export {
  Channel,
  UnbufferedEmpty,
  UnbufferedFixed,
  UnbufferedVariable,
  SingleBufferedEmpty,
  SingleBufferedFixed,
  SingleBufferedVariable,
  BufferedEmpty,
  BufferedFixed,
  BufferedVariable,
  MAX_DEPTH,
  MAX_WIDTH,
  type ChannelOptions,
  type ChannelStats,
  type Message,
  type RecvOptions,
  type SendOptions,
  type DepthOptions,
  type FixedOptions,
  type VariableOptions,
  CodecChannel,
  type Codec,
  type CodecName,
  ChannelReadable,
  ChannelWritable,
  type ReadableOptions,
  type WritableOptions,
} from './channel/index.js';
export { Mutex, type LockOptions } from './mutex/mutex.js';
export { Watch } from './watch/watch.js';
export { WATCH_STEPS, type WatchStep } from './watch/steps.js';
export type { WatchOptions, WatchValue, WatchWaitOptions, TypedArrayConstructor } from './watch/options.js';
export { Broadcast, Subscriber, BROADCAST_STEPS, type BroadcastOptions, type BroadcastRecvOptions, type BroadcastStats, type PublishOptions, type SubscribeOptions, type BroadcastStep } from './broadcast/broadcast.js';
export { Heap, HEAP_STEPS, type AllocOptions, type HeapOptions, type HeapStats, type HeapStep, type NamedBlock, type ReclaimResult } from './heap/heap.js';
