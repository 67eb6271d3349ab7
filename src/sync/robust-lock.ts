/**
 * A lock in shared memory that survives the death of its holder.
 *
 * Layout: two 32-bit words, `lock` and `waiters` (see docs/layout.md).
 * - `lock` is 0 when free, otherwise the holder's process id. Taken with a
 *   compare-and-swap 0 → pid; released by storing 0.
 * - `waiters` counts processes sleeping (or about to sleep) on `lock`. The releaser
 *   makes the wake syscall only when it is non-zero, so an uncontended lock and unlock
 *   cost two atomic operations and no system call.
 *
 * A sleeper wakes at least every {@link LIVENESS_MS} to check that the holder still
 * exists (`kill(pid, 0)`). If it does not, the sleeper takes the lock over with a
 * compare-and-swap dead-pid → own-pid (only one taker can win) and learns that the
 * holder died, so the data it protects may be half-updated.
 *
 * Process ids identify holders, so the lock cannot tell two threads of one process
 * apart, and a holder in another PID namespace looks dead. Callers that care (the
 * public Mutex) keep their own per-thread bookkeeping.
 * @internal
 */
import { futexWait, futexWake } from './futex.js';
import { LIVENESS_MS, PID, processAlive } from './liveness.js';
import type { SpinBudget } from './spin.js';

/** One attempt: 0 when taken, otherwise the current holder's pid. */
export function tryLock(w: Int32Array, lock: number): number {
  return Atomics.compareExchange(w, lock, 0, PID);
}

/** Takes the holder's place if it is dead. Returns true when this process now holds the lock. */
export function takeOverIfDead(w: Int32Array, lock: number, holder: number): boolean {
  if (holder === PID || processAlive(holder)) return false;
  return Atomics.compareExchange(w, lock, holder, PID) === holder;
}

/**
 * Takes the lock, sleeping in the kernel when it is held. `address` is the absolute
 * address of word `lock`. Returns 0, or the pid of a dead holder it took over from.
 * `deadline` (a `performance.now()` time) bounds the wait; -1 is returned when it passes.
 */
export function lockSync(w: Int32Array, lock: number, waiters: number, address: number, spin: SpinBudget, deadline = Infinity): number {
  let holder = tryLock(w, lock);
  if (holder === 0) return 0;
  for (let i = spin.budget; i > 0; i--) {
    if (Atomics.load(w, lock) === 0 && (holder = tryLock(w, lock)) === 0) {
      return 0;
    }
  }
  const slept = performance.now();
  Atomics.add(w, waiters, 1);
  try {
    for (;;) {
      holder = tryLock(w, lock);
      if (holder === 0) return 0;
      const left = deadline - performance.now();
      if (left <= 0) return -1;
      // Sleep while the word still holds this holder's pid; wake up to check it is alive.
      if (!futexWait(address, holder, Math.min(LIVENESS_MS, left))) {
        if (takeOverIfDead(w, lock, holder)) return holder;
      }
    }
  } finally {
    Atomics.sub(w, waiters, 1);
    spin.slept(performance.now() - slept);
  }
}

/** Releases the lock and wakes one sleeper if there is any. */
export function unlock(w: Int32Array, lock: number, waiters: number, address: number): void {
  Atomics.store(w, lock, 0);
  if (Atomics.load(w, waiters) > 0) futexWake(address, 1);
}
