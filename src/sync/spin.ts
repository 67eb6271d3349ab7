/**
 * Adaptive spinning before sleeping.
 *
 * On a VM with two cores, sleeping is expensive: waking a process whose CPU went idle
 * takes from 0.1 ms to over a millisecond, so a ping-pong in which both sides sleep runs
 * 100–1000× slower than one in which they spin (facts.md calls this bistable). Whether
 * to spin depends on whether the channel is busy, which the length of the last sleep
 * tells: a sleep shorter than {@link BUSY_SLEEP_MS} means messages are flowing, and the
 * budget goes back to its maximum (about a millisecond of spinning); a longer one means
 * the peer was idle, and the budget halves, down to a few hundred loads. An idle
 * receiver therefore costs a little CPU once, then nothing while it sleeps.
 * @internal
 */

/** A sleep shorter than this (ms) means the channel is busy: spin fully next time. */
const BUSY_SLEEP_MS = 10;

/**
 * The longest spin, in loads: a few milliseconds, longer than the slowest wakes seen on
 * a VM, so that a busy pair does not settle into waking each other. Long spins yield the
 * CPU every {@link YIELD_EVERY} loads, which costs nothing when nothing else wants the
 * CPU and hands it over when something does (many processes on few cores).
 */
export const MAX_SPIN = 1_000_000;

/** Loads between two `sched_yield` calls while spinning. */
export const YIELD_EVERY = 4096;

export class SpinBudget {
  /** Loads to try before sleeping. */
  budget: number;
  readonly #min: number;
  readonly #max: number;

  constructor(initial = MAX_SPIN, min = 256, max = MAX_SPIN) {
    this.budget = initial;
    this.#min = min;
    this.#max = max;
  }

  /** The wait had to sleep for `ms` milliseconds before the awaited change came. */
  slept(ms: number): void {
    if (ms < BUSY_SLEEP_MS) this.budget = this.#max;
    else if (this.budget > this.#min) this.budget = Math.max(this.#min, this.budget >>> 1);
  }
}
