/**
 * Waiting for a Broadcast: the sync and async drivers of the ring protocol, for both
 * sides (a publisher waiting for room, a subscriber waiting for a message). Both follow
 * the same steps:
 *
 * 1. **claim** (protocol.ts): done (OK, LAGGED) or closed: return / throw.
 * 2. **liveness**: a claim held up by another party for {@link LIVENESS_MS} makes the
 *    next claim check that party's liveness (a dead publisher's slot is repaired, a dead
 *    subscriber's table entry freed), and again every {@link LIVENESS_MS} after.
 * 3. **deadline**: past it, fail (`timeout: 0` is a single try).
 * 4. **spin** (before the first sleep only) on the word the claim said would change;
 *    async calls then poll event-loop turns, napping first on oversubscribed CPUs
 *    (channel/spin-policy.ts).
 * 5. **sleep**: count this waiter, read the side's futex word, claim once more, then
 *    sleep on that word until the sleep bound's next mark, at most 50 ms
 *    (sync/sleep-bound.ts; 1 ms behind a claim in progress), and uncount. Go to 1.
 *
 * A waker changes the slot (or cursor) before it reads the count; a waiter counts
 * itself before it reads the futex word and claims again: either the waker sees the
 * count (bumps the word and wakes), or the waiter's last claim sees the change.
 * @internal
 */
import { AbortError, TimeoutError } from '../errors.js';
import type { SharedCounts } from '../channel/counts.js';
import { mayNap, NAP_MS, sleepsAtOnce, SpinPolicy, spinUntilChange } from '../channel/spin-policy.js';
import { asyncWaiter, nextTurn } from '../sync/async-waiter.js';
import { blockedSleepMs } from '../sync/blocked-sleep.js';
import { futexWait } from '../sync/futex.js';
import { LIVENESS_MS } from '../sync/liveness.js';
import { sleepBound } from '../sync/sleep-bound.js';
import { BW } from './layout.js';
import { BLOCKED, CLOSED, EMPTY, step, type RingProtocol } from './protocol.js';

/** What a receive's copy returns when the message was overwritten while it was copied: the receive tries again. */
export const AGAIN: unique symbol = Symbol('again');

const SYNC_SPIN_MAX = 2;
const ASYNC_SPIN_MAX = 0.05;
const SPIN_MIN = 0.002;
/** How long (ms) async calls poll on event-loop turns before sleeping. */
const ASYNC_POLL_MS = 1;

/** How long one sleep may last: behind a claim in progress (nobody wakes for those) it grows with the block, see blocked-sleep.ts. */
function sleepMs(r: number, left: number, now: number, blockedSince: number): number {
  return Math.min(left, r === BLOCKED ? blockedSleepMs(now - blockedSince) : sleepBound(now));
}

/** Index in the SharedCounts of each side's waiter count. */
export const SEND_SIDE = 0;
export const RECV_SIDE = 1;
/** The words of a Broadcast's counts, by side. */
export const BROADCAST_COUNTS: readonly number[] = [BW.SEND_WAITERS, BW.RECV_WAITERS];

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}

/** The waiting side of one handle. `attempt` runs a claim and returns its outcome. */
export class RingWaits {
  readonly #p: RingProtocol;
  readonly #counts: SharedCounts;
  readonly #gone: () => Error | undefined;
  readonly #where: () => string;
  readonly #released: AbortSignal;
  readonly #spin = [new SpinPolicy(SYNC_SPIN_MAX, SPIN_MIN), new SpinPolicy(SYNC_SPIN_MAX, SPIN_MIN)];
  readonly #asyncSpin = [new SpinPolicy(ASYNC_SPIN_MAX, SPIN_MIN), new SpinPolicy(ASYNC_SPIN_MAX, SPIN_MIN)];

  /** `gone()`: the error for a handle let go of meanwhile (released, or a subscriber closed), or undefined. */
  constructor(p: RingProtocol, counts: SharedCounts, where: () => string, gone: () => Error | undefined, released: AbortSignal) {
    this.#p = p;
    this.#counts = counts;
    this.#where = where;
    this.#gone = gone;
    this.#released = released;
  }

  /** The futex word a side sleeps on. */
  #word(side: number): number {
    return side === SEND_SIDE ? BW.PROGRESS : BW.PUBLISHED;
  }

  /**
   * Runs `attempt` until it returns an outcome other than EMPTY / BLOCKED, blocking this
   * thread in between. `closed` makes the error a CLOSED outcome throws.
   */
  sync(side: number, attempt: () => number, deadline: number, closed: () => Error, what: string): number {
    let r = attempt();
    if (r !== EMPTY && r !== BLOCKED) return this.#settle(r, closed);
    const p = this.#p;
    const policy = this.#spin[side]!;
    let heldSince = performance.now();
    let sleptAt = 0;
    let blockedSince = 0;
    for (;;) {
      const now = performance.now();
      heldSince = this.#liveness(heldSince, now);
      const left = deadline - now;
      if (left <= 0) throw new TimeoutError(`${what} on ${this.#where()} timed out`);
      if (sleptAt === 0 && spinUntilChange(p.w, p.watchWord, p.watchSeen, 0, p.watchWord, p.watchSeen, BW.CLOSED, false, now, policy.budget(now, left), policy)) {
        r = attempt();
      } else {
        if (sleptAt === 0) sleptAt = now;
        r = this.#sleep(side, attempt, (found) => {
          blockedSince = found === BLOCKED ? blockedSince || now : 0;
          return sleepMs(found, left, now, blockedSince);
        });
      }
      if (r !== EMPTY && r !== BLOCKED) {
        if (sleptAt !== 0) policy.slept(performance.now() - sleptAt);
        return this.#settle(r, closed);
      }
    }
  }

  /**
   * Async version of {@link RingWaits.sync}: never blocks the event loop longer than one
   * short spin. `done(outcome)` runs in the same tick as the successful claim (nothing,
   * not even `release()`, comes between a claim and its copy); when it returns
   * {@link AGAIN} (a message overwritten while it was copied), the wait starts over. Not
   * an async function: a claim that succeeds at once resolves without an async
   * function's frame and its extra microtask ticks.
   */
  async<T>(side: number, attempt: () => number, deadline: number, signal: AbortSignal | undefined, closed: () => Error, what: string, done: (outcome: number) => T | typeof AGAIN): Promise<T> {
    try {
      checkAborted(signal);
      for (;;) {
        const r = attempt();
        if (r === EMPTY || r === BLOCKED) return this.#asyncSlow(side, attempt, deadline, signal, closed, what, done);
        const got = done(this.#settle(r, closed));
        if (got !== AGAIN) return Promise.resolve(got);
      }
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The rest of {@link RingWaits.async} once its first claim found nothing. */
  async #asyncSlow<T>(side: number, attempt: () => number, deadline: number, signal: AbortSignal | undefined, closed: () => Error, what: string, done: (outcome: number) => T | typeof AGAIN): Promise<T> {
    /** `done` for a successful claim; starts over on AGAIN. */
    const finish = (r: number): T | Promise<T> => {
      const got = done(this.#settle(r, closed));
      return got === AGAIN ? this.async(side, attempt, deadline, signal, closed, what, done) : got;
    };
    const p = this.#p;
    const policy = this.#asyncSpin[side]!;
    let r: number;
    let heldSince = performance.now();
    const pollUntil = heldSince + ASYNC_POLL_MS;
    let spun = false;
    /** This event-loop turn spun already. */
    let spunThisTurn = false;
    let blockedSince = 0;
    for (;;) {
      const now = performance.now();
      heldSince = this.#liveness(heldSince, now);
      const left = deadline - now;
      if (left <= 0) throw new TimeoutError(`${what} on ${this.#where()} timed out`);
      if (!spun) {
        spun = spunThisTurn = true;
        if (spinUntilChange(p.w, p.watchWord, p.watchSeen, 0, p.watchWord, p.watchSeen, BW.CLOSED, false, now, policy.budget(now, left), policy)) {
          r = attempt();
          if (r !== EMPTY && r !== BLOCKED) return finish(r);
          continue;
        }
        policy.look(now);
      }
      // On oversubscribed CPUs a wait sleeps at once where a wake-up is cheap, and a poll
      // turn naps first where it is not, but not the turn that spun (channel/spin-policy.ts).
      if (now < pollUntil && !sleepsAtOnce(policy, now)) {
        if (!spunThisTurn && mayNap(policy, now)) {
          r = this.#sleep(side, attempt, () => Math.min(left, NAP_MS));
          policy.napped(now, performance.now());
          if (r !== EMPTY && r !== BLOCKED) return finish(r);
        }
        spunThisTurn = false;
        await nextTurn();
      } else {
        this.#counts.raise(side);
        try {
          const seen = Atomics.load(p.w, this.#word(side));
          r = attempt();
          if (r !== EMPTY && r !== BLOCKED) return finish(r);
          step('broadcast.wait.sleep');
          blockedSince = r === BLOCKED ? blockedSince || now : 0;
          await asyncWaiter.wait(p.base + this.#word(side) * 4, seen, sleepMs(r, left, now, blockedSince), [signal, this.#released]);
        } finally {
          this.#counts.lower(side);
        }
      }
      const gone = this.#gone();
      if (gone !== undefined) throw gone;
      checkAborted(signal);
      r = attempt();
      if (r !== EMPTY && r !== BLOCKED) return finish(r);
    }
  }

  /**
   * Step 5 once: count this waiter, read the side's futex word, claim once more, sleep
   * on the word for `ms(outcome)` ms if that claim was EMPTY or BLOCKED, uncount, claim.
   * Returns the last claim's outcome.
   */
  #sleep(side: number, attempt: () => number, ms: (found: number) => number): number {
    const p = this.#p;
    this.#counts.raise(side);
    try {
      const seen = Atomics.load(p.w, this.#word(side));
      const r = attempt();
      if (r !== EMPTY && r !== BLOCKED) return r;
      step('broadcast.wait.sleep');
      futexWait(p.base + this.#word(side) * 4, seen, ms(r));
      return attempt();
    } finally {
      this.#counts.lower(side);
    }
  }

  /** Held up for the liveness bound: the next claim checks who holds it up. Returns the new start of the bound. */
  #liveness(heldSince: number, now: number): number {
    const due = now - heldSince >= LIVENESS_MS;
    this.#p.suspect = due; // for the claims of this round only: a live party is looked at once per bound
    return due ? now : heldSince;
  }

  #settle(r: number, closed: () => Error): number {
    this.#p.suspect = false;
    if (r === CLOSED) throw closed();
    return r;
  }
}
