/**
 * The channel engine shared by every kind: a ring of `depth` slots in shared memory,
 * each claimed by compare-and-swap on its owner word and ordered by its lap sequence
 * (no lock). Kinds differ only in depth, payload and whether a send waits for its
 * message to be taken (Unbuffered). The byte layout and the protocol are in layout.ts.
 * @module
 */
import { setMaxListeners } from 'node:events';
import {
  AbortError,
  ChannelClosedError,
  ClosedWriteError,
  InvalidArgumentError,
  LayoutError,
  MisalignedError,
  OutOfRangeError,
  OverlapError,
  PayloadTooLargeError,
  RegionUnmappedError,
  TimeoutError,
} from '../errors.js';
import { Region } from '../region/region.js';
import { findOverlap } from '../shared-memory/registry.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { asyncWaiter, nextTurn } from '../sync/async-waiter.js';
import { futexWait, futexWake } from '../sync/futex.js';
import { LIVENESS_MS, PID, processAlive } from '../sync/liveness.js';
import { SpinBudget, YIELD_EVERY } from '../sync/spin.js';
import { sched_yield } from '../sys/libc.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import {
  describeHeader,
  FULL,
  H,
  Kind,
  kindName,
  cycleOf,
  ownerWord,
  Payload,
  PID_MASK,
  READING,
  SLOT_HEADER,
  SLOT_LENGTH,
  SLOT_OWNER,
  SLOT_SEQ,
  SLOTS_OFFSET,
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
export type Message = string | ArrayBufferView;

/** Counters read from a channel's header, for monitoring. */
export interface ChannelStats {
  /** Kind, such as `"Buffered.Fixed"`. */
  kind: string;
  /** Number of slots. */
  depth: number;
  /** Fixed: bytes per message; Variable: capacity; Empty: 0. */
  width: number;
  /** Messages sent so far (claimed slots), modulo depth × ⌊2^30 / depth⌋. */
  sent: number;
  /** Messages taken so far, modulo the same. */
  received: number;
  /** Messages in the channel now (being written, ready, or being read). */
  queued: number;
  /** `true` once closed. */
  closed: boolean;
  /** Processes sleeping in a send / a receive. */
  waiting: { senders: number; receivers: number };
  /** Slots a process is writing or reading right now, with its pid. */
  busy: { slot: number; phase: 'writing' | 'reading'; pid: number }[];
}

// A channel collected without release() forgets its place in the overlap registry.
const structures = new FinalizationRegistry<() => void>((forget) => forget());

// Handles with calls in progress at process exit give back the waiter and activity
// counts those calls raised in shared memory (other processes would see phantom waiters).
const liveHandles = new Set<WeakRef<Channel>>();
let exitHook = false;
let pruneAt = 64;
function trackAtExit(handle: Channel, give: () => void): WeakRef<Channel> {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const ref of liveHandles) ref.deref() && giveBack.get(ref.deref()!)?.();
    });
  }
  if (liveHandles.size >= pruneAt) {
    for (const r of liveHandles) if (r.deref() === undefined) liveHandles.delete(r);
    pruneAt = Math.max(64, liveHandles.size * 2);
  }
  const ref = new WeakRef(handle);
  liveHandles.add(ref);
  giveBack.set(handle, give);
  return ref;
}
const giveBack = new WeakMap<Channel, () => void>();

// Results of a claim attempt (a claim returns a position, >= 0, on success).
const CLAIM_FULL = -1; // send: no free slot; receive: no message
const CLAIM_CLOSED = -2;
const CLAIM_BLOCKED = -3; // another process is mid-way through the slot: wait, bounded, and check it is alive
const OWNER_FULL = ownerWord(FULL, 0);
const CLAIMING = ownerWord(WRITING, PID);
const READING_ME = ownerWord(READING, PID);

// Async waits poll the channel on the next few event-loop turns before handing the wait
// to the waiter thread: a reply that comes within microseconds is caught without a
// thread hop, and the loop still runs I/O between polls.
const ASYNC_POLL_INITIAL = 64;
const ASYNC_SPIN_MAX = 4096;
/** Longest single sleep of a sync call, in ms; it then looks again and sleeps again. */
const MAX_SLEEP_MS = 1000;
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
  /** head and tail count modulo this multiple of depth (at most 2^30), so `index % depth` never jumps when they wrap. */
  readonly #cycle: number;
  /** Laps in a cycle: slot sequence words count modulo 2 × laps. */
  readonly #laps: number;
  // What the last failed claim was waiting for: spinning watches these words change.
  #watchSlot = 0;
  #watchOwner = 0;

  /** Aborted by release(): pending async waits of this handle end. */
  readonly #released = new AbortController();
  /**
   * What this handle has added to the shared waiter and activity counts (by word index).
   * release() gives back what pending calls still hold, since those calls can no longer
   * reach the unmapped memory to do it themselves.
   */
  readonly #raised = new Map<number, number>();
  readonly #exitRef: WeakRef<Channel>;
  readonly #sendSpin = new SpinBudget();
  readonly #recvSpin = new SpinBudget();
  // Async calls spin briefly (at most ASYNC_SPIN_MAX loads, ~20 µs) before yielding to the
  // event loop: a peer that answers within microseconds is caught without an event-loop
  // turn or a thread hop. The budget adapts like the sync one and drops to a few loads
  // when spinning does not pay, so the event loop is never held for longer than that.
  readonly #asyncSendSpin = new SpinBudget(ASYNC_SPIN_MAX, 16, ASYNC_SPIN_MAX);
  readonly #asyncRecvSpin = new SpinBudget(ASYNC_SPIN_MAX, 16, ASYNC_SPIN_MAX);
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
      // Refuse an overlap before changing anything.
      const other = findOverlap(shm.key, offset, offset + total, (r) => r.structure !== undefined && r.structure !== `${offset}:${describeHeader(wanted)}`);
      if (other !== undefined) {
        throw new OverlapError(`a ${describeHeader(wanted)} at bytes ${offset}..${offset + total} of shared memory '${shm.name}' would overlap ${other.what} at bytes ${other.start}..${other.end}`);
      }
      const size = shm.size;
      if (size < offset + total) {
        if (!autosize) {
          throw new OutOfRangeError(`a ${describeHeader(wanted)} needs ${total} bytes at offset ${offset}, but shared memory '${shm.name}' is ${size} bytes (set its size or pass autosize: true)`);
        }
        shm.growTo(offset + total);
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
    let forget: (() => void) | undefined;
    try {
      forget = holdStructure(this.region, wanted ?? readHeader(this.region));
      this.info = initOrAttach(this.region, wanted, SLOTS_OFFSET);
    } catch (err) {
      forget?.();
      this.region.unmap();
      throw err;
    }
    this.#forget = forget;
    structures.register(this, forget, this);
    this.#exitRef = trackAtExit(this, () => this.#giveBack());
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
    this.#laps = this.#cycle / this.#depth;
    // Every pending async wait of this handle listens to it; any number may be pending.
    setMaxListeners(0, this.#released.signal);
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
    const busy: ChannelStats['busy'] = [];
    let reading = 0;
    for (let i = 0; i < this.#depth; i++) {
      const owner = Atomics.load(w, this.#slotWord(i) + SLOT_OWNER);
      const phase = owner >>> 30;
      if (phase === WRITING || phase === READING) busy.push({ slot: i, phase: phase === WRITING ? 'writing' : 'reading', pid: owner & PID_MASK });
      if (phase === READING) reading++;
    }
    return {
      kind: this.kind,
      depth: this.#depth,
      width: this.#width,
      sent: tail,
      received: head,
      queued: this.#dist(tail, head) + reading,
      closed: Atomics.load(w, W.CLOSED) !== 0,
      waiting: { senders: Atomics.load(w, W.SEND_WAITERS), receivers: Atomics.load(w, W.RECV_WAITERS) },
      busy,
    };
  }

  // ---- sending -------------------------------------------------------------------

  /**
   * Sends a message, blocking this thread while the channel is full (Unbuffered: until a
   * receiver has taken it).
   * @throws {@link ClosedWriteError} when the channel is closed. {@link PayloadTooLargeError} when the message does not fit (nothing is sent).
   * @throws {@link TimeoutError} after `timeout` ms; nothing was sent.
   */
  sendSync(data?: Message, options?: SendOptions): void {
    const msg = this.#encode(data);
    const deadline = deadlineOf(checkOptions<SendOptions>('options', options).timeout);
    const pos = this.#acquireSync(true, deadline);
    this.#fill(pos, msg);
    this.#publish(pos);
    if (this.#rendezvous) this.#awaitTakenSync(pos, deadline);
  }

  /**
   * Sends a message without blocking the event loop. Resolves once it is in the channel
   * (Unbuffered: once a receiver has taken it).
   * Rejects with {@link ClosedWriteError}, {@link PayloadTooLargeError}, {@link TimeoutError} or {@link AbortError}; in the last three cases nothing was sent.
   */
  async send(data?: Message, options?: SendOptions): Promise<void> {
    const msg = this.#encode(data);
    const opts = checkOptions<SendOptions>('options', options);
    const deadline = deadlineOf(opts.timeout);
    // The copy and the publish run in the same tick as the claim (inside #acquireAsync):
    // nothing, not even release(), can come between a claimed slot and its message.
    const pos = await this.#acquireAsync(true, deadline, opts.signal, (at) => {
      this.#fill(at, msg);
      this.#publish(at);
      return at;
    });
    if (this.#rendezvous) await this.#awaitTakenAsync(pos, deadline, opts.signal);
  }

  /**
   * Sends if there is room now, without waiting for room. Returns `false` when the
   * channel is full (or another process is mid-way through the next slot).
   *
   * Unbuffered: the message is offered only while a receive is in progress (in any
   * process), and `true` means it was placed for that receive; it does not wait for the
   * hand-over, so it works with a receive pending in the same thread. If that receive
   * then gives up (timeout, abort), the message stays for the next receive.
   * @throws {@link ClosedWriteError} when the channel is closed.
   */
  trySend(data?: Message): boolean {
    const msg = this.#encode(data);
    const w = this.#words();
    if (this.#rendezvous && Atomics.load(w, W.RECV_ACTIVE) <= 0) {
      if (Atomics.load(w, W.CLOSED) !== 0) throw new ClosedWriteError();
      return false;
    }
    const pos = this.#claimSend();
    if (pos === CLAIM_CLOSED) throw new ClosedWriteError();
    if (pos < 0) return false;
    this.#fill(pos, msg);
    this.#publish(pos);
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
    const pos = this.#receiveSync(deadlineOf(opts.timeout));
    return this.#take(pos, encoding, null) as Buffer | string;
  }

  /**
   * Receives a message into `target` (no allocation), blocking while the channel is
   * empty. `target` must hold the channel's width or capacity.
   * @returns The number of bytes written into `target`.
   */
  recvIntoSync(target: Uint8Array, options?: SendOptions): number {
    this.#checkTarget(target);
    const pos = this.#receiveSync(deadlineOf(checkOptions<SendOptions>('options', options).timeout));
    return this.#take(pos, undefined, target) as number;
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
    return this.#receiveAsync(deadlineOf(opts.timeout), opts.signal, (pos) => this.#take(pos, encoding, null) as Buffer | string);
  }

  /** Async version of {@link Channel.recvIntoSync}. */
  async recvInto(target: Uint8Array, options?: SendOptions): Promise<number> {
    this.#checkTarget(target);
    const opts = checkOptions<SendOptions>('options', options);
    return this.#receiveAsync(deadlineOf(opts.timeout), opts.signal, (pos) => this.#take(pos, undefined, target) as number);
  }

  /**
   * Receives a message if one is ready now; never waits.
   * @returns The message, or `undefined` when there is none (also when the channel is closed and empty).
   */
  tryRecv(options?: { encoding?: undefined }): Buffer | undefined;
  tryRecv(options: { encoding: BufferEncoding }): string | undefined;
  tryRecv(options?: { encoding?: BufferEncoding }): Buffer | string | undefined {
    const encoding = checkEncoding(checkOptions<RecvOptions>('options', options).encoding);
    const pos = this.#claimRecv();
    return pos >= 0 ? (this.#take(pos, encoding, null) as Buffer | string) : undefined;
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
   * Lets go of this process's handle: unmaps the channel here and ends this handle's
   * pending async calls (with {@link RegionUnmappedError}). The channel itself stays open
   * for other processes (use {@link Channel.close} to close it). Idempotent.
   */
  release(): void {
    if (!this.region.isMapped) return;
    this.#giveBack();
    liveHandles.delete(this.#exitRef);
    this.#forget();
    structures.unregister(this);
    this.region.unmap();
    this.#released.abort();
  }

  /** Same as {@link Channel.release} (`using ch = ...`). */
  [Symbol.dispose](): void {
    this.release();
  }

  // ---- positions and slots ---------------------------------------------------------

  /** Takes back from shared memory every count this handle's pending calls still hold. */
  #giveBack(): void {
    if (!this.region.isMapped) return;
    for (const [word, n] of this.#raised) if (n !== 0) Atomics.sub(this.#w, word, n);
    this.#raised.clear();
  }

  /** Adds 1 to a shared count (waiters, active receives) on behalf of this handle. */
  #raise(word: number): void {
    Atomics.add(this.#w, word, 1);
    this.#raised.set(word, (this.#raised.get(word) ?? 0) + 1);
  }

  /** Takes back what #raise added, unless release() already did. */
  #lower(word: number): void {
    if (!this.region.isMapped) return;
    Atomics.sub(this.#w, word, 1);
    this.#raised.set(word, this.#raised.get(word)! - 1);
  }

  /** The position after `i`. */
  #next(i: number): number {
    return i + 1 === this.#cycle ? 0 : i + 1;
  }

  /** How far position `a` is ahead of position `b`. */
  #dist(a: number, b: number): number {
    const d = a - b;
    return d < 0 ? d + this.#cycle : d;
  }

  /** Value of a slot's `seq` word when it is free for position `pos`; +1 once published. */
  #freeSeq(pos: number): number {
    return 2 * Math.floor(pos / this.#depth);
  }

  /** Signed distance between two `seq` values (they count modulo 2 × laps). */
  #seqDiff(a: number, b: number): number {
    const m = 2 * this.#laps;
    let d = (a - b) % m;
    if (d < -this.#laps) d += m;
    else if (d >= this.#laps) d -= m;
    return d;
  }

  /** Index (in 32-bit words) of slot `slot`'s first word. */
  #slotWord(slot: number): number {
    return (SLOTS_OFFSET + slot * this.#stride) >>> 2;
  }

  /** "the SingleBuffered.Variable channel at offset 0 of shared memory '/jobs'", for messages. */
  #where(): string {
    return `the ${this.kind} channel at offset ${this.region.offset} of shared memory '${this.region.objectName}'`;
  }

  #words(): Int32Array {
    if (!this.region.isMapped) throw new RegionUnmappedError(`channel at offset ${this.region.offset} of shared memory '${this.region.objectName}' was released`);
    return this.#w;
  }

  /** `true` when the process named in an owner word is gone (checked only once a bounded wait on it expired). */
  #ownerDead(owner: number): boolean {
    return this.#suspect && !processAlive(owner & PID_MASK);
  }

  // ---- claiming: the lock-free protocol of layout.ts --------------------------------

  // Invariant of the protocol (layout.ts): a slot's `seq` word only changes while its
  // owner word names the process changing it, and the owner word is released (to FULL or
  // EMPTY) after `seq`. So a process that dies between any two stores always leaves its
  // pid in the owner word, and whoever meets that pid dead takes its place by CAS.

  /** Claims the slot at `tail` for writing. Returns its position, or CLAIM_*. Never waits. */
  #claimSend(): number {
    const w = this.#words();
    for (;;) {
      if (Atomics.load(w, W.CLOSED) !== 0) return CLAIM_CLOSED;
      const pos = Atomics.load(w, W.TAIL);
      const sw = this.#slotWord(pos % this.#depth);
      const free = this.#freeSeq(pos);
      // Fast path: one compare-and-swap on the owner word takes the cache line exclusively
      // at once; the sequence word, on the same line, then says whether it is this lap's slot.
      if (Atomics.compareExchange(w, sw + SLOT_OWNER, 0, CLAIMING) === 0) {
        if (Atomics.load(w, sw + SLOT_SEQ) === free && Atomics.load(w, W.TAIL) === pos) return this.#sendClaimed(pos, sw);
        Atomics.store(w, sw + SLOT_OWNER, 0);
      }
      // The owner word as it was before the state was read: a spin waits for it to change,
      // so anything that happens after this read wakes the spin.
      const seen = Atomics.load(w, sw + SLOT_OWNER);
      const seq = Atomics.load(w, sw + SLOT_SEQ);
      const d = this.#seqDiff(seq, free);
      if (d > 0) {
        // The slot is already past this position: tail moved on meanwhile (or was left
        // behind by a repair); move it on if nobody did, and look again.
        Atomics.compareExchange(w, W.TAIL, pos, this.#next(pos));
        continue;
      }
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      if (d === 0) {
        // Free for this position, but someone holds the owner word: a sender claiming it
        // (or one that died doing so), or a receiver that freed it and died before letting go.
        if (owner === 0) continue;
        if (this.#ownerDead(owner) && Atomics.compareExchange(w, sw + SLOT_OWNER, owner, CLAIMING) === owner) {
          if (Atomics.load(w, sw + SLOT_SEQ) === free && Atomics.load(w, W.TAIL) === pos) return this.#sendClaimed(pos, sw);
          Atomics.store(w, sw + SLOT_OWNER, owner); // not ours after all: leave the dead owner's mark
          continue;
        }
      } else {
        // The slot still holds the previous lap: full, being read, or never finished by
        // its sender. A dead reader's or writer's slot is taken over: its message is lost
        // (receivers skip that position) and the slot serves this one.
        const phase = owner >>> 30;
        if (phase === FULL) {
          this.#watch(sw, seen);
          return CLAIM_FULL;
        }
        if ((phase === READING || phase === WRITING) && this.#ownerDead(owner) && Atomics.compareExchange(w, sw + SLOT_OWNER, owner, CLAIMING) === owner) {
          Atomics.store(w, sw + SLOT_SEQ, free);
          if (Atomics.load(w, W.TAIL) === pos) return this.#sendClaimed(pos, sw);
          // tail already passed this position (it should not have): skip the position
          // rather than leave a slot nobody will ever fill or free.
          Atomics.store(w, sw + SLOT_SEQ, (free + 2) % (2 * this.#laps));
          Atomics.store(w, sw + SLOT_OWNER, 0);
          continue;
        }
      }
      if (Atomics.load(w, W.TAIL) !== pos) continue; // another sender moved on: try the next slot
      this.#watch(sw, seen);
      return CLAIM_BLOCKED;
    }
  }

  /** The slot at `pos` is ours: move tail on, unless the channel closed meanwhile. */
  #sendClaimed(pos: number, sw: number): number {
    const w = this.#w;
    Atomics.store(w, W.TAIL, this.#next(pos));
    this.#suspect = false;
    if (Atomics.load(w, W.CLOSED) !== 0) {
      // close() came between our check and our claim: a receiver may already have
      // concluded "closed and empty". Give the position up as skipped, and fail the send.
      Atomics.store(w, sw + SLOT_SEQ, (this.#freeSeq(pos) + 2) % (2 * this.#laps));
      Atomics.store(w, sw + SLOT_OWNER, 0);
      this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
      return CLAIM_CLOSED;
    }
    return pos;
  }

  /** Claims the message at `head` for reading. Returns its position, or CLAIM_*. Never waits. */
  #claimRecv(): number {
    const w = this.#words();
    for (;;) {
      const pos = Atomics.load(w, W.HEAD);
      const sw = this.#slotWord(pos % this.#depth);
      const published = this.#freeSeq(pos) + 1;
      if (Atomics.compareExchange(w, sw + SLOT_OWNER, OWNER_FULL, READING_ME) === OWNER_FULL) {
        if (Atomics.load(w, sw + SLOT_SEQ) === published && Atomics.load(w, W.HEAD) === pos) return this.#recvClaimed(pos);
        Atomics.store(w, sw + SLOT_OWNER, OWNER_FULL);
      }
      const seen = Atomics.load(w, sw + SLOT_OWNER);
      const seq = Atomics.load(w, sw + SLOT_SEQ);
      const d = this.#seqDiff(seq, published);
      if (d > 0) {
        // The message at this position is gone (taken, or dropped by a repair): move head
        // on if nobody did, and look again.
        Atomics.compareExchange(w, W.HEAD, pos, this.#next(pos));
        continue;
      }
      if (d < 0) {
        // Not published for this lap yet: empty, or a sender is still writing it. The
        // closed flag is read before tail: a send that moved tail before close() is seen.
        const closed = Atomics.load(w, W.CLOSED) !== 0;
        if (Atomics.load(w, W.TAIL) === pos) {
          this.#watch(sw, seen);
          return closed ? CLAIM_CLOSED : CLAIM_FULL;
        }
      }
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      if (d === 0 && owner === OWNER_FULL) continue;
      if (owner !== 0 && this.#ownerDead(owner) && Atomics.compareExchange(w, sw + SLOT_OWNER, owner, READING_ME) === owner) {
        const now = Atomics.load(w, sw + SLOT_SEQ);
        if (d === 0 && now === published && Atomics.load(w, W.HEAD) === pos) {
          // Published (the copy was complete) by a sender that died before letting go, or
          // claimed by a receiver that died before moving head: the message is whole; take it.
          return this.#recvClaimed(pos);
        }
        if (now === seq && (d < 0 ? owner >>> 30 === WRITING : Atomics.load(w, W.HEAD) !== pos)) {
          // A sender that died mid-copy (never deliver a torn message), or a receiver that
          // died after moving head (its message is gone with it): free the slot; receivers
          // at this position skip it.
          if (d < 0) Atomics.compareExchange(w, W.HEAD, pos, this.#next(pos));
          Atomics.store(w, sw + SLOT_SEQ, (published + 1) % (2 * this.#laps));
          Atomics.store(w, sw + SLOT_OWNER, 0);
          this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
          continue;
        }
        Atomics.store(w, sw + SLOT_OWNER, owner); // not what it seemed: leave the dead owner's mark
        continue;
      }
      if (Atomics.load(w, W.HEAD) !== pos) continue; // another receiver moved on: try the next message
      this.#watch(sw, seen);
      return CLAIM_BLOCKED;
    }
  }

  /** The message at `pos` is ours: move head on. */
  #recvClaimed(pos: number): number {
    Atomics.store(this.#w, W.HEAD, this.#next(pos));
    this.#suspect = false;
    return pos;
  }

  /** Remembers what a failed claim waits for (the slot's owner word), for #spin. */
  #watch(slotWord: number, owner: number): void {
    this.#watchSlot = slotWord;
    this.#watchOwner = owner;
  }

  /** Publishes the message written at `pos`: `seq` first, then the owner word lets go. */
  #publish(pos: number): void {
    const w = this.#w;
    const sw = this.#slotWord(pos % this.#depth);
    Atomics.store(w, sw + SLOT_SEQ, this.#freeSeq(pos) + 1);
    Atomics.store(w, sw + SLOT_OWNER, OWNER_FULL);
    this.#signal(W.NOT_EMPTY_SEQ, W.RECV_WAITERS);
  }

  /** Frees the slot of the message read at `pos` for the next lap: `seq` first, then the owner word. */
  #free(pos: number): void {
    const w = this.#w;
    const sw = this.#slotWord(pos % this.#depth);
    Atomics.store(w, sw + SLOT_SEQ, (this.#freeSeq(pos) + 2) % (2 * this.#laps));
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  /** Wakes sleepers of a sequence word, if any: no store and no system call when nobody sleeps. */
  #signal(seq: number, waiters: number): void {
    const w = this.#w;
    if (Atomics.load(w, waiters) !== 0) {
      Atomics.add(w, seq, 1);
      futexWake(this.#base + seq * 4);
    }
  }

  // ---- waiting -------------------------------------------------------------------

  /** Spins until what the last failed claim waited for may have changed. False when the budget runs out. */
  #spin(spin: SpinBudget): boolean {
    // Only the slot's owner word and the closed flag are watched: a publish, a free, a
    // claim or a close changes them, and the other side's head/tail line is left alone
    // (reading it here would make it bounce between the cores on every message).
    // The owner word is the last store of a publish, a free and a retraction, so a
    // change there means the other side is done; reacting to `seq` (stored first) would
    // retry too early and fail once more.
    const w = this.#w;
    const ownerWord = this.#watchSlot + SLOT_OWNER;
    const owner = this.#watchOwner;
    for (let i = spin.budget; i > 0; i--) {
      if (Atomics.load(w, ownerWord) !== owner || Atomics.load(w, W.CLOSED) !== 0) return true;
      if ((i & (YIELD_EVERY - 1)) === 0 && i !== spin.budget) sched_yield();
    }
    return false;
  }

  #claim(send: boolean): number {
    return send ? this.#claimSend() : this.#claimRecv();
  }

  /**
   * Sync claim with waiting: spins (adaptively), then sleeps on the sequence word. The
   * sleeper raises the waiter count, reads the sequence word, and only then tries once
   * more: a waker either sees the count (and bumps and wakes) or the sleeper's last try
   * sees its change, so no wake-up is lost. A wait on a busy peer is bounded so that
   * the peer's death is noticed.
   */
  #acquireSync(send: boolean, deadline: number): number {
    const spin = send ? this.#sendSpin : this.#recvSpin;
    const seqWord = send ? W.NOT_FULL_SEQ : W.NOT_EMPTY_SEQ;
    const waiters = send ? W.SEND_WAITERS : W.RECV_WAITERS;
    let sleptAt = 0;
    let pos = this.#claim(send);
    while (pos < 0) {
      if (pos === CLAIM_CLOSED) throw send ? new ClosedWriteError() : new ChannelClosedError();
      if (this.#spin(spin)) {
        pos = this.#claim(send);
        continue;
      }
      if (sleptAt === 0) sleptAt = performance.now();
      const w = this.#w;
      this.#raise(waiters);
      try {
        const seen = Atomics.load(w, seqWord);
        pos = this.#claim(send);
        if (pos >= 0 || pos === CLAIM_CLOSED) continue;
        const left = deadline - performance.now();
        if (left <= 0) throw new TimeoutError(`${send ? 'send' : 'receive'} on ${this.#where()} timed out`);
        // Every sleep is bounded (a thread sleeping in a system call cannot be terminated,
        // so an unbounded one would hang process.exit() in a worker thread); a wait on a
        // busy peer more tightly, so that its death is noticed.
        const limit = Math.min(pos === CLAIM_BLOCKED ? LIVENESS_MS : MAX_SLEEP_MS, left);
        if (!futexWait(this.#base + seqWord * 4, seen, limit) && pos === CLAIM_BLOCKED) this.#suspect = true;
      } finally {
        this.#lower(waiters);
      }
      pos = this.#claim(send);
    }
    if (sleptAt !== 0) spin.slept(performance.now() - sleptAt);
    return pos;
  }

  /**
   * Async claim with waiting: a short bounded spin, then a few event-loop turns, then a
   * wait through the waiter thread (same protocol as #acquireSync). The event loop is
   * never held longer than one spin budget.
   */
  async #acquireAsync<T>(send: boolean, deadline: number, signal: AbortSignal | undefined, claimed: (pos: number) => T): Promise<T> {
    const spin = send ? this.#asyncSendSpin : this.#asyncRecvSpin;
    const seqWord = send ? W.NOT_FULL_SEQ : W.NOT_EMPTY_SEQ;
    const waiters = send ? W.SEND_WAITERS : W.RECV_WAITERS;
    checkAborted(signal);
    let pos = this.#claim(send);
    if (pos >= 0) return claimed(pos);
    let sleptAt = 0;
    let polls = 0;
    while (pos < 0) {
      if (pos === CLAIM_CLOSED) throw send ? new ClosedWriteError() : new ChannelClosedError();
      if (sleptAt === 0 && polls === 0 && this.#spin(spin)) {
        pos = this.#claim(send);
        if (pos >= 0) break;
      }
      if (polls < this.#asyncPoll) {
        polls++;
        await nextTurn();
        checkAborted(signal);
        pos = this.#claim(send);
        continue;
      }
      if (sleptAt === 0) sleptAt = performance.now();
      const w = this.#words();
      this.#raise(waiters);
      try {
        const seen = Atomics.load(w, seqWord);
        pos = this.#claim(send);
        if (pos >= 0 || pos === CLAIM_CLOSED) continue;
        const left = deadline - performance.now();
        if (left <= 0) throw new TimeoutError(`${send ? 'send' : 'receive'} on ${this.#where()} timed out`);
        const blocked = pos === CLAIM_BLOCKED;
        const started = performance.now();
        await asyncWaiter.wait(this.#base + seqWord * 4, seen, blocked ? Math.min(LIVENESS_MS, left) : left, [signal, this.#released.signal]);
        if (blocked && performance.now() - started >= LIVENESS_MS * 0.9) this.#suspect = true;
      } finally {
        this.#lower(waiters);
      }
      checkAborted(signal);
      pos = this.#claim(send); // throws RegionUnmappedError once released
    }
    if (sleptAt !== 0) spin.slept(performance.now() - sleptAt);
    this.#tunePoll(sleptAt === 0);
    return claimed(pos);
  }

  /** Polling the event loop paid off (the claim succeeded before sleeping): poll longer next time; else shorter. */
  #tunePoll(paid: boolean): void {
    if (paid) this.#asyncPoll = Math.min(ASYNC_POLL_MAX, this.#asyncPoll * 2);
    else this.#asyncPoll = Math.max(1, this.#asyncPoll >>> 1);
  }

  #receiveSync(deadline: number): number {
    if (!this.#rendezvous) return this.#acquireSync(false, deadline);
    this.#words();
    this.#raise(W.RECV_ACTIVE);
    try {
      return this.#acquireSync(false, deadline);
    } finally {
      this.#lower(W.RECV_ACTIVE);
    }
  }

  async #receiveAsync<T>(deadline: number, signal: AbortSignal | undefined, claimed: (pos: number) => T): Promise<T> {
    if (!this.#rendezvous) return this.#acquireAsync(false, deadline, signal, claimed);
    this.#words();
    this.#raise(W.RECV_ACTIVE);
    try {
      return await this.#acquireAsync(false, deadline, signal, claimed);
    } finally {
      this.#lower(W.RECV_ACTIVE);
    }
  }

  // ---- Unbuffered hand-over ----------------------------------------------------------

  /** Unbuffered: the message sent at `pos` has been taken and copied out (or its receiver died with it). */
  #taken(pos: number): boolean {
    const w = this.#w;
    const sw = this.#slotWord(pos % this.#depth);
    if (this.#seqDiff(Atomics.load(w, sw + SLOT_SEQ), this.#freeSeq(pos) + 1) > 0) return true;
    const owner = Atomics.load(w, sw + SLOT_OWNER);
    return owner >>> 30 === READING && this.#ownerDead(owner);
  }

  /** Unbuffered: takes the message back if no receiver has claimed it. Returns true when it did. */
  #retract(pos: number): boolean {
    const w = this.#w;
    const sw = this.#slotWord(pos % this.#depth);
    if (Atomics.compareExchange(w, sw + SLOT_OWNER, OWNER_FULL, ownerWord(WRITING, PID)) !== OWNER_FULL) return false;
    Atomics.store(w, sw + SLOT_SEQ, this.#freeSeq(pos));
    Atomics.store(w, W.TAIL, pos);
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
    return true;
  }

  #awaitTakenSync(pos: number, deadline: number): void {
    const w = this.#w;
    const sw = this.#slotWord(pos % this.#depth);
    let spun = false;
    for (;;) {
      // The owner word is read before checking: a spin then wakes on any change after it.
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      if (this.#taken(pos)) return;
      // Once a receiver holds the message, only its copy is awaited, whatever happens; if
      // the owner word is FULL again (a receiver's claim did not stick), the timeout and
      // close apply again.
      const claimed = owner >>> 30 === READING;
      try {
        if (!claimed && Atomics.load(w, W.CLOSED) !== 0) throw new ClosedWriteError();
        if (!spun) {
          spun = true;
          this.#watch(sw, owner);
          if (this.#spin(this.#sendSpin)) continue;
        }
        this.#raise(W.SEND_WAITERS);
        try {
          const seen = Atomics.load(w, W.NOT_FULL_SEQ);
          if (this.#taken(pos)) return;
          const left = claimed ? LIVENESS_MS : deadline - performance.now();
          if (left <= 0) throw new TimeoutError(`send on ${this.#where()} timed out waiting for a receiver`);
          if (!futexWait(this.#base + W.NOT_FULL_SEQ * 4, seen, Math.min(LIVENESS_MS, left))) this.#suspect = true;
        } finally {
          this.#lower(W.SEND_WAITERS);
        }
      } catch (err) {
        if (this.#retract(pos)) throw err;
      }
    }
  }

  async #awaitTakenAsync(pos: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const w = this.#w;
    const sw = this.#slotWord(pos % this.#depth);
    let polls = 0;
    while (!this.#taken(pos)) {
      const claimed = Atomics.load(w, sw + SLOT_OWNER) >>> 30 === READING;
      try {
        if (!claimed) {
          if (Atomics.load(w, W.CLOSED) !== 0) throw new ClosedWriteError();
          checkAborted(signal);
        }
        if (polls < this.#asyncPoll) {
          polls++;
          await nextTurn();
          this.#words();
          continue;
        }
        this.#raise(W.SEND_WAITERS);
        try {
          const seen = Atomics.load(w, W.NOT_FULL_SEQ);
          if (this.#taken(pos)) return;
          const left = claimed ? LIVENESS_MS : deadline - performance.now();
          if (left <= 0) throw new TimeoutError(`send on ${this.#where()} timed out waiting for a receiver`);
          const started = performance.now();
          await asyncWaiter.wait(this.#base + W.NOT_FULL_SEQ * 4, seen, Math.min(LIVENESS_MS, left), claimed ? [this.#released.signal] : [signal, this.#released.signal]);
          if (performance.now() - started >= LIVENESS_MS * 0.9) this.#suspect = true;
        } finally {
          this.#lower(W.SEND_WAITERS);
        }
        this.#words();
      } catch (err) {
        if (!this.region.isMapped || this.#retract(pos)) throw err;
      }
    }
  }

  // ---- payloads --------------------------------------------------------------------

  #encode(data: unknown): Encoded {
    if (this.#payload === Payload.Empty) {
      if (data === undefined || (ArrayBuffer.isView(data) && data.byteLength === 0) || data === '') return NOTHING;
      throw new PayloadTooLargeError(`a ${this.kind} channel carries no data; send() takes no message`);
    }
    let e: Encoded;
    if (typeof data === 'string') e = { kind: 1, str: data, bytes: null, length: Buffer.byteLength(data) };
    else if (data instanceof Uint8Array) e = { kind: 2, str: '', bytes: data, length: data.length };
    else if (ArrayBuffer.isView(data)) e = { kind: 2, str: '', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), length: data.byteLength };
    else throw new InvalidArgumentError(`a message must be a string or an ArrayBufferView (Buffer, Uint8Array, ...), got ${describe(data)}`);
    if (e.length > this.#width) {
      const what = this.#payload === Payload.Fixed ? `width of ${this.#width}` : `capacity of ${this.#width}`;
      throw new PayloadTooLargeError(`a message of ${e.length} bytes exceeds this ${this.kind} channel's ${what} bytes; nothing was sent`);
    }
    return e;
  }

  /** Copies a message into the slot claimed at `pos`. */
  #fill(pos: number, msg: Encoded): void {
    const at = SLOTS_OFFSET + (pos % this.#depth) * this.#stride;
    const data = at + SLOT_HEADER;
    if (msg.kind === 1) this.#buf.write(msg.str, data, msg.length, 'utf8');
    else if (msg.kind === 2) this.#u8.set(msg.bytes!, data);
    if (this.#payload === Payload.Variable) this.#w[(at >>> 2) + SLOT_LENGTH] = msg.length;
    else if (this.#payload === Payload.Fixed && msg.length < this.#width) this.#u8.fill(0, data + msg.length, data + this.#width);
  }

  /** Copies the message out of the slot claimed at `pos` and frees the slot. */
  #take(pos: number, encoding: BufferEncoding | undefined, target: Uint8Array | null): Buffer | string | number {
    const at = SLOTS_OFFSET + (pos % this.#depth) * this.#stride;
    const data = at + SLOT_HEADER;
    const length = this.#payload === Payload.Fixed ? this.#width : this.#payload === Payload.Variable ? this.#w[(at >>> 2) + SLOT_LENGTH]! >>> 0 : 0;
    try {
      if (length > this.#width) throw new LayoutError(`slot ${pos % this.#depth} of the ${this.kind} channel holds a length of ${length}, more than its capacity ${this.#width}: the channel's memory was overwritten`);
      if (target !== null) {
        target.set(this.#u8.subarray(data, data + length));
        return length;
      }
      if (encoding !== undefined) return this.#buf.toString(encoding, data, data + length);
      const out = Buffer.allocUnsafe(length);
      out.set(this.#u8.subarray(data, data + length));
      return out;
    } finally {
      this.#free(pos);
    }
  }

  #checkTarget(target: unknown): void {
    if (!(target instanceof Uint8Array)) throw new InvalidArgumentError(`target must be a Uint8Array or Buffer, got ${describe(target)}`);
    if (target.length < this.#width) throw new OutOfRangeError(`target holds ${target.length} bytes; this ${this.kind} channel's messages can be ${this.#width} bytes`);
  }
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
