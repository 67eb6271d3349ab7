/**
 * How long a waiter sleeps behind another party's claim in progress.
 *
 * Such a claim lasts a few stores unless its party lost its CPU, was stopped, or died,
 * and nobody wakes the waiters when it ends (that would cost every claim a load of a
 * waiter count). So they look again: 1 ms after the block began, then after a quarter
 * of the time blocked so far, at most {@link BLOCKED_SLEEP_MAX_MS} apart. A stall of a
 * millisecond or two costs a waiter one or two looks; a party stopped for seconds costs
 * about 60 looks a second instead of 1,000.
 *
 * Few looks matter most to async calls. Node runs every due timer before any I/O or
 * `setImmediate` callback, and starts on timers that fall due meanwhile: a few pending
 * calls that each wake every millisecond, on a machine whose CPUs are busy (each wake
 * then takes a millisecond of wall time), kept a test process in its timer phase for
 * seconds, with its other work (a receive with a 50 ms timeout) frozen.
 * @internal
 */

/** The first sleep behind a claim in progress (ms). */
export const BLOCKED_SLEEP_MIN_MS = 1;
/** The longest sleep behind a claim in progress (ms): well under the liveness bound. */
export const BLOCKED_SLEEP_MAX_MS = 16;

/** The sleep, in ms, for a waiter blocked for `blockedForMs` so far. */
export function blockedSleepMs(blockedForMs: number): number {
  return Math.min(BLOCKED_SLEEP_MAX_MS, Math.max(BLOCKED_SLEEP_MIN_MS, blockedForMs / 4));
}
