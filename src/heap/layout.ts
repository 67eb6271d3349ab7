/**
 * Byte layout of a Heap (structure kind 48, layout version 2): an allocator inside the
 * shared memory, handing out blocks by offset. docs/heap-layout.md holds the same tables
 * for C programs. Little-endian 32-bit words; offsets are relative to the heap's start
 * (16-byte aligned in the object) unless said otherwise.
 *
 * ## Header (bytes 0–63)
 * The common header of src/channel/layout.ts with kind 48, payload 0, depth = capacity of
 * the name directory (entries), width 0, slotStride 0, slotsOffset = `arena` (where the
 * blocks begin), totalSize = the heap's size in bytes (a multiple of 16).
 *
 * ## Control words (all written only by the holder of `lock`, except the lock's own)
 * | offset | field       | meaning |
 * |-------:|-------------|---------|
 * | 64     | lock        | 0 free, otherwise the holder's lock word: pid in bits 21–0, tag in 31–22 (sync/robust-lock.ts) |
 * | 68     | lockWaiters | processes asleep on `lock` |
 * | 72     | deaths      | holders that died holding `lock` (counted by whoever took over) |
 * | 76     | repairs     | undo logs rolled back (operations a dead holder left half done) |
 * | 80     | logCount    | entries of the undo log in force; 0 outside an operation |
 * | 96     | used        | bytes of allocated blocks, their 16-byte headers included |
 * | 100    | free        | bytes of free blocks, headers included |
 * | 104    | blocks      | allocated blocks (named ones included) |
 * | 108    | freeBlocks  | free blocks |
 * | 112    | named       | entries of the name directory in use |
 * | 116    | arena       | offset of the first block (= header slotsOffset) |
 * | 120    | end         | offset of the end sentinel (totalSize − 16) |
 * | 124    | map         | offset of the live-block bitmap |
 * | 128    | flBitmap    | bit f set ⇔ some list of class f is not empty |
 * | 132    | slBitmap[f] | 24 words: bit s set ⇔ list (f, s) is not empty |
 * | 256    | heads[f][s] | 24 × 16 words: offset of the first free block of list (f, s), 0 if none |
 * | 1792   | log[i]      | 64 entries of 8 bytes: u32 word index (offset / 4), u32 old value |
 * | 2304   | names[i]    | `depth` entries of 64 bytes, see below |
 * | map    | live bits   | bit g set ⇔ an allocated block starts at arena + 16·g |
 * | arena  | blocks      | physical blocks back to back, then the end sentinel |
 *
 * ## Block (at offset b, a multiple of 16; its data at b + 16)
 * | offset | field    | meaning |
 * |-------:|----------|---------|
 * | 0      | size     | bytes of the block with its header (multiple of 16, ≥ 32); bit 0 FREE, bit 1 NAMED |
 * | 4      | prevPhys | offset of the block physically before, 0 for the first |
 * | 8      | owner / next | allocated: pid of the process that allocated it (0 when named); free: next block of its list (0 none) |
 * | 12     | asked / prev | allocated: bytes asked for; free: previous block of its list (0 none) |
 * The end sentinel is a block header of size 0, not free, at `end`.
 *
 * ## Name entry (64 bytes)
 * | offset | field  | meaning |
 * |-------:|--------|---------|
 * | 0      | block  | offset (from the heap's start) of the named block's data; 0: entry unused |
 * | 4      | length | bytes of the name (1–56) |
 * | 8      | name   | UTF-8 bytes, zero-padded |
 *
 * Size classes (TLSF): a block of s bytes is in list (0, s / 16) when s < 256, otherwise
 * in (f − 7, (s >> (f − 4)) & 15) with f = ⌊log2 s⌋. malloc rounds its request up to the
 * next list boundary, so any block of the first non-empty list at or above it fits.
 *
 * Protocol (src/heap/allocator.ts): every change happens under `lock`. Before each word
 * it changes, the holder appends (index, old value) to the log, then bumps `logCount`,
 * then writes the word; the operation commits by storing `logCount` = 0. Whoever takes
 * `lock` with `logCount` ≠ 0 (its holder died) restores the entries from last to first,
 * then stores 0: an idempotent repair, so a repairer killed half-way is repaired alike.
 * malloc zeroes the first 64 bytes of the data it hands out (not logged), so no block
 * comes out holding a structure header.
 * @internal
 */

/** Indexes of 32-bit words (byte offset / 4). */
export const HW = {
  LOCK: 64 / 4,
  LOCK_WAITERS: 68 / 4,
  DEATHS: 72 / 4,
  REPAIRS: 76 / 4,
  LOG_COUNT: 80 / 4,
  USED: 96 / 4,
  FREE: 100 / 4,
  BLOCKS: 104 / 4,
  FREE_BLOCKS: 108 / 4,
  NAMED: 112 / 4,
  ARENA: 116 / 4,
  END: 120 / 4,
  MAP: 124 / 4,
  FL_BITMAP: 128 / 4,
  SL_BITMAP: 132 / 4,
  HEADS: 256 / 4,
  LOG: 1792 / 4,
} as const;

/** Byte offset of the name directory. */
export const NAMES_OFFSET = 2304;
/** Bytes of one name entry, and the longest name in bytes. */
export const NAME_ENTRY = 64;
export const NAME_MAX = 56;
/** Default and largest number of name entries. */
export const NAMES_DEFAULT = 64;
export const NAMES_MAX = 65536;

/** Undo log capacity (entries). */
export const LOG_CAPACITY = 64;

/** Size classes: first-level count and second-level subdivisions. */
export const FL_COUNT = 24;
export const SL_COUNT = 16;
export const SL_LOG = 4;
/** Blocks below this size sit in the linear first class. */
export const SMALL = 256;

/** Block header bytes, alignment of blocks and data, smallest block. */
export const BLOCK_HEADER = 16;
export const ALIGN = 16;
export const MIN_BLOCK = 32;
/** Bytes of a structure header (layout.ts H.SIZE): malloc zeroes this much of a block's data, so no block is handed out holding one. */
export const HEADER_BYTES = 64;
/** Flag bits of a block's size word. */
export const FREE_BIT = 1;
export const NAMED_BIT = 2;
export const SIZE_MASK = ~15;

/** Largest heap: offsets stay positive 32-bit integers. */
export const HEAP_MAX = 0x7fffffc0;

const up = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Where things go in a heap of `size` bytes with `names` directory entries. */
export interface HeapGeometry {
  map: number;
  arena: number;
  end: number;
}

/** The geometry of a heap, or `null` when `size` leaves no room for one block. */
export function geometry(size: number, names: number): HeapGeometry | null {
  const map = up(NAMES_OFFSET + names * NAME_ENTRY, 64);
  if (size <= map) return null;
  // One bit per 16 bytes of whatever follows the map (a slight over-estimate).
  const mapBytes = up(Math.ceil((size - map) / ALIGN / 32) * 4, 64);
  const arena = map + mapBytes;
  const end = size - BLOCK_HEADER;
  if (end - arena < MIN_BLOCK) return null;
  return { map, arena, end };
}

/** The smallest heap with `names` entries (one block of 16 usable bytes). */
export function minimumSize(names: number): number {
  let size = up(NAMES_OFFSET + names * NAME_ENTRY, 64) + 64 + MIN_BLOCK + BLOCK_HEADER;
  while (geometry(size, names) === null) size += ALIGN;
  return size;
}
