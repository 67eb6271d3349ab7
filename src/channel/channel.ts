/**
 * The public channel: one class for every kind (so the hot path stays monomorphic),
 * built from the slot protocol (slot-protocol.ts), its sync and async drivers
 * (waiting.ts) and the message copies (payload.ts).
 * @module
 */
import { setMaxListeners } from 'node:events';
import { asyncWaiter } from '../sync/async-waiter.js';
import { ChannelClosedError, ClosedWriteError, InvalidArgumentError, MisalignedError, RegionUnmappedError } from '../errors.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { checkEncoding, checkIndex, checkOptions, deadlineOf, describe } from '../validate.js';
import { CHANNEL_COUNTS, SharedCounts } from './counts.js';
import { Kind, kindName, SLOTS_OFFSET, W, type HeaderInfo } from './layout.js';
import { statsOf, type ChannelStats } from './stats.js';
import { Chunks } from './chunks.js';
import { Payloads, targetChanged, type Message } from './payload.js';
import { gemShape, withMaxMessage } from './shapes.js';
import { CLAIM_CLOSED, SlotProtocol } from './slot-protocol.js';
import { attachedSize, holdStructure, initOrAttach, prepareCreate, readHeader } from './structure.js';
import { Waits } from './waiting.js';
import { readableOf, writableOf, type ChannelReadable, type ChannelWritable, type ReadableOptions, type WritableOptions } from './streams.js';
import type * as K from './kinds.js';
import { typedByteLengthOf } from '../region/view-bytes.js';

export type { Message } from './payload.js';
export type { ChannelStats } from './stats.js';

/** Where a channel lives and how to create it. */
export interface ChannelOptions {
  /** Byte offset of the channel in the object; a multiple of 16. Default 0. */
  offset?: number;
  /**
   * Grow the object to fit the channel when it is too small. Default `true`.
   * On macOS an object's size can be set only once, so this works only on a fresh object.
   */
  autosize?: boolean;
}

/** Options of a send. */
export interface SendOptions {
  /** Give up after this many milliseconds with a {@link TimeoutError}; nothing is sent. `0`: only if it can be done now. */
  timeout?: number;
  /** Give up when the signal aborts, with an {@link AbortError}; nothing is sent. (Async calls only.) */
  signal?: AbortSignal;
}

/** Options of a receive. */
export interface RecvOptions extends SendOptions {
  /** Return the message as a string in this encoding instead of a Buffer. */
  encoding?: BufferEncoding;
}

const SEND_KEYS = ['timeout', 'signal'] as const;
const RECV_KEYS = ['timeout', 'signal', 'encoding'] as const;
const NO_OPTIONS: Readonly<RecvOptions> = Object.freeze({});
const INTERNAL: unique symbol = Symbol('concurrent-shm channel');

// A channel collected without release() forgets its place in the overlap registry.
const structures = new FinalizationRegistry<() => void>((forget) => forget());

/** @internal Opens a channel of a known shape (`wanted`), or attaches (`null`). */
export function openChannel(shm: SharedMemory, wanted: HeaderInfo | null, options: ChannelOptions): Channel {
  return new Channel(shm, options as never, INTERNAL, wanted);
}

/**
 * A channel between processes in a shared memory object. Create one with a kind's
 * constructor (`new Channel.SingleBuffered.Variable(shm, { capacity: 200 })`), with the
 * gem's `new Channel(shm, { depth, width })` / {@link Channel.create}, or attach to an
 * existing one with {@link Channel.attach}.
 *
 * - `sendSync` / `recvSync` block the calling thread: a short adaptive spin, then sleep in the kernel.
 * - `send` / `recv` return Promises and never block the event loop.
 * - `trySend` / `tryRecv` never wait.
 * - `close()` closes the channel for every process: sends fail with {@link ClosedWriteError},
 *   receives drain what is buffered and then fail with {@link ChannelClosedError}.
 *
 * Any number of senders and receivers in any number of processes may share a channel:
 * each message is delivered once, whole, and each sender's messages arrive in order.
 */
export class Channel implements AsyncIterable<Buffer>, Disposable {
  /** Unbuffered kinds: a send completes only when a receiver has taken the message (a rendezvous). */
  declare static Unbuffered: { Empty: typeof K.UnbufferedEmpty; Fixed: typeof K.UnbufferedFixed; Variable: typeof K.UnbufferedVariable };
  /** SingleBuffered kinds: one slot; a send waits while it is full, a receive while it is empty. */
  declare static SingleBuffered: { Empty: typeof K.SingleBufferedEmpty; Fixed: typeof K.SingleBufferedFixed; Variable: typeof K.SingleBufferedVariable };
  /** Buffered kinds: a ring of `depth` slots. */
  declare static Buffered: { Empty: typeof K.BufferedEmpty; Fixed: typeof K.BufferedFixed; Variable: typeof K.BufferedVariable };
  /**
   * The gem's dispatcher (same as `new Channel(shm, options)`): picks the kind from
   * `depth` (0 Unbuffered, 1 SingleBuffered, 2+ Buffered) and `width` (0 Empty, > 0 Fixed
   * of that width, < 0 Variable of capacity -width).
   */
  declare static create: (shm: SharedMemory, options: ChannelOptions & { depth: number; width: number }) => Channel;
  /**
   * Attaches to the channel another process created at `offset`, whatever its kind.
   * @throws {@link LayoutError} when there is no valid channel header there (garbage, zeros, another layout version).
   */
  declare static attach: (shm: SharedMemory, options?: { offset?: number }) => Channel;
  /**
   * Bytes a channel needs in the object (header, control words, slots), by the gem's table
   * as in `create`: `{ depth: 8, width: 64 }` is a Buffered.Fixed, `{ depth: 8, width: -256 }`
   * a Buffered.Variable of capacity 256. For `heap.malloc(Channel.byteLength(...))`.
   */
  declare static byteLength: (options: { depth: number; width: number }) => number;

  /** The mapped bytes of the channel. @internal */
  readonly region: Region;
  /** Kind, payload and sizes read from (or written to) the header. @internal */
  readonly info: HeaderInfo;
  /** The slot protocol over this handle's mapping. @internal */
  readonly protocol: SlotProtocol;
  readonly #w: Int32Array;
  readonly #payloads: Payloads;
  readonly #waits: Waits;
  readonly #counts: SharedCounts;
  readonly #rendezvous: boolean;
  /** A chunked channel's protocol (layout version 5); `undefined` for every other channel. */
  readonly #chunks: Chunks | undefined;
  readonly #released = new AbortController();
  readonly #forget: () => void;

  /**
   * The gem's `Channel.new(shm, depth:, width:)`: creates (or attaches to) the channel
   * of the kind that `depth` and `width` select, like {@link Channel.create}.
   */
  constructor(shm: SharedMemory, options: ChannelOptions & { depth: number; width: number; maxMessage?: number });
  /** @internal */
  constructor(shm: SharedMemory, options: ChannelOptions, internal: typeof INTERNAL, wanted: HeaderInfo | null);
  constructor(shm: SharedMemory, options: ChannelOptions & { depth?: number; width?: number }, internal?: typeof INTERNAL, wanted?: HeaderInfo | null) {
    if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`a channel needs a SharedMemory, got ${describe(shm)}`);
    if (internal !== INTERNAL) {
      const o = checkOptions<ChannelOptions & { depth: number; width: number; maxMessage: number }>('options', options, ['depth', 'width', 'offset', 'autosize', 'maxMessage']);
      if (options === undefined) throw new InvalidArgumentError('new Channel(shm, options) needs options.depth and options.width (the gem\'s Channel.new), or use a kind: new Channel.SingleBuffered.Variable(shm, { capacity })');
      wanted = withMaxMessage(gemShape(o.depth, o.width), o.maxMessage);
      options = { offset: o.offset, autosize: o.autosize };
    }
    const offset = checkIndex('options.offset', options.offset ?? 0);
    if (offset % 16 !== 0) throw new MisalignedError(`a channel's offset must be a multiple of 16, got ${offset}`);
    const autosize = options.autosize ?? true;
    if (typeof autosize !== 'boolean') throw new InvalidArgumentError(`options.autosize must be a boolean, got ${describe(autosize)}`);
    const total = wanted ? prepareCreate(shm, wanted, offset, autosize) : attachedSize(shm, offset);
    this.region = Region.map(shm, offset, total);
    let forget: (() => void) | undefined;
    try {
      forget = holdStructure(this.region, wanted ?? readHeader(this.region));
      this.info = initOrAttach(this.region, wanted ?? null, SLOTS_OFFSET);
    } catch (err) {
      forget?.();
      this.region.unmap();
      throw err;
    }
    this.#forget = forget;
    structures.register(this, forget, this);
    const buffer = this.region.mapping.buffer!;
    this.#w = new Int32Array(buffer, this.region.start, total / 4);
    this.protocol = new SlotProtocol(this.#w, this.region.address, this.info.depth, this.info.stride);
    this.#payloads = new Payloads(buffer, this.region.start, total, this.info.payload, this.info.width, this.kind, this.info.maxMessage);
    const mapped = (): boolean => this.region.isMapped;
    this.#counts = new SharedCounts(this.#w, mapped, CHANNEL_COUNTS);
    this.#waits = new Waits(this.protocol, this.#counts, () => this.#where(), mapped, this.#released.signal);
    this.#rendezvous = this.info.kind === Kind.Unbuffered;
    this.#chunks =
      this.info.maxMessage === undefined
        ? undefined
        : new Chunks(this.protocol, this.#waits, this.#payloads, this.info.width, this.info.maxMessage, this.#rendezvous, `${this.region.mapping.objectKey}:${offset}`, () => this.#where(), () => {
            if (!this.region.isMapped) throw new RegionUnmappedError(`${this.#where()} was released`);
          });
    // Every pending async wait of this handle listens to it; any number may be pending.
    setMaxListeners(0, this.#released.signal);
    asyncWaiter.keepListening(this.#released.signal);
  }

  /** Kind, such as `"SingleBuffered.Variable"`. */
  get kind(): string {
    return kindName(this.info.kind, this.info.payload);
  }

  /** Number of slots (1 for Unbuffered and SingleBuffered). */
  get depth(): number {
    return this.info.depth;
  }

  /** Fixed: bytes per message. Variable: capacity. Empty: 0. */
  get width(): number {
    return this.info.width;
  }

  /**
   * The largest message: the capacity, or the `maxMessage` the channel was created with
   * (a chunked channel: longer messages go as several chunks). Fixed: the width. Empty: 0.
   */
  get maxMessage(): number {
    return this.info.maxMessage ?? this.info.width;
  }

  /** Byte offset of the channel in the object. */
  get offset(): number {
    return this.region.offset;
  }

  /** Bytes the channel occupies in the object. */
  get byteLength(): number {
    return this.info.totalSize;
  }

  /** `true` once any process closed the channel. */
  get closed(): boolean {
    this.#words();
    return this.protocol.isClosed();
  }

  /** Counters for monitoring; see {@link ChannelStats}. */
  stats(): ChannelStats {
    return statsOf(this.#words(), this.protocol, this.kind, this.info.width);
  }

  // ---- sending -------------------------------------------------------------------

  /**
   * Sends a message, blocking this thread while the channel is full (Unbuffered: until a
   * receiver has taken it).
   * @throws {@link ClosedWriteError} when the channel is closed. {@link PayloadTooLargeError} when the message does not fit (nothing is sent).
   * @throws {@link TimeoutError} after `timeout` ms; nothing was sent.
   */
  sendSync(data?: Message, options?: SendOptions): void {
    this.#words();
    // The options first: no code of the caller's (a getter) runs between the message's
    // check and its copy, so the copy need not check it again.
    const deadline = deadlineOf(options === undefined ? undefined : checkOptions<SendOptions>('options', options, SEND_KEYS).timeout);
    const length = this.#payloads.check(data);
    if (this.#chunks !== undefined) return this.#chunks.sendSync(data, deadline);
    const pos = this.#waits.acquireSync(true, deadline);
    this.#fill(pos, data, length, false);
    this.protocol.publish(pos);
    if (this.#rendezvous) this.#waits.awaitTakenSync(pos, deadline);
  }

  /**
   * Sends a message without blocking the event loop. Resolves once it is in the channel
   * (Unbuffered: once a receiver has taken it).
   * Rejects with {@link ClosedWriteError}, {@link PayloadTooLargeError}, {@link TimeoutError} or {@link AbortError}; in the last three cases nothing was sent.
   */
  send(data?: Message, options?: SendOptions): Promise<void> {
    // Not an async function: the wait's own promise is returned as it is, without a
    // wrapper resolved a few event-loop ticks later (bad input still rejects, as below).
    try {
      this.#words();
      const length = this.#payloads.check(data);
      const opts = options === undefined ? NO_OPTIONS : checkOptions<SendOptions>('options', options, SEND_KEYS);
      const deadline = deadlineOf(opts.timeout);
      if (this.#chunks !== undefined) return this.#chunks.send(data, deadline, opts.signal);
      if (this.#rendezvous) return this.#handOver(data, length, deadline, opts.signal);
      return this.#waits.acquireAsync(true, deadline, opts.signal, (at) => {
        this.#fill(at, data, length, true);
        this.protocol.publish(at);
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Unbuffered `send`: published, then taken by a receiver. */
  async #handOver(data: Message | undefined, length: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const pos = await this.#waits.acquireAsync(true, deadline, signal, (at) => {
      this.#fill(at, data, length, true);
      this.protocol.publish(at);
      return at;
    });
    await this.#waits.awaitTakenAsync(pos, deadline, signal);
  }

  /**
   * Sends if there is room now, without waiting. Returns `false` when the channel is
   * full (or another process is mid-way through the next slot).
   *
   * Unbuffered: the message is offered only while a receive is in progress (in any
   * process), and `true` means it was placed for that receive; it does not wait for the
   * hand-over. If that receive then gives up (timeout, abort), the message stays for
   * the next receive.
   * @throws {@link ClosedWriteError} when the channel is closed.
   */
  trySend(data?: Message): boolean {
    const w = this.#words();
    const length = this.#payloads.check(data);
    if (this.#chunks !== undefined) return this.#chunks.trySend(data);
    if (this.#rendezvous && Atomics.load(w, W.RECV_ACTIVE) <= 0) {
      if (this.protocol.isClosed()) throw new ClosedWriteError(`Write to closed channel (${this.#where()})`);
      return false;
    }
    const pos = this.#waits.tryClaim(true);
    if (pos === CLAIM_CLOSED) throw new ClosedWriteError(`Write to closed channel (${this.#where()})`);
    if (pos < 0) return false;
    this.#fill(pos, data, length, false);
    this.protocol.publish(pos);
    return true;
  }

  /**
   * Copies the message into the slot claimed at `pos`; if that fails, gives the position
   * up (receivers skip it) and rethrows. `recheck`: the caller's code may have run since
   * the message was checked (an async send).
   */
  #fill(pos: number, data: Message | undefined, length: number, recheck: boolean): void {
    try {
      this.#payloads.fill(this.protocol.slotByte(pos), data, length, recheck);
    } catch (err) {
      this.protocol.skip(pos);
      throw err;
    }
  }

  // ---- receiving -----------------------------------------------------------------

  /**
   * Receives a message, blocking this thread while the channel is empty.
   * @returns A Buffer (a copy), or a string with `encoding`.
   * @throws {@link ChannelClosedError} when the channel is closed and empty. {@link TimeoutError} after `timeout` ms.
   */
  recvSync(options?: RecvOptions & { encoding?: undefined }): Buffer;
  recvSync(options: RecvOptions & { encoding: BufferEncoding }): string;
  recvSync(options?: RecvOptions): Buffer | string {
    this.#words();
    const opts = options === undefined ? NO_OPTIONS : checkOptions<RecvOptions>('options', options, RECV_KEYS);
    const encoding = checkEncoding(opts.encoding);
    if (this.#chunks !== undefined) return this.#chunks.recvSync(deadlineOf(opts.timeout), encoding, null) as Buffer | string;
    const pos = this.#waits.receiveSync(this.#rendezvous, deadlineOf(opts.timeout));
    return this.#take(pos, encoding, null, false) as Buffer | string;
  }

  /**
   * Receives a message into `target` (no allocation), blocking while the channel is
   * empty. `target` must hold the channel's width or capacity. On a chunked channel
   * (`maxMessage` above the capacity) any length will do: a message longer than `target`
   * is refused with an {@link OutOfRangeError} naming its length, and stays in the channel.
   * @returns The number of bytes written into `target`.
   */
  recvIntoSync(target: Uint8Array, options?: SendOptions): number {
    this.#words();
    // The options first, as in sendSync: nothing of the caller's runs between the target's check and the copy.
    const deadline = deadlineOf(options === undefined ? undefined : checkOptions<SendOptions>('options', options, SEND_KEYS).timeout);
    this.#payloads.checkTarget(target);
    if (this.#chunks !== undefined) return this.#chunks.recvSync(deadline, undefined, target) as number;
    const pos = this.#waits.receiveSync(this.#rendezvous, deadline);
    return this.#take(pos, undefined, target, false) as number;
  }

  /**
   * Receives a message without blocking the event loop.
   * Rejects with {@link ChannelClosedError} when the channel is closed and empty, {@link TimeoutError} or {@link AbortError}.
   */
  recv(options?: RecvOptions & { encoding?: undefined }): Promise<Buffer>;
  recv(options: RecvOptions & { encoding: BufferEncoding }): Promise<string>;
  recv(options?: RecvOptions): Promise<Buffer | string> {
    try {
      this.#words();
      const opts = options === undefined ? NO_OPTIONS : checkOptions<RecvOptions>('options', options, RECV_KEYS);
      const encoding = checkEncoding(opts.encoding);
      if (this.#chunks !== undefined) return this.#chunks.recv(deadlineOf(opts.timeout), opts.signal, encoding, null) as Promise<Buffer | string>;
      return this.#waits.receiveAsync(this.#rendezvous, deadlineOf(opts.timeout), opts.signal, (pos) => this.#take(pos, encoding, null, false) as Buffer | string);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Async version of {@link Channel.recvIntoSync}. */
  recvInto(target: Uint8Array, options?: SendOptions): Promise<number> {
    try {
      this.#words();
      this.#payloads.checkTarget(target);
      const opts = options === undefined ? NO_OPTIONS : checkOptions<SendOptions>('options', options, SEND_KEYS);
      if (this.#chunks !== undefined) return this.#chunks.recv(deadlineOf(opts.timeout), opts.signal, undefined, target) as Promise<number>;
      return this.#waits.receiveAsync(
        this.#rendezvous,
        deadlineOf(opts.timeout),
        opts.signal,
        (pos) => this.#take(pos, undefined, target, true) as number,
        () => this.#payloads.checkTargetKept(target),
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Receives a message if one is ready now; never waits.
   * @returns The message, or `undefined` when there is none (also when the channel is closed and empty).
   */
  tryRecv(options?: { encoding?: undefined }): Buffer | undefined;
  tryRecv(options: { encoding: BufferEncoding }): string | undefined;
  tryRecv(options?: { encoding?: BufferEncoding }): Buffer | string | undefined {
    this.#words();
    const encoding = checkEncoding(options === undefined ? undefined : checkOptions<RecvOptions>('options', options, ['encoding']).encoding);
    if (this.#chunks !== undefined) return this.#chunks.tryRecv(encoding);
    const pos = this.#waits.tryClaim(false);
    return pos >= 0 ? (this.#take(pos, encoding, null, false) as Buffer | string) : undefined;
  }

  /** Receives messages until the channel is closed and empty: `for await (const msg of ch)`. */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      let msg: Buffer;
      try {
        msg = await this.recv();
      } catch (err) {
        if (err instanceof ChannelClosedError) return;
        throw err;
      }
      yield msg;
    }
  }

  /**
   * A `stream.Writable` of bytes that sends each chunk written as a message (a chunk larger
   * than {@link Channel.maxMessage} as several), waiting for room; closes the channel when it finishes
   * or is destroyed unless `close: false`. Variable kinds only. See streams.ts.
   */
  writable(options?: WritableOptions): ChannelWritable {
    return writableOf(this, options);
  }

  /**
   * A `stream.Readable` of bytes that pushes each message received, ends when the channel
   * is closed and empty, and receives only while its buffer has room; closes the channel
   * when destroyed before its end unless `close: false`. See streams.ts.
   */
  readable(options?: ReadableOptions): ChannelReadable {
    return readableOf(this, options);
  }

  /**
   * Copies the message out of the slot claimed at `pos` and frees the slot. `recheck`:
   * the caller's code may have run since `target` was checked (an async receive).
   */
  #take(pos: number, encoding: BufferEncoding | undefined, target: Uint8Array | null, recheck: boolean): Buffer | string | number {
    const at = this.protocol.slotByte(pos);
    try {
      const length = this.#payloads.length(at, pos % this.protocol.depth);
      if (target === null) return this.#payloads.read(at, length, encoding);
      if (recheck && typedByteLengthOf(target) < length) throw targetChanged(target, length, 'the message is dropped');
      this.#payloads.copyOut(at, length, target);
      return length;
    } finally {
      this.protocol.free(pos);
    }
  }

  // ---- closing -------------------------------------------------------------------

  /**
   * Closes the channel for every process. Idempotent. Blocked senders and receivers
   * everywhere wake up: sends fail with {@link ClosedWriteError}; receives take what is
   * still buffered, then fail with {@link ChannelClosedError}.
   */
  close(): void {
    this.#words();
    this.protocol.close();
  }

  /**
   * Lets go of this process's handle: unmaps the channel here and ends this handle's
   * pending async calls (with {@link RegionUnmappedError}). The channel itself stays open
   * for other processes (use {@link Channel.close} to close it). Idempotent.
   */
  release(): void {
    if (!this.region.isMapped) return;
    this.#chunks?.letGo();
    this.#counts.giveBack();
    this.#counts.forget();
    this.#forget();
    structures.unregister(this);
    this.region.unmap();
    this.#released.abort();
  }

  /** Same as {@link Channel.release} (`using ch = ...`). */
  [Symbol.dispose](): void {
    this.release();
  }

  /** "the SingleBuffered.Variable channel at offset 0 of shared memory '/jobs'", for messages. */
  #where(): string {
    return `the ${this.kind} channel at offset ${this.region.offset} of shared memory '${this.region.objectName}'`;
  }

  #words(): Int32Array {
    if (!this.region.isMapped) throw new RegionUnmappedError(`${this.#where()} was released`);
    return this.#w;
  }
}


