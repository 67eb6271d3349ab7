/**
 * What this process has mapped of each shared memory object, keyed by the object's
 * identity (device and inode, so two handles on one object share an entry). Used to
 * refuse a shrink that would cut off live mappings, and to refuse overlapping
 * channels and mutexes.
 * @internal
 */

/** A byte range `[start, end)` of an object held by something in this process. */
export interface HeldRange {
  readonly start: number;
  readonly end: number;
  /** What holds it, for messages ("a mapping", "a SingleBuffered channel"). */
  readonly what: string;
  /** For a channel or mutex: its header signature; two handles on one structure share it and do not overlap. */
  readonly structure?: string;
  /**
   * For a structure that holds others (a Heap): `true` when a structure at `[start, end)`
   * may live inside it (it lies within one of its blocks), so that it is no overlap.
   */
  readonly admits?: (start: number, end: number) => boolean;
}

/**
 * `true` when `r` is a structure other than `signature` that does not admit `[start, end)`
 * inside it, and that the new structure (through `admits`, when it can hold others: a
 * Heap) does not admit inside itself either. Admission works both ways, so a structure
 * in a block of a heap and a handle on that heap may be opened in either order.
 */
export function conflicts(r: HeldRange, signature: string, start: number, end: number, admits?: (start: number, end: number) => boolean): boolean {
  return r.structure !== undefined && r.structure !== signature && !(r.admits?.(start, end) ?? false) && !(admits?.(r.start, r.end) ?? false);
}

const byObject = new Map<string, Set<HeldRange>>();
/** Structures (ranges with a `structure`) held on each object, to skip a scan when only one is. */
const structureCount = new Map<string, number>();

/** Records `range` on the object `key`; returns a function that forgets it. */
export function hold(key: string, range: HeldRange): () => void {
  let set = byObject.get(key);
  if (set === undefined) byObject.set(key, (set = new Set()));
  set.add(range);
  const counted = range.structure !== undefined;
  if (counted) structureCount.set(key, (structureCount.get(key) ?? 0) + 1);
  return () => {
    if (!set.delete(range)) return;
    if (counted) {
      const n = structureCount.get(key)! - 1;
      if (n === 0) structureCount.delete(key);
      else structureCount.set(key, n);
    }
    if (set.size === 0 && byObject.get(key) === set) byObject.delete(key);
  };
}

/** How many structures this process holds on object `key`. */
export function structuresHeld(key: string): number {
  return structureCount.get(key) ?? 0;
}

/** The held ranges of object `key`. */
export function heldRanges(key: string): Iterable<HeldRange> {
  return byObject.get(key) ?? [];
}

/** The first held range of `key` that overlaps `[start, end)`, if any. */
export function findOverlap(key: string, start: number, end: number, filter: (r: HeldRange) => boolean): HeldRange | undefined {
  for (const r of heldRanges(key)) if (filter(r) && r.start < end && start < r.end) return r;
  return undefined;
}
