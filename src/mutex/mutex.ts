import { AbortError, DeadlockError, InvalidArgumentError, MisalignedError, NotOwnerError, OutOfRangeError, OwnerDeadError, TimeoutError } from '../errors.js';
import { holdStructure, initOrAttach } from '../channel/structure.js';
import { Kind, MUTEX_SIZE, MW, Payload, type HeaderInfo } from '../channel/layout.js';
import { Region } from '../region/region.js';
import { PID } from '../sync/liveness.js';
import { lockPid, RobustLock, TIMED_OUT } from '../sync/robust-lock.js';
import { SpinBudget } from '../sync/spin.js';
import { checkOptions, deadlineOf, describe } from '../validate.js';

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

// Mutexes this thread holds, by object and offset, with the mutex's `deaths` count when it
// took them. The record holds only while the lock word names this process and `deaths`
// is unchanged: a process that took the mutex over (judging this one dead, e.g. from
// another PID namespace) changed both, and the record is then stale and dropped.
const heldHere = new Map<string, number>();

/**
 * A mutex shared between processes, placed in a region of shared memory (the gem's
 * `Mutex`, a process-shared lock). The first process to attach initialises it; the
 * others find it ready.
 *
 * It is robust: if the process holding it dies, the next `lock()` takes it over and
 * throws {@link OwnerDeadError} — the caller then holds the mutex, repairs what it
 * protects, and calls `unlock()`. A waiting locker looks at the holder at least every
 * 100 ms, so it takes a dead holder's place within about 100 ms of the death; only proof
 * that the process is gone counts (a failure to look, such as running out of file
 * descriptors, never does).
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
  readonly #lock: RobustLock;
  readonly #key: string;
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
    const words = { lock: MW.LOCK, waiters: MW.LOCK_WAITERS, deaths: MW.DEATHS };
    this.#lock = new RobustLock(this.#w, words, address + MW.LOCK * 4, new SpinBudget(2_000, 64, 50_000));
    this.#key = `${region.mapping.objectKey}@${region.offset}`;
  }

  /** Process id of the holder, 0 when free. */
  get holder(): number {
    return lockPid(Atomics.load(this.#words(), MW.LOCK));
  }

  /** `true` while any process holds the mutex. */
  get isLocked(): boolean {
    return this.holder !== 0;
  }

  /**
   * How many holders have died holding this mutex so far: each takeover adds 1, right
   * after it. (A taker killed in between, a window of one instruction, leaves the death
   * it took over from uncounted.)
   */
  get deaths(): number {
    return Atomics.load(this.#words(), MW.DEATHS);
  }

  /**
   * Locks, blocking this thread while another process holds the mutex. A waiting lock
   * checks the holder is alive at least every 100 ms, and once more at the deadline, so
   * a dead holder is taken over within about 100 ms of its death.
   * @param options - `timeout` in milliseconds; `0` makes one try (a dead holder is still taken over).
   * @throws {@link OwnerDeadError} when the holder died: the caller now holds the mutex.
   * @throws {@link DeadlockError} when this thread already holds it. {@link TimeoutError} when a live process still held it at the deadline.
   */
  lock(options?: Omit<LockOptions, 'signal'>): void {
    const w = this.#words();
    const deadline = deadlineOf(checkOptions<LockOptions>('options', options, ['timeout']).timeout);
    if (this.#holdsIt(w)) throw new DeadlockError('this thread already holds the mutex; locking it again would wait forever');
    const dead = this.#lock.lockSync(deadline);
    if (dead === TIMED_OUT) throw this.#timedOut(options!.timeout!);
    this.#acquired(dead);
  }

  /**
   * Locks if the mutex is free now; never waits. A holder that is provably dead is taken
   * over at once, except that a holder this handle's tries found alive less than 100 ms
   * ago is not looked at again until then (a look reads /proc: a loop of tries would
   * cost 12 µs each instead of under a microsecond).
   * @returns `true` when this thread now holds the mutex; `false` when a live process
   *   (or this thread) holds it.
   * @throws {@link OwnerDeadError} when it took the mutex over from a dead holder (and now holds it).
   */
  tryLock(): boolean {
    const w = this.#words();
    if (this.#holdsIt(w)) return false;
    const dead = this.#lock.try(true);
    if (dead === TIMED_OUT) return false;
    return this.#acquired(dead);
  }

  /**
   * Locks without blocking the event loop. While another async task of this thread
   * holds the mutex, this waits for its `unlock()` like any other locker. Like `lock()`,
   * it checks the holder is alive at least every 100 ms and at the deadline.
   * @param options - `timeout` in milliseconds (`0`: one try); `signal` to give up early.
   * @throws (rejects with) {@link OwnerDeadError} (the caller then holds the mutex), {@link TimeoutError} or {@link AbortError}.
   */
  async lockAsync(options?: LockOptions): Promise<void> {
    const opts = checkOptions<LockOptions>('options', options, ['timeout', 'signal']);
    const deadline = deadlineOf(opts.timeout);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError(`options.signal must be an AbortSignal, got ${describe(signal)}`);
    const dead = await this.#lock.lockAsync(deadline, {
      round: () => {
        this.#words(); // the region may have been unmapped while this waited
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      },
      mayTry: () => !this.#holdsIt(this.#w),
      signal,
    });
    if (dead === TIMED_OUT) throw this.#timedOut(opts.timeout!);
    this.#acquired(dead);
  }

  /**
   * Unlocks and wakes one waiter if there is any.
   * @throws {@link NotOwnerError} when this thread does not hold the mutex, including when
   *   another process took it over from this one (judging this process dead); this thread
   *   then no longer counts as holding it and may lock it again.
   */
  unlock(): void {
    const w = this.#words();
    const had = heldHere.has(this.#key);
    if (this.#holdsIt(w)) {
      heldHere.delete(this.#key);
      if (this.#lock.unlock()) return;
    }
    const holder = lockPid(Atomics.load(w, MW.LOCK)) || 'none';
    const why = had ? `another process took it over from this one (holder: ${holder})` : `this thread does not hold it (holder: ${holder})`;
    throw new NotOwnerError(`cannot unlock the mutex: ${why}`);
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
    heldHere.set(this.#key, Atomics.load(this.#w, MW.DEATHS));
    if (deadPid > 0) {
      throw new OwnerDeadError(`the process holding the mutex (pid ${deadPid}) died; this thread now holds it: repair the data it protects, then unlock()`, deadPid);
    }
    return true;
  }

  /** `true` while this thread's record agrees with the lock word; a stale record is dropped. */
  #holdsIt(w: Int32Array): boolean {
    const deaths = heldHere.get(this.#key);
    if (deaths === undefined) return false;
    if (lockPid(Atomics.load(w, MW.LOCK)) === PID && Atomics.load(w, MW.DEATHS) === deaths) return true;
    heldHere.delete(this.#key);
    return false;
  }

  #timedOut(timeout: number): TimeoutError {
    return new TimeoutError(`could not lock the mutex within ${timeout} ms (held by process ${this.holder})`);
  }

  #words(): Int32Array {
    void this.#region.address; // throws RegionUnmappedError once unmapped
    return this.#w;
  }
}

