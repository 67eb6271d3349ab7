/**
 * The shared counts a handle raises while it waits (a channel's sleeping senders,
 * sleeping receivers and Unbuffered receives in progress; a Watch's waiters), and their
 * give-back: a handle released,
 * or a process exiting normally, with calls still pending takes back what those calls
 * added, since they can no longer reach the memory to do it themselves. Only a process
 * that is killed leaves its counts raised (a raised waiter count costs a futex wake per
 * message; a raised `recvActive` lets Unbuffered `trySend` offer with no receive).
 * @internal
 */
import { W } from './layout.js';

/** A channel's counts, by index into {@link CHANNEL_COUNTS}. */
export const SEND_WAITERS = 0;
export const RECV_WAITERS = 1;
export const RECV_ACTIVE = 2;
/** The words of a channel's counts. */
export const CHANNEL_COUNTS: readonly number[] = [W.SEND_WAITERS, W.RECV_WAITERS, W.RECV_ACTIVE];

// Handles with calls in progress at process exit give back what those calls raised.
const live = new Set<WeakRef<SharedCounts>>();
let exitHook = false;
let pruneAt = 64;

export class SharedCounts {
  readonly #w: Int32Array;
  readonly #mapped: () => boolean;
  /** The word index of each count. */
  readonly #words: readonly number[];
  /** What this handle's pending calls have added to each count. */
  readonly #tally: Int32Array;
  readonly #ref: WeakRef<SharedCounts>;

  /** `words`: the index in `w` of each count; `mapped`: false once the handle let go of the memory. */
  constructor(w: Int32Array, mapped: () => boolean, words: readonly number[]) {
    this.#w = w;
    this.#mapped = mapped;
    this.#words = words;
    this.#tally = new Int32Array(words.length);
    this.#ref = new WeakRef(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const ref of live) ref.deref()?.giveBack();
      });
    }
    if (live.size >= pruneAt) {
      for (const r of live) if (r.deref() === undefined) live.delete(r);
      pruneAt = Math.max(64, live.size * 2);
    }
    live.add(this.#ref);
  }

  /** Adds 1 to a shared count on behalf of this handle. */
  raise(which: number): void {
    Atomics.add(this.#w, this.#words[which]!, 1);
    this.#tally[which]!++;
  }

  /** Takes back what raise() added, unless giveBack() already did. */
  lower(which: number): void {
    if (this.#tally[which] === 0 || !this.#mapped()) return;
    Atomics.sub(this.#w, this.#words[which]!, 1);
    this.#tally[which]!--;
  }

  /** Takes back every count this handle's pending calls still hold. */
  giveBack(): void {
    if (!this.#mapped()) return;
    for (let i = 0; i < this.#words.length; i++) {
      if (this.#tally[i] !== 0) Atomics.sub(this.#w, this.#words[i]!, this.#tally[i]!);
      this.#tally[i] = 0;
    }
  }

  /** Forgets this handle (released). */
  forget(): void {
    live.delete(this.#ref);
  }
}
