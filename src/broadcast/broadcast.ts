/**
 * Broadcast: publish/subscribe fan-out between processes. Every subscriber receives every
 * message published after it joined, in order, exactly once — or learns exactly how many
 * it missed when it fell a whole ring behind.
 *
 * The choice (see docs/broadcast-layout.md): a **ring of `depth` slots, each a seqlock
 * over its position**, with one shared `tail` and a cursor per subscriber.
 * - Publishers claim positions in order (a CAS on the slot's owner word, then `tail`),
 *   copy in, and publish with one store of the slot's `seq`. A publisher killed at any
 *   step leaves its pid in the owner word; whoever waits on it for the liveness bound
 *   (100 ms) gives its position up (abandoned: subscribers skip it).
 * - Subscribers write nothing but their own cursor: by default a slow one never holds
 *   publishers up; it is overrun, and its next receive throws a {@link LaggedError} with
 *   the exact count missed (why an error and not a result field: a lag is the exception,
 *   it must not pass unnoticed, and receives keep the channels' return type).
 * - With `backpressure: true`, publishers instead wait until the slowest *live*
 *   subscriber has read the slot they would overwrite; a dead subscriber's place is freed
 *   by the first publisher that waited on it for the liveness bound.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { asyncWaiter } from '../sync/async-waiter.js';
import { ClosedWriteError, InvalidArgumentError, LayoutError, MisalignedError, OutOfRangeError, RegionUnmappedError } from '../errors.js';
import { SharedCounts } from '../channel/counts.js';
import { describeHeader, H, Kind, Payload, type HeaderInfo } from '../channel/layout.js';
import { Payloads, type Message } from '../channel/payload.js';
import { count, MAX_WIDTH } from '../channel/shapes.js';
import { attachedSize, holdStructure, initOrAttach, prepareCreate, readHeader, attachOffset } from '../channel/structure.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { futexWake } from '../sync/futex.js';
import { checkChoice, checkIndex, checkOptions, deadlineOf, describe } from '../validate.js';
import { ABANDONED_LENGTH, broadcastSize, BW, ENTRY_CURSOR, ENTRY_PID, FLAG_BACKPRESSURE, MAX_DEPTH, MAX_SUBSCRIBERS, publishedSeq, SLOT_LENGTH, SLOT_SEQ, slotStrideOf } from './layout.js';
import { BLOCKED, CLOSED, EMPTY, OK, RingProtocol } from './protocol.js';
import { Subscriber, SUBSCRIBER_INTERNAL, type RingContext } from './subscriber.js';
import { TryClock } from '../sync/try-clock.js';
import { BROADCAST_COUNTS, RingWaits, SEND_SIDE } from './waiting.js';

export { BROADCAST_STEPS, type BroadcastStep } from './protocol.js';
export { Subscriber, type BroadcastRecvOptions } from './subscriber.js';

/** Where a Broadcast lives and its shape. */
export interface BroadcastOptions {
  /** Slots in the ring: how far publishers may run ahead of the slowest subscriber. A power of two, 2 to 2^20. */
  depth: number;
  /** Largest message in bytes (1 to 2^30). */
  capacity: number;
  /** Most subscribers at once (1 to 65536, rounded up to a multiple of 8). Default 64. */
  maxSubscribers?: number;
  /** Publishers wait for the slowest live subscriber instead of overrunning it. Default `false`. */
  backpressure?: boolean;
  /** Byte offset in the object; a multiple of 16. Default 0. */
  offset?: number;
  /** Grow the object to fit when it is too small. Default `true` (on macOS: only a fresh object). */
  autosize?: boolean;
}

/** Options of a publish. */
export interface PublishOptions {
  /** Give up after this many milliseconds with a {@link TimeoutError}; nothing is published. (Waits happen only with back-pressure.) */
  timeout?: number;
  /** Give up when the signal aborts, with an {@link AbortError}; nothing is published. (Async only.) */
  signal?: AbortSignal;
}

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** `'next'` (default): the next message published. `'oldest'`: the oldest message still in the ring. */
  from?: 'next' | 'oldest';
}

/** Counters read from a Broadcast, for monitoring. */
export interface BroadcastStats {
  /** Slots in the ring. */
  depth: number;
  /** Largest message in bytes. */
  capacity: number;
  /** Places in the subscriber table. */
  maxSubscribers: number;
  /** Whether publishers wait for the slowest live subscriber. */
  backpressure: boolean;
  /** `true` once some process called `close()`. */
  closed: boolean;
  /** Positions claimed by publishers so far (u32, wraps): messages published, plus those abandoned. */
  published: number;
  /** Positions given up: publishers that died mid-publish, publishes that met `close()`. */
  abandoned: number;
  /** Subscribers in the table: pid and the position each reads next. */
  subscribers: { pid: number; cursor: number }[];
  /** Processes asleep in a publish (back-pressure) and in a receive. */
  waiting: { publishers: number; subscribers: number };
}

const KIND = Kind.Broadcast;
const NO_OPTIONS: Readonly<PublishOptions> = Object.freeze({});
const CREATE_KEYS = ['depth', 'capacity', 'maxSubscribers', 'backpressure', 'offset', 'autosize'] as const;
const INTERNAL: unique symbol = Symbol('concurrent-shm broadcast');

// A Broadcast collected without release() forgets its place in the overlap registry.
const structures = new FinalizationRegistry<() => void>((forget) => forget());

function shapeOf(depth: number, capacity: number, maxSubscribers: number): HeaderInfo {
  return { kind: KIND, payload: Payload.Variable, depth, width: capacity, stride: slotStrideOf(capacity), totalSize: broadcastSize(depth, capacity, maxSubscribers) };
}

/**
 * Publish/subscribe fan-out between processes: `publishSync` / `publish` / `tryPublish`
 * put a message in the ring; each {@link Subscriber} (from `subscribe()`) receives every
 * message published after it joined, in publish order, exactly once.
 *
 * - Any number of publishers and subscribers, in any processes; subscribers join and
 *   leave at any time (at most `maxSubscribers` at once).
 * - By default publishers never wait: a subscriber more than `depth` messages behind is
 *   overrun and told so ({@link LaggedError} with `missed`). With `backpressure: true`
 *   publishers wait for the slowest live subscriber instead.
 * - A publisher killed mid-publish loses only its own message (subscribers skip it after
 *   about 100 ms); a subscriber killed at any step holds nobody up for longer than that.
 * - `close()` closes it for every process: publishes fail with {@link ClosedWriteError},
 *   subscribers receive what was published, then get {@link ChannelClosedError}.
 */
export class Broadcast implements Disposable {
  /** The mapped bytes. @internal */
  readonly region: Region;
  /** The header's description. @internal */
  readonly info: HeaderInfo;
  readonly #w: Int32Array;
  readonly #ctx: RingContext;
  readonly #p: RingProtocol;
  readonly #waits: RingWaits;
  readonly #counts: SharedCounts;
  readonly #released = new AbortController();
  readonly #tries = new TryClock();
  readonly #forget: () => void;
  readonly #subscribers = new Set<WeakRef<Subscriber>>();

  /**
   * Creates a Broadcast at `offset` of `shm`, or attaches to the one of the same shape there.
   * @throws {@link LayoutError} when the bytes there are neither zero nor a Broadcast of this shape.
   * @throws {@link OverlapError} when another structure of this process overlaps it.
   */
  constructor(shm: SharedMemory, options: BroadcastOptions);
  /** @internal */
  constructor(shm: SharedMemory, options: { offset: number }, internal: typeof INTERNAL);
  constructor(shm: SharedMemory, options: Partial<BroadcastOptions>, internal?: typeof INTERNAL) {
    if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`a Broadcast needs a SharedMemory, got ${describe(shm)}`);
    let wanted: HeaderInfo | null = null;
    let autosize = false;
    let flags = 0;
    let offset: number;
    if (internal !== INTERNAL) {
      if (options === undefined) throw new InvalidArgumentError('new Broadcast(shm, options) needs options.depth (slots in the ring) and options.capacity (the largest message in bytes)');
      const o = checkOptions<BroadcastOptions>('options', options, CREATE_KEYS);
      const depth = count('options.depth', o.depth, 2, MAX_DEPTH);
      if ((depth & (depth - 1)) !== 0) throw new OutOfRangeError(`options.depth must be a power of two (2, 4, 8, ... ${MAX_DEPTH}), got ${depth}`);
      const capacity = count('options.capacity', o.capacity, 1, MAX_WIDTH);
      const max = Math.ceil(count('options.maxSubscribers', o.maxSubscribers ?? 64, 1, MAX_SUBSCRIBERS) / 8) * 8;
      const backpressure = o.backpressure ?? false;
      if (typeof backpressure !== 'boolean') throw new InvalidArgumentError(`options.backpressure must be a boolean, got ${describe(backpressure)}`);
      offset = checkIndex('options.offset', o.offset ?? 0);
      autosize = o.autosize ?? true;
      if (typeof autosize !== 'boolean') throw new InvalidArgumentError(`options.autosize must be a boolean, got ${describe(autosize)}`);
      wanted = shapeOf(depth, capacity, max);
      if (wanted.totalSize > 2 ** 32 - 1) throw new OutOfRangeError(`a Broadcast of depth ${depth} and capacity ${capacity} would need ${wanted.totalSize} bytes; at most ${2 ** 32 - 1} are supported`);
      flags = backpressure ? FLAG_BACKPRESSURE : 0;
    } else offset = options.offset!;
    if (offset % 16 !== 0) throw new MisalignedError(`a Broadcast's offset must be a multiple of 16, got ${offset}`);
    const total = wanted ? prepareCreate(shm, wanted, offset, autosize) : attachedSize(shm, offset);
    this.region = Region.map(shm, offset, total);
    const buffer = this.region.mapping.buffer!;
    const start = this.region.start;
    const w = (this.#w = new Int32Array(buffer, start, total / 4));
    let forget: (() => void) | undefined;
    try {
      const found = wanted ?? readHeader(this.region);
      if (found.kind !== KIND) throw new LayoutError(`the structure at offset ${offset} of shared memory '${shm.name}' is not a Broadcast (it is a ${describeHeader(found)})`);
      forget = holdStructure(this.region, found);
      const slotsOffset = wanted ? wanted.totalSize - wanted.depth * wanted.stride : new DataView(buffer, start, H.SIZE).getUint32(H.SLOTS, true);
      this.info = initOrAttach(this.region, wanted, slotsOffset, () => {
        // Slot i holds an abandoned "position i − depth": the previous lap of position i,
        // published (so the first publisher of i finds it free), with no message.
        for (let i = 0; i < wanted!.depth; i++) {
          const sw = (slotsOffset + i * wanted!.stride) >>> 2;
          w[sw + SLOT_LENGTH] = ABANDONED_LENGTH | 0;
          w[sw + SLOT_SEQ] = publishedSeq(i - wanted!.depth);
        }
        w[BW.FLAGS] = flags;
      });
      if (wanted !== null && (Atomics.load(w, BW.FLAGS) & FLAG_BACKPRESSURE) !== flags) {
        throw new LayoutError(`at offset ${offset} of shared memory '${shm.name}' there is already a ${describeHeader(this.info)} ${flags ? 'without' : 'with'} back-pressure; asked for one ${flags ? 'with' : 'without'}`);
      }
      const backpressure = (Atomics.load(w, BW.FLAGS) & FLAG_BACKPRESSURE) !== 0;
      const where = (): string => this.#where();
      this.#ctx = {
        region: this.region,
        w,
        buf: Buffer.from(buffer, start, total),
        dv: new DataView(buffer, start, total),
        payloads: new Payloads(buffer, start, total, Payload.Variable, this.info.width, 'Broadcast'),
        capacity: this.info.width,
        depth: this.info.depth,
        stride: this.info.stride,
        slotsOffset,
        backpressure,
        released: this.#released.signal,
        where,
      };
      this.#p = new RingProtocol(w, this.region.address, this.info.depth, this.info.stride, slotsOffset, backpressure);
    } catch (err) {
      forget?.();
      this.region.unmap();
      throw err;
    }
    this.#forget = forget;
    structures.register(this, forget, this);
    this.#counts = new SharedCounts(w, () => this.region.isMapped, BROADCAST_COUNTS);
    this.#waits = new RingWaits(this.#p, this.#counts, () => this.#where(), () => (this.region.isMapped ? undefined : new RegionUnmappedError(`${this.#where()} was released`)), this.#released.signal);
    setMaxListeners(0, this.#released.signal);
    asyncWaiter.keepListening(this.#released.signal);
  }

  /**
   * Attaches to the Broadcast another process created at `offset`, whatever its shape.
   * @throws {@link LayoutError} when there is no Broadcast there.
   */
  static attach(shm: SharedMemory, options?: { offset?: number }): Broadcast {
    return new Broadcast(shm, { offset: attachOffset(shm, options, KIND, 'Broadcast') }, INTERNAL);
  }


  /**
   * Bytes a Broadcast of this shape occupies (header, control words, subscriber table,
   * ring): what to reserve for it, e.g. in a heap block. Takes the constructor's shape
   * options.
   */
  static byteLength(shape: { depth: number; capacity: number; maxSubscribers?: number }): number {
    const o = checkOptions<{ depth: number; capacity: number; maxSubscribers: number }>('shape', shape, ['depth', 'capacity', 'maxSubscribers']);
    const depth = count('shape.depth', o.depth, 2, MAX_DEPTH);
    if ((depth & (depth - 1)) !== 0) throw new OutOfRangeError(`shape.depth must be a power of two (2, 4, 8, ... ${MAX_DEPTH}), got ${depth}`);
    const max = Math.ceil(count('shape.maxSubscribers', o.maxSubscribers ?? 64, 1, MAX_SUBSCRIBERS) / 8) * 8;
    return broadcastSize(depth, count('shape.capacity', o.capacity, 1, MAX_WIDTH), max);
  }

  /** Slots in the ring. */
  get depth(): number {
    return this.info.depth;
  }

  /** Largest message in bytes. */
  get capacity(): number {
    return this.info.width;
  }

  /** Most subscribers at once. */
  get maxSubscribers(): number {
    return this.#p.maxSubscribers;
  }

  /** Whether publishers wait for the slowest live subscriber. */
  get backpressure(): boolean {
    return this.#p.backpressure;
  }

  /** Bytes the Broadcast occupies in the object. */
  get byteLength(): number {
    return this.info.totalSize;
  }

  /** `true` once some process called `close()`. */
  get closed(): boolean {
    return Atomics.load(this.#words(), BW.CLOSED) !== 0;
  }

  /** Positions claimed so far (u32, wraps): messages published plus those abandoned. */
  get published(): number {
    return Atomics.load(this.#words(), BW.TAIL) >>> 0;
  }

  /** Subscribers in the table now (in any process). */
  get subscribers(): number {
    const w = this.#words();
    let n = 0;
    for (let i = 0; i < this.#p.maxSubscribers; i++) if (Atomics.load(w, this.#p.entryWord(i) + ENTRY_PID) !== 0) n++;
    return n;
  }

  /** Counters, for monitoring. */
  stats(): BroadcastStats {
    const w = this.#words();
    const subscribers: BroadcastStats['subscribers'] = [];
    for (let i = 0; i < this.#p.maxSubscribers; i++) {
      const e = this.#p.entryWord(i);
      const pid = Atomics.load(w, e + ENTRY_PID);
      if (pid !== 0) subscribers.push({ pid, cursor: Atomics.load(w, e + ENTRY_CURSOR) >>> 0 });
    }
    return {
      depth: this.depth,
      capacity: this.capacity,
      maxSubscribers: this.maxSubscribers,
      backpressure: this.backpressure,
      closed: Atomics.load(w, BW.CLOSED) !== 0,
      published: Atomics.load(w, BW.TAIL) >>> 0,
      abandoned: Atomics.load(w, BW.ABANDONED) >>> 0,
      subscribers,
      waiting: { publishers: Atomics.load(w, BW.SEND_WAITERS), subscribers: Atomics.load(w, BW.RECV_WAITERS) },
    };
  }

  // ---- publishing ----------------------------------------------------------------

  /**
   * Publishes a message (a string as UTF-8, any view as its bytes). Without back-pressure
   * it never waits (beyond another publisher's copy in progress in the same slot); with
   * it, it blocks this thread while the slowest live subscriber is a ring behind.
   * @throws {@link ClosedWriteError} when the Broadcast is closed. {@link PayloadTooLargeError} when the message does not fit (nothing is published).
   * @throws {@link TimeoutError} after `timeout` ms; nothing was published.
   */
  publishSync(data: Message, options?: Omit<PublishOptions, 'signal'>): void {
    this.#words();
    this.#ctx.payloads.check(data);
    const deadline = deadlineOf(options === undefined ? undefined : checkOptions<PublishOptions>('options', options, ['timeout']).timeout);
    this.#waits.sync(SEND_SIDE, this.#claim, deadline, this.#closedError, 'publish');
    this.#fill(data);
  }

  /**
   * Publishes without blocking the event loop (it only waits with back-pressure).
   * Rejects with {@link ClosedWriteError}, {@link PayloadTooLargeError}, {@link TimeoutError} or {@link AbortError}; in the last three cases nothing was published.
   */
  publish(data: Message, options?: PublishOptions): Promise<void> {
    try {
      this.#words();
      this.#ctx.payloads.check(data);
      const opts = options === undefined ? NO_OPTIONS : checkOptions<PublishOptions>('options', options, ['timeout', 'signal']);
      const deadline = deadlineOf(opts.timeout);
      return this.#waits.async(SEND_SIDE, this.#claim, deadline, opts.signal, this.#closedError, 'publish', () => this.#fill(data));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Publishes if it can be done now. Returns `false` when back-pressure holds it (or
   * another publisher is mid-way through the slot). Tries that keep meeting the same
   * holder for about 100 ms check whether it is alive (a dead one is then repaired or
   * freed), as waiting calls do.
   * @throws {@link ClosedWriteError} when the Broadcast is closed.
   */
  tryPublish(data: Message): boolean {
    this.#words();
    this.#ctx.payloads.check(data);
    const r = this.#tries.run(this.#p, this.#claim, (x) => x === BLOCKED || x === EMPTY);
    if (r === CLOSED) throw this.#closedError();
    if (r !== OK) return false;
    this.#fill(data);
    return true;
  }

  readonly #claim = (): number => this.#p.claimPublish();

  #fill(data: Message): void {
    const p = this.#p.position;
    try {
      const length = this.#ctx.payloads.check(data); // it may have changed while the publish waited
      this.#ctx.payloads.fill(this.#p.slotByte(p), data, length, false); // checked just now
    } catch (err) {
      this.#p.skip(this.#p.slotWord(p), p); // give the claimed position up: nobody waits on a live owner
      throw err;
    }
    this.#p.commit(p);
  }

  readonly #closedError = (): Error => new ClosedWriteError(`Write to closed channel (${this.#where()})`);

  // ---- subscribing ---------------------------------------------------------------

  /**
   * Joins as a subscriber: it receives every message published from now on (or, with
   * `from: 'oldest'`, from the oldest message still in the ring).
   * @throws {@link OutOfRangeError} when `maxSubscribers` live subscribers are already in.
   */
  subscribe(options?: SubscribeOptions): Subscriber {
    this.#words();
    const o = checkOptions<SubscribeOptions>('options', options, ['from']);
    const from = o.from === undefined ? 'next' : checkChoice('options.from', o.from, ['next', 'oldest'] as const);
    const sub = new Subscriber(this.#ctx, from, SUBSCRIBER_INTERNAL);
    if (this.#subscribers.size >= 64) for (const r of this.#subscribers) if (r.deref() === undefined) this.#subscribers.delete(r);
    this.#subscribers.add(new WeakRef(sub));
    return sub;
  }

  // ---- closing -------------------------------------------------------------------

  /**
   * Closes the Broadcast for every process. Idempotent. Publishes fail with
   * {@link ClosedWriteError}; subscribers receive what was published, then get
   * {@link ChannelClosedError}.
   */
  close(): void {
    const w = this.#words();
    if (Atomics.exchange(w, BW.CLOSED, 1) !== 0) return;
    Atomics.add(w, BW.PUBLISHED, 1);
    Atomics.add(w, BW.PROGRESS, 1);
    futexWake(this.region.address + BW.PUBLISHED * 4);
    futexWake(this.region.address + BW.PROGRESS * 4);
  }

  /**
   * Lets go of this process's handle: closes its subscribers (freeing their places),
   * unmaps the Broadcast here and ends pending calls with {@link RegionUnmappedError}.
   * The Broadcast stays open for other processes. Idempotent.
   */
  release(): void {
    if (!this.region.isMapped) return;
    for (const r of this.#subscribers) r.deref()?.close();
    this.#subscribers.clear();
    this.#counts.giveBack();
    this.#counts.forget();
    this.#forget();
    structures.unregister(this);
    this.region.unmap();
    this.#released.abort();
  }

  /** Same as {@link Broadcast.release} (`using bc = ...`). */
  [Symbol.dispose](): void {
    this.release();
  }

  #where(): string {
    return `the ${describeHeader(this.info)} at offset ${this.region.offset} of shared memory '${this.region.objectName}'`;
  }

  #words(): Int32Array {
    if (!this.region.isMapped) throw new RegionUnmappedError(`${this.#where()} was released`);
    return this.#w;
  }
}
