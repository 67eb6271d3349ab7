/**
 * One wait's bookkeeping in the channel drivers (waiting.ts): the liveness clock (when
 * the party blocking a claim is looked at) and how long the next sleep may last.
 * @internal
 */
import { blockedSleepMs } from '../sync/blocked-sleep.js';
import { LIVENESS_MS } from '../sync/liveness.js';
import { sleepBound } from '../sync/sleep-bound.js';
import { CLAIM_BLOCKED } from './slot-protocol.js';

/** One wait's bookkeeping. */
export class WaitState {
  /** When the claim was first seen blocked by another party (0: not blocked). */
  blockedSince = 0;
  /** When the blocking party's liveness was last looked at (or the block began). */
  lookedAt = 0;
  /** The next claim looks at the liveness of whoever blocks it. */
  look = false;
  /** When the wait first slept (0: not yet). */
  sleptAt = 0;
  /** The sequence word as read before the last claim. */
  seen = 0;
  /** When the last sleep on a full (send) or empty (receive) channel began, or 0. */
  longSleepAt = 0;
  /** How long that sleep was planned to last (ms). */
  longSleepMs = 0;

  reset(): this {
    this.blockedSince = 0;
    this.lookedAt = 0;
    this.look = false;
    this.sleptAt = 0;
    this.longSleepAt = 0;
    return this;
  }

  /**
   * The liveness clock, after an attempt that found `result` at `now`: blocked by
   * another party for {@link LIVENESS_MS} since the block began or since the last look,
   * the next claim looks at that party.
   */
  clock(result: number, now: number): void {
    if (result !== CLAIM_BLOCKED) {
      this.blockedSince = 0;
    } else if (this.blockedSince === 0) {
      this.blockedSince = this.lookedAt = now;
    } else if (now - this.lookedAt >= LIVENESS_MS) {
      this.lookedAt = now;
      this.look = true;
    }
  }

  /**
   * How long the sleep that starts at `now` after a claim found `result` may last: behind
   * a claim in progress it grows with the block (blocked-sleep.ts); otherwise up to the
   * next mark of the sleep bound (sleep-bound.ts), which {@link WaitState.ranOut} then
   * measures against.
   */
  sleepMs(result: number, left: number, now: number): number {
    if (result === CLAIM_BLOCKED) return Math.min(left, blockedSleepMs(this.blockedSince === 0 ? 0 : now - this.blockedSince));
    const ms = Math.min(left, sleepBound(now));
    this.longSleepAt = now;
    this.longSleepMs = ms;
    return ms;
  }

  /**
   * Whether the last sleep on a full or empty channel ran out at `now` (about its planned
   * length passed: nobody signalled), and forgets it. A wait woken early by a signal
   * takes this for a run-out only when the sleep was short, which costs one extra look.
   */
  ranOut(now: number): boolean {
    const ran = this.longSleepAt !== 0 && now - this.longSleepAt >= this.longSleepMs * 0.9;
    this.longSleepAt = 0;
    return ran;
  }
}
