/**
 * A subscriber of a Broadcast: its own cursor into the ring, and the receive calls
 * (sync, async, try, into a buffer, `for await`). Created by `Broadcast.subscribe()`.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { ChannelClosedError, LaggedError, LayoutError, OutOfRangeError, RegionUnmappedError } from '../errors.js';
import { SharedCounts } from '../channel/counts.js';
import { targetChanged, type Payloads } from '../channel/payload.js';
import type { Region } from '../region/region.js';
import { PID, processAlive } from '../sync/liveness.js';
import { checkEncoding, checkOptions, deadlineOf } from '../validate.js';
import { ABANDONED_LENGTH, BW, ENTRY_CURSOR, ENTRY_PID, publishedSeq, SLOT_DATA } from './layout.js';
import { BLOCKED, LAGGED, OK, RingProtocol, step } from './protocol.js';
import { TryClock } from '../sync/try-clock.js';
import { AGAIN, BROADCAST_COUNTS, RECV_SIDE, RingWaits } from './waiting.js';
import { byteLengthOf } from '../region/view-bytes.js';

/** Options of a receive. */
export interface BroadcastRecvOptions {
  /** Give up after this many milliseconds with a {@link TimeoutError}. `0`: only if a message is there now. */
  timeout?: number;
  /** Give up when the signal aborts, with an {@link AbortError} (async calls only). */
  signal?: AbortSignal;
  /** Return the message as a string in this encoding instead of a Buffer. */
  encoding?: BufferEncoding;
}

/** What a subscriber shares with its Broadcast handle. @internal */
export interface RingContext {
  region: Region;
  w: Int32Array;
  buf: Buffer;
  dv: DataView;
  payloads: Payloads;
  capacity: number;
  depth: number;
  stride: number;
  slotsOffset: number;
  backpressure: boolean;
  released: AbortSignal;
  where(): string;
}

const NO_OPTIONS: Readonly<BroadcastRecvOptions> = Object.freeze({});
const RECV_KEYS = ['timeout', 'signal', 'encoding'] as const;
const INTO_KEYS = ['timeout', 'signal'] as const;
/** @internal */
export const SUBSCRIBER_INTERNAL: unique symbol = Symbol('concurrent-shm subscriber');
const INTERNAL: typeof SUBSCRIBER_INTERNAL = SUBSCRIBER_INTERNAL;

// A word of this thread only: an atomic add on it is a full barrier, ordering a copy's
// plain loads before the re-check of `seq` (as in the Watch).
const fence = new Int32Array(new SharedArrayBuffer(4));

// Table entries of subscribers still open, freed at a normal exit (a killed process's
// entries are freed by publishers that find its pid gone) or when the handle is collected.
const open = new Set<() => void>();
let exitHook = false;
const collected = new FinalizationRegistry<() => void>((leave) => leave());

/**
 * One subscriber's view of a Broadcast: receives every message published after it joined
 * (or, with `from: 'oldest'`, from the oldest still in the ring), in order, exactly once,
 * unless it falls a whole ring behind: then the next receive throws a {@link LaggedError}
 * saying how many it missed, and the one after continues from the oldest message left.
 */
export class Subscriber implements AsyncIterable<Buffer>, Disposable {
  readonly #ctx: RingContext;
  readonly #p: RingProtocol;
  readonly #waits: RingWaits;
  readonly #counts: SharedCounts;
  readonly #entry: number;
  readonly #leave: () => void;
  readonly #closed = new AbortController();
  readonly #tries = new TryClock();
  #cursor: number;
  #missed = 0;
  #received = 0;

  /** @internal */
  constructor(ctx: RingContext, from: 'next' | 'oldest', internal: typeof INTERNAL) {
    if (internal !== INTERNAL) throw new TypeError('subscribers are made by Broadcast.subscribe()');
    this.#ctx = ctx;
    const w = ctx.w;
    const p = (this.#p = new RingProtocol(w, ctx.region.address, ctx.depth, ctx.stride, ctx.slotsOffset, ctx.backpressure));
    const entry = (this.#entry = join(p));
    if (entry === -1) throw new OutOfRangeError(`${ctx.where()} has ${p.maxSubscribers} subscriber places, all taken by live processes (create it with a larger maxSubscribers)`);
    step('broadcast.subscribe.entry');
    const tail = Atomics.load(w, BW.TAIL);
    let cursor = tail;
    if (from === 'oldest') {
      // The oldest position still in the ring, past those that hold no message (slots
      // never written yet, positions abandoned).
      cursor = (tail - ctx.depth) | 0;
      while (cursor !== tail) {
        const d = (Atomics.load(w, p.slotWord(cursor)) - publishedSeq(cursor)) | 0;
        const gone = d > 0 || (d === 0 && ctx.dv.getUint32(p.slotByte(cursor) + 8, true) === ABANDONED_LENGTH);
        if (!gone) break;
        cursor = (cursor + 1) | 0;
      }
    }
    this.#cursor = cursor;
    Atomics.store(w, entry + ENTRY_CURSOR, this.#cursor);
    if (from === 'oldest') Atomics.add(w, BW.JOINS, 1);
    const me = PID;
    const region = ctx.region;
    const leave = leaver(region, p, entry, me);
    this.#leave = leave;
    open.add(leave);
    hookExit();
    collected.register(this, this.#leave, this);
    this.#counts = new SharedCounts(w, () => region.isMapped && !this.#closed.signal.aborted, BROADCAST_COUNTS);
    const stop = AbortSignal.any([ctx.released, this.#closed.signal]);
    setMaxListeners(0, stop);
    this.#waits = new RingWaits(p, this.#counts, () => this.#where(), () => this.#goneError(), stop);
  }

  /** The position this subscriber reads next (u32, wraps). */
  get cursor(): number {
    return this.#cursor >>> 0;
  }

  /** Messages missed so far (the sum of every {@link LaggedError}'s `missed`). */
  get missed(): number {
    return this.#missed;
  }

  /** Messages received so far. */
  get received(): number {
    return this.#received;
  }

  /** `true` once {@link Subscriber.close} (or the Broadcast handle's `release()`) ran. */
  get closed(): boolean {
    return this.#closed.signal.aborted || !this.#ctx.region.isMapped;
  }

  // ---- receiving -----------------------------------------------------------------

  /**
   * Receives the next message, blocking this thread until one is published.
   * @returns A Buffer (a copy), or a string with `encoding`.
   * @throws {@link LaggedError} when this subscriber was overrun (its cursor moved on to the oldest message; call again).
   * @throws {@link ChannelClosedError} when the Broadcast is closed and every message published is received (or this subscriber is closed).
   * @throws {@link TimeoutError} after `timeout` ms.
   */
  recvSync(options?: Omit<BroadcastRecvOptions, 'signal'> & { encoding?: undefined }): Buffer;
  recvSync(options: Omit<BroadcastRecvOptions, 'signal'> & { encoding: BufferEncoding }): string;
  recvSync(options?: Omit<BroadcastRecvOptions, 'signal'>): Buffer | string {
    this.#check();
    const opts = options === undefined ? NO_OPTIONS : checkOptions<BroadcastRecvOptions>('options', options, ['timeout', 'encoding']);
    const encoding = checkEncoding(opts.encoding);
    const deadline = deadlineOf(opts.timeout);
    for (;;) {
      const got = this.#take(this.#waits.sync(RECV_SIDE, this.#attempt, deadline, this.#closedError, 'receive'), encoding, null);
      if (got !== AGAIN) return got as Buffer | string;
    }
  }

  /** Async version of {@link Subscriber.recvSync}: never blocks the event loop. Rejects with the same errors, or {@link AbortError}. */
  recv(options?: BroadcastRecvOptions & { encoding?: undefined }): Promise<Buffer>;
  recv(options: BroadcastRecvOptions & { encoding: BufferEncoding }): Promise<string>;
  recv(options?: BroadcastRecvOptions): Promise<Buffer | string> {
    try {
      this.#check();
      const opts = options === undefined ? NO_OPTIONS : checkOptions<BroadcastRecvOptions>('options', options, RECV_KEYS);
      const encoding = checkEncoding(opts.encoding);
      const deadline = deadlineOf(opts.timeout);
      return this.#waits.async(RECV_SIDE, this.#attempt, deadline, opts.signal, this.#closedError, 'receive', (r) => this.#take(r, encoding, null) as Buffer | string | typeof AGAIN);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Receives the next message into `target` (no allocation); `target` must hold the
   * capacity. Blocks like {@link Subscriber.recvSync}.
   * @returns The message's length in bytes.
   */
  recvIntoSync(target: Uint8Array, options?: { timeout?: number }): number {
    this.#check();
    this.#ctx.payloads.checkTarget(target);
    const deadline = deadlineOf(options === undefined ? undefined : checkOptions<{ timeout: number }>('options', options, ['timeout']).timeout);
    for (;;) {
      const got = this.#take(this.#waits.sync(RECV_SIDE, this.#attempt, deadline, this.#closedError, 'receive'), undefined, target);
      if (got !== AGAIN) return got as number;
    }
  }

  /** Async version of {@link Subscriber.recvIntoSync}. */
  recvInto(target: Uint8Array, options?: { timeout?: number; signal?: AbortSignal }): Promise<number> {
    try {
      this.#check();
      this.#ctx.payloads.checkTarget(target);
      const opts = options === undefined ? NO_OPTIONS : checkOptions<BroadcastRecvOptions>('options', options, INTO_KEYS);
      const deadline = deadlineOf(opts.timeout);
      return this.#waits.async(RECV_SIDE, this.#attempt, deadline, opts.signal, this.#closedError, 'receive', (r) => this.#take(r, undefined, target) as number | typeof AGAIN);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Receives the next message if it is published now; never waits.
   * @returns The message, or `undefined` when there is none yet (also when the Broadcast is closed and drained).
   * @throws {@link LaggedError} when this subscriber was overrun.
   */
  tryRecv(options?: { encoding?: undefined }): Buffer | undefined;
  tryRecv(options: { encoding: BufferEncoding }): string | undefined;
  tryRecv(options?: { encoding?: BufferEncoding }): Buffer | string | undefined {
    this.#check();
    const encoding = checkEncoding(options === undefined ? undefined : checkOptions<{ encoding: BufferEncoding }>('options', options, ['encoding']).encoding);
    for (;;) {
      const r = this.#tries.run(this.#p, this.#attempt, (x) => x === BLOCKED);
      if (r !== OK && r !== LAGGED) return undefined;
      const got = this.#take(r, encoding, null);
      if (got !== AGAIN) return got as Buffer | string;
    }
  }

  /**
   * `for await (const msg of sub)`: every message until the Broadcast is closed and
   * drained (or this subscriber closed). A lag ends the loop with its {@link LaggedError};
   * the subscriber stays open, and a new loop continues from the oldest message left.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      let msg: Buffer;
      try {
        msg = await this.recv();
      } catch (err) {
        if (err instanceof ChannelClosedError || err instanceof RegionUnmappedError) return;
        throw err;
      }
      yield msg;
    }
  }

  // ---- the steps of a receive ----------------------------------------------------

  /** One look at the cursor, skipping abandoned positions: OK, LAGGED, EMPTY, BLOCKED or CLOSED. */
  readonly #attempt = (): number => {
    for (;;) {
      const c = this.#cursor;
      const r = this.#p.claimRecv(c);
      if (r !== OK) return r;
      // An atomic load: ordered before still()'s re-check of seq on every CPU (a plain read
      // could be, on ARM, taken after it and see the next lap's abandoned marker).
      if (Atomics.load(this.#p.w, this.#p.slotWord(c) + 2) >>> 0 !== ABANDONED_LENGTH) return OK;
      // No message at c (its publisher died, or it met close(); or a slot never written).
      if (this.#p.still(c)) this.#advance(c);
    }
  };

  /** Copies the message at the cursor (OK) or reports the lag (LAGGED). AGAIN: overwritten during the copy. */
  #take(r: number, encoding: BufferEncoding | undefined, target: Uint8Array | null): Buffer | string | number | typeof AGAIN {
    const ctx = this.#ctx;
    const c = this.#cursor;
    if (r === LAGGED) {
      const missed = this.#p.missed;
      this.#missed += missed;
      this.#cursor = this.#p.lagTo;
      this.#store(this.#cursor);
      throw new LaggedError(`this subscriber of ${this.#where()} was overrun: it missed ${missed} message${missed === 1 ? '' : 's'} (overwritten before it read them); the next receive continues from the oldest message in the ring`, missed);
    }
    const at = this.#p.slotByte(c);
    const length = ctx.dv.getUint32(at + 8, true);
    let value: Buffer | string | number = 0;
    if (length <= ctx.capacity) {
      if (target !== null) {
        if (byteLengthOf(target) < length) throw targetChanged(target, length, 'the message stays for the next receive');
        ctx.payloads.copyOut(at, length, target);
        value = length;
      } else if (encoding !== undefined) value = ctx.buf.toString(encoding, at + SLOT_DATA, at + SLOT_DATA + length);
      else value = ctx.payloads.read(at, length, undefined);
    }
    Atomics.add(fence, 0, 0);
    step('broadcast.recv.copied');
    if (!this.#p.still(c)) return AGAIN;
    if (length > ctx.capacity) {
      throw new LayoutError(`slot ${c & (ctx.depth - 1)} of ${this.#where()} holds a length of ${length}, more than its capacity ${ctx.capacity}: its memory was overwritten`);
    }
    this.#advance(c);
    this.#received++;
    return value;
  }

  #advance(c: number): void {
    this.#cursor = (c + 1) | 0;
    this.#store(this.#cursor);
    step('broadcast.recv.cursor');
    if (this.#ctx.backpressure && (this.#cursor & this.#p.wakeMask) === 0) this.#p.signal(BW.PROGRESS, BW.SEND_WAITERS);
  }

  #store(cursor: number): void {
    Atomics.store(this.#ctx.w, this.#entry + ENTRY_CURSOR, cursor);
  }

  // ---- leaving -------------------------------------------------------------------

  /**
   * Leaves the Broadcast: frees this subscriber's place (publishers waiting for it, with
   * back-pressure, go on) and ends its pending receives with {@link ChannelClosedError}.
   * Idempotent.
   */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#counts.giveBack();
    this.#counts.forget();
    this.#closed.abort();
    collected.unregister(this);
    this.#leave();
  }

  /** Same as {@link Subscriber.close}. */
  unsubscribe(): void {
    this.close();
  }

  /** Same as {@link Subscriber.close} (`using sub = bc.subscribe()`). */
  [Symbol.dispose](): void {
    this.close();
  }

  readonly #closedError = (): Error => new ChannelClosedError(`the Broadcast is closed and this subscriber received every message (${this.#where()})`);

  #goneError(): Error | undefined {
    if (!this.#ctx.region.isMapped) return new RegionUnmappedError(`${this.#ctx.where()} was released`);
    if (this.#closed.signal.aborted) return new ChannelClosedError(`this subscriber of ${this.#ctx.where()} is closed`);
    return undefined;
  }

  #check(): void {
    const gone = this.#goneError();
    if (gone !== undefined) throw gone;
  }

  #where(): string {
    return this.#ctx.where();
  }
}

/** At a normal exit, gives back the places of subscribers still open (installed once, outside any constructor's context). */
function hookExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const leave of [...open]) leave();
  });
}

/**
 * The function that gives a subscriber's place back. Made out here so that it captures
 * nothing of the subscriber (a closure made in the constructor would share its context,
 * `this` included): the registry and the exit hook hold it strongly, and a subscriber
 * dropped without close() must still be collected, its place freed then.
 */
function leaver(region: Region, p: RingProtocol, entry: number, me: number): () => void {
  const leave = (): void => {
    open.delete(leave);
    if (!region.isMapped) return;
    if (Atomics.compareExchange(p.w, entry + ENTRY_PID, me, 0) === me) p.signal(BW.PROGRESS, BW.SEND_WAITERS);
  };
  return leave;
}

/** Takes a free table entry (or a dead subscriber's); returns its word index. */
function join(p: RingProtocol): number {
  const w = p.w;
  const me = PID;
  for (let i = 0; i < p.maxSubscribers; i++) {
    const e = p.entryWord(i);
    if (Atomics.load(w, e + ENTRY_PID) === 0 && Atomics.compareExchange(w, e + ENTRY_PID, 0, me) === 0) return e;
  }
  for (let i = 0; i < p.maxSubscribers; i++) {
    const e = p.entryWord(i);
    const pid = Atomics.load(w, e + ENTRY_PID);
    if (pid !== 0 && pid !== me && !processAlive(pid) && Atomics.compareExchange(w, e + ENTRY_PID, pid, me) === pid) return e;
  }
  return -1;
}
