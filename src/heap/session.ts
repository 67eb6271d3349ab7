/**
 * What every Heap operation does around its work: take the heap's robust lock, roll back
 * what a dead holder left half done, undo its own writes if it throws, and let go. Also
 * the checks and messages the operations share.
 * @internal
 */
// First: stripInternal drops the import the file's @internal comment sits on, and this
// one is not needed by the declarations.
import { SpinBudget } from '../sync/spin.js';
import { BlockInUseError, HeapCorruptError, HeapFullError, InvalidArgumentError, NotABlockError, OutOfRangeError, RegionUnmappedError } from '../errors.js';
import type { Region } from '../region/region.js';
import { heldRanges, structuresHeld } from '../shared-memory/registry.js';
import { RobustLock } from '../sync/robust-lock.js';
import { checkOptions, describe } from '../validate.js';
import { Allocator, Corrupt, NOT_ALIGNED, OUT_OF_RANGE } from './allocator.js';
import { ALIGN, BLOCK_HEADER, HEAP_MAX, HW } from './layout.js';
import { NameTable } from './names.js';

/** Options of an allocation. */
export interface AllocOptions {
  /** The block's offset in the object is a multiple of this: a power of two from 16 to 65536. Default 16. */
  align?: number;
}

/** A structure of this process found in a block: its bytes in the object and what it is. */
export interface HeldStructure {
  readonly start: number;
  readonly end: number;
  readonly what: string;
}

/** Largest alignment a block can ask for. */
export const ALIGN_MAX = 65536;

/** The lock, the allocator and the name directory of one heap handle. */
export class Session {
  readonly a: Allocator;
  readonly names: NameTable;
  readonly lock: RobustLock;
  readonly region: Region;
  readonly u8: Uint8Array;
  readonly base: number;

  constructor(region: Region, w: Int32Array, names: number) {
    this.region = region;
    this.base = region.offset;
    this.u8 = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
    this.a = new Allocator(w, w.byteLength, names, this.base);
    this.names = new NameTable(this.a);
    const words = { lock: HW.LOCK, waiters: HW.LOCK_WAITERS, deaths: HW.DEATHS };
    this.lock = new RobustLock(w, words, region.address + HW.LOCK * 4, new SpinBudget(2_000, 64, 50_000));
  }

  /** Takes the lock; rolls back what a dead holder left half done. */
  enter(): void {
    if (!this.region.isMapped) throw new RegionUnmappedError(`${this.where()} was released`);
    this.lock.lockSync();
    if (this.a.w[HW.LOG_COUNT] !== 0) {
      try {
        this.a.rollback();
      } catch (err) {
        this.lock.unlock();
        throw this.corrupt(err);
      }
    }
  }

  /**
   * Lets the lock go.
   * @throws {@link HeapCorruptError} when the lock was no longer this process's: another
   *   process took it over, judging this one dead (a pid reused, a liveness mistake), and
   *   may have rolled back or changed the heap while this operation ran. The operation's
   *   own result is then not to be trusted; `check()` tells whether the heap is sound.
   */
  leave(): void {
    if (this.lock.unlock()) return;
    throw new HeapCorruptError(`${this.where()} may be corrupt: another process took its lock over from this one (pid ${process.pid}, judged dead) while this operation held it, so both changed the heap at once; the operation's result is not to be trusted (run check())`);
  }

  /** After an exception mid-operation: undo what it wrote (never half an operation); the error to throw. */
  undo(err: unknown): Error {
    try {
      if (this.a.dirty) this.a.rollback();
    } catch (e) {
      return this.corrupt(e);
    }
    return this.corrupt(err);
  }

  /** A {@link HeapCorruptError} for what the allocator found broken; other errors as they are. */
  corrupt(err: unknown): Error {
    return err instanceof Corrupt ? new HeapCorruptError(`${this.where()} is corrupt: ${err.message}`) : (err as Error);
  }

  where(): string {
    return `the Heap at offset ${this.base} of shared memory '${this.region.objectName}'`;
  }

  /** The size `n` of a `what` call, or the error. */
  size(what: string, n: unknown): number {
    if (typeof n === 'number' && n >= 1 && n <= HEAP_MAX && n % 1 === 0) return n;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new InvalidArgumentError(`${what} needs a size in bytes (an integer), got ${describe(n)}`);
    throw new OutOfRangeError(`${what}(${n}): the size must be from 1 to the heap's size (${this.a.size} bytes)`);
  }

  /** The alignment of an options object (16 without one). */
  align(options: AllocOptions | undefined): number {
    if (options === undefined) return ALIGN;
    const align = checkOptions<AllocOptions>('options', options, ['align']).align ?? ALIGN;
    if (typeof align !== 'number' || !Number.isInteger(align)) throw new InvalidArgumentError(`options.align must be a power of two, got ${describe(align)}`);
    if (align < ALIGN || align > ALIGN_MAX || (align & (align - 1)) !== 0) throw new OutOfRangeError(`options.align must be a power of two from ${ALIGN} to ${ALIGN_MAX}, got ${align}`);
    return align;
  }

  /** No block for `n` bytes at `align`; `largest`: what malloc gets at that alignment. */
  full(n: number, largest: number, align: number = ALIGN): HeapFullError {
    const at = align === ALIGN ? '' : ` at alignment ${align}`;
    return new HeapFullError(`cannot allocate ${n} bytes${at} in ${this.where()}: the largest free block holds ${largest} bytes${at}; nothing changed`, n, largest);
  }

  /** The block of a live offset (read under the lock), or the error. */
  live(what: string, offset: unknown): number {
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) throw new InvalidArgumentError(`${what} needs a block's offset (an integer), got ${describe(offset)}`);
    this.enter();
    let b: number;
    try {
      b = this.a.blockOf(offset - this.base);
    } finally {
      this.leave();
    }
    if (b < 0) throw this.notBlock(what, offset, b);
    return b;
  }

  /**
   * A structure (channel, Watch, Mutex, Heap) this process still has starting inside the
   * live block at `b`, else `undefined`. The overlap registry knows this process's
   * structures only: another process's cannot be seen.
   */
  inUse(b: number): HeldStructure | undefined {
    const key = this.region.mapping.objectKey;
    // This heap is one structure: with no other, nothing can be in the block.
    if (structuresHeld(key) <= 1) return undefined;
    const start = this.base + b + BLOCK_HEADER;
    const end = start + this.a.usable(b);
    for (const r of heldRanges(key)) {
      if (r.structure !== undefined && r.start >= start && r.start < end) return r;
    }
    return undefined;
  }

  /** The error for `what` (a call, as a string) of the block at `b`, which holds `r`. */
  blockInUse(what: string, b: number, r: HeldStructure): BlockInUseError {
    return new BlockInUseError(`${what}: the block at offset ${this.base + b + BLOCK_HEADER} of ${this.where()} still holds ${r.what} of this process at bytes ${r.start}..${r.end}; release it first; nothing changed`);
  }

  notBlock(what: string, offset: number, why: number): NotABlockError {
    const reason =
      why === NOT_ALIGNED ? "it is not a multiple of 16 from the heap's start, as every block is"
      : why === OUT_OF_RANGE ? `it is outside the heap's blocks (bytes ${this.base + this.a.arena + BLOCK_HEADER} to ${this.base + this.a.end})`
      : 'no live block starts there (it was never returned by malloc, was freed already, or lies inside a block)';
    return new NotABlockError(`${what}(${offset}): not a block of ${this.where()}: ${reason}; nothing changed`);
  }
}
