/**
 * The allocator of a Heap: a boundary-tag heap with segregated free lists (TLSF: two
 * levels of size classes, a bitmap per level, O(1) malloc and free, immediate
 * coalescing), whose every write goes through an undo log so that an operation a dead
 * process left half done can be rolled back. Layout and protocol: layout.ts.
 *
 * Everything here runs with the heap's lock held (heap.ts takes it); nothing here waits.
 * Offsets are bytes from the heap's start; a block's words are at `b >> 2`.
 * @internal
 */
import { stepHook } from '../sync/steps.js';
import { step } from './steps.js';
import {
  ALIGN, BLOCK_HEADER, FL_COUNT, FREE_BIT, HEADER_BYTES, HW, LOG_CAPACITY, MIN_BLOCK, NAME_ENTRY, NAMED_BIT, NAMES_OFFSET, SIZE_MASK, SL_COUNT, SL_LOG, SMALL,
} from './layout.js';

/** Why an offset is not a live block. */
export const NOT_ALIGNED = -1;
export const OUT_OF_RANGE = -2;
export const NOT_LIVE = -3;

// Size class of the last mapping (no allocation on the hot path).
let FL = 0;
let SL = 0;

function mapInsert(s: number): void {
  if (s < SMALL) {
    FL = 0;
    SL = s >>> 4;
  } else {
    const f = 31 - Math.clz32(s);
    FL = f - 7;
    SL = (s >>> (f - SL_LOG)) & (SL_COUNT - 1);
  }
}

/** The class whose every block fits `s` bytes (rounding `s` up to a class boundary). */
function mapSearch(s: number): void {
  if (s >= SMALL) s += (1 << (31 - Math.clz32(s) - SL_LOG)) - 1;
  mapInsert(s);
}

const ctz = (x: number): number => 31 - Math.clz32(x & -x);

/** Thrown by {@link Allocator.check} and a repair that finds the heap's memory overwritten. */
export class Corrupt extends Error {}

/** The allocator over the words of one heap. */
export class Allocator {
  readonly w: Int32Array;
  readonly size: number;
  readonly arena: number;
  readonly end: number;
  readonly map: number;
  readonly names: number;

  /** Offset of the heap in its object: alignment is of offsets in the object. */
  readonly base: number;

  constructor(w: Int32Array, size: number, names: number, base: number) {
    this.w = w;
    this.base = base;
    this.size = size;
    this.names = names;
    this.arena = w[HW.ARENA]!;
    this.end = w[HW.END]!;
    this.map = w[HW.MAP]! >> 2;
  }

  /** Writes the control words and one free block spanning the arena (the initialiser, before `ready`). */
  static format(w: Int32Array, size: number, g: { map: number; arena: number; end: number }): void {
    w[HW.ARENA] = g.arena;
    w[HW.END] = g.end;
    w[HW.MAP] = g.map;
    const b = g.arena;
    const s = g.end - g.arena;
    w[b >> 2] = s | FREE_BIT;
    w[(b >> 2) + 1] = 0;
    w[(b >> 2) + 2] = 0;
    w[(b >> 2) + 3] = 0;
    w[g.end >> 2] = 0;
    w[(g.end >> 2) + 1] = b;
    mapInsert(s);
    w[HW.HEADS + FL * SL_COUNT + SL] = b;
    w[HW.SL_BITMAP + FL] = 1 << SL;
    w[HW.FL_BITMAP] = 1 << FL;
    w[HW.FREE] = s;
    w[HW.FREE_BLOCKS] = 1;
    void size;
  }

  // ---- the undo log ---------------------------------------------------------------

  /** Writes `v` to word `i`, logging the old value first (a no-op when it is already `v`). */
  set(i: number, v: number): void {
    const w = this.w;
    const old = w[i]!;
    if (old === v) return;
    const n = w[HW.LOG_COUNT]!;
    if (n >= LOG_CAPACITY) throw new Error(`heap operation needs more than ${LOG_CAPACITY} undo entries`);
    const e = HW.LOG + 2 * n;
    // Plain stores, in program order: a process killed between two of them leaves them
    // done in this order (x86 and ARM both execute a thread's stores in order as seen by
    // itself, and every store executed is visible to the repairer after its lock CAS).
    w[e] = i;
    w[e + 1] = old;
    if (stepHook !== undefined) stepHook('heap.log.entry');
    w[HW.LOG_COUNT] = n + 1;
    if (stepHook !== undefined) stepHook('heap.log.counted');
    w[i] = v;
  }

  /** Commits the operation: the log is cleared. */
  commit(): void {
    this.w[HW.LOG_COUNT] = 0;
    step('heap.commit');
  }

  /** `true` when a dead holder left an operation half done. */
  get dirty(): boolean {
    return this.w[HW.LOG_COUNT] !== 0;
  }

  /** Rolls back the log (idempotent: restores from the last entry down, then clears). */
  rollback(): void {
    const w = this.w;
    const n = w[HW.LOG_COUNT]!;
    step('heap.repair.found');
    if (n < 0 || n > LOG_CAPACITY) throw new Corrupt(`the undo log count is ${n} (at most ${LOG_CAPACITY})`);
    const limit = this.size >> 2;
    for (let k = n - 1; k >= 0; k--) {
      const i = w[HW.LOG + 2 * k]!;
      // Never the lock words or the log itself; never past the heap.
      if (i < HW.USED || (i >= HW.LOG && i < HW.LOG + 2 * LOG_CAPACITY) || i >= limit) throw new Corrupt(`undo entry ${k} names word ${i}, outside what an operation writes`);
      w[i] = w[HW.LOG + 2 * k + 1]!;
      step('heap.repair.undone');
    }
    step('heap.repair.restored');
    w[HW.LOG_COUNT] = 0;
    Atomics.add(w, HW.REPAIRS, 1);
  }

  // ---- free lists -----------------------------------------------------------------

  #insert(b: number, s: number): void {
    const w = this.w;
    mapInsert(s);
    const fl = FL;
    const sl = SL;
    const head = HW.HEADS + fl * SL_COUNT + sl;
    const first = w[head]!;
    this.set((b >> 2) + 2, first);
    this.set((b >> 2) + 3, 0);
    if (first !== 0) this.set((first >> 2) + 3, b);
    this.set(head, b);
    this.set(HW.SL_BITMAP + fl, w[HW.SL_BITMAP + fl]! | (1 << sl));
    this.set(HW.FL_BITMAP, w[HW.FL_BITMAP]! | (1 << fl));
  }

  #remove(b: number, s: number): void {
    const w = this.w;
    mapInsert(s);
    const fl = FL;
    const sl = SL;
    const next = w[(b >> 2) + 2]!;
    const prev = w[(b >> 2) + 3]!;
    if (next !== 0) this.set((next >> 2) + 3, prev);
    if (prev !== 0) this.set((prev >> 2) + 2, next);
    else {
      const head = HW.HEADS + fl * SL_COUNT + sl;
      this.set(head, next);
      if (next === 0) {
        const slMap = w[HW.SL_BITMAP + fl]! & ~(1 << sl);
        this.set(HW.SL_BITMAP + fl, slMap);
        if (slMap === 0) this.set(HW.FL_BITMAP, w[HW.FL_BITMAP]! & ~(1 << fl));
      }
    }
  }

  /** Bytes to split off the front of block `b` so that its data is aligned to `align` (0, or a free block's worth). */
  #gap(b: number, align: number): number {
    const gap = -(this.base + b + BLOCK_HEADER) & (align - 1);
    return gap !== 0 && gap < MIN_BLOCK ? gap + align : gap;
  }

  /** `true` when the free block `b` holds `need` bytes after its gap for `align`. */
  #fits(b: number, need: number, align: number): boolean {
    return (this.w[b >> 2]! & SIZE_MASK) - this.#gap(b, align) >= need;
  }

  /**
   * A free block holding `need` bytes at `align`, or 0: the block {@link #find} gives for
   * `need` when it is aligned enough (no padding wasted), else any block of the padded
   * size, else the first fit among the largest blocks (the list {@link largest} reads, so
   * that `largest(align)` is a size malloc really gets).
   */
  #findAligned(need: number, align: number): number {
    let b = this.#find(need);
    if (b !== 0 && this.#fits(b, need, align)) return b;
    b = this.#find(need + align + MIN_BLOCK);
    if (b !== 0) return b;
    const w = this.w;
    for (let c = this.#top(), n = w[HW.FREE_BLOCKS]!; c !== 0 && n >= 0; c = w[(c >> 2) + 2]!, n--) {
      if (this.#fits(c, need, align)) return c;
    }
    return 0;
  }

  /** The first block of the list holding the largest free blocks, or 0. */
  #top(): number {
    const w = this.w;
    const flMap = w[HW.FL_BITMAP]!;
    if (flMap === 0) return 0;
    const fl = 31 - Math.clz32(flMap);
    const sl = 31 - Math.clz32(w[HW.SL_BITMAP + fl]!);
    return w[HW.HEADS + fl * SL_COUNT + sl]!;
  }

  /** A free block of at least `need` bytes, or 0. */
  #find(need: number): number {
    const w = this.w;
    mapSearch(need);
    if (FL < FL_COUNT) {
      let fl = FL;
      let slMap = w[HW.SL_BITMAP + fl]! & (-1 << SL);
      if (slMap === 0) {
        const flMap = w[HW.FL_BITMAP]! & (-1 << (fl + 1));
        if (flMap !== 0) {
          fl = ctz(flMap);
          slMap = w[HW.SL_BITMAP + fl]!;
        }
      }
      if (slMap !== 0) return w[HW.HEADS + fl * SL_COUNT + ctz(slMap)]!;
    }
    // Nothing in a class that surely fits: the class of `need` itself may hold a block
    // big enough (first fit in that one list), so that `largest` is honest.
    mapInsert(need);
    if (FL >= FL_COUNT) return 0;
    // (Bounded by the free block count: a list made cyclic by stray writes cannot hang it.)
    for (let b = w[HW.HEADS + FL * SL_COUNT + SL]!, n = w[HW.FREE_BLOCKS]!; b !== 0 && n >= 0; b = w[(b >> 2) + 2]!, n--) {
      if ((w[b >> 2]! & SIZE_MASK) >= need) return b;
    }
    return 0;
  }

  // ---- the map of live blocks -----------------------------------------------------

  #bit(b: number): number {
    return (b - this.arena) >> 4;
  }

  #live(b: number): boolean {
    const g = this.#bit(b);
    return (this.w[this.map + (g >> 5)]! & (1 << (g & 31))) !== 0;
  }

  /** The block whose data is at `d`, or NOT_ALIGNED / OUT_OF_RANGE / NOT_LIVE. Reads only. */
  blockOf(d: number): number {
    if (d % ALIGN !== 0) return NOT_ALIGNED;
    const b = d - BLOCK_HEADER;
    if (b < this.arena || b >= this.end) return OUT_OF_RANGE;
    return this.#live(b) ? b : NOT_LIVE;
  }

  /**
   * The live block whose data holds bytes `[d, e)` (offsets from the heap's start), or -1:
   * the nearest live block starting at or before `d` − 16 (the live-block map scanned
   * backwards), if it reaches to `e`. Reads only (the overlap registry calls it without
   * the lock: a block this process is creating a structure in does not change meanwhile).
   */
  containing(d: number, e: number): number {
    if (d < this.arena + BLOCK_HEADER || e > this.end || e <= d) return -1;
    const w = this.w;
    const g = (d - BLOCK_HEADER - this.arena) >> 4;
    let k = g >> 5;
    let bits = w[this.map + k]! & (-1 >>> (31 - (g & 31)));
    while (bits === 0) {
      if (--k < 0) return -1;
      bits = w[this.map + k]!;
    }
    const b = this.arena + ((k << 5) + 31 - Math.clz32(bits)) * ALIGN;
    return e <= b + (w[b >> 2]! & SIZE_MASK) ? b : -1;
  }

  /** Bytes of data of the live block at `b`. */
  usable(b: number): number {
    return (this.w[b >> 2]! & SIZE_MASK) - BLOCK_HEADER;
  }

  /** Owner pid of the live block at `b` (0: named). */
  owner(b: number): number {
    return this.w[(b >> 2) + 2]!;
  }

  /** Makes `owner` the owner of the live, unnamed block at `b` (logged). */
  adopt(b: number, owner: number): void {
    this.set((b >> 2) + 2, owner);
  }

  /** Makes the live block at `b` a named block: the NAMED bit, owner 0 (logged). */
  name(b: number): void {
    this.set(b >> 2, this.w[b >> 2]! | NAMED_BIT);
    this.set((b >> 2) + 2, 0);
  }

  /** `true` when the live block at `b` is named. */
  named(b: number): boolean {
    return (this.w[b >> 2]! & NAMED_BIT) !== 0;
  }

  // ---- malloc and free ------------------------------------------------------------

  /**
   * Allocates a block for `asked` bytes of data whose object offset (base + b + 16) is a
   * multiple of `align` (a power of two, 16 or more); its offset, or 0 when nothing fits.
   */
  malloc(asked: number, owner: number, flags: number, align: number): number {
    const w = this.w;
    const need = Math.max(MIN_BLOCK, (asked + BLOCK_HEADER + ALIGN - 1) & SIZE_MASK);
    let b = align === ALIGN ? this.#find(need) : this.#findAligned(need, align);
    if (b === 0) return 0;
    let s = w[b >> 2]! & SIZE_MASK;
    this.#remove(b, s);
    step('heap.malloc.taken');
    let freeBytes = w[HW.FREE]! - s;
    let freeBlocks = w[HW.FREE_BLOCKS]! - 1;
    if (align !== ALIGN) {
      const gap = this.#gap(b, align);
      if (gap !== 0) {
        // The front becomes a free block of its own (the block before it is not free).
        const nb = b + gap;
        this.set(b >> 2, gap | FREE_BIT);
        this.set((nb >> 2) + 1, b);
        this.set(((b + s) >> 2) + 1, nb);
        this.#insert(b, gap);
        freeBytes += gap;
        freeBlocks += 1;
        b = nb;
        s -= gap;
      }
    }
    const rest = s - need;
    if (rest >= MIN_BLOCK) {
      const r = b + need;
      this.set(r >> 2, rest | FREE_BIT);
      this.set((r >> 2) + 1, b);
      this.set(((r + rest) >> 2) + 1, r);
      this.#insert(r, rest);
      s = need;
      freeBytes += rest;
      freeBlocks += 1;
      step('heap.malloc.split');
    }
    this.set(b >> 2, s | flags);
    this.set((b >> 2) + 2, owner);
    this.set((b >> 2) + 3, asked);
    const g = this.#bit(b);
    const m = this.map + (g >> 5);
    this.set(m, w[m]! | (1 << (g & 31)));
    // No block is handed out holding a structure header (a freed channel's, or one that
    // lay inside a freed block): its first 64 bytes of data (a header's size) are zeroed.
    // Not logged: rolled back, they are the data of a free block, which nothing reads.
    // (A loop: for 16 words, half the cost of TypedArray.fill.)
    for (let i = (b + BLOCK_HEADER) >> 2, e = i + (Math.min(HEADER_BYTES, s - BLOCK_HEADER) >> 2); i < e; i++) w[i] = 0;
    this.set(HW.USED, w[HW.USED]! + s);
    this.set(HW.BLOCKS, w[HW.BLOCKS]! + 1);
    this.set(HW.FREE, freeBytes);
    this.set(HW.FREE_BLOCKS, freeBlocks);
    step('heap.malloc.marked');
    return b;
  }

  /** Frees the live block at `b` (checked by the caller), merging it with free neighbours. */
  free(b: number): void {
    const w = this.w;
    let s = w[b >> 2]! & SIZE_MASK;
    const g = this.#bit(b);
    const m = this.map + (g >> 5);
    this.set(m, w[m]! & ~(1 << (g & 31)));
    this.set(HW.USED, w[HW.USED]! - s);
    this.set(HW.BLOCKS, w[HW.BLOCKS]! - 1);
    let freeBytes = w[HW.FREE]! + s;
    let freeBlocks = w[HW.FREE_BLOCKS]! + 1;
    const next = b + s;
    const nh = w[next >> 2]!;
    if ((nh & FREE_BIT) !== 0) {
      const ns = nh & SIZE_MASK;
      this.#remove(next, ns);
      s += ns;
      freeBlocks -= 1;
    }
    const prev = w[(b >> 2) + 1]!;
    if (prev !== 0 && (w[prev >> 2]! & FREE_BIT) !== 0) {
      const ps = w[prev >> 2]! & SIZE_MASK;
      this.#remove(prev, ps);
      b = prev;
      s += ps;
      freeBlocks -= 1;
    }
    step('heap.free.merged');
    this.set(b >> 2, s | FREE_BIT);
    this.set(((b + s) >> 2) + 1, b);
    this.#insert(b, s);
    this.set(HW.FREE, freeBytes);
    this.set(HW.FREE_BLOCKS, freeBlocks);
    step('heap.free.inserted');
  }

  /**
   * Bytes of data of the largest block malloc can hand out now at `align` (0 when none):
   * with 16, exactly the largest; with more, what the largest blocks give after their
   * gaps (malloc of that many bytes at that alignment succeeds; a smaller, better aligned
   * block may give more).
   */
  largest(align: number = ALIGN): number {
    const w = this.w;
    let max = 0;
    for (let b = this.#top(), n = 0; b !== 0 && n <= w[HW.FREE_BLOCKS]!; b = w[(b >> 2) + 2]!, n++) {
      max = Math.max(max, (w[b >> 2]! & SIZE_MASK) - (align === ALIGN ? 0 : this.#gap(b, align)));
    }
    return max <= BLOCK_HEADER ? 0 : max - BLOCK_HEADER;
  }

  /** Word index of name entry `k`. */
  entry(k: number): number {
    return (NAMES_OFFSET + k * NAME_ENTRY) >> 2;
  }
}
