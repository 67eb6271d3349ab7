/**
 * Adaptive spinning before sleeping.
 *
 * On two cores a fixed short spin often falls into the slow sleeping path (a futex
 * sleep and wake costs ~8 µs a round trip), while a long spin wastes CPU when the peer
 * is idle. What decides is how long the sleep that followed a failed spin lasted: if the
 * awaited change came soon after (the peer was busy answering), a longer spin would have
 * caught it, so the budget doubles; if it came late (the peer was idle), the budget
 * halves. A busy ping-pong therefore stays in the spinning regime, and an idle receiver
 * spins only briefly before each long sleep.
 * @internal
 */

/** A sleep shorter than this (ms) means the spin gave up too early. */
const SHORT_SLEEP_MS = 0.2;

export class SpinBudget {
  /** Loads to try before sleeping. */
  budget: number;
  readonly #min: number;
  readonly #max: number;

  constructor(initial = 20_000, min = 256, max = 200_000) {
    this.budget = initial;
    this.#min = min;
    this.#max = max;
  }

  /** The wait ended while spinning. */
  spun(): void {}

  /** The wait had to sleep for `ms` milliseconds before the awaited change came. */
  slept(ms: number): void {
    if (ms < SHORT_SLEEP_MS) {
      if (this.budget < this.#max) this.budget = Math.min(this.#max, this.budget * 2);
    } else if (this.budget > this.#min) {
      this.budget = Math.max(this.#min, this.budget >>> 1);
    }
  }
}
