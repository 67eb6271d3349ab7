/**
 * Named steps of the shared protocols, and the hook the step harness uses to stop a
 * party at one of them.
 *
 * Each protocol module calls `if (stepHook !== undefined) stepHook(STEP)` between two of
 * its shared-memory operations. In normal use the hook is `undefined`: the call costs a
 * load and a well-predicted branch. Tests install a hook in a child process (or worker
 * thread) that, at a chosen step, reports where it is and blocks until the test lets it
 * go on or kills it, which freezes shared memory exactly as a process killed there
 * would leave it.
 *
 * Step names are `protocol.role.step`, e.g. `channel.send.tail`. Each protocol
 * lists its steps (see `CHANNEL_STEPS`, `MUTEX_STEPS`) so tests can cover them all.
 * @internal
 */

/** Called at every named step while installed. */
export type StepHook = (step: string) => void;

/** The installed hook, or `undefined` (the default: no cost beyond the check). */
export let stepHook: StepHook | undefined = undefined;

/** Installs (or, with `undefined`, removes) the hook for this thread. */
export function setStepHook(hook: StepHook | undefined): void {
  stepHook = hook;
}
