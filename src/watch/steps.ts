/**
 * The named steps of the Watch protocol (watch.ts writes and reads, waits.ts waits), for
 * the step harness (sync/steps.ts).
 * @module
 */
import { stepHook } from '../sync/steps.js';

/**
 * Every named step of the Watch protocol, in order. At each, the party has just done the
 * shared-memory operation the comment names and not yet the next one. (A writer waiting
 * for the lock goes through the Mutex's `mutex.lock.*` steps first.)
 */
export const WATCH_STEPS = [
  /** Holds the writer lock; nothing written yet. */
  'watch.write.lock',
  /** The new length is in the inactive buffer; its bytes are not (a torn buffer nobody reads). A string's bytes come first, then its length. */
  'watch.write.length',
  /** The value is in the inactive buffer; `version` not stored yet (readers see the previous value). */
  'watch.write.copied',
  /** `version` stored: the new value is what readers get; the lock still held. */
  'watch.write.published',
  /** The lock released; sleepers on `version` not woken yet. */
  'watch.write.unlock',
  /** A reader loaded `version`; it has not copied the buffer yet. */
  'watch.read.version',
  /** A reader copied the buffer; it has not re-checked `version` yet. */
  'watch.read.copied',
  /** A waiter counted itself in `waiters` and found `version` unchanged; about to sleep. */
  'watch.wait.sleep',
] as const;

/** One of {@link WATCH_STEPS}. */
export type WatchStep = (typeof WATCH_STEPS)[number];

/** Marks a step for the harness (a no-op unless a test set a hook). @internal */
export function step(name: WatchStep): void {
  if (stepHook !== undefined) stepHook(name);
}
