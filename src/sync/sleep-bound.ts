/**
 * How long a waiter (channel, Broadcast, Watch) sleeps when nothing is in progress: at
 * most {@link SLEEP_MS}, and until the next multiple of it on this thread's clock.
 *
 * The bound is what crash recovery needs: a process killed after its change but before
 * its wake leaves sleepers unwoken, so each looks again on its own (docs/layout.md, "Why
 * every sleep is bounded"). On an idle channel that costs a wake-up per bound, and a
 * wake-up of an idle CPU costs 0.1–0.4 ms of CPU time here. Sleeps that each ran
 * {@link SLEEP_MS} from their own start would wake a thread once per waiter per bound:
 * 10 async receivers started at different times cost 3.7 % of a CPU, 50 cost 5.7 %.
 * Ending every such sleep on the same marks makes a thread's waits time out together:
 * one wake-up per bound, however many waits (the async waits' one timer ends all that
 * are due, sync/deadlines.ts). The first sleep of a wait is then shorter than the bound,
 * never longer.
 * @internal
 */

/** Longest sleep of a waiter, in ms: it looks again at least this often. */
export const SLEEP_MS = 50;

/**
 * How long (ms) a sleep that starts at `now` (`performance.now()`) may last: until the
 * next multiple of {@link SLEEP_MS}, in (0, SLEEP_MS].
 */
export function sleepBound(now: number): number {
  return SLEEP_MS - (now % SLEEP_MS);
}
