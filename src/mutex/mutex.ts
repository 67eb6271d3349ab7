import { DeadlockError, InvalidArgumentError, MisalignedError, NotOwnerError, OutOfRangeError, OwnerDeadError, TimeoutError } from '../errors.js';
import { holdStructure, initOrAttach } from '../channel/structure.js';
import { Kind, MUTEX_SIZE, MW, Payload, type HeaderInfo } from '../channel/layout.js';
import { Region } from '../region/region.js';
import { asyncWaiter, nextTurn } from '../sync/async-waiter.js';
import { LIVENESS_MS, PID } from '../sync/liveness.js';
import { lockSync, takeOverIfDead, tryLock, unlock } from '../sync/robust-lock.js';
import { SpinBudget } from '../sync/spin.js';
import { checkOptions, describe } from '../validate.js';
import { AbortError } from '../errors.js';

/** Options of a blocking or async lock. */
export interface LockOptions {
  /** Give up after this many milliseconds with a {@link TimeoutError}. */
  timeout?: number;
  /** Give up when the signal aborts, with an {@link AbortError} (async only). */
  signal?: AbortSignal;
}

// A mutex collected without release() forgets its place in the overlap registry.
const structures = new FinalizationRegistry<() => void>((forget) => forget());

const SHAPE: HeaderInfo = { kind: Kind.Mutex, payload: Payload.Empty, depth: 0, width: 0, stride: 0, totalSize: MUTEX_SIZE };

// Mutexes this thread holds, by object and offset: a second lock would wait forever.
const heldHere = new Set<string>();

/**
 * A mutex shared between processes, placed in a region of shared memory (the gem's
 * `Mutex`, a process-shared lock). The first process to attach initialises it; the
 * others find it ready.
 *
 * It is robust: if the process holding it dies, the next `lock()` takes it over and
 * throws {@link OwnerDeadError} — the caller then holds the mutex, repairs what it
 * protects, and calls `unlock()`.
 *
 * Uncontended `lock`/`unlock` are two atomic operations with no system call; a contended
 * `lock` spins briefly, then sleeps in the kernel (futex / ulock).
 *
 * Unlike a pthread mutex, ownership is per process, with a per-thread check on top: a
 * thread that locks a mutex it already holds gets a {@link DeadlockError}.
 */
export class Mutex {
  /** Bytes a mutex occupies; its region must be at least this long. */
  static readonly SIZE = MUTEX_SIZE;
  /** Required alignment of the region's offset. */
  static readonly ALIGNMENT = 16;

  readonly #region: Region;
  readonly #w: Int32Array;
  readonly #address: number;
  readonly #key: string;
  readonly #spin = new SpinBudget(2_000, 64, 50_000);
  readonly #forget: () => void;

  /**
   * @param region - At least {@link Mutex.SIZE} bytes at a 16-byte aligned offset. The
   *   mutex keeps the region mapped for as long as it is reachable.
   * @throws {@link OutOfRangeError} / {@link MisalignedError} for a region too small or misaligned (the gem's RangeError).
   * @throws {@link LayoutError} when the bytes there are neither zero nor a mutex.
   * @throws {@link OverlapError} when a channel or another structure of this process overlaps it.
   */
  constructor(region: Region) {
    if (!(region instanceof Region)) throw new InvalidArgumentError(`Mutex needs a Region, got ${describe(region)}`);
    if (region.length < MUTEX_SIZE) throw new OutOfRangeError(`a Mutex needs a region of at least ${MUTEX_SIZE} bytes, got ${region.length}`);
    if (region.offset % Mutex.ALIGNMENT !== 0) throw new MisalignedError(`a Mutex needs a 16-byte aligned region; this one starts at offset ${region.offset}`);
    const address = region.address;
    const forget = holdStructure(region, SHAPE);
    try {
      initOrAttach(region, SHAPE, 0);
    } catch (err) {
      forget();
      throw err;
    }
    this.#forget = forget;
    structures.register(this, forget, this);
    this.#region = region;
    this.#w = new Int32Array(region.mapping.buffer!, region.start, MUTEX_SIZE / 4);
    this.#address = address + MW.LOCK * 4;
    this.#key = `${region.mapping.objectKey}@${region.offset}`;
  }

  /** Process id of the holder, 0 when free. */
  get holder(): number {
    return Atomics.load(this.#words(), MW.LOCK);
  }

  /** `true` while any process holds the mutex. */
  get isLocked(): boolean {
    return this.holder !== 0;
  }

  /** How many holders have died holding this mutex so far. */
  get deaths(): number {
    return Atomics.load(this.#words(), MW.DEATHS);
  }

  /**
   * Locks, blocking this thread while another process holds the mutex.
   * @throws {@link OwnerDeadError} when the holder died: the caller now holds the mutex.
   * @throws {@link DeadlockError} when this thread already holds it. {@link TimeoutError} after `timeout` ms.
   */
  lock(options?: Omit<LockOptions, 'signal'>): void {
    const w = this.#words();
    this.#checkNotHeld();
    const timeout = checkOptions<LockOptions>('options', options).timeout;
    const deadline = timeout === undefined ? Infinity : performance.now() + checkTimeout(timeout);
    const dead = lockSync(w, MW.LOCK, MW.LOCK_WAITERS, this.#address, this.#spin, deadline);
    if (dead === -1) throw new TimeoutError(`could not lock the mutex within ${timeout} ms (held by process ${this.holder})`);
    this.#acquired(dead);
  }

  /**
   * Locks if the mutex is free now; never waits.
   * @returns `true` when this thread now holds the mutex.
   * @throws {@link OwnerDeadError} when it took the mutex over from a dead holder (and now holds it).
   */
  tryLock(): boolean {
    const w = this.#words();
    if (heldHere.has(this.#key)) return false;
    const holder = tryLock(w, MW.LOCK);
    if (holder === 0) return this.#acquired(0);
    if (takeOverIfDead(w, MW.LOCK, holder)) return this.#acquired(holder);
    return false;
  }

  /**
   * Locks without blocking the event loop. While another async task of this thread
   * holds the mutex, this waits for its `unlock()` like any other locker.
   * Rejects with {@link OwnerDeadError} (the caller then holds the mutex), {@link TimeoutError} or {@link AbortError}.
   */
  async lockAsync(options?: LockOptions): Promise<void> {
    const w = this.#words();
    const opts = checkOptions<LockOptions>('options', options);
    const deadline = opts.timeout === undefined ? Infinity : performance.now() + checkTimeout(opts.timeout);
    const signal = opts.signal;
    for (let polls = 0; ; polls++) {
      this.#words(); // the region may have been unmapped while this waited
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      if (heldHere.has(this.#key)) {
        // Another async task of this thread holds it: wait for its unlock.
      } else {
        const holder = tryLock(w, MW.LOCK);
        if (holder === 0) {
          this.#acquired(0);
          return;
        }
        if (polls >= 16 && takeOverIfDead(w, MW.LOCK, holder)) {
          this.#acquired(holder);
          return;
        }
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new TimeoutError(`could not lock the mutex within ${opts.timeout} ms (held by process ${this.holder})`);
      if (polls < 16) {
        await nextTurn();
        continue;
      }
      const current = Atomics.load(w, MW.LOCK);
      if (current === 0) continue;
      Atomics.add(w, MW.LOCK_WAITERS, 1);
      try {
        await asyncWaiter.wait(this.#address, current, Math.min(LIVENESS_MS, left), [signal]);
      } finally {
        Atomics.sub(w, MW.LOCK_WAITERS, 1);
      }
    }
  }

  /**
   * Unlocks.
   * @throws {@link NotOwnerError} when this thread does not hold the mutex.
   */
  unlock(): void {
    const w = this.#words();
    if (!heldHere.has(this.#key) || Atomics.load(w, MW.LOCK) !== PID) {
      throw new NotOwnerError(`cannot unlock the mutex: this thread does not hold it (holder: ${Atomics.load(w, MW.LOCK) || 'none'})`);
    }
    heldHere.delete(this.#key);
    unlock(w, MW.LOCK, MW.LOCK_WAITERS, this.#address);
  }

  /**
   * Runs `fn` holding the mutex, and unlocks afterwards even if it throws.
   * If the previous holder died, the mutex is unlocked again and the {@link OwnerDeadError}
   * is thrown without running `fn`; the next call works normally.
   */
  synchronize<T>(fn: () => T): T {
    if (typeof fn !== 'function') throw new InvalidArgumentError(`synchronize needs a function, got ${describe(fn)}`);
    try {
      this.lock();
    } catch (err) {
      if (err instanceof OwnerDeadError) this.unlock();
      throw err;
    }
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /**
   * Lets go of this handle (the mutex itself stays in shared memory for other processes).
   * Does not unlock. Idempotent.
   */
  release(): void {
    this.#forget();
    structures.unregister(this);
  }

  #acquired(deadPid: number): true {
    heldHere.add(this.#key);
    if (deadPid > 0) {
      Atomics.add(this.#w, MW.DEATHS, 1);
      throw new OwnerDeadError(`the process holding the mutex (pid ${deadPid}) died; this thread now holds it: repair the data it protects, then unlock()`, deadPid);
    }
    return true;
  }

  #checkNotHeld(): void {
    if (heldHere.has(this.#key)) throw new DeadlockError('this thread already holds the mutex; locking it again would wait forever');
  }

  #words(): Int32Array {
    void this.#region.address; // throws RegionUnmappedError once unmapped
    return this.#w;
  }
}

function checkTimeout(timeout: unknown): number {
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw new InvalidArgumentError(`options.timeout must be a non-negative number of milliseconds, got ${describe(timeout)}`);
  }
  return timeout;
}
