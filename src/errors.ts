/**
 * Every error the library throws. Each has a stable `code` (starting with `ERR_SHM_`,
 * except `ABORT_ERR`, which is Node's) that programs can test instead of messages.
 *
 * Argument errors extend the built-in `TypeError` / `RangeError` so that code written
 * for Node's own argument checks keeps working; everything else extends {@link ShmError}.
 * @module
 */

/** Stable error codes, one per error class. */
export type ShmErrorCode =
  | 'ERR_SHM'
  | 'ERR_SHM_SYSTEM'
  | 'ERR_SHM_EXISTS'
  | 'ERR_SHM_NOT_FOUND'
  | 'ERR_SHM_PERMISSION'
  | 'ERR_SHM_NO_SPACE'
  | 'ERR_SHM_INVALID_ARGUMENT'
  | 'ERR_SHM_OUT_OF_RANGE'
  | 'ERR_SHM_INT_DOMAIN'
  | 'ERR_SHM_MISALIGNED'
  | 'ERR_SHM_CLOSED'
  | 'ERR_SHM_UNMAPPED'
  | 'ERR_SHM_SIZE_ALREADY_SET'
  | 'ERR_SHM_SIZE_IN_USE'
  | 'ERR_SHM_UNSUPPORTED'
  | 'ERR_SHM_CHANNEL_CLOSED_WRITE'
  | 'ERR_SHM_CHANNEL_CLOSED'
  | 'ERR_SHM_BAD_LAYOUT'
  | 'ERR_SHM_OVERLAP'
  | 'ERR_SHM_PAYLOAD_TOO_LARGE'
  | 'ERR_SHM_TIMEOUT'
  | 'ERR_SHM_OWNER_DEAD'
  | 'ERR_SHM_DEADLOCK'
  | 'ERR_SHM_NOT_OWNER'
  | 'ERR_SHM_ENCODE'
  | 'ERR_SHM_DECODE'
  | 'ERR_SHM_LAGGED'
  | 'ERR_SHM_HEAP_FULL'
  | 'ERR_SHM_HEAP_NOT_A_BLOCK'
  | 'ERR_SHM_HEAP_NAME'
  | 'ERR_SHM_HEAP_CORRUPT'
  | 'ERR_SHM_HEAP_BLOCK_IN_USE';

/** Base class of the library's own errors (argument errors extend TypeError / RangeError instead). */
export class ShmError extends Error {
  /** Stable code of this error. */
  readonly code: ShmErrorCode;
  constructor(message: string, code: ShmErrorCode = 'ERR_SHM', options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** What {@link ShmSystemError} knows about the failed call. */
export interface SystemErrorInfo {
  /** The C call that failed, such as `shm_open`. */
  syscall: string;
  /** The errno value (positive, as in C). */
  errno: number;
  /** The errno name, such as `EEXIST`. */
  errnoName: string;
  /** The shared memory object's name, when there is one. */
  shmName?: string | undefined;
}

/**
 * A system call failed. Subclasses name the common causes; this class covers the rest.
 * The message says what failed and why: "cannot open shared memory '/jobs': it already exists (EEXIST)".
 */
export class ShmSystemError extends ShmError {
  /** The C call that failed, such as `shm_open`. */
  readonly syscall: string;
  /** The errno value (positive, as in C). */
  readonly errno: number;
  /** The errno name, such as `EEXIST`. */
  readonly errnoName: string;
  /** The shared memory object's name, when there is one. */
  readonly shmName: string | undefined;
  constructor(message: string, info: SystemErrorInfo, code: ShmErrorCode = 'ERR_SHM_SYSTEM') {
    super(message, code);
    this.syscall = info.syscall;
    this.errno = info.errno;
    this.errnoName = info.errnoName;
    this.shmName = info.shmName;
  }
}

/** The object exists already (`EEXIST`), as when `mode: 'excl'` meets an existing name. */
export class ShmExistsError extends ShmSystemError {
  constructor(message: string, info: SystemErrorInfo) {
    super(message, info, 'ERR_SHM_EXISTS');
  }
}

/** No object has that name (`ENOENT`). */
export class ShmNotFoundError extends ShmSystemError {
  constructor(message: string, info: SystemErrorInfo) {
    super(message, info, 'ERR_SHM_NOT_FOUND');
  }
}

/** The permission bits or the OS refuse the access (`EACCES`, `EPERM`). */
export class ShmPermissionError extends ShmSystemError {
  constructor(message: string, info: SystemErrorInfo) {
    super(message, info, 'ERR_SHM_PERMISSION');
  }
}

/** The shared memory file system or the address space is full (`ENOSPC`, `ENOMEM`, `EFBIG`). */
export class ShmNoSpaceError extends ShmSystemError {
  constructor(message: string, info: SystemErrorInfo) {
    super(message, info, 'ERR_SHM_NO_SPACE');
  }
}

/** An argument has the wrong type or an unusable value (a bad name, mode or payload type). */
export class InvalidArgumentError extends TypeError {
  /** Always `ERR_SHM_INVALID_ARGUMENT`. */
  readonly code = 'ERR_SHM_INVALID_ARGUMENT' as const;
  override get name(): string {
    return 'InvalidArgumentError';
  }
}

/** A size, offset, length or index is outside what is allowed. */
export class OutOfRangeError extends RangeError {
  /** Always `ERR_SHM_OUT_OF_RANGE`. */
  readonly code: ShmErrorCode = 'ERR_SHM_OUT_OF_RANGE';
  override get name(): string {
    return this.constructor.name;
  }
}

/** An integer does not fit the pointer's width (the gem's `IntDomainError`). */
export class IntDomainError extends OutOfRangeError {
  override readonly code: ShmErrorCode = 'ERR_SHM_INT_DOMAIN';
}

/** A pointer or mutex is not aligned as its atomic operations require. */
export class MisalignedError extends OutOfRangeError {
  override readonly code: ShmErrorCode = 'ERR_SHM_MISALIGNED';
}

/** A payload is larger than the channel's width or capacity. Nothing was sent. */
export class PayloadTooLargeError extends OutOfRangeError {
  override readonly code: ShmErrorCode = 'ERR_SHM_PAYLOAD_TOO_LARGE';
}

/** A {@link SharedMemory} was used after `close()`. */
export class ShmClosedError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_CLOSED');
  }
}

/** A region, a pointer into it or a channel on it was used after the region was unmapped (explicitly or by garbage collection). */
export class RegionUnmappedError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_UNMAPPED');
  }
}

/** On macOS an object's size can be set only once; this is thrown before the second `ftruncate`. */
export class SizeAlreadySetError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_SIZE_ALREADY_SET');
  }
}

/** Shrinking the object would cut off memory this process still has mapped (a later access would crash). */
export class SizeInUseError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_SIZE_IN_USE');
  }
}

/** The platform or kernel lacks something the call needs. */
export class UnsupportedError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_UNSUPPORTED');
  }
}

/** A send on a closed channel. The message is the gem's: "Write to closed channel". */
export class ClosedWriteError extends ShmError {
  constructor(message = 'Write to closed channel') {
    super(message, 'ERR_SHM_CHANNEL_CLOSED_WRITE');
  }
}

/** A receive on a closed channel whose buffered messages are all taken. */
export class ChannelClosedError extends ShmError {
  constructor(message = 'Channel is closed and empty') {
    super(message, 'ERR_SHM_CHANNEL_CLOSED');
  }
}

/** What lies at a channel's or mutex's offset is not a valid header of this library (garbage, another kind, another layout version). */
export class LayoutError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_BAD_LAYOUT');
  }
}

/** Two structures of this library would overlap in the same shared memory object. */
export class OverlapError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_OVERLAP');
  }
}

/** An operation did not complete within its `timeout`. */
export class TimeoutError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_TIMEOUT');
  }
}

/**
 * The process that held a mutex died while holding it. The caller now holds the mutex
 * (as with `EOWNERDEAD` in POSIX): repair what it protects, then `unlock()`.
 */
export class OwnerDeadError extends ShmError {
  /** The process id of the holder that died. */
  readonly deadPid: number;
  constructor(message: string, deadPid: number) {
    super(message, 'ERR_SHM_OWNER_DEAD');
    this.deadPid = deadPid;
  }
}

/** This thread tried to lock a mutex it already holds (it would wait forever). */
export class DeadlockError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_DEADLOCK');
  }
}

/** `unlock()` of a mutex this process does not hold. */
export class NotOwnerError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_NOT_OWNER');
  }
}

/** An operation was aborted through its `AbortSignal`. `code` is Node's `ABORT_ERR`, `cause` the signal's reason. */
export class AbortError extends Error {
  /** Always `ABORT_ERR`, as for Node's own aborted operations. */
  readonly code = 'ABORT_ERR' as const;
  constructor(message = 'The operation was aborted', options?: ErrorOptions) {
    super(message, options);
  }
  override get name(): string {
    return 'AbortError';
  }
}

/**
 * A value could not be encoded by a channel's codec (a `bigint` or a cycle with `'json'`,
 * a function with `'v8'`, a user codec that threw or returned something other than bytes
 * or a string). Nothing was sent. `cause` is the codec's own error, when it threw one.
 */
export class EncodeError extends ShmError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_SHM_ENCODE', options);
  }
}

/**
 * A received message could not be decoded by the channel's codec. The message was taken
 * from the channel (it is not delivered again); `bytes` holds it, `cause` the codec's error.
 */
export class DecodeError extends ShmError {
  /** The message as received. */
  readonly bytes: Buffer;
  constructor(message: string, bytes: Buffer, options?: ErrorOptions) {
    super(message, 'ERR_SHM_DECODE', options);
    this.bytes = bytes;
  }
}

/**
 * A Broadcast subscriber was overrun: publishers went more than a ring ahead of it, and
 * `missed` messages were overwritten before it read them. Its cursor has moved on to the
 * oldest message still in the ring: the next receive continues from there.
 */
export class LaggedError extends ShmError {
  /** How many positions the subscriber skipped (messages it will never receive). */
  readonly missed: number;
  constructor(message: string, missed: number) {
    super(message, 'ERR_SHM_LAGGED');
    this.missed = missed;
  }
}

/**
 * No free block of a heap is large enough (or its name directory is full). Nothing
 * changed. `requested`: the bytes asked for; `largest`: the largest `malloc(n)` that
 * would succeed now.
 */
export class HeapFullError extends ShmError {
  /** Bytes asked for. */
  readonly requested: number;
  /** The largest block a `malloc` would get now, in bytes. */
  readonly largest: number;
  constructor(message: string, requested: number, largest: number) {
    super(message, 'ERR_SHM_HEAP_FULL');
    this.requested = requested;
    this.largest = largest;
  }
}

/** An offset given to a heap's `free` / `sizeOf` / `map` is not the start of a live block (never allocated, freed already, inside a block, out of the heap, misaligned, or named where a plain block is needed). Nothing changed. */
export class NotABlockError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_HEAP_NOT_A_BLOCK');
  }
}

/** A named block exists but is smaller than the size asked for. Nothing changed. */
export class HeapNameError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_HEAP_NAME');
  }
}

/** A heap's memory breaks one of its invariants (it was overwritten): `heap.check()` says which. */
export class HeapCorruptError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_HEAP_CORRUPT');
  }
}

/** A heap's `free` / `unname` of a block in which this process still has a structure (a channel, Watch, Mutex or Heap created in it): release that first. Nothing changed. */
export class BlockInUseError extends ShmError {
  constructor(message: string) {
    super(message, 'ERR_SHM_HEAP_BLOCK_IN_USE');
  }
}
