/**
 * How long a waiting party spins before it sleeps in the kernel, chosen from what it
 * measures.
 *
 * Spinning pays when the awaited change comes from a peer that runs on another CPU at the
 * same moment: it is seen within a microsecond, where a futex sleep and wake costs
 * 5–50 µs here (up to a millisecond when the peer's CPU had gone idle). It costs when
 * the peer is not running: a spinner then burns a CPU that the peer (or anyone) may be
 * waiting for.
 *
 * So a spin is bounded in time, not in loads, and it looks at two things:
 * - **did spinning pay recently?** A spin that saw the change, or a sleep that ended
 *   soon after the spin gave up, sets the limit to {@link SpinPolicy.max}; a long sleep
 *   halves it, down to `min`. An idle peer so costs a little CPU once, then nothing.
 * - **is the CPU taken?** After {@link LOOK_AFTER_MS} of spinning, and every
 *   {@link LOOK_EVERY_MS} after that, the spinner looks at the run queue
 *   (sync/run-queue.ts): with more runnable threads than CPUs, the peer may be queued
 *   for the very CPU this spin holds, so it stops and sleeps. A peer that runs answers
 *   well within the first {@link LOOK_AFTER_MS}, so on an idle machine the look is rare
 *   and a pair of busy parties keeps spinning; on a busy one, a wait that the peer cannot
 *   answer at once gives its CPU away after {@link LOOK_AFTER_MS}. While the CPUs stay
 *   oversubscribed, spins that keep failing get shorter ({@link FAILS_TO_STOP}: 20 µs)
 *   and then stop ({@link FAILS_TO_SLEEP}), until one spin pays again.
 *
 * Async waits spin at most 50 µs (they hold the event loop), too short to reach the first
 * look, so one that gave up looks at the run queue then ({@link SpinPolicy.look}), and
 * polls event-loop turns (waiting.ts). On CPUs that are not oversubscribed a poll turn
 * just claims again. On oversubscribed ones where spins keep failing, from the turn
 * after the spin on, it first naps: it sleeps on the futex word for {@link NAP_MS} (plus
 * the kernel's timer slack) unless woken sooner, one nap per event-loop turn in a thread
 * ({@link mayNap}). A poll that only claims keeps its process runnable, and when the peer is queued for the same CPU
 * the peer runs only when the poller's time slice ends: with two busy loops per CPU, one
 * run in three held async round trips at 3–7 ms. A nap hands the CPU to the peer, whose
 * publish wakes the napper directly: 50–90 µs per round trip in those runs, 5–20 µs in
 * the others (the two parties on two CPUs, where the spin pays). Sleeping through the
 * waiter thread instead took 65–330 µs: three thread wake-ups per message, not one.
 * Where a sleep wakes the main thread directly (io_uring, sync/uring-waits.ts), a nap
 * that ends late ({@link NAP_SLOW_MS}: the peer was queued, not running alongside) makes
 * the waits of that policy sleep at once for a while ({@link sleepsAtOnce}): with both
 * parties on one busy CPU that measured 42–46 µs per round trip against 71–77 µs napping
 * (`process.send`: 45–52 µs), while parties on two CPUs keep their 5–7 µs naps.
 *
 * The spinner does not call `sched_yield`: under the kernel's EEVDF scheduler a yield
 * hands the rest of the time slice to any other task, which stalls a running pair for
 * milliseconds; sleeping is the way to give the CPU to the peer.
 * @internal
 */
import { asyncWaiter } from '../sync/async-waiter.js';
import { cpusOversubscribed } from '../sync/run-queue.js';

/** Spin this long (ms) before the first look at the run queue. */
export const LOOK_AFTER_MS = 0.05;
/** Then look again this often (ms) while the spin goes on. */
export const LOOK_EVERY_MS = 0.25;
/** How long "the CPUs are oversubscribed" holds after a look said so (ms). */
export const CONTENDED_MS = 20;
/** An async wait's look at the run queue is skipped when the policy looked less than this long ago (ms). */
export const LOOK_GAP_MS = 1;
/** Failed spins in a row, on oversubscribed CPUs, after which waits spin only {@link SHORT_SPIN_MS}. */
export const FAILS_TO_STOP = 3;
/** Failed spins in a row, on oversubscribed CPUs, after which waits do not spin at all. */
export const FAILS_TO_SLEEP = 8;
/** While waits sleep soon, one full spin tries again this often (ms). */
export const PROBE_EVERY_MS = 5;
/**
 * How long (ms) waits spin while they sleep soon: a peer running on another CPU answers a
 * ping-pong within this, even one that first wakes from a futex sleep (3 µs here let both
 * parties of a loaded ping-pong sleep on every message for whole runs: 14 µs per round
 * trip against 4 µs); a peer queued for this CPU costs no more than this.
 */
export const SHORT_SPIN_MS = 0.02;
/**
 * How long (ms) an async wait naps between two event-loop turns while the CPUs are
 * oversubscribed, unless woken sooner: as long as an async spin may hold the event loop.
 * The kernel adds its timer slack (50 µs by default) and the wake-up: a nap that nobody
 * ends holds the event loop about 0.13 ms (median measured here).
 */
export const NAP_MS = 0.05;

/**
 * A nap that lasts longer than this (ms) before the change comes (or that times out) says
 * the peer was not running alongside but queued for a CPU, likely this one: there a nap
 * costs more than a sleep through io_uring (measured with two busy loops per CPU and
 * both parties on one: 71–77 µs per round trip napping, 42–46 µs sleeping at once,
 * 45–52 µs for `process.send`), while with the parties on two CPUs naps end within
 * microseconds (5–7 µs per round trip).
 */
export const NAP_SLOW_MS = 0.02;
/** After a slow nap, waits sleep at once (where that is cheap) this long (ms) before a nap probes again. */
export const NAPS_SLOW_FOR_MS = 10;

/** An async wait of this thread napped in this event-loop turn already. */
let nappedThisTurn = false;
const turnEnded = (): void => {
  nappedThisTurn = false;
};

/**
 * Whether an async wait may nap now: the CPUs were seen oversubscribed lately (by
 * `policy`) and its spins kept failing there ({@link SpinPolicy.failing}: a run queue
 * that only looks busy, such as V8's compiler threads in a new process, does not make a
 * pair whose spins pay nap), and no other wait of this thread napped in this event-loop
 * turn. However many async waits are pending, a turn holds the event loop for one nap
 * at most. `spins`: false for a wait that never spins (the Unbuffered hand-over), which
 * the run queue alone decides for.
 */
export function mayNap(policy: SpinPolicy, now: number, spins = true): boolean {
  if (nappedThisTurn || !policy.contended(now) || (spins && !policy.failing())) return false;
  nappedThisTurn = true;
  setImmediate(turnEnded);
  return true;
}

/**
 * Whether an async wait should sleep in the kernel now instead of polling event-loop
 * turns: the CPUs were seen oversubscribed lately, its spins kept failing there (`spins`
 * false: a wait that never spins, which the run queue alone decides for), and a wake-up
 * reaches this thread directly (io_uring, sync/async-waiter.ts). Then a sleep costs one
 * thread wake-up, as a socket read does, and a poll only keeps this process on a CPU the
 * peer may be queued for. Through a waiter thread a wake-up costs three, and waits nap
 * between turns instead ({@link mayNap}).
 */
export function sleepsAtOnce(policy: SpinPolicy, now: number, spins = true): boolean {
  return policy.contended(now) && (!spins || policy.failing()) && policy.napsSlow(now) && asyncWaiter.direct;
}

/** Loads between two looks at the clock while spinning. */
export const CLOCK_EVERY = 64;
/** Loads between two looks at the position and closed words while spinning. */
const OTHERS_EVERY = 8;

export class SpinPolicy {
  /** Current spin limit, in ms. */
  limit: number;
  readonly max: number;
  readonly min: number;
  #contendedUntil = 0;
  #lookAgainAt = 0;
  #napsSlowUntil = 0;
  #fails = 0;
  #probeAt = 0;

  constructor(max: number, min: number) {
    this.max = max;
    this.min = min;
    this.limit = max;
  }

  /** The spin limit for a wait starting at `now`, at most `left` ms. */
  budget(now: number, left: number): number {
    let limit = this.limit;
    if (now < this.#contendedUntil) {
      if (this.#fails >= FAILS_TO_SLEEP && now < this.#probeAt) return 0;
      if (this.#fails >= FAILS_TO_STOP && now < this.#probeAt) limit = SHORT_SPIN_MS;
      else limit = Math.min(limit, LOOK_AFTER_MS);
    }
    return limit < left ? limit : left;
  }

  /** The spin saw the change. */
  paid(): void {
    this.limit = this.max;
    this.#fails = 0;
  }

  /**
   * A spin gave up at `now`. While the CPUs are oversubscribed, {@link FAILS_TO_STOP}
   * in a row mean the peer is not running alongside (it may be queued for this very CPU):
   * waits spin only {@link SHORT_SPIN_MS} before they sleep, until a spin pays again; after
   * {@link FAILS_TO_SLEEP} they sleep at once (each spin a peer does not answer costs CPU
   * time the scheduler then holds against this process: measured with two busy loops per
   * CPU, 64–68 µs per round trip with 20 µs spins against 14–22 µs sleeping at once). One
   * full spin every {@link PROBE_EVERY_MS} looks whether that changed.
   */
  failed(now: number): void {
    if (now >= this.#contendedUntil) return;
    if (++this.#fails >= FAILS_TO_STOP) this.#probeAt = now + PROBE_EVERY_MS;
  }

  /** The wait slept for `ms` before the change came. */
  slept(ms: number): void {
    // A change that came soon after the spin gave up: spinning a little longer would
    // have paid. Otherwise the peer was idle: spin less.
    if (ms <= this.max / 4) this.limit = this.max;
    else this.limit = Math.max(this.min, this.limit / 2);
  }

  /** A look at the run queue at `now` found the CPUs oversubscribed. */
  oversubscribed(now: number): void {
    this.#contendedUntil = now + CONTENDED_MS;
  }

  /**
   * An async spin, too short to look at the run queue itself, gave up at `now`: look at it
   * now (a read of /proc/loadavg, about a microsecond), unless a look of this policy did
   * less than {@link LOOK_GAP_MS} ago (a wait that sleeps at once on every message would
   * otherwise pay it per message; what a look finds holds for {@link CONTENDED_MS}).
   */
  look(now: number): void {
    if (now < this.#lookAgainAt) return;
    this.#lookAgainAt = now + LOOK_GAP_MS;
    if (cpusOversubscribed()) this.oversubscribed(now);
  }

  /** Spins kept failing on oversubscribed CPUs lately ({@link FAILS_TO_STOP} in a row). */
  failing(): boolean {
    return this.#fails >= FAILS_TO_STOP;
  }

  /** A nap (started at `start`) ended at `end`, with or without the change. */
  napped(start: number, end: number): void {
    this.#napsSlowUntil = end - start > NAP_SLOW_MS ? end + NAPS_SLOW_FOR_MS : 0;
  }

  /** A nap was slow lately ({@link NAP_SLOW_MS}). */
  napsSlow(now: number): boolean {
    return now < this.#napsSlowUntil;
  }

  /** `true` while the CPUs were recently seen oversubscribed. */
  contended(now: number): boolean {
    return now < this.#contendedUntil;
  }
}

/**
 * Spins until word `word` of `w` settles on a value other than `seen`, word `posWord`
 * differs from `pos`, or (with `closedMatters`) word `closedWord` is non-zero, for at
 * most `limitMs`. A value with a bit of `busyMask` set is not settled: it is another
 * party's step in progress (a slot being written or read), and spinning on through it
 * keeps the spinner off that cache line until the party is done. Returns true when
 * something changed; tells `policy` what it saw of the run queue.
 */
export function spinUntilChange(
  w: Int32Array,
  word: number,
  seen: number,
  busyMask: number,
  posWord: number,
  pos: number,
  closedWord: number,
  closedMatters: boolean,
  start: number,
  limitMs: number,
  policy: SpinPolicy,
): boolean {
  if (limitMs <= 0) return false;
  let lookAt = start + LOOK_AFTER_MS;
  for (let i = 1; ; i++) {
    const v = Atomics.load(w, word);
    if ((v !== seen && (v & busyMask) === 0) || (i % OTHERS_EVERY === 0 && (Atomics.load(w, posWord) !== pos || (closedMatters && Atomics.load(w, closedWord) !== 0)))) {
      policy.paid();
      return true;
    }
    if (i % CLOCK_EVERY === 0) {
      const now = performance.now();
      if (now - start >= limitMs) {
        policy.failed(now);
        return false;
      }
      if (now >= lookAt) {
        if (cpusOversubscribed()) {
          policy.oversubscribed(now);
          policy.failed(now);
          return false;
        }
        lookAt = now + LOOK_EVERY_MS;
      }
    }
  }
}
