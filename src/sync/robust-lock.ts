/**
 * A lock in shared memory that survives the death of its holder: the protocol behind
 * the public Mutex, written once, with a sync and an async driver.
 *
 * Words (indexes into an Int32Array; see docs/layout.md, "Mutex"):
 * - `lock`: 0 when free, otherwise the holder's word: its process id in bits 21–0 and,
 *   in bits 31–22, a tag the holder chose for this acquisition (1–1023; 0 from a peer
 *   that writes its bare pid). Taken by CAS 0 → word, released by CAS word → 0, taken
 *   over from a dead holder by CAS dead-word → word. The tag is what makes a takeover
 *   safe when process ids are reused: a waiter proves the pid in the word it saw dead,
 *   then CASes that exact word; if meanwhile the lock was freed and taken by a new
 *   process that got the same pid, the word differs in its tag (unless the new holder
 *   drew the same one of 1023 tags) and the CAS fails instead of stealing the lock
 *   from a live process.
 * - `waiters`: processes inside a sleep round (counted before their CAS, uncounted after
 *   their wait). The releaser makes the wake system call only when it is non-zero, so an
 *   uncontended lock and unlock cost two atomic operations and no system call.
 * - `deaths`: takeovers completed; the taker adds 1 right after its takeover CAS.
 *
 * Why no wake is lost: a sleeper counts itself, then CASes, then sleeps only while the
 * word still holds the pid its CAS saw. A releaser clears the word, then reads `waiters`.
 * If the CAS saw the holder, the release comes after it, so the releaser sees the count.
 *
 * Liveness, honestly bounded: every wait (sync or async, sleeping or not) looks at the
 * holder it waits on at most {@link LIVENESS_MS} after it first saw it or last looked,
 * and once more at the deadline; `tryLock` looks at once (then, while the same holder
 * keeps the lock, once per LIVENESS_MS of tries: see {@link RobustLock.try}). A holder that dies is thus
 * taken over within LIVENESS_MS plus one check (`kill(pid, 0)` and `/proc/<pid>/stat`,
 * tens of µs) of its death, by any process already waiting. Only proof that a process
 * is gone makes it dead (see liveness.ts). A `TimeoutError` therefore means a live
 * process held the lock at the deadline.
 *
 * Every step between two shared-memory operations is named ({@link MUTEX_STEPS}); the
 * step harness (steps.ts) can stop a party there, then resume or kill it. What a party
 * killed at a step leaves behind, besides a dead holder to take over (all pinned down by
 * test/mutex-steps.test.js):
 * - killed while counted (`counted`, `acquired-counted`, `sleep`, `woke`): `waiters`
 *   stays 1 too high for good, so every unlock makes one needless wake call;
 * - killed after a wake reached it (`woke`), or between `unlock.store` and `unlock.wake`:
 *   the sleepers it would have woken find the lock free at the end of their round,
 *   within LIVENESS_MS;
 * - killed between its takeover CAS and its count (`took-over`): the death it took over
 *   from is not counted (its own is, by whoever takes over from it).
 *
 * Process ids identify holders, so the lock cannot tell two threads of one process
 * apart, and a holder in another PID namespace looks dead. Callers that care (the
 * public Mutex) keep their own per-thread record.
 * @internal
 */
import { asyncWaiter, nextTurn } from './async-waiter.js';
import { futexWait, futexWake } from './futex.js';
import { LIVENESS_MS, PID, processAlive } from './liveness.js';
import type { SpinBudget } from './spin.js';
import { stepHook } from './steps.js';

/** Bits of a lock word that hold the holder's process id (Linux pids are below 2^22, macOS pids below 100,000). */
export const LOCK_PID_BITS = 22;
/** Mask of the pid in a lock word. */
export const LOCK_PID_MASK = (1 << LOCK_PID_BITS) - 1;

/** The holder's process id in a lock word (0: free). */
export function lockPid(word: number): number {
  return word & LOCK_PID_MASK;
}

// The tag of this process's next acquisition: 1–1023, in turn from a random start.
let tag = Math.floor(Math.random() * 1023);

/** The lock word of a new acquisition by this process: its pid and the next tag. */
function acquisitionWord(): number {
  tag = tag === 1022 ? 0 : tag + 1;
  return ((tag + 1) << LOCK_PID_BITS) | PID;
}

/**
 * Every named step of the mutex protocol, in protocol order. At each, the party has just
 * done the shared-memory operation the comment names and not yet the next one.
 */
export const MUTEX_STEPS = [
  /** CAS `lock` 0 → me won outside a sleep round: holds it, returns next. */
  'mutex.lock.acquired',
  /** `waiters` += 1 done (a sleep round begins), before the round's CAS. */
  'mutex.lock.counted',
  /** The round's CAS won: holds it, still counted, before `waiters` -= 1. */
  'mutex.lock.acquired-counted',
  /** The round's CAS lost to holder h, before FUTEX_WAIT(lock, h). */
  'mutex.lock.sleep',
  /** FUTEX_WAIT returned (woken, changed or timed out), before `waiters` -= 1. */
  'mutex.lock.woke',
  /** Holder h proved dead, before CAS `lock` h → me. */
  'mutex.lock.takeover',
  /** The takeover CAS won: holds it, before `deaths` += 1. */
  'mutex.lock.took-over',
  /** `deaths` += 1 done: holds it, returns OwnerDeadError next. */
  'mutex.lock.dead-counted',
  /** Holds it, `unlock()` called, before CAS `lock` own pid → 0. */
  'mutex.unlock.store',
  /** The release CAS won (`lock` is 0), before reading `waiters` (and FUTEX_WAKE 1 when non-zero). */
  'mutex.unlock.wake',
] as const;

/** One of {@link MUTEX_STEPS}. */
export type MutexStep = (typeof MUTEX_STEPS)[number];

/** Result of a lock attempt that ran out of time while a live process held the lock. */
export const TIMED_OUT = -1;

/** Event-loop turns `lockAsync` re-tries before it starts sleep rounds. */
const ASYNC_TURNS = 16;

/** Word indexes of one robust lock in its Int32Array. */
export interface LockWords {
  readonly lock: number;
  readonly waiters: number;
  readonly deaths: number;
}

/** Hooks of an async lock: what the caller checks every round. */
export interface AsyncRound {
  /** Called at the start of every round; throws to end the attempt (unmapped, aborted). */
  round(): void;
  /** `false` while another task of this thread holds the lock: then only wait for its unlock. */
  mayTry(): boolean;
  /** Ends a wait early when it aborts (the round hook then throws). */
  signal?: AbortSignal;
}

/**
 * When to look at the holder again: {@link LIVENESS_MS} after it was first seen, then
 * every LIVENESS_MS while it keeps the lock.
 */
class Watch {
  holder = 0;
  next = 0;

  /** Notes that `holder` holds the lock at `now`. */
  see(holder: number, now: number): void {
    if (holder === this.holder) return;
    this.holder = holder;
    this.next = now + LIVENESS_MS;
  }

  /** `true` (and the next look scheduled) when a look at the holder is due. */
  due(now: number): boolean {
    if (now < this.next) return false;
    this.next = now + LIVENESS_MS;
    return true;
  }
}

/** One robust lock: the words, the address the futex sleeps on, the spin budget. */
export class RobustLock {
  readonly #w: Int32Array;
  readonly #lock: number;
  readonly #waiters: number;
  readonly #deaths: number;
  readonly #address: number;
  readonly #spin: SpinBudget;
  /** The holder word a polled try last found alive, and until when (`performance.now()`) that stands. */
  #aliveWord = 0;
  #aliveUntil = 0;

  /** `address` is the absolute address of word `words.lock`. */
  constructor(w: Int32Array, words: LockWords, address: number, spin: SpinBudget) {
    this.#w = w;
    this.#lock = words.lock;
    this.#waiters = words.waiters;
    this.#deaths = words.deaths;
    this.#address = address;
    this.#spin = spin;
  }

  /**
   * One try, never waits: 0 when taken, the pid of a dead holder it took over from, or
   * {@link TIMED_OUT} when a live process (or this one) holds it.
   *
   * `polled`: for calls a program may make in a loop (`tryLock()`, a chunked channel's
   * try-calls). A holder that such a try found alive is not looked at again by these
   * tries for {@link LIVENESS_MS} while it holds the lock with the same word, as a
   * waiting locker looks once per LIVENESS_MS: a look reads /proc (12–13 µs here). The
   * first try that meets a holder, and any try once the bound has passed, looks at once.
   */
  try(polled = false): number {
    const holder = this.#cas('mutex.lock.acquired');
    if (holder === 0) return 0;
    const now = polled ? performance.now() : 0;
    if (polled && holder === this.#aliveWord && now < this.#aliveUntil) return TIMED_OUT;
    if (this.#takeOverIfDead(holder)) return lockPid(holder);
    if (polled) {
      this.#aliveWord = holder;
      this.#aliveUntil = now + LIVENESS_MS;
    }
    return TIMED_OUT;
  }

  /** The process id of the holder now (0: free). */
  holder(): number {
    return lockPid(Atomics.load(this.#w, this.#lock));
  }

  /** `true` when the lock word names this process (held here, by some thread or handle). */
  heldHere(): boolean {
    return lockPid(Atomics.load(this.#w, this.#lock)) === PID;
  }

  /**
   * Takes the lock, blocking this thread: spins a little, then sleeps in the kernel in
   * rounds of at most LIVENESS_MS. `deadline` is a `performance.now()` time. Returns 0,
   * the pid of a dead holder it took over from, or {@link TIMED_OUT}.
   */
  lockSync(deadline = Infinity): number {
    const w = this.#w;
    let holder = this.#cas('mutex.lock.acquired');
    if (holder === 0) return 0;
    const start = performance.now();
    if (start >= deadline) return this.#takeOverIfDead(holder) ? lockPid(holder) : TIMED_OUT;
    // Spin while the holder is likely to let go soon; bounded by the deadline too.
    for (let i = this.#spin.budget; i > 0; i--) {
      if (Atomics.load(w, this.#lock) === 0 && (holder = this.#cas('mutex.lock.acquired')) === 0) return 0;
      if ((i & 1023) === 0 && performance.now() >= deadline) break;
    }
    const watch = new Watch();
    for (;;) {
      const round = this.#sleepRound(watch, deadline);
      if (round === 0) {
        this.#spin.slept(performance.now() - start);
        return 0;
      }
      const got = this.#afterRound(watch, round, deadline);
      if (got !== undefined) {
        this.#spin.slept(performance.now() - start);
        return got;
      }
    }
  }

  /**
   * Takes the lock without blocking the event loop: re-tries on the next few turns, then
   * sleeps through the waiter thread in rounds of at most LIVENESS_MS. Same results as
   * {@link RobustLock.lockSync}; throws what `hooks.round` throws.
   */
  async lockAsync(deadline: number, hooks: AsyncRound): Promise<number> {
    const watch = new Watch();
    for (let turn = 0; ; turn++) {
      hooks.round();
      // `mine`: another task of this thread holds it; wait for its unlock, never take over.
      const mine = !hooks.mayTry();
      let holder: number;
      if (turn < ASYNC_TURNS) {
        holder = mine ? Atomics.load(this.#w, this.#lock) : this.#cas('mutex.lock.acquired');
        if (holder !== 0 && performance.now() < deadline) await nextTurn();
      } else {
        holder = await this.#asyncRound(watch, deadline, mine, hooks.signal);
      }
      if (mine) {
        if (performance.now() >= deadline) return TIMED_OUT;
        continue;
      }
      if (holder === 0) return 0;
      if (hooks.signal?.aborted) continue; // the round hook throws
      watch.see(holder, performance.now());
      const got = this.#afterRound(watch, holder, deadline);
      if (got !== undefined) return got;
    }
  }

  /**
   * Releases the lock (CAS own word → 0) and wakes one sleeper if there is any. Returns
   * `false`, changing nothing, when the lock word no longer names this process: another
   * process took it over (judging this one dead) and must not lose it to this unlock.
   */
  unlock(): boolean {
    const w = this.#w;
    if (stepHook !== undefined) stepHook('mutex.unlock.store');
    const word = Atomics.load(w, this.#lock);
    if (lockPid(word) !== PID || Atomics.compareExchange(w, this.#lock, word, 0) !== word) return false;
    if (stepHook !== undefined) stepHook('mutex.unlock.wake');
    if (Atomics.load(w, this.#waiters) > 0) futexWake(this.#address, 1);
    return true;
  }

  /** CAS `lock` 0 → a new word of mine: 0 when taken (then step `acquired`), otherwise the holder's word. */
  #cas(acquired: MutexStep): number {
    const holder = Atomics.compareExchange(this.#w, this.#lock, 0, acquisitionWord());
    if (holder === 0 && stepHook !== undefined) stepHook(acquired);
    return holder;
  }

  /**
   * One sleep round: count this waiter, CAS, sleep while the word holds the pid the CAS
   * saw (until the next look at it or the deadline), uncount. Returns 0 when the CAS won,
   * otherwise the holder it saw.
   */
  #sleepRound(watch: Watch, deadline: number): number {
    const w = this.#w;
    Atomics.add(w, this.#waiters, 1);
    if (stepHook !== undefined) stepHook('mutex.lock.counted');
    const holder = this.#cas('mutex.lock.acquired-counted');
    if (holder !== 0) {
      const now = performance.now();
      watch.see(holder, now);
      const wait = Math.min(watch.next - now, deadline - now);
      if (wait > 0) {
        if (stepHook !== undefined) stepHook('mutex.lock.sleep');
        futexWait(this.#address, holder, wait);
        if (stepHook !== undefined) stepHook('mutex.lock.woke');
      }
    }
    Atomics.sub(w, this.#waiters, 1);
    return holder;
  }

  /**
   * {@link RobustLock.#sleepRound} through the waiter thread. With `mine` (this thread
   * holds the lock in another task) it does not CAS, and sleeps on its own pid.
   */
  async #asyncRound(watch: Watch, deadline: number, mine: boolean, signal: AbortSignal | undefined): Promise<number> {
    const w = this.#w;
    Atomics.add(w, this.#waiters, 1);
    if (stepHook !== undefined) stepHook('mutex.lock.counted');
    const holder = mine ? Atomics.load(w, this.#lock) : this.#cas('mutex.lock.acquired-counted');
    if (holder !== 0) {
      const now = performance.now();
      if (!mine) watch.see(holder, now);
      const wait = Math.min(mine ? LIVENESS_MS : watch.next - now, deadline - now);
      if (wait > 0) {
        if (stepHook !== undefined) stepHook('mutex.lock.sleep');
        try {
          await asyncWaiter.wait(this.#address, holder, wait, [signal]);
        } catch (err) {
          Atomics.sub(w, this.#waiters, 1);
          throw err;
        }
        if (stepHook !== undefined) stepHook('mutex.lock.woke');
      }
    }
    Atomics.sub(w, this.#waiters, 1);
    return holder;
  }

  /**
   * After a round that saw `holder` (not counted any more): at the deadline one last try
   * with a look at the holder; otherwise a takeover when a look is due and the holder is
   * still the same. Returns the result to give, or `undefined` to go on waiting.
   */
  #afterRound(watch: Watch, holder: number, deadline: number): number | undefined {
    const now = performance.now();
    if (now >= deadline) return this.try();
    if (watch.due(now) && Atomics.load(this.#w, this.#lock) === holder && this.#takeOverIfDead(holder)) return lockPid(holder);
    return undefined;
  }

  /**
   * Takes the holder's place if it is provably dead: CAS the very word whose pid was
   * proved dead → a new word of mine, then `deaths` += 1.
   */
  #takeOverIfDead(holder: number): boolean {
    const pid = lockPid(holder);
    if (pid === PID || pid === 0 || processAlive(pid)) return false;
    const w = this.#w;
    if (stepHook !== undefined) stepHook('mutex.lock.takeover');
    if (Atomics.compareExchange(w, this.#lock, holder, acquisitionWord()) !== holder) return false;
    if (stepHook !== undefined) stepHook('mutex.lock.took-over');
    Atomics.add(w, this.#deaths, 1);
    if (stepHook !== undefined) stepHook('mutex.lock.dead-counted');
    return true;
  }
}
