/**
 * `heap.check()`: walks a heap and verifies every invariant of layout.ts, with the lock
 * held; and the other whole-heap reads (statistics, the list of allocated blocks). Reads only. Throws {@link Corrupt} naming the first broken invariant.
 * @internal
 */
import { Allocator, Corrupt } from './allocator.js';
import type { HeapStats } from './steps.js';
import { BLOCK_HEADER, FL_COUNT, FREE_BIT, HW, MIN_BLOCK, NAME_MAX, NAMED_BIT, SIZE_MASK, SL_COUNT, SMALL, SL_LOG } from './layout.js';

/** The statistics words. */
export function statsOf(a: Allocator): HeapStats {
  const w = a.w;
  return {
    size: a.size,
    used: w[HW.USED]! >>> 0,
    free: w[HW.FREE]! >>> 0,
    largest: a.largest(),
    blocks: w[HW.BLOCKS]!,
    freeBlocks: w[HW.FREE_BLOCKS]!,
    named: w[HW.NAMED]!,
    repairs: w[HW.REPAIRS]! >>> 0,
  };
}

/** Allocated blocks, in address order: offset, owner and flags (for reclaim). */
export function allocatedBlocks(a: Allocator): { b: number; owner: number; named: boolean }[] {
  const w = a.w;
  const out: { b: number; owner: number; named: boolean }[] = [];
  for (let b = a.arena; b < a.end; ) {
    const h = w[b >> 2]!;
    const s = h & SIZE_MASK;
    if (s < MIN_BLOCK) throw new Corrupt(`the block at heap offset ${b} has size ${s}`);
    if ((h & FREE_BIT) === 0) out.push({ b, owner: w[(b >> 2) + 2]!, named: (h & NAMED_BIT) !== 0 });
    b += s;
  }
  return out;
}

function classOf(s: number): number {
  if (s < SMALL) return s >>> 4;
  const f = 31 - Math.clz32(s);
  return (f - 7) * SL_COUNT + ((s >>> (f - SL_LOG)) & (SL_COUNT - 1));
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Verifies the heap; returns its statistics. */
export function checkHeap(a: Allocator): HeapStats {
  const w = a.w;
  const fail = (what: string): never => {
    throw new Corrupt(what);
  };
  if (w[HW.LOG_COUNT] !== 0) fail(`the undo log holds ${w[HW.LOG_COUNT]} entries outside an operation`);
  // 1. The physical chain: sizes, back links, flags, live bits, no two free neighbours.
  const free = new Set<number>();
  const namedBlocks = new Set<number>();
  let used = 0, freeBytes = 0, blocks = 0, prev = 0, prevFree = false;
  let b = a.arena;
  while (b !== a.end) {
    const h = w[b >> 2]!;
    const s = h & SIZE_MASK;
    if (s < MIN_BLOCK || b + s > a.end || (h & 12) !== 0) fail(`the block at heap offset ${b} has header 0x${(h >>> 0).toString(16)} (size ${s}, the arena ends at ${a.end})`);
    if (w[(b >> 2) + 1] !== prev) fail(`the block at heap offset ${b} says the block before it is at ${w[(b >> 2) + 1]}, not ${prev}`);
    const isFree = (h & FREE_BIT) !== 0;
    const live = a.blockOf(b + BLOCK_HEADER) === b;
    if (isFree === live) fail(`the block at heap offset ${b} is ${isFree ? 'free' : 'allocated'} but its live bit is ${live ? 'set' : 'clear'}`);
    if (isFree) {
      if (prevFree) fail(`the free block at heap offset ${b} follows another free block (not merged)`);
      if ((h & NAMED_BIT) !== 0) fail(`the free block at heap offset ${b} is marked named`);
      free.add(b);
      freeBytes += s;
    } else {
      used += s;
      blocks++;
      if ((h & NAMED_BIT) !== 0) namedBlocks.add(b);
    }
    prevFree = isFree;
    prev = b;
    b += s;
  }
  if (w[a.end >> 2] !== 0) fail(`the end sentinel at heap offset ${a.end} holds 0x${(w[a.end >> 2]! >>> 0).toString(16)}, not 0`);
  if (w[(a.end >> 2) + 1] !== prev) fail(`the end sentinel says the last block is at ${w[(a.end >> 2) + 1]}, not ${prev}`);
  let bits = 0;
  for (let i = a.map; i < a.arena >> 2; i++) bits += popcount(w[i]!);
  if (bits !== blocks) fail(`the live-block map has ${bits} bits set for ${blocks} allocated blocks`);
  // 2. The free lists: each free block once, in its class, links both ways, bitmaps exact.
  let listed = 0;
  let flWant = 0;
  for (let fl = 0; fl < FL_COUNT; fl++) {
    let slWant = 0;
    for (let sl = 0; sl < SL_COUNT; sl++) {
      let before = 0;
      for (let f = w[HW.HEADS + fl * SL_COUNT + sl]!; f !== 0; f = w[(f >> 2) + 2]!) {
        if (!free.has(f)) fail(`free list (${fl}, ${sl}) holds heap offset ${f}, which is not a free block`);
        if (classOf(w[f >> 2]! & SIZE_MASK) !== fl * SL_COUNT + sl) fail(`the free block at heap offset ${f} (${w[f >> 2]! & SIZE_MASK} bytes) is in list (${fl}, ${sl}), not its class`);
        if (w[(f >> 2) + 3] !== before) fail(`the free block at heap offset ${f} links back to ${w[(f >> 2) + 3]}, not ${before}`);
        free.delete(f);
        before = f;
        listed++;
      }
      if (before !== 0) slWant |= 1 << sl;
    }
    if (w[HW.SL_BITMAP + fl] !== slWant) fail(`second-level bitmap ${fl} is 0x${(w[HW.SL_BITMAP + fl]! >>> 0).toString(16)}, its lists say 0x${(slWant >>> 0).toString(16)}`);
    if (slWant !== 0) flWant |= 1 << fl;
  }
  if (w[HW.FL_BITMAP] !== flWant) fail(`the first-level bitmap is 0x${(w[HW.FL_BITMAP]! >>> 0).toString(16)}, its lists say 0x${(flWant >>> 0).toString(16)}`);
  if (free.size !== 0) fail(`${free.size} free block(s) are on no free list (the first at heap offset ${[...free][0]})`);
  // 3. The statistics words.
  const st = statsOf(a);
  const want = { used, free: freeBytes, blocks, freeBlocks: listed, named: namedBlocks.size };
  for (const [k, v] of Object.entries(want)) {
    if (st[k as keyof HeapStats] !== v) fail(`the ${k} word holds ${st[k as keyof HeapStats]}, the blocks say ${v}`);
  }
  if (used + freeBytes !== a.end - a.arena) fail(`used ${used} + free ${freeBytes} bytes is not the arena's ${a.end - a.arena}`);
  // 4. The name directory: each entry names a distinct named block.
  let entries = 0;
  for (let k = 0; k < a.names; k++) {
    const e = a.entry(k);
    const d = w[e]!;
    if (d === 0) continue;
    const length = w[e + 1]!;
    if (length < 1 || length > NAME_MAX) fail(`name entry ${k} has length ${length}`);
    if (!namedBlocks.delete(d - BLOCK_HEADER)) fail(`name entry ${k} points at heap offset ${d}, not a named block (or one named twice)`);
    entries++;
  }
  if (namedBlocks.size !== 0) fail(`${namedBlocks.size} named block(s) have no name entry`);
  if (entries !== w[HW.NAMED]) fail(`the named word holds ${w[HW.NAMED]}, the directory has ${entries} entries`);
  return st;
}
