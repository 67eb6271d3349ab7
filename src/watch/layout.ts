/**
 * Byte layout of a Watch (structure kind 32, layout version 2): one value, replaced by
 * writers, read whole by readers. docs/watch-layout.md holds the same tables for C
 * programs. Little-endian 32-bit words, offsets relative to the structure's start
 * (16-byte aligned in the object).
 *
 * ## Header (bytes 0–63)
 * The common header of src/channel/layout.ts with kind 32, payload 2 (Variable), depth 2
 * (the two buffers), width = capacity, slotStride = the bytes of one buffer
 * (⌈(12 + capacity) / 64⌉ · 64), slotsOffset 256, totalSize 256 + 2 · slotStride.
 *
 * ## Control words
 * | offset | field       | written by                     | ordering | meaning |
 * |-------:|-------------|--------------------------------|----------|---------|
 * | 64     | version     | the writer holding `lock`      | seq-cst store, after the buffer is filled | writes published so far; 0: never written (after 2^32 − 1 it wraps to 2, keeping the buffer's parity). The value is in buffer `version & 1` |
 * | 68     | waiters     | sleeping `waitSync` / `wait`   | seq-cst add/sub | count; a writer wakes sleepers on `version` only when non-zero |
 * | 128    | lock        | writers                        | CAS      | 0 free, otherwise the writer's lock word: pid in bits 21–0, tag in 31–22 (robust: a dead writer's lock is taken over, sync/robust-lock.ts) |
 * | 132    | lockWaiters | writers sleeping on `lock`     | seq-cst add/sub | count, as the Mutex's |
 * | 136    | deaths      | a writer taking over           | seq-cst add | writers that died holding `lock` |
 *
 * `version` sits alone on the readers' cache line (64–127); the writers' lock words on
 * another (128–191), so writers contending for the lock do not slow readers down.
 *
 * ## Buffers (buffer i at 256 + i · slotStride, i = 0, 1)
 * | offset | field   | meaning |
 * |-------:|---------|---------|
 * | 0      | version | the version whose value this buffer holds (informational; stored before `version` is published) |
 * | 4      | (0)     | reserved |
 * | 8      | length  | bytes of the value, at most the capacity |
 * | 12     | data    | the value |
 *
 * Protocol (src/watch/watch.ts, steps in WATCH_STEPS): a writer takes `lock`, reads
 * `version` = v, fills buffer (v + 1) & 1 — the one readers are *not* reading — then
 * stores `version` = v + 1, releases `lock` and wakes sleepers. A reader loads `version`
 * = v, copies buffer v & 1, loads `version` again and retries if it moved. The buffer it
 * copied is rewritten only by the write after next (v + 2), which begins after v + 1 is
 * published; so an unchanged `version` proves the copy whole.
 * @internal
 */

/** Indexes of 32-bit words (byte offset / 4). */
export const WW = {
  VERSION: 64 / 4,
  WAITERS: 68 / 4,
  LOCK: 128 / 4,
  LOCK_WAITERS: 132 / 4,
  DEATHS: 136 / 4,
} as const;

/** Byte offset of buffer 0. */
export const BUFFERS_OFFSET = 256;
/** Byte offsets inside a buffer. */
export const BUF_VERSION = 0;
export const BUF_LENGTH = 8;
export const BUF_DATA = 12;

/** Bytes of one buffer for values of up to `capacity` bytes (a multiple of 64). */
export function bufferStride(capacity: number): number {
  return Math.ceil((BUF_DATA + capacity) / 64) * 64;
}

/** Bytes of a whole Watch of this capacity. */
export function watchSize(capacity: number): number {
  return BUFFERS_OFFSET + 2 * bufferStride(capacity);
}
