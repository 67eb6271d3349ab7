/**
 * Waiting for a channel: the sync and async drivers of the slot protocol. Both follow
 * the same steps, written once in {@link Waits}' helpers:
 *
 * 1. **claim** (slot-protocol.ts); claimed or closed: done.
 * 2. **liveness**: a claim blocked by another party for {@link LIVENESS_MS} makes the
 *    next claim check that party's liveness (and repair its slot if it is gone); a
 *    live one is looked at again after another bound, never on every claim.
 * 3. **deadline**: past it, fail (`timeout: 0` is a single try).
 * 4. **spin** (before the first sleep only) on the word the claim said would change,
 *    for the time {@link SpinPolicy} allows; async calls then poll a few event-loop
 *    turns, and on oversubscribed CPUs nap on the sequence word first, from the turn after
 *    the spin on (spin-policy.ts).
 * 5. **sleep**: count this waiter, read the sequence word, claim once more, then sleep
 *    on the sequence word until the next mark of the sleep bound, at most
 *    {@link SLEEP_MS} (so a party that dies while everyone sleeps is noticed, and a
 *    thread's waits wake together: sleep-bound.ts; behind a claim in progress, which
 *    nobody signals, see blocked-sleep.ts), and uncount. Go to 1.
 *
 * A waker changes the slot before it reads the count; a waiter counts itself before it
 * reads the sequence word and claims again: either the waker sees the count (and bumps
 * the sequence word and wakes), or the waiter's last claim sees the change.
 * @internal
 */
import { AbortError, ChannelClosedError, ClosedWriteError, RegionUnmappedError, TimeoutError } from '../errors.js';
import { asyncWaiter, nextTurn } from '../sync/async-waiter.js';
import { futexWait } from '../sync/futex.js';
import { LIVENESS_MS } from '../sync/liveness.js';
import { sleepBound, SLEEP_MS } from '../sync/sleep-bound.js';
import { lookingAt, TryClock } from '../sync/try-clock.js';
import { stepHook } from '../sync/steps.js';
import { RECV_ACTIVE, RECV_WAITERS, SEND_WAITERS, type SharedCounts } from './counts.js';
import { BUSY_PHASE_BIT as BUSY, W } from './layout.js';
import { CLAIM_BLOCKED, CLAIM_CLOSED, CLAIM_FULL, type SlotProtocol } from './slot-protocol.js';
import { mayNap, NAP_MS, sleepsAtOnce, SpinPolicy, spinUntilChange } from './spin-policy.js';
import { WaitState } from './wait-state.js';

/**
 * What a claim with a `stop` test returns when the test said stop (chunks.ts: the message
 * being reassembled will not continue). Only after a claim failed; never when one succeeded.
 */
export const CLAIM_STOPPED = -4;

/** Sync calls spin at most this long (ms) before sleeping. */
const SYNC_SPIN_MAX = 2;
/** Async calls hold the event loop at most this long (ms) spinning. */
const ASYNC_SPIN_MAX = 0.05;
/** The shortest spin that long sleeps halve the limit down to (ms). */
const SPIN_MIN = 0.002;
/** How long (ms) async calls look again on each event-loop turn before sleeping: it adapts between these. */
const ASYNC_POLL_MIN = 0.05;
const ASYNC_POLL_MAX = 2;

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}

/** The futex word waiters of one side sleep on. */
function seqWordOf(send: boolean): number {
  return send ? W.NOT_FULL_SEQ : W.NOT_EMPTY_SEQ;
}

const isBlocked = (r: number): boolean => r === CLAIM_BLOCKED;

/** The waiting side of one channel handle. */
export class Waits {
  readonly #p: SlotProtocol;
  readonly #counts: SharedCounts;
  readonly #where: () => string;
  readonly #mapped: () => boolean;
  readonly #released: AbortSignal;
  readonly #sendSpin = new SpinPolicy(SYNC_SPIN_MAX, SPIN_MIN);
  readonly #recvSpin = new SpinPolicy(SYNC_SPIN_MAX, SPIN_MIN);
  readonly #asyncSendSpin = new SpinPolicy(ASYNC_SPIN_MAX, SPIN_MIN);
  readonly #asyncRecvSpin = new SpinPolicy(ASYNC_SPIN_MAX, SPIN_MIN);
  #asyncPollMs = ASYNC_POLL_MAX;
  readonly #syncSend = new WaitState();
  readonly #syncRecv = new WaitState();
  readonly #trySends = new TryClock();
  readonly #tryRecvs = new TryClock();
  readonly #claimSend = (): number => this.#p.claimSend();
  readonly #claimRecv = (): number => this.#p.claimRecv();

  constructor(p: SlotProtocol, counts: SharedCounts, where: () => string, mapped: () => boolean, released: AbortSignal) {
    this.#p = p;
    this.#counts = counts;
    this.#where = where;
    this.#mapped = mapped;
    this.#released = released;
  }

  /** One claim, looking at the liveness of whoever blocks it if `w` asks (the protocol's `suspect` lasts this one claim). */
  #claim(send: boolean, w: WaitState): number {
    if (!w.look) return send ? this.#p.claimSend() : this.#p.claimRecv();
    w.look = false;
    return lookingAt(this.#p, send ? this.#claimSend : this.#claimRecv);
  }

  /** Unbuffered: whether the message at `pos` was taken, looking at a receiver's liveness if `w` asks. */
  #taken(pos: number, w: WaitState): boolean {
    if (!w.look) return this.#p.taken(pos);
    w.look = false;
    return lookingAt(this.#p, () => this.#p.taken(pos));
  }

  #closed(send: boolean): Error {
    const where = this.#where();
    return send ? new ClosedWriteError(`Write to closed channel (${where})`) : new ChannelClosedError(`Channel is closed and empty (${where})`);
  }

  #timeout(what: string): TimeoutError {
    return new TimeoutError(`${what} on ${this.#where()} timed out`);
  }

  /** After an await: the handle may have been released meanwhile. */
  #checkMapped(): void {
    if (!this.#mapped()) throw new RegionUnmappedError(`${this.#where()} was released`);
  }

  /** Spins on what the last failed claim waits for. */
  #spin(policy: SpinPolicy, send: boolean, now: number, left: number): boolean {
    const p = this.#p;
    return spinUntilChange(p.w, p.watchWord, p.watchSeen, BUSY, send ? W.TAIL : W.HEAD, p.watchPos, W.CLOSED, p.watchClosed, now, policy.budget(now, left), policy);
  }

  // ---- claiming ------------------------------------------------------------------

  /**
   * One claim that never waits (`trySend`, `tryRecv`): a position or a CLAIM_* result.
   * Once this handle's tries have been blocked by another party for the liveness bound,
   * the next one looks at that party (try-clock.ts).
   */
  tryClaim(send: boolean): number {
    return send ? this.#trySends.run(this.#p, this.#claimSend, isBlocked) : this.#tryRecvs.run(this.#p, this.#claimRecv, isBlocked);
  }

  /** Sync claim: returns a position, or throws (closed, timeout). Blocks this thread. */
  acquireSync(send: boolean, deadline: number, stop?: () => boolean): number {
    const pos = send ? this.#p.claimSend() : this.#p.claimRecv();
    return pos >= 0 ? pos : this.#acquireSyncSlow(send, deadline, pos, stop);
  }

  #acquireSyncSlow(send: boolean, deadline: number, pos: number, stop: (() => boolean) | undefined): number {
    const policy = send ? this.#sendSpin : this.#recvSpin;
    // Sync calls never overlap on a thread: one bookkeeping object per direction serves them all.
    const w = (send ? this.#syncSend : this.#syncRecv).reset();
    while (pos < 0) {
      if (stop !== undefined && pos !== CLAIM_CLOSED && stop()) return CLAIM_STOPPED;
      const now = performance.now();
      const left = this.#look(send, pos, deadline, now, w);
      if (w.sleptAt === 0 && this.#spin(policy, send, now, left)) {
        pos = this.#claim(send, w);
        continue;
      }
      try {
        pos = this.#countAndClaim(send, w, now);
        if (pos !== CLAIM_FULL && pos !== CLAIM_BLOCKED) continue;
        futexWait(this.#p.base + seqWordOf(send) * 4, w.seen, w.sleepMs(pos, left, now));
      } finally {
        this.#counts.lower(send ? SEND_WAITERS : RECV_WAITERS);
      }
      pos = this.#claim(send, w);
    }
    if (w.sleptAt !== 0) policy.slept(performance.now() - w.sleptAt);
    return pos;
  }

  /**
   * Async claim: calls `claimed(pos)` in the same tick as the claim (nothing, not even
   * release(), comes between a claimed slot and its copy). Never blocks the event loop
   * longer than one async spin. Not an async function: a claim that succeeds at once
   * resolves without an async function's frame and its extra microtask ticks.
   */
  acquireAsync<T>(send: boolean, deadline: number, signal: AbortSignal | undefined, claimed: (pos: number) => T, stop?: () => boolean, recheck?: () => void): Promise<T> {
    try {
      checkAborted(signal);
      const pos = send ? this.#p.claimSend() : this.#p.claimRecv();
      if (pos >= 0) return Promise.resolve(claimed(pos));
      return this.#acquireAsyncSlow(send, deadline, signal, claimed, stop, recheck, pos);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #acquireAsyncSlow<T>(
    send: boolean,
    deadline: number,
    signal: AbortSignal | undefined,
    claimed: (pos: number) => T,
    stop: (() => boolean) | undefined,
    recheck: (() => void) | undefined,
    pos: number,
  ): Promise<T> {
    const policy = send ? this.#asyncSendSpin : this.#asyncRecvSpin;
    const w = new WaitState();
    let pollUntil = 0;
    /** This event-loop turn spun already. */
    let spun = false;
    while (pos < 0) {
      if (stop !== undefined && pos !== CLAIM_CLOSED && stop()) return claimed(CLAIM_STOPPED);
      const now = performance.now();
      const left = this.#look(send, pos, deadline, now, w);
      if (w.sleptAt === 0 && pollUntil === 0) {
        pollUntil = now + this.#asyncPollMs;
        spun = true;
        if (this.#spin(policy, send, now, left)) {
          pos = this.#claim(send, w);
          continue;
        }
        policy.look(now);
      }
      // On oversubscribed CPUs a wait sleeps at once where a wake-up is cheap, and a poll
      // turn naps first where it is not, but not the turn that spun (spin-policy.ts).
      if (w.sleptAt === 0 && now < pollUntil && !sleepsAtOnce(policy, now)) {
        if (!spun && mayNap(policy, now)) {
          pos = this.#nap(send, w, now, Math.min(left, NAP_MS));
          policy.napped(now, performance.now());
          if (pos >= 0 || pos === CLAIM_CLOSED) continue;
        }
        spun = false;
        await nextTurn();
      } else {
        try {
          pos = this.#countAndClaim(send, w, now);
          if (pos !== CLAIM_FULL && pos !== CLAIM_BLOCKED) continue;
          await asyncWaiter.wait(this.#p.base + seqWordOf(send) * 4, w.seen, w.sleepMs(pos, left, now), [signal, this.#released]);
        } finally {
          this.#counts.lower(send ? SEND_WAITERS : RECV_WAITERS);
        }
      }
      this.#checkMapped();
      checkAborted(signal);
      // The caller's code may have run during the await: what it handed in is checked
      // again before the claim (a claim taken is a message taken).
      if (recheck !== undefined) recheck();
      pos = this.#claim(send, w);
    }
    this.#pollPaid(w.sleptAt === 0 ? 0 : performance.now() - w.sleptAt, policy);
    return claimed(pos);
  }

  /**
   * How long async waits poll event-loop turns next time, from how this one ended: it
   * claimed while polling (polling paid: poll longer), or after a sleep of `sleptMs`. A
   * sleep that ended within {@link ASYNC_POLL_MAX} means polling that long would have
   * caught the change without the two thread hops of a wake; only a longer one (an idle
   * peer) makes polls shorter. Otherwise two parties that both sleep keep waking each
   * other slowly (100 µs and more per wake here), each giving up its poll just before
   * the other's answer.
   */
  #pollPaid(sleptMs: number, policy: SpinPolicy): void {
    if (sleptMs === 0) {
      this.#asyncPollMs = Math.min(ASYNC_POLL_MAX, this.#asyncPollMs * 2);
      return;
    }
    policy.slept(sleptMs);
    if (sleptMs <= ASYNC_POLL_MAX) this.#asyncPollMs = Math.min(ASYNC_POLL_MAX, Math.max(this.#asyncPollMs * 2, sleptMs * 2));
    else this.#asyncPollMs = Math.max(ASYNC_POLL_MIN, this.#asyncPollMs / 2);
  }

  /** Steps 1–3 after a failed claim: closed ends the call, the liveness clock runs, the deadline ends it. Returns the ms left. */
  #look(send: boolean, pos: number, deadline: number, now: number, w: WaitState): number {
    if (pos === CLAIM_CLOSED) throw this.#closed(send);
    w.clock(pos, now);
    // A sleep on a full or empty channel ran out (nobody signalled) and a party now blocks
    // the slot: it claimed it up to a sleep ago and has not published or freed it since.
    // Look at its liveness now rather than after another bound (looking never judges a
    // live one dead).
    if (w.ranOut(now)) {
      if (pos === CLAIM_BLOCKED) w.look = true;
      // Nothing came for the whole sleep: the next claim also reads tail's closed bit (a
      // closer may have died before it set `closed`).
      else if (pos === CLAIM_FULL) this.#p.lookClosed = true;
    }
    const left = deadline - now;
    if (left <= 0) throw this.#timeout(send ? 'send' : 'receive');
    return left;
  }

  /**
   * Step 5's first half: count this waiter, read the sequence word, claim once more.
   * The caller lowers the count after its sleep (or at once if this claim settled it).
   * `nap`: for a nap between two event-loop turns, which does not count as the wait's sleep.
   */
  #countAndClaim(send: boolean, w: WaitState, now: number, nap = false): number {
    this.#counts.raise(send ? SEND_WAITERS : RECV_WAITERS);
    w.seen = Atomics.load(this.#p.w, seqWordOf(send));
    const pos = this.#claim(send, w);
    if (pos === CLAIM_FULL || pos === CLAIM_BLOCKED) {
      if (w.sleptAt === 0 && !nap) w.sleptAt = now; // a nap does not end the polling
      if (stepHook !== undefined) stepHook('channel.wait.sleep');
    }
    return pos;
  }

  /**
   * A nap between two event-loop turns of an async wait: count this waiter, read the
   * sequence word, claim once more, sleep on the word for at most `ms`, uncount, claim.
   * Returns the last claim's result.
   */
  #nap(send: boolean, w: WaitState, now: number, ms: number): number {
    try {
      const pos = this.#countAndClaim(send, w, now, true);
      if (pos !== CLAIM_FULL && pos !== CLAIM_BLOCKED) return pos;
      futexWait(this.#p.base + seqWordOf(send) * 4, w.seen, ms);
    } finally {
      this.#counts.lower(send ? SEND_WAITERS : RECV_WAITERS);
    }
    return this.#claim(send, w);
  }

  /** A blocking receive of an Unbuffered channel counts itself in `recvActive` (trySend offers only then). */
  receiveSync(rendezvous: boolean, deadline: number): number {
    if (!rendezvous) return this.acquireSync(false, deadline);
    this.#counts.raise(RECV_ACTIVE);
    try {
      return this.acquireSync(false, deadline);
    } finally {
      this.#counts.lower(RECV_ACTIVE);
    }
  }

  /** Async receive; an Unbuffered one counts itself in `recvActive` while it waits (see {@link Waits.receiveSync}). */
  receiveAsync<T>(rendezvous: boolean, deadline: number, signal: AbortSignal | undefined, claimed: (pos: number) => T, recheck?: () => void): Promise<T> {
    return rendezvous ? this.#receiveActive(deadline, signal, claimed, recheck) : this.acquireAsync(false, deadline, signal, claimed, undefined, recheck);
  }

  async #receiveActive<T>(deadline: number, signal: AbortSignal | undefined, claimed: (pos: number) => T, recheck: (() => void) | undefined): Promise<T> {
    this.#counts.raise(RECV_ACTIVE);
    try {
      return await this.acquireAsync(false, deadline, signal, claimed, undefined, recheck);
    } finally {
      this.#counts.lower(RECV_ACTIVE);
    }
  }

  // ---- Unbuffered hand-over ------------------------------------------------------

  /**
   * What an Unbuffered sender waiting for its message at `pos` does next: 'done' (taken),
   * or the deadline/close/abort says stop and the message was taken back ('retracted'),
   * or keep waiting ('wait'). A receiver that holds the message is waited for whatever
   * the deadline says: only its copy is awaited.
   */
  #handOver(pos: number, deadline: number, now: number, signal: AbortSignal | undefined, w: WaitState): 'done' | 'wait' {
    const p = this.#p;
    if (this.#taken(pos, w)) return 'done';
    if (p.held(pos)) return 'wait';
    let stop: Error | undefined;
    if (p.isClosed()) stop = this.#closed(true);
    else if (signal?.aborted) stop = new AbortError(undefined, { cause: signal.reason });
    else if (deadline - now <= 0) stop = new TimeoutError(`send on ${this.#where()} timed out waiting for a receiver`);
    if (stop === undefined) return 'wait';
    if (p.retract(pos)) throw stop;
    return p.taken(pos) ? 'done' : 'wait'; // a receiver claimed it meanwhile
  }

  /**
   * How long an Unbuffered sender waiting for its message to be taken sleeps: to the sleep
   * bound's next mark, and (unless a receiver holds the message, which is waited for
   * whatever the deadline says) at most until the deadline.
   */
  #takenSleepMs(held: boolean, deadline: number): number {
    const now = performance.now();
    const bound = sleepBound(now);
    return held ? bound : Math.min(bound, deadline - now);
  }

  /** Unbuffered: waits (blocking) until the message sent at `pos` is taken. */
  awaitTakenSync(pos: number, deadline: number): void {
    const p = this.#p;
    const sw = p.slotWord(pos);
    // The claim is done with this direction's bookkeeping: the hand-over reuses it.
    const w = this.#syncSend.reset();
    let spun = false;
    for (;;) {
      const now = performance.now();
      if (this.#handOver(pos, deadline, now, undefined, w) === 'done') return;
      w.clock(p.held(pos) ? CLAIM_BLOCKED : CLAIM_FULL, now);
      const state = Atomics.load(p.w, sw);
      if (!spun) {
        spun = true;
        // Through a receiver's READING (busy) to the slot freed; tail moves only after that.
        if (spinUntilChange(p.w, sw, state, BUSY, W.TAIL, Atomics.load(p.w, W.TAIL), W.CLOSED, true, now, this.#sendSpin.budget(now, deadline - now), this.#sendSpin)) continue;
      }
      this.#counts.raise(SEND_WAITERS);
      try {
        const seen = Atomics.load(p.w, W.NOT_FULL_SEQ);
        if (this.#taken(pos, w)) return;
        const left = this.#takenSleepMs(p.held(pos), deadline);
        if (left > 0) futexWait(p.base + W.NOT_FULL_SEQ * 4, seen, left);
      } finally {
        this.#counts.lower(SEND_WAITERS);
      }
    }
  }

  /** Unbuffered: async version of {@link Waits.awaitTakenSync}. */
  async awaitTakenAsync(pos: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const p = this.#p;
    const w = new WaitState();
    const policy = this.#asyncSendSpin;
    const start = performance.now();
    const pollUntil = start + this.#asyncPollMs;
    for (let turn = 0; ; turn++) {
      const now = performance.now();
      if (this.#handOver(pos, deadline, now, signal, w) === 'done') return;
      const held = p.held(pos);
      w.clock(held ? CLAIM_BLOCKED : CLAIM_FULL, now);
      // On oversubscribed CPUs the wait sleeps at once, or a turn naps first from the second
      // on (spin-policy.ts).
      if (turn === 0) policy.look(now);
      if (now < pollUntil && !sleepsAtOnce(policy, now, false)) {
        if (turn > 0 && mayNap(policy, now, false)) {
          this.#counts.raise(SEND_WAITERS);
          try {
            const seen = Atomics.load(p.w, W.NOT_FULL_SEQ);
            if (this.#taken(pos, w)) return;
            futexWait(p.base + W.NOT_FULL_SEQ * 4, seen, NAP_MS);
          } finally {
            this.#counts.lower(SEND_WAITERS);
          }
          policy.napped(now, performance.now());
        }
        await nextTurn();
        this.#checkMapped();
        continue;
      }
      this.#counts.raise(SEND_WAITERS);
      try {
        const seen = Atomics.load(p.w, W.NOT_FULL_SEQ);
        if (this.#taken(pos, w)) return;
        const left = this.#takenSleepMs(held, deadline);
        if (left > 0) await asyncWaiter.wait(p.base + W.NOT_FULL_SEQ * 4, seen, left, held ? [this.#released] : [signal, this.#released]);
      } finally {
        this.#counts.lower(SEND_WAITERS);
      }
      this.#checkMapped();
    }
  }
}
