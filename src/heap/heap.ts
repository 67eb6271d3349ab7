/**
 * Heap: malloc / calloc / free inside shared memory, by offset, for every process at once.
 *
 * The choice (see docs/heap-layout.md): **one robust lock over a TLSF allocator with an
 * undo log.**
 * - Every operation takes the heap's lock (sync/robust-lock.ts, the Mutex's protocol): an
 *   uncontended malloc or free costs two atomic operations on top of the allocator's few
 *   dozen loads and stores. A holder that dies is taken over within about 100 ms.
 * - The allocator (allocator.ts) is a boundary-tag heap with segregated free lists in two
 *   levels of size classes (TLSF): O(1) malloc and free, any size up to the heap's,
 *   immediate coalescing, a good fit (fragmentation stays low).
 * - Before each word an operation changes, the holder appends (index, old value) to an
 *   undo log in the heap and bumps its count, then writes; the operation commits by
 *   clearing the count. Whoever takes the lock over from a dead holder rolls the log back:
 *   a process killed anywhere in malloc or free leaves the heap as it was before that
 *   operation, or — killed after the commit — with one block allocated that it never got
 *   to use (its pid is the owner: `reclaimDead()` frees it).
 * - A bitmap with one bit per 16 bytes marks where live blocks begin, so `free` of
 *   anything but a live block's offset is refused with certainty, whatever the bytes
 *   around it hold.
 * @module
 */
import { InvalidArgumentError, LayoutError, MisalignedError, NotABlockError, OutOfRangeError } from '../errors.js';
import { describeHeader, Kind, Payload, type HeaderInfo } from '../channel/layout.js';
import { attachedSize, holdStructure, initOrAttach, peekHeader, prepareCreate, sameShape, attachOffset } from '../channel/structure.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { PID, processAlive } from '../sync/liveness.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import { Allocator } from './allocator.js';
import { checkHeap, statsOf } from './check.js';
import { ALIGN, BLOCK_HEADER, geometry, HEAP_MAX, HW, minimumSize, NAMES_DEFAULT, NAMES_MAX } from './layout.js';
import { adopt, findOrCreate, list, lookup, reclaim, unname, type NamedBlock, type ReclaimResult } from './named.js';
import { Session, type AllocOptions, type HeldStructure } from './session.js';
import { step, type HeapStats } from './steps.js';

/** Where a heap lives and how big it is. */
export interface HeapOptions {
  /** Bytes the heap manages, control area included: a multiple of 16, at least {@link Heap.minimumSize}. */
  size: number;
  /** Byte offset in the object; a multiple of 16. Default 0. */
  offset?: number;
  /** Entries of the name directory (0 to 65536). Default 64. */
  names?: number;
  /** Grow the object to fit when it is too small. Default `true` (on macOS: only a fresh object). */
  autosize?: boolean;
}

const INTERNAL: unique symbol = Symbol('concurrent-shm heap');
const structures = new FinalizationRegistry<() => void>((forget) => forget());

function shapeOf(size: number, names: number): HeaderInfo {
  return { kind: Kind.Heap, payload: Payload.Empty, depth: names, width: 0, stride: 0, totalSize: size };
}

/**
 * A heap in shared memory: `malloc(n)` returns the offset in the object of a block of at
 * least `n` bytes, 16-byte aligned, that no other block overlaps, until `free(offset)`.
 * Any number of processes allocate and free at once; a process killed in the middle of
 * an operation never corrupts the heap (see the module comment). Blocks can hold
 * anything: typed pointers from `map(offset)`, or a channel, Watch or Mutex created at
 * the block's offset. `named(name, n)` gives every process the same block for a name.
 */
export class Heap implements Disposable {
  /** The mapped heap. @internal */
  readonly region: Region;
  /** The header's description. @internal */
  readonly info: HeaderInfo;
  readonly #shm: SharedMemory;
  readonly #s: Session;
  readonly #a: Allocator;
  readonly #forget: () => void;

  /**
   * Creates a heap of `size` bytes at `offset` of `shm`, or attaches to the heap of the
   * same size another process created there.
   * @throws {@link LayoutError} when the bytes there are neither zero nor a heap of this size.
   * @throws {@link OverlapError} when another structure of this process overlaps it.
   */
  constructor(shm: SharedMemory, options: HeapOptions);
  /** @internal */
  constructor(shm: SharedMemory, options: { offset: number }, internal: typeof INTERNAL);
  constructor(shm: SharedMemory, options: Partial<HeapOptions>, internal?: typeof INTERNAL) {
    if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`a Heap needs a SharedMemory, got ${describe(shm)}`);
    let wanted: HeaderInfo | null = null;
    let autosize = false;
    let offset: number;
    if (internal !== INTERNAL) {
      if (options === undefined) throw new InvalidArgumentError('new Heap(shm, options) needs options.size (the bytes the heap manages)');
      const o = checkOptions<HeapOptions>('options', options, ['size', 'offset', 'names', 'autosize']);
      const names = o.names === undefined ? NAMES_DEFAULT : checkIndex('options.names', o.names);
      if (names > NAMES_MAX) throw new OutOfRangeError(`options.names must be from 0 to ${NAMES_MAX}, got ${names}`);
      const min = minimumSize(names);
      const size = checkIndex('options.size', o.size);
      if (size < min || size > HEAP_MAX) throw new OutOfRangeError(`options.size must be from ${min} (with ${names} names) to ${HEAP_MAX}, got ${size}`);
      if (size % 16 !== 0) throw new MisalignedError(`options.size must be a multiple of 16, got ${size}`);
      wanted = shapeOf(size, names);
      offset = checkIndex('options.offset', o.offset ?? 0);
      autosize = o.autosize ?? true;
      if (typeof autosize !== 'boolean') throw new InvalidArgumentError(`options.autosize must be a boolean, got ${describe(autosize)}`);
    } else offset = options.offset!;
    if (offset % 16 !== 0) throw new MisalignedError(`a Heap's offset must be a multiple of 16, got ${offset}`);
    // A heap of this shape already there is attached, never created: nothing is written,
    // so the structures this process has in its blocks are checked against it once it is
    // readable (admission both ways) instead of being taken for overlaps beforehand.
    const there = wanted ? peekHeader(shm, offset) : null;
    const attach = wanted === null || (there !== null && sameShape(there, wanted));
    const total = attach ? attachedSize(shm, offset) : prepareCreate(shm, wanted!, offset, autosize);
    this.region = Region.map(shm, offset, total);
    const buffer = this.region.mapping.buffer!;
    const w = new Int32Array(buffer, this.region.start, total / 4);
    const base = offset;
    // Through a WeakRef: the registry's entry must not keep this handle from being
    // collected; a collected handle (its finalizer not run yet) refuses nothing.
    const self = new WeakRef(this);
    const admits = (start: number, end: number): boolean => {
      const heap = self.deref();
      return heap === undefined || heap.#admits(start, end);
    };
    let forget: (() => void) | undefined;
    let session: Session;
    try {
      let found: HeaderInfo;
      if (attach) {
        found = initOrAttach(this.region, null, 0);
        if (wanted !== null && !sameShape(found, wanted)) throw new LayoutError(`at offset ${offset} of shared memory '${shm.name}' there is already a ${describeHeader(found)}; asked for a ${describeHeader(wanted)}`);
      } else found = wanted!;
      if (found.kind !== Kind.Heap) throw new LayoutError(`the structure at offset ${offset} of shared memory '${shm.name}' is not a Heap (it is a ${describeHeader(found)})`);
      const g = geometry(found.totalSize, found.depth);
      if (g === null) throw new LayoutError(`the Heap at offset ${offset} of shared memory '${shm.name}' is corrupt: size ${found.totalSize} leaves no room for blocks`);
      if (attach) {
        this.info = found;
      } else {
        forget = holdStructure(this.region, found, admits);
        this.info = initOrAttach(this.region, wanted, g.arena, () => Allocator.format(w, found.totalSize, g));
      }
      if (w[HW.ARENA] !== g.arena || w[HW.END] !== g.end || w[HW.MAP] !== g.map) {
        throw new LayoutError(`the Heap at offset ${offset} of shared memory '${shm.name}' is corrupt: its control words do not match its size (${found.totalSize}) and name count (${found.depth})`);
      }
      session = new Session(this.region, w, this.info.depth);
      if (attach) {
        const a = session.a;
        forget = holdStructure(this.region, found, admits, (start, end) => a.containing(start - base, end - base) >= 0);
      }
    } catch (err) {
      forget?.();
      this.region.unmap();
      throw err;
    }
    this.#forget = forget!;
    structures.register(this, forget!, this);
    this.#shm = shm;
    this.#s = session;
    this.#a = session.a;
  }

  /**
   * Attaches to the heap another process created at `offset`, whatever its size.
   * @throws {@link LayoutError} when there is no Heap there (zeros, garbage, another structure, another layout version).
   */
  static attach(shm: SharedMemory, options?: { offset?: number }): Heap {
    return new Heap(shm, { offset: attachOffset(shm, options, Kind.Heap, 'Heap') }, INTERNAL);
  }


  /** The smallest heap size with `names` name entries (default 64): its control area plus one small block. */
  static minimumSize(names: number = NAMES_DEFAULT): number {
    const n = checkIndex('names', names);
    if (n > NAMES_MAX) throw new OutOfRangeError(`names must be from 0 to ${NAMES_MAX}, got ${n}`);
    return minimumSize(n);
  }

  /** Byte offset of the heap in the object. */
  get offset(): number {
    return this.region.offset;
  }

  /** Bytes the heap occupies in the object (its `size`). */
  get byteLength(): number {
    return this.info.totalSize;
  }

  /** Entries of the name directory. */
  get nameCapacity(): number {
    return this.info.depth;
  }

  // ---- malloc and free ------------------------------------------------------------

  /**
   * Allocates a block of at least `n` bytes (1 to the heap's size), owned by this process.
   * Its contents are undefined except that its first 64 bytes are zero: it never carries
   * a structure header (use {@link Heap.calloc} for zeroed memory).
   * @returns The offset of its first byte in the object: a multiple of 16 (or of `options.align`).
   * @throws {@link HeapFullError} when no free block is large enough (its `largest`: what
   *   malloc surely gets at this alignment); nothing changed.
   */
  malloc(n: number, options?: AllocOptions): number {
    const s = this.#s;
    const size = s.size('malloc', n);
    const align = options === undefined ? ALIGN : s.align(options);
    const a = this.#a;
    s.enter();
    let b = 0;
    let largest = 0;
    try {
      step('heap.malloc.locked');
      b = a.malloc(size, PID, 0, align);
      if (b !== 0) a.commit();
      else largest = a.largest(align);
    } catch (err) {
      throw s.undo(err);
    } finally {
      s.leave();
    }
    if (b === 0) throw s.full(size, largest, align);
    return s.base + b + BLOCK_HEADER;
  }

  /** {@link Heap.malloc}, with the block's bytes (all {@link Heap.sizeOf} of them) zeroed. */
  calloc(n: number, options?: AllocOptions): number {
    const offset = this.malloc(n, options);
    const d = offset - this.#s.base;
    this.#s.u8.fill(0, d, d + this.#a.usable(d - BLOCK_HEADER));
    return offset;
  }

  /**
   * Frees the block at `offset` (as `malloc` returned it), merging it with free neighbours.
   * @throws {@link NotABlockError} when `offset` is not a live block of this heap (never
   *   allocated, freed already, inside a block, outside the heap, misaligned) or is a named
   *   block (use `unname`); nothing changed.
   * @throws {@link BlockInUseError} when this process still has a structure (channel,
   *   Watch, Mutex, Heap) in the block; nothing changed.
   */
  free(offset: number): void {
    const s = this.#s;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) throw new InvalidArgumentError(`free needs a block's offset (an integer), got ${describe(offset)}`);
    const a = this.#a;
    s.enter();
    let b: number;
    let named = false;
    let busy: HeldStructure | undefined;
    try {
      step('heap.free.locked');
      b = a.blockOf(offset - s.base);
      named = b >= 0 && a.named(b);
      busy = b >= 0 && !named ? s.inUse(b) : undefined;
      if (b >= 0 && !named && busy === undefined) {
        a.free(b);
        a.commit();
      }
    } catch (err) {
      throw s.undo(err);
    } finally {
      s.leave();
    }
    if (b < 0) throw s.notBlock('free', offset, b);
    if (busy !== undefined) throw s.blockInUse(`free(${offset})`, b, busy);
    if (named) throw new NotABlockError(`free(${offset}): the block at offset ${offset} of ${s.where()} is a named block; remove it with unname(); nothing was freed`);
  }

  /** Usable bytes of the block at `offset` (at least what was asked for). */
  sizeOf(offset: number): number {
    return this.#a.usable(this.#s.live('sizeOf', offset));
  }

  /** Process that allocated the block at `offset`; 0 for a named block. */
  ownerOf(offset: number): number {
    return this.#a.owner(this.#s.live('ownerOf', offset));
  }

  /**
   * Makes this process the owner of the block at `offset` (under the lock, logged like
   * every change): `reclaim` / `reclaimDead` then go by this process's life, not the
   * allocator's. For a block handed from the process that allocated it to the one that
   * keeps using it.
   * @returns The previous owner's pid.
   * @throws {@link NotABlockError} when `offset` is not a live block of this heap, or is a named block (owned by no process); nothing changed.
   */
  adopt(offset: number): number {
    return adopt(this.#s, offset);
  }

  /** A Region over exactly the block at `offset` (its {@link Heap.sizeOf} bytes). */
  map(offset: number): Region {
    const b = this.#s.live('map', offset);
    return Region.map(this.#shm, offset, this.#a.usable(b));
  }

  /** For the overlap registry: a structure at object bytes `[start, end)` lies within one live block (anywhere in it). Reads without the lock. */
  #admits(start: number, end: number): boolean {
    if (!this.region.isMapped) return false;
    return this.#a.containing(start - this.region.offset, end - this.region.offset) >= 0;
  }

  // ---- named blocks ---------------------------------------------------------------

  /**
   * The block named `name`, allocated (`n` bytes, zeroed) by the first process to ask;
   * every later call, in any process, gets the same offset. Atomic: two processes asking
   * at once get one block. A named block belongs to no process (`reclaim` leaves it).
   * @throws {@link HeapNameError} when the block exists and is smaller than `n` (or not aligned to `options.align`).
   * @throws {@link HeapFullError} when it must be allocated and nothing fits, or the directory is full.
   */
  named(name: string, n: number, options?: AllocOptions): number {
    return findOrCreate(this.#s, name, n, this.#s.align(options));
  }

  /** The offset of the block named `name`, or `undefined`. */
  lookup(name: string): number | undefined {
    return lookup(this.#s, name);
  }

  /**
   * Removes the name and **frees its block**: call it only once no process uses the block.
   * @returns `true` when the name existed.
   * @throws {@link BlockInUseError} when this process still has a structure in the block; nothing changed.
   */
  unname(name: string): boolean {
    return unname(this.#s, name);
  }

  /** Every named block: name, offset, usable size. */
  names(): NamedBlock[] {
    return list(this.#s);
  }

  // ---- figures, checks, reclaim ---------------------------------------------------

  /** Size, bytes used and free, the largest allocatable block, block counts. */
  stats(): HeapStats {
    const s = this.#s;
    s.enter();
    try {
      return statsOf(this.#a);
    } finally {
      s.leave();
    }
  }

  /**
   * Walks every block, free list and name, verifying every invariant of the layout.
   * @returns The statistics, verified.
   * @throws {@link HeapCorruptError} naming the first invariant broken.
   */
  check(): HeapStats {
    const s = this.#s;
    s.enter();
    try {
      return checkHeap(this.#a);
    } catch (err) {
      throw s.corrupt(err);
    } finally {
      s.leave();
    }
  }

  /**
   * Frees every (unnamed) block allocated by process `pid`, which must be gone (judged
   * with the lock held, so a process that got the pid meanwhile counts as running).
   * @throws {@link InvalidArgumentError} when `pid` is not a positive integer or the process still runs; nothing freed.
   */
  reclaim(pid: number): ReclaimResult {
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fffffff) throw new InvalidArgumentError(`reclaim needs a process id (a positive integer), got ${describe(pid)}`);
    // Judged under the lock, as reclaimDead does: a pid found dead before waiting for the
    // lock may belong to a new process (which may allocate) by the time it is ours.
    return reclaim(this.#s, (owner) => owner === pid, () => {
      if (processAlive(pid)) throw new InvalidArgumentError(`reclaim(${pid}): process ${pid} is still running; only a dead process's blocks can be reclaimed; nothing was freed`);
    });
  }

  /** Frees every (unnamed) block whose owner process is gone. */
  reclaimDead(): ReclaimResult {
    const verdict = new Map<number, boolean>();
    return reclaim(this.#s, (owner) => {
      let dead = verdict.get(owner);
      if (dead === undefined) verdict.set(owner, (dead = !processAlive(owner)));
      return dead;
    });
  }

  // ---- letting go -----------------------------------------------------------------

  /** Unmaps the heap in this process; the heap and its blocks stay for everyone. Idempotent. */
  release(): void {
    if (!this.region.isMapped) return;
    this.#forget();
    structures.unregister(this);
    this.region.unmap();
  }

  /** Same as {@link Heap.release} (`using heap = ...`). */
  [Symbol.dispose](): void {
    this.release();
  }

}

export type { HeapStats } from './steps.js';
export { HEAP_STEPS, type HeapStep } from './steps.js';
export type { NamedBlock, ReclaimResult } from './named.js';
export type { AllocOptions } from './session.js';
