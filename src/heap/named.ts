/**
 * The operations of a Heap over several blocks: named blocks (find or allocate by name,
 * look up, remove), reclaiming the blocks of dead processes, and adopting a block. Each runs under the
 * heap's lock (session.ts) and commits through its undo log.
 * @internal
 */
import { HeapFullError, HeapNameError, InvalidArgumentError, NotABlockError } from '../errors.js';
import { PID } from '../sync/liveness.js';
import { describe } from '../validate.js';
import { step } from './steps.js';
import { allocatedBlocks } from './check.js';
import { BLOCK_HEADER, NAMED_BIT } from './layout.js';
import type { Session } from './session.js';

/** A named block, as `names()` lists it. */
export interface NamedBlock {
  name: string;
  /** Offset of its data in the object. */
  offset: number;
  /** Usable bytes. */
  size: number;
}

/** What `reclaim` / `reclaimDead` freed. */
export interface ReclaimResult {
  /** Blocks freed. */
  blocks: number;
  /** Their bytes, headers included. */
  bytes: number;
  /** The dead processes whose blocks they were. */
  pids: number[];
}

/** A new name's block larger than this is zeroed outside the lock (about 0.35 ms per MiB). */
export const ZERO_UNLOCKED = 65536;

/**
 * The offset of the block named `name`, allocating (n bytes, zeroed) the first time.
 *
 * A block of up to 64 KiB is allocated, zeroed and named in one locked operation. A larger
 * one would keep every other process waiting while it is zeroed, so it is allocated first
 * as a block of this process's own (committed: killed after this, the block is the dead
 * process's, for reclaimDead), zeroed without the lock, then named in a second locked
 * operation — unless another process named it meanwhile, when it is given back.
 */
export function findOrCreate(s: Session, name: unknown, n: unknown, align: number): number {
  const key = s.names.encode(name);
  const size = s.size('named', n);
  const a = s.a;
  const big = size > ZERO_UNLOCKED;
  let reserved = 0;
  for (;;) {
    s.enter();
    let d = 0;
    let found = -1;
    let full = '';
    let largest = 0;
    try {
      found = s.names.find(key);
      if (found >= 0) d = s.names.blockOf(found);
      else {
        const k = s.names.vacant();
        if (k < 0) full = `the name directory is full (${a.names} names)`;
        else if (reserved !== 0) {
          a.name(reserved);
          d = reserved + BLOCK_HEADER;
          s.names.enter(k, key, d);
          a.commit();
          reserved = 0;
        } else {
          const b = a.malloc(size, big ? PID : 0, big ? 0 : NAMED_BIT, align);
          if (b === 0) largest = a.largest(align);
          else if (big) {
            a.commit();
            reserved = b;
          } else {
            d = b + BLOCK_HEADER;
            s.u8.fill(0, d, d + a.usable(b));
            s.names.enter(k, key, d);
            a.commit();
          }
        }
      }
      // Named by another process meanwhile, or no entry left: the reserve goes back.
      if (reserved !== 0 && (found >= 0 || full !== '')) {
        a.free(reserved);
        a.commit();
        reserved = 0;
      }
      if (full !== '') largest = a.largest(align);
    } catch (err) {
      throw s.undo(err);
    } finally {
      s.leave();
    }
    if (reserved !== 0) {
      step('heap.named.reserved');
      const z = reserved + BLOCK_HEADER;
      s.u8.fill(0, z, z + a.usable(reserved));
      continue;
    }
    if (full !== '') throw new HeapFullError(`named(${describe(name)}, ${size}): ${full} in ${s.where()}; nothing changed`, size, largest);
    if (d === 0) throw s.full(size, largest, align);
    const usable = a.usable(d - BLOCK_HEADER);
    if (found >= 0 && usable < size) throw new HeapNameError(`named(${describe(name)}, ${size}): the block of that name has ${usable} usable bytes, fewer than the ${size} asked for`);
    if (found >= 0 && (s.base + d) % align !== 0) throw new HeapNameError(`named(${describe(name)}, ${size}): the block of that name is at offset ${s.base + d}, not a multiple of ${align}`);
    return s.base + d;
  }
}

/** The offset of the block named `name`, or `undefined`. */
export function lookup(s: Session, name: unknown): number | undefined {
  const key = s.names.encode(name);
  s.enter();
  try {
    const k = s.names.find(key);
    return k < 0 ? undefined : s.base + s.names.blockOf(k);
  } finally {
    s.leave();
  }
}

/** Removes the name and frees its block; `true` when it existed. */
export function unname(s: Session, name: unknown): boolean {
  const key = s.names.encode(name);
  s.enter();
  try {
    const k = s.names.find(key);
    if (k < 0) return false;
    const d = s.names.blockOf(k);
    const busy = s.inUse(d - BLOCK_HEADER);
    if (busy !== undefined) throw s.blockInUse(`unname(${describe(name)})`, d - BLOCK_HEADER, busy);
    s.names.remove(k);
    s.a.free(d - BLOCK_HEADER);
    s.a.commit();
    return true;
  } catch (err) {
    throw s.undo(err);
  } finally {
    s.leave();
  }
}

/** Every named block. */
export function list(s: Session): NamedBlock[] {
  s.enter();
  try {
    return s.names.list().map(({ name, d }) => ({ name, offset: s.base + d, size: s.a.usable(d - BLOCK_HEADER) }));
  } finally {
    s.leave();
  }
}

/** Frees every unnamed block whose owner `dead(owner)` says is gone; each free commits on its own. `first` runs with the lock held, before anything (it throws to refuse). */
export function reclaim(s: Session, dead: (owner: number) => boolean, first?: () => void): ReclaimResult {
  const result: ReclaimResult = { blocks: 0, bytes: 0, pids: [] };
  s.enter();
  try {
    first?.();
    for (const { b, owner, named } of allocatedBlocks(s.a)) {
      if (named || owner === 0 || !dead(owner)) continue;
      result.bytes += s.a.usable(b) + BLOCK_HEADER;
      s.a.free(b);
      s.a.commit();
      result.blocks++;
      if (!result.pids.includes(owner)) result.pids.push(owner);
    }
  } catch (err) {
    throw s.undo(err);
  } finally {
    s.leave();
  }
  return result;
}

/** Makes this process the owner of the live, unnamed block at `offset`; the previous owner. */
export function adopt(s: Session, offset: unknown): number {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) throw new InvalidArgumentError(`adopt needs a block's offset (an integer), got ${describe(offset)}`);
  const a = s.a;
  s.enter();
  let b: number;
  let named = false;
  let before = 0;
  try {
    b = a.blockOf(offset - s.base);
    named = b >= 0 && a.named(b);
    if (b >= 0 && !named) {
      before = a.owner(b);
      a.adopt(b, PID);
      a.commit();
    }
  } catch (err) {
    throw s.undo(err);
  } finally {
    s.leave();
  }
  if (b < 0) throw s.notBlock('adopt', offset, b);
  if (named) throw new NotABlockError(`adopt(${offset}): the block at offset ${offset} of ${s.where()} is a named block, which belongs to no process; nothing changed`);
  return before;
}
