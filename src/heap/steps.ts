/**
 * The named steps of the Heap's protocol (for the step harness, sync/steps.ts) and the
 * figures a heap reports.
 * @internal
 */
import { stepHook } from '../sync/steps.js';

/**
 * Every named step of the heap's protocol. At each, the process has just done what the
 * comment says and not the next shared-memory write.
 */
export const HEAP_STEPS = [
  /** Holds the lock, the log is empty; nothing written yet. */
  'heap.malloc.locked',
  /** The block is off its free list (list head, links, bitmaps written). */
  'heap.malloc.taken',
  /** The block is split: the remainder is on its free list. */
  'heap.malloc.split',
  /** The block is marked allocated and the statistics updated; the log not yet cleared. */
  'heap.malloc.marked',
  /** Holds the lock, the log is empty; nothing written yet. */
  'heap.free.locked',
  /** The block is merged with its free neighbours (they are off their lists). */
  'heap.free.merged',
  /** The merged block is on its free list and the statistics updated; the log not yet cleared. */
  'heap.free.inserted',
  /** A name entry is written (block allocated); the log not yet cleared. */
  'heap.named.entered',
  /**
   * A new name's block larger than 64 KiB is allocated and committed, owned by this
   * process and not yet named; the lock is free while it is zeroed (killed here: the
   * block is the dead process's, for `reclaimDead`, and the name does not exist).
   */
  'heap.named.reserved',
  /** An undo entry (word index, old value) is written; `logCount` not yet bumped. */
  'heap.log.entry',
  /** `logCount` is bumped; the word itself not yet written. */
  'heap.log.counted',
  /** `logCount` stored 0: the operation is committed; the lock still held. */
  'heap.commit',
  /** Took the lock with a non-empty log (a dead holder's operation); nothing restored yet. */
  'heap.repair.found',
  /** One word restored from the log (from the last entry down). */
  'heap.repair.undone',
  /** Every word restored; `logCount` not yet cleared. */
  'heap.repair.restored',
] as const;

/** One of {@link HEAP_STEPS}. */
export type HeapStep = (typeof HEAP_STEPS)[number];

/** Figures of a heap. */
export interface HeapStats {
  /** Bytes the heap manages (its whole size). */
  size: number;
  /** Bytes of allocated blocks, with their 16-byte headers. */
  used: number;
  /** Bytes of free blocks, with their headers. */
  free: number;
  /** The largest `n` a `malloc(n)` would get now. */
  largest: number;
  /** Allocated blocks (named ones included). */
  blocks: number;
  /** Free blocks. */
  freeBlocks: number;
  /** Named blocks. */
  named: number;
  /** Operations a dead process left half done, rolled back so far. */
  repairs: number;
}


/** Calls the step hook, when one is installed, at step `name`. */
export function step(name: HeapStep): void {
  if (stepHook !== undefined) stepHook(name);
}
