/**
 * Watch: the latest value, shared between processes. Writers replace it, readers read
 * the newest whole value whenever they like and can wait for it to change.
 *
 * The choice (see docs/watch-layout.md): a **double buffer published by a version
 * word**, with a robust writer lock.
 * - Writers serialise on a lock word holding the writer's pid (sync/robust-lock.ts, the
 *   Mutex's protocol): a writer that dies holding it is taken over within the liveness
 *   bound (100 ms), so a crash never wedges later writes.
 * - A writer only ever writes the buffer readers are not reading (`(version + 1) & 1`),
 *   then publishes with one store of `version`. A writer killed at any step leaves the
 *   previous value readable and whole: the state readers look at changes in one store.
 * - A reader loads `version`, copies buffer `version & 1`, loads `version` again; if it
 *   moved, two writes came past during the copy (the buffer may be torn) and it copies
 *   again. Readers write nothing to shared memory: they never block writers, and
 *   `write()` never waits for readers.
 *
 * Why not a plain seqlock (one buffer, odd version while writing)? A writer killed
 * mid-write would leave the only buffer torn and the version odd: readers would spin
 * until a repair. Why not a lock for readers? A reader killed while holding it would stall
 * writers. The double buffer costs twice the capacity and gives both properties.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { asyncWaiter } from '../sync/async-waiter.js';
import { AbortError, InvalidArgumentError, LayoutError, MisalignedError, OutOfRangeError, PayloadTooLargeError, RegionUnmappedError, TimeoutError } from '../errors.js';
import { describeHeader, Kind, Payload, SLOTS_OFFSET, type HeaderInfo } from '../channel/layout.js';
import { count, MAX_WIDTH } from '../channel/shapes.js';
import { attachedSize, holdStructure, initOrAttach, prepareCreate, readHeader, attachOffset } from '../channel/structure.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { futexWake } from '../sync/futex.js';
import { RobustLock } from '../sync/robust-lock.js';
import { SharedCounts } from '../channel/counts.js';
import { copyIn, copyOut, ViewCache } from '../region/word-copy.js';
import { SpinBudget } from '../sync/spin.js';
import { checkEncoding, checkIndex, checkOptions, deadlineOf, describe } from '../validate.js';
import type { TypedArrayConstructor, WatchOptions, WatchValue, WatchWaitOptions } from './options.js';
import { step } from './steps.js';
import { WatchWaits } from './waits.js';
import { BUF_DATA, BUF_LENGTH, BUF_VERSION, BUFFERS_OFFSET, bufferStride, watchSize, WW } from './layout.js';
import { byteLengthOf, bytesOf } from '../region/view-bytes.js';

const KIND = Kind.Watch;
const NO_OPTIONS: Readonly<WatchWaitOptions> = Object.freeze({});
const EMPTY = Buffer.alloc(0);
const INTERNAL: unique symbol = Symbol('concurrent-shm watch');

// A Watch collected without release() forgets its place in the overlap registry.
const structures = new FinalizationRegistry<() => void>((forget) => forget());

// A word of this thread only: an atomic add on it is a full barrier (x86 `lock xadd`,
// ARM64 an exclusive pair with acquire and release), ordering a reader's plain copy before
// its re-check of `version` on CPUs that reorder loads. (Atomics.load of each word would
// order them too, but V8 does not inline it on a mapping's buffer: 10 ns a word.)
const fence = new Int32Array(new SharedArrayBuffer(4));

function shapeOf(capacity: number): HeaderInfo {
  return { kind: KIND, payload: Payload.Variable, depth: 2, width: capacity, stride: bufferStride(capacity), totalSize: watchSize(capacity) };
}

/**
 * The latest value, shared between processes: `write()` replaces it, `read()` returns the
 * newest whole value, `waitSync` / `wait` / `onChange` / `for await` follow its changes.
 *
 * - Any number of writers and readers, in any processes. Writers take turns on a robust
 *   lock (a writer that dies holding it is taken over within about 100 ms); `write()`
 *   never waits for readers.
 * - Readers never block anyone, never see a torn value, and never see a value older than
 *   one they saw before. A writer killed mid-write leaves the previous value readable.
 * - Waiting for a change reports the newest value: values written in quick succession may
 *   be skipped (a Watch is a latest value, not a queue; use a Channel to get every one).
 */
export class Watch implements AsyncIterable<WatchValue>, Disposable {
  /** The mapped bytes. @internal */
  readonly region: Region;
  /** The header's description. @internal */
  readonly info: HeaderInfo;
  readonly #w: Int32Array;
  readonly #u8: Uint8Array;
  readonly #buf: Buffer;
  readonly #dv: DataView;
  readonly #capacity: number;
  readonly #stride: number;
  readonly #versionAddress: number;
  readonly #lock: RobustLock;
  readonly #waits: WatchWaits;
  readonly #released = new AbortController();
  readonly #forget: () => void;
  /**
   * What this handle's pending async waits added to `waiters`, given back on release or
   * at a normal exit (only a killed process leaves a count raised).
   */
  readonly #counts: SharedCounts;
  // The caller's buffers of the last small copy in and out, with a DataView over each: a
  // loop that reuses its buffers allocates nothing.
  readonly #source = new ViewCache();
  readonly #target = new ViewCache();

  /**
   * Creates a Watch at `offset` of `shm`, or attaches to the one of the same capacity
   * there.
   * @throws {@link LayoutError} when the bytes there are neither zero nor a Watch of this capacity.
   * @throws {@link OverlapError} when another structure of this process overlaps it.
   */
  constructor(shm: SharedMemory, options: WatchOptions);
  /** @internal */
  constructor(shm: SharedMemory, options: { offset: number }, internal: typeof INTERNAL);
  constructor(shm: SharedMemory, options: Partial<WatchOptions>, internal?: typeof INTERNAL) {
    if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`a Watch needs a SharedMemory, got ${describe(shm)}`);
    let wanted: HeaderInfo | null = null;
    let autosize = false;
    let offset: number;
    if (internal !== INTERNAL) {
      if (options === undefined) throw new InvalidArgumentError('new Watch(shm, options) needs options.capacity (the largest value in bytes)');
      const o = checkOptions<WatchOptions>('options', options, ['capacity', 'offset', 'autosize']);
      wanted = shapeOf(count('options.capacity', o.capacity, 1, MAX_WIDTH));
      offset = checkIndex('options.offset', o.offset ?? 0);
      autosize = o.autosize ?? true;
      if (typeof autosize !== 'boolean') throw new InvalidArgumentError(`options.autosize must be a boolean, got ${describe(autosize)}`);
    } else offset = options.offset!;
    if (offset % 16 !== 0) throw new MisalignedError(`a Watch's offset must be a multiple of 16, got ${offset}`);
    const total = wanted ? prepareCreate(shm, wanted, offset, autosize) : attachedSize(shm, offset);
    this.region = Region.map(shm, offset, total);
    let forget: (() => void) | undefined;
    try {
      const found = wanted ?? readHeader(this.region);
      if (found.kind !== KIND) throw new LayoutError(`the structure at offset ${offset} of shared memory '${shm.name}' is not a Watch (it is a ${describeHeader(found)})`);
      forget = holdStructure(this.region, found);
      this.info = initOrAttach(this.region, wanted, SLOTS_OFFSET);
    } catch (err) {
      forget?.();
      this.region.unmap();
      throw err;
    }
    this.#forget = forget;
    structures.register(this, forget, this);
    const buffer = this.region.mapping.buffer!;
    const start = this.region.start;
    this.#w = new Int32Array(buffer, start, total / 4);
    this.#u8 = new Uint8Array(buffer, start, total);
    this.#buf = Buffer.from(buffer, start, total);
    this.#dv = new DataView(buffer, start, total);
    this.#capacity = this.info.width;
    this.#stride = this.info.stride;
    this.#versionAddress = this.region.address + WW.VERSION * 4;
    this.#counts = new SharedCounts(this.#w, () => this.region.isMapped, [WW.WAITERS]);
    const words = { lock: WW.LOCK, waiters: WW.LOCK_WAITERS, deaths: WW.DEATHS };
    this.#waits = new WatchWaits(this.#w, this.region.address + WW.VERSION * 4, this.#counts, this.#released.signal, () => this.region.isMapped, () => this.#where());
    this.#lock = new RobustLock(this.#w, words, this.region.address + WW.LOCK * 4, new SpinBudget(2_000, 64, 50_000));
    setMaxListeners(0, this.#released.signal);
    asyncWaiter.keepListening(this.#released.signal);
  }

  /**
   * Attaches to the Watch another process created at `offset`, whatever its capacity.
   * @throws {@link LayoutError} when there is no Watch there (zeros, garbage, another structure, another layout version).
   */
  static attach(shm: SharedMemory, options?: { offset?: number }): Watch {
    return new Watch(shm, { offset: attachOffset(shm, options, KIND, 'Watch') }, INTERNAL);
  }


  /** Bytes needed for a Watch of this capacity (header, control words, two buffers). */
  static byteLength(capacity: number): number {
    return watchSize(count('capacity', capacity, 1, MAX_WIDTH));
  }

  /** Largest value in bytes. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Byte offset in the object. */
  get offset(): number {
    return this.region.offset;
  }

  /** Bytes the Watch occupies in the object. */
  get byteLength(): number {
    return this.info.totalSize;
  }

  /**
   * Number of writes so far; 0 before the first. After 2^32 - 1 writes it wraps to 2 (0
   * only ever means "never written"): compare versions with `!==`, not `<`.
   */
  get version(): number {
    return Atomics.load(this.#words(), WW.VERSION) >>> 0;
  }

  /** Process id of the writer holding the writer lock now, 0 when none. */
  get writer(): number {
    this.#words();
    return this.#lock.holder();
  }

  /** Writers that died holding the writer lock (each was taken over by the next writer). */
  get deaths(): number {
    return Atomics.load(this.#words(), WW.DEATHS);
  }

  // ---- writing -------------------------------------------------------------------

  /**
   * Replaces the value (a string is stored as UTF-8; any view, such as a Float64Array,
   * as its bytes). Waits only for another writer's `write()` in progress (a few µs), or
   * for about 100 ms when that writer died mid-write. Never waits for readers.
   * @returns The new version.
   * @throws {@link PayloadTooLargeError} when the value exceeds the capacity; nothing is written.
   */
  write(data: string | ArrayBufferView): number {
    const w = this.#words();
    let src: Uint8Array | null = null;
    let length: number;
    if (typeof data === 'string') {
      length = data.length * 3 <= this.#capacity ? -1 : Buffer.byteLength(data);
    } else if (ArrayBuffer.isView(data)) {
      length = byteLengthOf(data); // the built-in getter: region/view-bytes.ts
      src = data instanceof Uint8Array ? data : bytesOf(data, 0, length);
    } else {
      throw new InvalidArgumentError(`a Watch value must be a string or an ArrayBufferView (Buffer, Float64Array, ...), got ${describe(data)}`);
    }
    if (length > this.#capacity) {
      throw new PayloadTooLargeError(`a value of ${length} bytes exceeds this Watch's capacity of ${this.#capacity} bytes; nothing was written`);
    }
    // A dead writer's lock is taken over: it wrote only the buffer readers do not read.
    this.#lock.lockSync();
    let next: number;
    try {
      step('watch.write.lock');
      next = (Atomics.load(w, WW.VERSION) + 1) | 0;
      // 0 means "never written": the wrap after 2^32 - 1 writes goes to 2 (same buffer).
      if (next === 0) next = 2;
      const at = BUFFERS_OFFSET + (next & 1) * this.#stride;
      if (src === null) {
        // The string's length is known once written: store it after the bytes.
        length = this.#buf.write(data as string, at + BUF_DATA, this.#capacity, 'utf8');
        this.#dv.setUint32(at + BUF_LENGTH, length, true);
        step('watch.write.length');
      } else {
        this.#dv.setUint32(at + BUF_LENGTH, length, true);
        step('watch.write.length');
        this.#fill(at + BUF_DATA, src, length);
      }
      this.#dv.setUint32(at + BUF_VERSION, next, true);
      step('watch.write.copied');
      // Publication: the buffer's stores come before this one (a release store on every
      // CPU); from here on readers copy the new buffer.
      Atomics.store(w, WW.VERSION, next);
      step('watch.write.published');
    } finally {
      this.#lock.unlock();
    }
    step('watch.write.unlock');
    // A waiter counts itself before it re-reads `version`; this load comes after the
    // store above: either it sees the count, or the waiter sees the new version.
    if (Atomics.load(w, WW.WAITERS) > 0) futexWake(this.#versionAddress);
    return next >>> 0;
  }

  #fill(start: number, src: Uint8Array, length: number): void {
    copyIn(this.#w, this.#u8, start, src, length, this.#source); // start is 4-byte aligned
  }

  // ---- reading -------------------------------------------------------------------

  /**
   * The newest value, copied: a Buffer, or a string with `encoding`. Before the first
   * write: an empty value at version 0. Never waits (it copies again in the rare case two
   * writes came past during its copy).
   */
  read(options?: { encoding?: undefined }): WatchValue<Buffer>;
  read(options: { encoding: BufferEncoding }): WatchValue<string>;
  read(options?: { encoding?: BufferEncoding }): WatchValue<Buffer | string> {
    const w = this.#words();
    const encoding = options === undefined ? undefined : checkEncoding(checkOptions<{ encoding: BufferEncoding }>('options', options, ['encoding']).encoding);
    for (;;) {
      const v = Atomics.load(w, WW.VERSION);
      if (v === 0) return { value: encoding === undefined ? Buffer.alloc(0) : '', version: 0 };
      step('watch.read.version');
      const at = BUFFERS_OFFSET + (v & 1) * this.#stride;
      const length = this.#dv.getUint32(at + BUF_LENGTH, true);
      let value: Buffer | string = EMPTY;
      if (length <= this.#capacity) {
        if (encoding !== undefined) value = this.#buf.toString(encoding, at + BUF_DATA, at + BUF_DATA + length);
        else {
          value = Buffer.allocUnsafe(length);
          this.#copyOut(at + BUF_DATA, length, value);
        }
      }
      Atomics.add(fence, 0, 0);
      step('watch.read.copied');
      if (Atomics.load(w, WW.VERSION) === v) {
        if (length > this.#capacity) throw this.#overwritten(length);
        return { value, version: v >>> 0 };
      }
    }
  }

  /**
   * Copies the newest value into `target` (no allocation). `target` may be any view
   * (a Buffer, a Float64Array, ...); the value's bytes land at its start.
   * @returns The value's length in bytes and its version.
   * @throws {@link OutOfRangeError} when the value is longer than `target` (nothing is copied
   *   past its end); a target of the capacity's size always fits.
   */
  readInto(target: ArrayBufferView): { length: number; version: number } {
    const w = this.#words();
    if (!ArrayBuffer.isView(target)) throw new InvalidArgumentError(`target must be an ArrayBufferView (Buffer, Uint8Array, Float64Array, ...), got ${describe(target)}`);
    for (;;) {
      const v = Atomics.load(w, WW.VERSION);
      if (v === 0) return { length: 0, version: 0 };
      step('watch.read.version');
      const at = BUFFERS_OFFSET + (v & 1) * this.#stride;
      const length = this.#dv.getUint32(at + BUF_LENGTH, true);
      const fits = length <= byteLengthOf(target) && length <= this.#capacity;
      if (fits) this.#copyOut(at + BUF_DATA, length, target);
      Atomics.add(fence, 0, 0);
      step('watch.read.copied');
      if (Atomics.load(w, WW.VERSION) === v) {
        if (length > this.#capacity) throw this.#overwritten(length);
        if (!fits) throw new OutOfRangeError(`the value is ${length} bytes; target holds ${byteLengthOf(target)} (a target of the capacity, ${this.#capacity} bytes, always fits)`);
        return { length, version: v >>> 0 };
      }
    }
  }

  /**
   * The newest value as a new typed array of `type` (e.g. `Float64Array`), for values
   * written as one (`write(new Float64Array([...]))`). Before the first write: an empty
   * array at version 0.
   * @throws {@link LayoutError} when the value's length is not a whole number of elements
   *   (it was not written as this type).
   */
  readTyped<C extends TypedArrayConstructor>(type: C): WatchValue<InstanceType<C>> {
    this.#words();
    const size = (type as { BYTES_PER_ELEMENT?: unknown } | undefined)?.BYTES_PER_ELEMENT;
    if (typeof type !== 'function' || typeof size !== 'number') {
      throw new InvalidArgumentError(`readTyped needs a typed array constructor such as Float64Array, got ${describe(type)}`);
    }
    const w = this.#w;
    for (;;) {
      // An ArrayBuffer of the value's length (8-byte aligned), as it is now; a write of
      // another length in between makes the copy below report another length: again.
      const v = Atomics.load(w, WW.VERSION);
      const now = v === 0 ? 0 : Math.min(this.#capacity, this.#dv.getUint32(BUFFERS_OFFSET + (v & 1) * this.#stride + BUF_LENGTH, true));
      const bytes = new Uint8Array(new ArrayBuffer(now));
      let got: { length: number; version: number };
      try {
        got = this.readInto(bytes);
      } catch (err) {
        if (err instanceof OutOfRangeError) continue; // a longer value meanwhile
        throw err;
      }
      if (got.length !== now) continue;
      if (now % size !== 0) throw new LayoutError(`the value is ${now} bytes, not a whole number of ${type.name} elements of ${size} bytes (it was not written as a ${type.name})`);
      return { value: new type(bytes.buffer) as InstanceType<C>, version: got.version };
    }
  }

  #copyOut(start: number, length: number, target: ArrayBufferView): void {
    // Plain loads; the caller's fence orders them before its re-check of the version.
    copyOut(this.#w, this.#u8, start, length, target, this.#target);
  }

  #overwritten(length: number): LayoutError {
    return new LayoutError(`${this.#where()} holds a value length of ${length}, more than its capacity ${this.#capacity}: its memory was overwritten`);
  }

  // ---- waiting for a change ------------------------------------------------------

  /**
   * Blocks this thread until the version differs from `sinceVersion` (returns at once if
   * it already does). Sleeps in the kernel on the version word, looking again at least
   * every 50 ms.
   * @returns The version now (read the value with `read()`; newer writes may have come meanwhile).
   * @throws {@link TimeoutError} after `timeout` ms with no change.
   */
  waitSync(sinceVersion: number, options?: Omit<WatchWaitOptions, 'signal'>): number {
    this.#words();
    const since = checkVersion(sinceVersion);
    return this.#waits.sync(since, deadlineOf(options === undefined ? undefined : checkOptions<WatchWaitOptions>('options', options, ['timeout']).timeout));
  }

  /**
   * Resolves once the version differs from `sinceVersion`, without blocking the event
   * loop (the kernel sleeps on the version word: through io_uring, or the process's waiter thread).
   * @returns The version now.
   * Rejects with {@link TimeoutError}, {@link AbortError}, or {@link RegionUnmappedError} when this handle is released meanwhile.
   */
  async wait(sinceVersion: number, options?: WatchWaitOptions): Promise<number> {
    this.#words();
    const since = checkVersion(sinceVersion);
    const opts = options === undefined ? NO_OPTIONS : checkOptions<WatchWaitOptions>('options', options, ['timeout', 'signal']);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError(`options.signal must be an AbortSignal, got ${describe(signal)}`);
    return this.#waits.async(since, deadlineOf(opts.timeout), signal);
  }

  /**
   * Calls `listener({ value, version })` with the newest value after each change (changes
   * in quick succession may be reported once, with the newest value). Runs on async waits:
   * never blocks the event loop; keeps the process alive until unsubscribed or released.
   * A listener that throws ends the subscription, and its error is rethrown as an
   * uncaught exception (like a throwing event listener).
   * @returns The function that unsubscribes (idempotent).
   */
  onChange(listener: (change: WatchValue<Buffer>) => void): () => void {
    this.#words();
    if (typeof listener !== 'function') throw new InvalidArgumentError(`onChange needs a function, got ${describe(listener)}`);
    const stop = new AbortController();
    let since = this.version;
    const loop = async (): Promise<void> => {
      for (;;) {
        try {
          since = await this.wait(since, { signal: stop.signal });
        } catch (err) {
          if (err instanceof AbortError || err instanceof RegionUnmappedError) return;
          throw err;
        }
        if (stop.signal.aborted) return;
        const change = this.read();
        since = change.version;
        listener(change);
      }
    };
    loop().catch((err: unknown) => {
      process.nextTick(() => {
        throw err;
      });
    });
    return () => stop.abort();
  }

  /**
   * `for await (const { value, version } of watch)`: the current value first (if it was
   * ever written), then the newest value after each change; values written in quick
   * succession may be skipped. Ends when this handle is released.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<WatchValue<Buffer>> {
    let since = 0;
    for (;;) {
      try {
        await this.wait(since);
      } catch (err) {
        if (err instanceof RegionUnmappedError) return;
        throw err;
      }
      const change = this.read();
      since = change.version;
      yield change;
    }
  }

  // ---- letting go ----------------------------------------------------------------

  /**
   * Lets go of this process's handle: unmaps the Watch here and ends this handle's pending
   * waits (with {@link RegionUnmappedError}). The Watch and its value stay for other
   * processes. Idempotent. (A Watch has no `close()`: there is nothing to close for
   * everyone; the value simply stops changing when nobody writes.)
   */
  release(): void {
    if (!this.region.isMapped) return;
    this.#counts.giveBack();
    this.#counts.forget();
    this.#forget();
    structures.unregister(this);
    this.region.unmap();
    this.#released.abort();
  }

  /** Same as {@link Watch.release} (`using w = ...`). */
  [Symbol.dispose](): void {
    this.release();
  }

  #where(): string {
    return `the Watch at offset ${this.region.offset} of shared memory '${this.region.objectName}'`;
  }

  #words(): Int32Array {
    if (!this.region.isMapped) throw new RegionUnmappedError(`${this.#where()} was released`);
    return this.#w;
  }
}


function checkVersion(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new InvalidArgumentError(`sinceVersion must be a version (an integer from 0 to 2^32 - 1), got ${describe(v)}`);
  return v | 0;
}

