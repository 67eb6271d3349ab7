/**
 * How long a waiting party spins before it sleeps in the kernel, chosen from what
 * spinning did recently.
 *
 * Spinning pays when the awaited change comes from a peer that runs on another core at
 * the same moment: it is seen in well under a microsecond, where a futex sleep and wake
 * costs 5–50 µs here (up to a millisecond when the peer's core had gone idle). It
 * costs when the peer is not running: on a machine whose cores are busy, a spinner
 * burns the time slice the peer needs to produce what it waits for.
 *
 * So the limit is a time, not a number of loads, and it adapts to three observations:
 * - **spinning paid** (the change came while spinning, or soon after the spin gave up):
 *   spin up to {@link SpinPolicy.max} next time;
 * - **spinning did not pay** (the wait slept for long): halve the limit, down to `min`;
 * - **the spin was preempted** (two looks at the clock, a few hundred loads apart, are
 *   more than {@link PREEMPTED_MS} apart, or a `sched_yield` gave the CPU away that
 *   long: another task wanted this CPU): twice within {@link CONTENDED_MS}, the cores
 *   are busy; spin only `min` for the next {@link CONTENDED_MS}, then try again.
 *
 * While it spins, a waiter also offers its CPU every {@link YIELD_EVERY_MS}: a peer
 * queued behind it on the same core runs at once.
 * @internal
 */
import { sched_yield } from '../sys/libc.js';

/**
 * A gap this long between two looks at the clock means the spinner lost its CPU to
 * another task (a scheduler slice is milliseconds; a VM's own interruptions are mostly
 * shorter, and should not count).
 */
export const PREEMPTED_MS = 1;
/** How long "the cores are busy" holds after a preempted spin. */
export const CONTENDED_MS = 50;
/** Loads between two looks at the clock while spinning. */
export const CLOCK_EVERY = 128;
/**
 * A spinner offers its CPU (`sched_yield`) this often (ms). On an idle machine the call
 * returns at once; when the peer waits in this CPU's run queue behind the spinner (two
 * processes sharing a core), it lets the peer run now instead of at the end of the slice.
 */
export const YIELD_EVERY_MS = 0.03;

export class SpinPolicy {
  /** Current spin limit, in ms. */
  limit: number;
  readonly max: number;
  readonly min: number;
  #contendedUntil = 0;
  #lastPreempted = -Infinity;

  constructor(max: number, min: number) {
    this.max = max;
    this.min = min;
    this.limit = max;
  }

  /** The spin limit for a wait starting at `now`, at most `left` ms. */
  budget(now: number, left: number): number {
    const limit = now < this.#contendedUntil ? this.min : this.limit;
    return limit < left ? limit : left;
  }

  /** The spin saw the change. */
  paid(): void {
    this.limit = this.max;
  }

  /** The wait slept for `ms` before the change came. */
  slept(ms: number): void {
    // A change that came soon after the spin gave up: spinning a little longer would
    // have paid. Otherwise the peer was idle: spin less.
    if (ms <= this.max / 4) this.limit = this.max;
    else this.limit = Math.max(this.min, this.limit / 2);
  }

  /**
   * The spinner lost its CPU at `now`. Twice within {@link CONTENDED_MS}: the cores are
   * busy (once may be a stray interruption, which a VM sees now and then).
   */
  preempted(now: number): void {
    if (now - this.#lastPreempted < CONTENDED_MS) this.#contendedUntil = now + CONTENDED_MS;
    this.#lastPreempted = now;
  }

  /** `true` while the cores were recently seen busy. */
  contended(now: number): boolean {
    return now < this.#contendedUntil;
  }
}

/**
 * Spins until word `word` of `w` differs from `seen`, word `posWord` differs from `pos`,
 * or (with `closedMatters`) word `closedWord` is non-zero, for at most `limitMs`.
 * Returns true when something changed; reports preemption to `policy`.
 */
export function spinUntilChange(
  w: Int32Array,
  word: number,
  seen: number,
  posWord: number,
  pos: number,
  closedWord: number,
  closedMatters: boolean,
  start: number,
  limitMs: number,
  policy: SpinPolicy,
): boolean {
  if (limitMs <= 0) return false;
  let last = start;
  let yielded = start;
  for (let i = 1; ; i++) {
    if (Atomics.load(w, word) !== seen || Atomics.load(w, posWord) !== pos || (closedMatters && Atomics.load(w, closedWord) !== 0)) {
      policy.paid();
      return true;
    }
    if (i % CLOCK_EVERY === 0) {
      let now = performance.now();
      if (now - last > PREEMPTED_MS) policy.preempted(now);
      if (now - start >= limitMs) return false;
      if (now - yielded >= YIELD_EVERY_MS) {
        sched_yield();
        const after = performance.now();
        if (after - now > PREEMPTED_MS) policy.preempted(after);
        yielded = now = after;
      }
      last = now;
    }
  }
}
