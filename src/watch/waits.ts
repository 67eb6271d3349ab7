/**
 * Waiting for a Watch's `version` to change: a blocking wait that sleeps in the kernel on
 * the version word, and an async one that hands the word to the process's waiter thread
 * (sync/async-waiter.ts), so the event loop never blocks. Writers wake sleepers only when
 * `waiters` is non-zero (see the step `watch.wait.sleep`).
 * @internal
 */
import { AbortError, RegionUnmappedError, TimeoutError } from '../errors.js';
import type { SharedCounts } from '../channel/counts.js';
import { asyncWaiter } from '../sync/async-waiter.js';
import { futexWait } from '../sync/futex.js';
import { sleepBound } from '../sync/sleep-bound.js';
import { WW } from './layout.js';
import { step } from './steps.js';


/** The waits of one Watch handle. */
export class WatchWaits {
  readonly #w: Int32Array;
  readonly #versionAddress: number;
  readonly #counts: SharedCounts;
  readonly #released: AbortSignal;
  readonly #mapped: () => boolean;
  readonly #where: () => string;

  /**
   * @param w the Watch's words; `versionAddress` the address of its version word.
   * @param counts this handle's raises of `waiters` by async waits (given back on release).
   * @param released aborts when the handle is released; `mapped` says whether it still is.
   */
  constructor(w: Int32Array, versionAddress: number, counts: SharedCounts, released: AbortSignal, mapped: () => boolean, where: () => string) {
    this.#w = w;
    this.#versionAddress = versionAddress;
    this.#counts = counts;
    this.#released = released;
    this.#mapped = mapped;
    this.#where = where;
  }

  /** Blocks until `version` differs from `since` (an int32), or the deadline passes. */
  sync(since: number, deadline: number): number {
    const w = this.#w;
    for (;;) {
      const v = Atomics.load(w, WW.VERSION);
      if (v !== since) return v >>> 0;
      const now = performance.now();
      const left = deadline - now;
      if (left <= 0) throw this.#timeout(since);
      Atomics.add(w, WW.WAITERS, 1);
      try {
        if (Atomics.load(w, WW.VERSION) !== since) continue;
        step('watch.wait.sleep');
        futexWait(this.#versionAddress, since, Math.min(left, sleepBound(now)));
      } finally {
        Atomics.sub(w, WW.WAITERS, 1);
      }
    }
  }

  /** Resolves once `version` differs from `since`; rejects at the deadline, on abort, or on release. */
  async async(since: number, deadline: number, signal: AbortSignal | undefined): Promise<number> {
    const w = this.#w;
    for (;;) {
      if (!this.#mapped()) throw new RegionUnmappedError(`${this.#where()} was released`);
      const v = Atomics.load(w, WW.VERSION);
      if (v !== since) return v >>> 0;
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      const now = performance.now();
      const left = deadline - now;
      if (left <= 0) throw this.#timeout(since);
      this.#counts.raise(0);
      try {
        if (Atomics.load(w, WW.VERSION) !== since) continue;
        step('watch.wait.sleep');
        await asyncWaiter.wait(this.#versionAddress, since, Math.min(left, sleepBound(now)), [signal, this.#released]);
      } finally {
        this.#counts.lower(0); // unless a release meanwhile gave it back already
      }
    }
  }

  #timeout(since: number): TimeoutError {
    return new TimeoutError(`waiting for a change of ${this.#where()} from version ${since >>> 0} timed out`);
  }
}
