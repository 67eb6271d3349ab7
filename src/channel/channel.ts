/**
 * The channel engine shared by every kind: a ring of `depth` slots in shared memory,
 * indexes guarded by a robust lock, copies done outside the lock. Kinds differ only in
 * depth, payload and whether a send waits for its message to be taken (Unbuffered).
 * The byte layout and the slot state machine are in layout.ts.
 * @module
 */
import {
  AbortError,
  ChannelClosedError,
  ClosedWriteError,
  InvalidArgumentError,
  LayoutError,
  MisalignedError,
  OutOfRangeError,
  PayloadTooLargeError,
  RegionUnmappedError,
  TimeoutError,
} from '../errors.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { asyncWaiter, nextTurn } from '../sync/async-waiter.js';
import { futexWait, futexWake, processAlive } from '../sync/futex.js';
import { LIVENESS_MS, lockSync, PID, takeOverIfDead, tryLock, unlock } from '../sync/robust-lock.js';
import { SpinBudget } from '../sync/spin.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import {
  describeHeader,
  FULL,
  H,
  Kind,
  kindName,
  Payload,
  PID_MASK,
  READING,
  SLOT_HEADER,
  SLOTS_OFFSET,
  slotState,
  W,
  WRITING,
  type HeaderInfo,
} from './layout.js';
import { holdStructure, initOrAttach, readHeader } from './structure.js';
import type * as K from './kinds.js';

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
  /** Give up after this many milliseconds with a {@link TimeoutError}; nothing is sent. */
  timeout?: number;
  /** Give up when the signal aborts, with an {@link AbortError}; nothing is sent. (Async sends only.) */
  signal?: AbortSignal;
}

/** Options of a receive. */
export interface RecvOptions extends SendOptions {
  /** Return the message as a string in this encoding instead of a Buffer. */
  encoding?: BufferEncoding;
}

/** A message accepted by `send`: a string (sent as UTF-8) or any view of bytes. */
export type Payload_ = string | ArrayBufferView;

/** Counters read from a channel's header, for monitoring. */
export interface ChannelStats {
  /** Kind, such as `"Buffered.Fixed"`. */
  kind: string;
  /** Number of slots. */
  depth: number;
  /** Fixed: bytes per message; Variable: capacity; Empty: 0. */
  width: number;
  /** Messages sent so far (claimed slots), modulo depth × ⌊2^31 / depth⌋. */
  sent: number;
  /** Messages taken so far, modulo the same. */
  received: number;
  /** Messages in the channel now (being written, ready, or being read). */
  queued: number;
  /** `true` once closed. */
  closed: boolean;
  /** Processes sleeping in a send / a receive / on the lock. */
  waiting: { senders: number; receivers: number; lock: number };
  /** Process holding the channel's lock now, 0 if none. */
  lockHolder: number;
}

// A channel collected without release() forgets its place in the overlap registry.
const structures = new FinalizationRegistry<() => void>((forget) => forget());

const CLAIM_FULL = -1;
const CLAIM_CLOSED = -2;
const CLAIM_BLOCKED = -3;
const CLAIM_LOCKED = -4; // the lock is held by another process (async and try* calls only)

// Async waits poll the channel on the next few event-loop turns before handing the wait
// to the waiter thread: a reply that comes within microseconds is caught without a
// thread hop, and the loop still runs I/O between polls.
const ASYNC_POLL_INITIAL = 64;
const ASYNC_POLL_MAX = 1024;

interface Encoded {
  kind: 0 | 1 | 2; // none, string, bytes
  str: string;
  bytes: Uint8Array | null;
  length: number;
}

const NOTHING: Encoded = { kind: 0, str: '', bytes: null, length: 0 };

/**
 * A channel between processes in a shared memory object. Create one with a kind's
 * constructor (`new Channel.SingleBuffered.Variable(shm, { capacity: 200 })`),
 * {@link Channel.create} (the gem's dispatcher), or attach to an existing one with
 * {@link Channel.attach}.
 *
 * - `sendSync` / `recvSync` block the calling thread, sleeping in the kernel after a short adaptive spin.
 * - `send` / `recv` return Promises and never block the event loop.
 * - `trySend` / `tryRecv` never wait.
 * - `close()` closes the channel for every process: sends fail with {@link ClosedWriteError},
 *   receives drain what is buffered and then fail with {@link ChannelClosedError}.
 *
 * Any number of senders and receivers in any number of processes may share a channel:
 * each message is delivered once, whole, and each sender's messages arrive in order.
 */
export abstract class Channel implements AsyncIterable<Buffer>, Disposable {
  /** Unbuffered kinds: a send completes only when a receiver has taken the message (a rendezvous). */
  declare static Unbuffered: { Empty: typeof K.UnbufferedEmpty; Fixed: typeof K.UnbufferedFixed; Variable: typeof K.UnbufferedVariable };
  /** SingleBuffered kinds: one slot; a send waits while it is full, a receive while it is empty. */
  declare static SingleBuffered: { Empty: typeof K.SingleBufferedEmpty; Fixed: typeof K.SingleBufferedFixed; Variable: typeof K.SingleBufferedVariable };
  /** Buffered kinds: a ring of `depth` slots. */
  declare static Buffered: { Empty: typeof K.BufferedEmpty; Fixed: typeof K.BufferedFixed; Variable: typeof K.BufferedVariable };
  /**
   * The gem's dispatcher: picks the kind from `depth` (0 Unbuffered, 1 SingleBuffered,
   * 2+ Buffered) and `width` (0 Empty, > 0 Fixed of that width, < 0 Variable of capacity -width).
   */
  declare static create: (shm: SharedMemory, options: ChannelOptions & { depth: number; width: number }) => Channel;
  /**
   * Attaches to the channel another process created at `offset`, whatever its kind.
   * @throws {@link LayoutError} when there is no valid channel header there (garbage, zeros, another layout version).
   */
  declare static attach: (shm: SharedMemory, options?: { offset?: number }) => Channel;

  /** The mapped bytes of the channel. @internal */
  readonly region: Region;
  /** Kind, payload and sizes read from (or written to) the header. @internal */
  readonly info: HeaderInfo;
  readonly #w: Int32Array;
  readonly #u8: Uint8Array;
  readonly #buf: Buffer;
  readonly #base: number;
  readonly #depth: number;
  readonly #stride: number;
  readonly #width: number;
  readonly #payload: Payload;
  readonly #rendezvous: boolean;
  /** head and tail count modulo this multiple of depth (at most 2^31), so `index % depth` never jumps when they wrap. */
  readonly #cycle: number;
  /** Position the last successful #claimSend claimed (for Unbuffered hand-over). */
  #claimed = 0;
  /** Aborted by release(): pending async waits of this handle end. */
  readonly #released = new AbortController();
  readonly #lockSpin = new SpinBudget(2_000, 64, 20_000);
  readonly #sendSpin = new SpinBudget();
  readonly #recvSpin = new SpinBudget();
  #asyncPoll = ASYNC_POLL_INITIAL;
  // Set when a bounded sleep on a busy peer ran out: only then are peers' pids checked
  // for liveness (a kill(2) and a /proc read), so the hot path makes no such calls.
  #suspect = false;
  #forget: () => void;

  /** @internal */
  protected constructor(shm: SharedMemory, wanted: HeaderInfo | null, options: ChannelOptions | undefined) {
    if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`a channel needs a SharedMemory, got ${describe(shm)}`);
    const opts = checkOptions<ChannelOptions>('options', options);
    const offset = checkIndex('options.offset', opts.offset ?? 0);
    if (offset % 16 !== 0) throw new MisalignedError(`a channel's offset must be a multiple of 16, got ${offset}`);
    const autosize = opts.autosize ?? true;
    let total: number;
    if (wanted !== null) {
      total = wanted.totalSize;
      const size = shm.size;
      if (size < offset + total) {
        if (!autosize) {
          throw new OutOfRangeError(`a ${describeHeader(wanted)} needs ${total} bytes at offset ${offset}, but shared memory '${shm.name}' is ${size} bytes (set its size or pass autosize: true)`);
        }
        shm.size = offset + total;
      }
    } else {
      // Attach: read the header first to learn the size.
      const head = Region.map(shm, offset, H.SIZE);
      try {
        total = readHeader(head).totalSize;
      } finally {
        head.unmap();
      }
      if (offset + total > shm.size) {
        throw new LayoutError(`the header at offset ${offset} of shared memory '${shm.name}' describes ${total} bytes, but the object ends at ${shm.size}: it is corrupt or truncated`);
      }
    }
    this.region = Region.map(shm, offset, total);
    const sig = wanted ?? readHeader(this.region);
    const forget = holdStructure(this.region, sig);
    try {
      this.info = initOrAttach(this.region, wanted, SLOTS_OFFSET);
    } catch (err) {
      forget();
      this.region.unmap();
      throw err;
    }
    this.#forget = forget;
    structures.register(this, forget, this);
    const buffer = this.region.mapping.buffer!;
    this.#w = new Int32Array(buffer, this.region.start, total / 4);
    this.#u8 = new Uint8Array(buffer, this.region.start, total);
    this.#buf = Buffer.from(buffer, this.region.start, total);
    this.#base = this.region.address;
    this.#depth = this.info.depth;
    this.#stride = this.info.stride;
    this.#width = this.info.width;
    this.#payload = this.info.payload;
    this.#rendezvous = this.info.kind === Kind.Unbuffered;
    this.#cycle = cycleOf(this.#depth);
  }

  /** Kind, such as `"SingleBuffered.Variable"`. */
  get kind(): string {
    return kindName(this.info.kind, this.info.payload);
  }

  /** Number of slots (1 for Unbuffered and SingleBuffered). */
  get depth(): number {
    return this.#depth;
  }

  /** Fixed: bytes per message. Variable: capacity. Empty: 0. */
  get width(): number {
    return this.#width;
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
    return Atomics.load(this.#words(), W.CLOSED) !== 0;
  }

  /** Counters for monitoring; see {@link ChannelStats}. */
  stats(): ChannelStats {
    const w = this.#words();
    const head = Atomics.load(w, W.HEAD);
    const tail = Atomics.load(w, W.TAIL);
    let reading = 0;
    for (let i = 0; i < this.#depth; i++) if (Atomics.load(w, this.#stateIndexUnchecked(i)) >>> 30 === READING) reading++;
    return {
      kind: this.kind,
      depth: this.#depth,
      width: this.#width,
      sent: tail,
      received: head,
      queued: this.#dist(tail, head) + reading,
      closed: Atomics.load(w, W.CLOSED) !== 0,
      waiting: { senders: Atomics.load(w, W.SEND_WAITERS), receivers: Atomics.load(w, W.RECV_WAITERS), lock: Atomics.load(w, W.LOCK_WAITERS) },
      lockHolder: Atomics.load(w, W.LOCK),
    };
  }

  // ---- sending -------------------------------------------------------------------

  /**
   * Sends a message, blocking this thread while the channel is full (Unbuffered: until a
   * receiver has taken it).
   * @throws {@link ClosedWriteError} when the channel is closed. {@link PayloadTooLargeError} when the message does not fit (nothing is sent).
   * @throws {@link TimeoutError} after `timeout` ms; nothing was sent.
   */
  sendSync(data?: Payload_, options?: SendOptions): void {
    const msg = this.#encode(data);
    const deadline = deadlineOf(checkOptions<SendOptions>('options', options).timeout);
    let spun = false;
    let sleptAt = 0;
    let slot: number;
    for (;;) {
      const seen = Atomics.load(this.#words(), W.NOT_FULL_SEQ);
      slot = this.#claimSend(deadline);
      if (slot >= 0) break;
      if (slot === CLAIM_CLOSED) throw new ClosedWriteError();
      if (!spun && slot === CLAIM_FULL) {
        spun = true;
        if (this.#spinUntilSendable()) continue;
        sleptAt = performance.now();
      }
      this.#sleepSync(W.NOT_FULL_SEQ, W.SEND_WAITERS, seen, slot === CLAIM_BLOCKED, deadline, 'send');
    }
    if (sleptAt !== 0) this.#sendSpin.slept(performance.now() - sleptAt);
    const position = this.#claimed;
    this.#fill(slot, msg);
    this.#publish(slot);
    if (this.#rendezvous) this.#awaitTakenSync(slot, position, deadline);
  }

  /**
   * Sends a message without blocking the event loop. Resolves once it is in the channel
   * (Unbuffered: once a receiver has taken it).
   * Rejects with {@link ClosedWriteError}, {@link PayloadTooLargeError}, {@link TimeoutError} or {@link AbortError}; in the last three cases nothing was sent.
   */
  async send(data?: Payload_, options?: SendOptions): Promise<void> {
    const msg = this.#encode(data);
    const opts = checkOptions<SendOptions>('options', options);
    const deadline = deadlineOf(opts.timeout);
    const signal = opts.signal;
    let polls = 0;
    let slot: number;
    for (;;) {
      checkAborted(signal);
      const seen = Atomics.load(this.#words(), W.NOT_FULL_SEQ);
      slot = this.#claimSend();
      if (slot >= 0) break;
      if (slot === CLAIM_CLOSED) throw new ClosedWriteError();
      if (slot === CLAIM_LOCKED) {
        await this.#awaitLock(deadline, signal, 'send');
        continue;
      }
      if (slot === CLAIM_FULL && polls < this.#asyncPoll) {
        polls++;
        await nextTurn();
        continue;
      }
      await this.#sleepAsync(W.NOT_FULL_SEQ, W.SEND_WAITERS, seen, slot === CLAIM_BLOCKED, deadline, signal, 'send');
    }
    this.#tunePoll(polls);
    const position = this.#claimed;
    this.#fill(slot, msg);
    this.#publish(slot);
    if (this.#rendezvous) await this.#awaitTakenAsync(slot, position, deadline, signal);
  }

  /**
   * Sends if there is room now, without waiting for room. Returns `false` when the
   * channel is full.
   *
   * Unbuffered: the message is offered only while a receive is in progress (in any
   * process), and `true` means it was placed for that receive; it does not wait for the
   * hand-over, so it works with a receive pending in the same thread. If that receive
   * then gives up (timeout, abort), the message stays for the next receive.
   * @throws {@link ClosedWriteError} when the channel is closed.
   */
  trySend(data?: Payload_): boolean {
    const msg = this.#encode(data);
    const w = this.#words();
    if (this.#rendezvous && Atomics.load(w, W.RECV_ACTIVE) <= 0) {
      if (Atomics.load(w, W.CLOSED) !== 0) throw new ClosedWriteError();
      return false;
    }
    const slot = this.#claimSend();
    if (slot === CLAIM_CLOSED) throw new ClosedWriteError();
    if (slot < 0) return false;
    this.#fill(slot, msg);
    this.#publish(slot);
    return true;
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
    const opts = checkOptions<RecvOptions>('options', options);
    const encoding = checkEncoding(opts.encoding);
    const deadline = deadlineOf(opts.timeout);
    const slot = this.#receiving(() => this.#recvSlotSync(deadline));
    return this.#take(slot, encoding, null) as Buffer | string;
  }

  /** Unbuffered: counts a receive in progress for the duration of `fn`, so senders can hand over. */
  #receiving<T>(fn: () => T): T {
    if (!this.#rendezvous) return fn();
    const w = this.#words();
    Atomics.add(w, W.RECV_ACTIVE, 1);
    try {
      return fn();
    } finally {
      if (this.region.isMapped) Atomics.sub(w, W.RECV_ACTIVE, 1);
    }
  }

  async #receivingAsync<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#rendezvous) return fn();
    const w = this.#words();
    Atomics.add(w, W.RECV_ACTIVE, 1);
    try {
      return await fn();
    } finally {
      if (this.region.isMapped) Atomics.sub(w, W.RECV_ACTIVE, 1);
    }
  }

  /**
   * Receives a message into `target` (no allocation), blocking while the channel is
   * empty. `target` must hold the channel's width or capacity.
   * @returns The number of bytes written into `target`.
   */
  recvIntoSync(target: Uint8Array, options?: SendOptions): number {
    this.#checkTarget(target);
    const deadline = deadlineOf(checkOptions<SendOptions>('options', options).timeout);
    const slot = this.#receiving(() => this.#recvSlotSync(deadline));
    return this.#take(slot, undefined, target) as number;
  }

  /**
   * Receives a message without blocking the event loop.
   * Rejects with {@link ChannelClosedError} when the channel is closed and empty, {@link TimeoutError} or {@link AbortError}.
   */
  recv(options?: RecvOptions & { encoding?: undefined }): Promise<Buffer>;
  recv(options: RecvOptions & { encoding: BufferEncoding }): Promise<string>;
  async recv(options?: RecvOptions): Promise<Buffer | string> {
    const opts = checkOptions<RecvOptions>('options', options);
    const encoding = checkEncoding(opts.encoding);
    const deadline = deadlineOf(opts.timeout);
    const slot = await this.#receivingAsync(() => this.#recvSlotAsync(deadline, opts.signal));
    return this.#take(slot, encoding, null) as Buffer | string;
  }

  /** Async version of {@link Channel.recvIntoSync}. */
  async recvInto(target: Uint8Array, options?: SendOptions): Promise<number> {
    this.#checkTarget(target);
    const opts = checkOptions<SendOptions>('options', options);
    const deadline = deadlineOf(opts.timeout);
    const slot = await this.#receivingAsync(() => this.#recvSlotAsync(deadline, opts.signal));
    return this.#take(slot, undefined, target) as number;
  }

  /**
   * Receives a message if one is ready now; never waits.
   * @returns The message, or `undefined` when there is none (also when the channel is closed and empty).
   */
  tryRecv(options?: { encoding?: undefined }): Buffer | undefined;
  tryRecv(options: { encoding: BufferEncoding }): string | undefined;
  tryRecv(options?: { encoding?: BufferEncoding }): Buffer | string | undefined {
    const encoding = checkEncoding(checkOptions<RecvOptions>('options', options).encoding);
    const slot = this.#claimRecv();
    return slot >= 0 ? (this.#take(slot, encoding, null) as Buffer | string) : undefined;
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

  // ---- closing -------------------------------------------------------------------

  /**
   * Closes the channel for every process. Idempotent. Blocked senders and receivers
   * everywhere wake up: sends fail with {@link ClosedWriteError}; receives take what is
   * still buffered, then fail with {@link ChannelClosedError}.
   */
  close(): void {
    const w = this.#words();
    if (Atomics.exchange(w, W.CLOSED, 1) !== 0) return;
    Atomics.add(w, W.NOT_EMPTY_SEQ, 1);
    Atomics.add(w, W.NOT_FULL_SEQ, 1);
    futexWake(this.#base + W.NOT_EMPTY_SEQ * 4);
    futexWake(this.#base + W.NOT_FULL_SEQ * 4);
  }

  /**
   * Lets go of this process's handle: unmaps the channel here. The channel itself stays
   * open for other processes (use {@link Channel.close} to close it). Idempotent.
   */
  release(): void {
    if (!this.region.isMapped) return;
    this.#forget();
    structures.unregister(this);
    this.region.unmap();
    this.#released.abort();
  }

  /** Same as {@link Channel.release} (`using ch = ...`). */
  [Symbol.dispose](): void {
    this.release();
  }

  // ---- engine --------------------------------------------------------------------

  /** The counter after `i`. */
  #next(i: number): number {
    return i + 1 === this.#cycle ? 0 : i + 1;
  }

  /** How far counter `a` is ahead of counter `b`. */
  #dist(a: number, b: number): number {
    const d = a - b;
    return d < 0 ? d + this.#cycle : d;
  }

  #words(): Int32Array {
    if (!this.region.isMapped) throw new RegionUnmappedError(`channel at offset ${this.region.offset} of shared memory '${this.region.objectName}' was released`);
    return this.#w;
  }

  #stateIndexUnchecked(slot: number): number {
    return (SLOTS_OFFSET + slot * this.#stride) >>> 2;
  }

  /**
   * Takes the channel's lock. With `deadline` (sync calls) it waits, sleeping in the
   * kernel, and throws TimeoutError when the deadline passes. Without (async and try*
   * calls) it only tries briefly and returns false, so the event loop never blocks on
   * another process's critical section. A dead holder's critical section is always
   * repairable (see #claimSend/#claimRecv), so a takeover needs nothing more.
   */
  #lock(deadline?: number): boolean {
    const w = this.#words();
    if (deadline === undefined) {
      if (tryLock(w, W.LOCK) === 0) return true;
      for (let i = 256; i > 0; i--) if (Atomics.load(w, W.LOCK) === 0 && tryLock(w, W.LOCK) === 0) return true;
      return false;
    }
    if (lockSync(w, W.LOCK, W.LOCK_WAITERS, this.#base + W.LOCK * 4, this.#lockSpin, deadline) === -1) {
      throw new TimeoutError(`waiting for the lock of the ${this.kind} channel timed out (held by process ${Atomics.load(w, W.LOCK)})`);
    }
    return true;
  }

  /** Async: waits until the lock looks free (or its dead holder is replaced). */
  async #awaitLock(deadline: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    const w = this.#words();
    const address = this.#base + W.LOCK * 4;
    const holder = Atomics.load(w, W.LOCK);
    if (holder === 0) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new TimeoutError(`${what} on ${this.kind} channel timed out waiting for its lock (held by process ${holder})`);
    Atomics.add(w, W.LOCK_WAITERS, 1);
    const started = performance.now();
    try {
      const stop = signal === undefined ? this.#released.signal : AbortSignal.any([signal, this.#released.signal]);
      await asyncWaiter.wait(address, holder, Math.min(LIVENESS_MS, left), stop);
    } finally {
      if (this.region.isMapped) Atomics.sub(w, W.LOCK_WAITERS, 1);
    }
    checkAborted(signal);
    this.#words();
    if (performance.now() - started >= LIVENESS_MS * 0.9 && takeOverIfDead(w, W.LOCK, holder)) this.#unlock();
  }

  #unlock(): void {
    unlock(this.#w, W.LOCK, W.LOCK_WAITERS, this.#base + W.LOCK * 4);
  }

  /** Claims the slot at tail for writing. Returns the slot index, or CLAIM_*. `deadline`: see #lock. */
  #claimSend(deadline?: number): number {
    if (!this.#lock(deadline)) return CLAIM_LOCKED;
    const w = this.#w;
    try {
      if (Atomics.load(w, W.CLOSED) !== 0) return CLAIM_CLOSED;
      const tail = Atomics.load(w, W.TAIL);
      if (this.#dist(tail, Atomics.load(w, W.HEAD)) >= this.#depth) return CLAIM_FULL;
      const slot = tail % this.#depth;
      const si = this.#stateIndexUnchecked(slot);
      const state = Atomics.load(w, si);
      if (state !== 0) {
        // The slot is still being read by a receiver from the previous lap (or was left
        // mid-way by a process that died under the lock). Wait for a live one; repair a dead one.
        if (!this.#suspect || processAlive(state & PID_MASK)) return CLAIM_BLOCKED;
      }
      this.#suspect = false;
      Atomics.store(w, si, slotState(WRITING, PID));
      Atomics.store(w, W.TAIL, this.#next(tail));
      this.#claimed = tail;
      return slot;
    } finally {
      this.#unlock();
    }
  }

  /** Claims the slot at head for reading. Returns the slot index, or CLAIM_*. `deadline`: see #lock. */
  #claimRecv(deadline?: number): number {
    if (!this.#lock(deadline)) return CLAIM_LOCKED;
    const w = this.#w;
    try {
      for (;;) {
        const head = Atomics.load(w, W.HEAD);
        if (head === Atomics.load(w, W.TAIL)) return Atomics.load(w, W.CLOSED) !== 0 ? CLAIM_CLOSED : CLAIM_FULL;
        const slot = head % this.#depth;
        const si = this.#stateIndexUnchecked(slot);
        const state = Atomics.load(w, si);
        const phase = state >>> 30;
        if (phase === FULL) {
          this.#suspect = false;
          Atomics.store(w, si, slotState(READING, PID));
          Atomics.store(w, W.HEAD, this.#next(head));
          return slot;
        }
        if (phase === READING) {
          // Only possible if a receiver died inside this very section: the message is intact.
          if (!this.#suspect || processAlive(state & PID_MASK)) return CLAIM_BLOCKED;
          Atomics.store(w, si, slotState(FULL, 0));
          continue;
        }
        if (phase === WRITING && (!this.#suspect || processAlive(state & PID_MASK))) return CLAIM_BLOCKED;
        // The sender died mid-copy (or the slot is empty by a repair): drop it, never deliver a torn message.
        Atomics.store(w, si, 0);
        Atomics.store(w, W.HEAD, this.#next(head));
        this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
      }
    } finally {
      this.#unlock();
    }
  }

  #publish(slot: number): void {
    Atomics.store(this.#w, this.#stateIndexUnchecked(slot), slotState(FULL, PID));
    this.#signal(W.NOT_EMPTY_SEQ, W.RECV_WAITERS);
  }

  #free(slot: number): void {
    Atomics.store(this.#w, this.#stateIndexUnchecked(slot), 0);
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  /** Bumps a sequence word and wakes its sleepers, making the syscall only if someone sleeps. */
  #signal(seq: number, waiters: number): void {
    Atomics.add(this.#w, seq, 1);
    if (Atomics.load(this.#w, waiters) !== 0) futexWake(this.#base + seq * 4);
  }

  #looksSendable(): boolean {
    const w = this.#w;
    return this.#dist(Atomics.load(w, W.TAIL), Atomics.load(w, W.HEAD)) < this.#depth || Atomics.load(w, W.CLOSED) !== 0;
  }

  #looksReceivable(): boolean {
    const w = this.#w;
    return Atomics.load(w, W.TAIL) !== Atomics.load(w, W.HEAD) || Atomics.load(w, W.CLOSED) !== 0;
  }

  #spinUntilSendable(): boolean {
    const spin = this.#sendSpin;
    for (let i = spin.budget; i > 0; i--) {
      if (this.#looksSendable()) {
        spin.spun();
        return true;
      }
    }
    return false;
  }

  #spinUntilReceivable(): boolean {
    const spin = this.#recvSpin;
    for (let i = spin.budget; i > 0; i--) {
      if (this.#looksReceivable()) {
        spin.spun();
        return true;
      }
    }
    return false;
  }

  /**
   * Sleeps on word `seq` while it still holds `seen`, the value read *before* the attempt
   * that failed. The waiter count is raised before `seq` is read again, so a waker either
   * sees the count (and wakes us) or we see its new sequence (and do not sleep): no
   * wake-up is lost. `blocked` (a peer is mid-copy) bounds the sleep so a peer's death is
   * noticed within {@link LIVENESS_MS}.
   */
  #sleepSync(seq: number, waiters: number, seen: number, blocked: boolean, deadline: number, what: string): void {
    const w = this.#w;
    Atomics.add(w, waiters, 1);
    try {
      if (Atomics.load(w, seq) !== seen) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(`${what} on ${this.kind} channel timed out`);
      const limit = blocked ? Math.min(LIVENESS_MS, left) : left;
      if (!futexWait(this.#base + seq * 4, seen, Number.isFinite(limit) ? limit : undefined) && blocked) this.#suspect = true;
    } finally {
      Atomics.sub(w, waiters, 1);
    }
  }

  async #sleepAsync(seq: number, waiters: number, seen: number, blocked: boolean, deadline: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    const w = this.#words();
    Atomics.add(w, waiters, 1);
    try {
      if (Atomics.load(w, seq) !== seen) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(`${what} on ${this.kind} channel timed out`);
      const started = performance.now();
      const stop = signal === undefined ? this.#released.signal : AbortSignal.any([signal, this.#released.signal]);
      await asyncWaiter.wait(this.#base + seq * 4, seen, blocked ? Math.min(LIVENESS_MS, left) : left, stop);
      checkAborted(signal);
      this.#words(); // throws RegionUnmappedError once released
      if (blocked && performance.now() - started >= LIVENESS_MS * 0.9) this.#suspect = true;
    } finally {
      if (this.region.isMapped) Atomics.sub(w, waiters, 1);
    }
  }

  #tunePoll(polls: number): void {
    if (polls < this.#asyncPoll) this.#asyncPoll = Math.min(ASYNC_POLL_MAX, this.#asyncPoll * 2);
    else this.#asyncPoll = Math.max(1, this.#asyncPoll >>> 1);
  }

  #recvSlotSync(deadline: number): number {
    let spun = false;
    let sleptAt = 0;
    for (;;) {
      const seen = Atomics.load(this.#words(), W.NOT_EMPTY_SEQ);
      const slot = this.#claimRecv(deadline);
      if (slot >= 0) {
        if (sleptAt !== 0) this.#recvSpin.slept(performance.now() - sleptAt);
        return slot;
      }
      if (slot === CLAIM_CLOSED) throw new ChannelClosedError();
      if (!spun && slot === CLAIM_FULL) {
        spun = true;
        if (this.#spinUntilReceivable()) continue;
        sleptAt = performance.now();
      }
      try {
        this.#sleepSync(W.NOT_EMPTY_SEQ, W.RECV_WAITERS, seen, slot === CLAIM_BLOCKED, deadline, 'receive');
      } catch (err) {
        // A message that arrived just as the time ran out is delivered, not left behind.
        const last = err instanceof TimeoutError ? this.#claimRecv(Infinity) : -1;
        if (last >= 0) return last;
        throw err;
      }
    }
  }

  async #recvSlotAsync(deadline: number, signal: AbortSignal | undefined): Promise<number> {
    let polls = 0;
    for (;;) {
      checkAborted(signal);
      const seen = Atomics.load(this.#words(), W.NOT_EMPTY_SEQ);
      const slot = this.#claimRecv();
      if (slot >= 0) {
        this.#tunePoll(polls);
        return slot;
      }
      if (slot === CLAIM_CLOSED) throw new ChannelClosedError();
      if (slot === CLAIM_LOCKED) {
        await this.#awaitLock(deadline, signal, 'receive');
        continue;
      }
      if (slot === CLAIM_FULL && polls < this.#asyncPoll) {
        polls++;
        await nextTurn();
        continue;
      }
      try {
        await this.#sleepAsync(W.NOT_EMPTY_SEQ, W.RECV_WAITERS, seen, slot === CLAIM_BLOCKED, deadline, signal, 'receive');
      } catch (err) {
        const last = err instanceof TimeoutError ? this.#claimRecv() : -1;
        if (last >= 0) return last;
        throw err;
      }
    }
  }

  /** Unbuffered: the message at `position` has been taken and fully copied out. */
  #taken(slot: number, position: number): boolean {
    const w = this.#w;
    const passed = this.#dist(Atomics.load(w, W.HEAD), position);
    if (passed === 0 || passed > this.#cycle / 2) return false;
    if (passed > 1) return true;
    const state = Atomics.load(w, this.#stateIndexUnchecked(slot));
    // Being read by a receiver that is alive: wait; a receiver that died has taken it with it.
    return !(state >>> 30 === READING && (!this.#suspect || processAlive(state & PID_MASK)));
  }

  /** Unbuffered: takes the message back if no receiver has claimed it. Returns true when it did. */
  #retract(slot: number, position: number): boolean {
    this.#lock(Infinity);
    try {
      const w = this.#w;
      const passed = this.#dist(Atomics.load(w, W.HEAD), position);
      if (passed !== 0 && passed <= this.#cycle / 2) return false;
      Atomics.store(w, this.#stateIndexUnchecked(slot), 0);
      Atomics.store(w, W.TAIL, position);
    } finally {
      this.#unlock();
    }
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
    return true;
  }

  #awaitTakenSync(slot: number, position: number, deadline: number): void {
    for (;;) {
      const seen = Atomics.load(this.#w, W.NOT_FULL_SEQ);
      if (this.#taken(slot, position)) return;
      const closed = Atomics.load(this.#w, W.CLOSED) !== 0;
      try {
        if (closed) throw new ClosedWriteError();
        this.#sleepSync(W.NOT_FULL_SEQ, W.SEND_WAITERS, seen, true, deadline, 'send');
      } catch (err) {
        if (this.#retract(slot, position)) throw err;
        return; // taken meanwhile: the send succeeded
      }
    }
  }

  async #awaitTakenAsync(slot: number, position: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.#w, W.NOT_FULL_SEQ);
      if (this.#taken(slot, position)) return;
      try {
        if (Atomics.load(this.#w, W.CLOSED) !== 0) throw new ClosedWriteError();
        checkAborted(signal);
        await this.#sleepAsync(W.NOT_FULL_SEQ, W.SEND_WAITERS, seen, true, deadline, signal, 'send');
      } catch (err) {
        if (this.#retract(slot, position)) throw err;
        return;
      }
    }
  }

  #encode(data: unknown): Encoded {
    if (this.#payload === Payload.Empty) {
      if (data === undefined || (ArrayBuffer.isView(data) && data.byteLength === 0) || data === '') return NOTHING;
      throw new PayloadTooLargeError(`a ${this.kind} channel carries no data; send() takes no message`);
    }
    let e: Encoded;
    if (typeof data === 'string') e = { kind: 1, str: data, bytes: null, length: Buffer.byteLength(data) };
    else if (ArrayBuffer.isView(data)) e = { kind: 2, str: '', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), length: data.byteLength };
    else throw new InvalidArgumentError(`a message must be a string or an ArrayBufferView (Buffer, Uint8Array, ...), got ${describe(data)}`);
    if (e.length > this.#width) {
      const what = this.#payload === Payload.Fixed ? `width of ${this.#width}` : `capacity of ${this.#width}`;
      throw new PayloadTooLargeError(`a message of ${e.length} bytes exceeds this ${this.kind} channel's ${what} bytes; nothing was sent`);
    }
    return e;
  }

  #fill(slot: number, msg: Encoded): void {
    const at = SLOTS_OFFSET + slot * this.#stride;
    const data = at + SLOT_HEADER;
    if (msg.kind === 1) this.#buf.write(msg.str, data, msg.length, 'utf8');
    else if (msg.kind === 2) this.#u8.set(msg.bytes!, data);
    if (this.#payload === Payload.Variable) this.#w[(at + 4) >>> 2] = msg.length;
    else if (this.#payload === Payload.Fixed && msg.length < this.#width) this.#u8.fill(0, data + msg.length, data + this.#width);
  }

  /** Copies the message out of a claimed slot and frees the slot. */
  #take(slot: number, encoding: BufferEncoding | undefined, target: Uint8Array | null): Buffer | string | number {
    const at = SLOTS_OFFSET + slot * this.#stride;
    const data = at + SLOT_HEADER;
    const length = this.#payload === Payload.Fixed ? this.#width : this.#payload === Payload.Variable ? this.#w[(at + 4) >>> 2]! >>> 0 : 0;
    try {
      if (length > this.#width) throw new LayoutError(`slot ${slot} of the ${this.kind} channel holds a length of ${length}, more than its capacity ${this.#width}: the channel's memory was overwritten`);
      if (target !== null) {
        target.set(this.#u8.subarray(data, data + length));
        return length;
      }
      if (encoding !== undefined) return this.#buf.toString(encoding, data, data + length);
      const out = Buffer.allocUnsafe(length);
      out.set(this.#u8.subarray(data, data + length));
      return out;
    } finally {
      this.#free(slot);
    }
  }

  #checkTarget(target: unknown): void {
    if (!(target instanceof Uint8Array)) throw new InvalidArgumentError(`target must be a Uint8Array or Buffer, got ${describe(target)}`);
    if (target.length < this.#width) throw new OutOfRangeError(`target holds ${target.length} bytes; this ${this.kind} channel's messages can be ${this.#width} bytes`);
  }
}

/** The modulus of a channel's head and tail: the largest multiple of depth not above 2^31. */
export function cycleOf(depth: number): number {
  return depth * Math.floor(2 ** 31 / depth);
}

function deadlineOf(timeout: unknown): number {
  if (timeout === undefined) return Infinity;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw new InvalidArgumentError(`options.timeout must be a non-negative number of milliseconds, got ${describe(timeout)}`);
  }
  return performance.now() + timeout;
}

function checkEncoding(encoding: unknown): BufferEncoding | undefined {
  if (encoding === undefined) return undefined;
  if (typeof encoding !== 'string' || !Buffer.isEncoding(encoding)) throw new InvalidArgumentError(`options.encoding must be a Buffer encoding such as 'utf8', got ${describe(encoding)}`);
  return encoding;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}
