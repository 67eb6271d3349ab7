/**
 * Byte layout of a Broadcast (structure kind 40, layout version 2): a ring of `depth`
 * slots that every subscriber reads, each at its own cursor. docs/broadcast-layout.md
 * holds the same tables for C programs. Little-endian 32-bit words, offsets relative to
 * the structure's start (16-byte aligned in the object).
 *
 * ## Header (bytes 0–63)
 * The common header of src/channel/layout.ts with kind 40, payload 2 (Variable), depth =
 * the ring's slots (a power of two, 2 to 2^20), width = capacity, slotStride =
 * ⌈(12 + capacity) / 64⌉ · 64, slotsOffset = 256 + 8 · maxSubscribers (maxSubscribers a
 * multiple of 8, so the table ends on a cache line), totalSize = slotsOffset + depth ·
 * slotStride. `closed` (byte 36) is set by `close()`.
 *
 * ## Control words
 * | offset | field          | written by                      | ordering | meaning |
 * |-------:|----------------|---------------------------------|----------|---------|
 * | 64     | tail           | the publisher that claimed slot `tail & (depth−1)`; any party that finds it behind | CAS | next position to publish (u32, wraps at 2^32) |
 * | 128    | published      | publishers, `close()`           | seq-cst add | futex word subscribers sleep on; bumped only when `recvWaiters` ≠ 0 |
 * | 132    | recvWaiters    | sleeping subscribers            | seq-cst add/sub | count |
 * | 192    | progress       | subscribers (back-pressure), `close()` | seq-cst add | futex word publishers sleep on while the slowest subscriber is a ring behind |
 * | 196    | sendWaiters    | sleeping publishers             | seq-cst add/sub | count |
 * | 200    | abandoned      | whoever gives up a dead publisher's position | seq-cst add | positions lost with a publisher that died writing them (or given up by a publish that met `close()`) |
 * | 204    | joins          | a subscriber joining with `from: 'oldest'` | seq-cst add, after storing its cursor | back-pressure: a publisher's remembered room is valid only while this is unchanged |
 * | 240    | flags          | the creator, before `initState` = ready | once | bit 0: back-pressure |
 *
 * ## Subscriber table (from byte 256, `maxSubscribers` entries of 8 bytes)
 * | offset | field  | written by | meaning |
 * |-------:|--------|------------|---------|
 * | 0      | pid    | the subscriber (CAS 0 → pid to join, store 0 to leave); a publisher frees a dead one's entry (CAS pid → 0) | 0: free |
 * | 4      | cursor | the subscriber, after each message | the next position it reads |
 *
 * ## Slots (from slotsOffset, `depth` slots of slotStride bytes)
 * | offset | field  | meaning |
 * |-------:|--------|---------|
 * | 0      | seq    | 2·p while position p is being written into this slot, 2·p + 1 once it is published (mod 2^32). Initially 2·(i − depth) + 1: slot i holds a published "position i − depth" |
 * | 4      | owner  | 0 idle, or bit 30 + pid of the publisher (or repairer) writing it; set before `seq` turns even, cleared after it turns odd |
 * | 8      | length | bytes of the message; 0xFFFFFFFF: position abandoned (no message; subscribers skip it) |
 * | 12     | data   | the message |
 *
 * Protocol (src/broadcast/protocol.ts, steps in BROADCAST_STEPS): a publisher loads
 * `tail` = p, takes `owner` of slot p & (depth−1) by CAS 0 → pid, checks `seq` =
 * 2·(p − depth) + 1 (the slot's previous lap, published), stores `seq` = 2·p, moves
 * `tail` on, writes length and data, stores `seq` = 2·p + 1, then `owner` = 0. A
 * subscriber at cursor c reads slot c & (depth−1): `seq` = 2·c + 1 → copy, then check
 * `seq` again (a seqlock: unchanged proves the copy whole); `seq` of a later lap → it was
 * overrun (lagged); otherwise the message is not published yet.
 * @internal
 */

/** Indexes of 32-bit words (byte offset / 4). */
export const BW = {
  CLOSED: 36 / 4,
  TAIL: 64 / 4,
  PUBLISHED: 128 / 4,
  RECV_WAITERS: 132 / 4,
  PROGRESS: 192 / 4,
  SEND_WAITERS: 196 / 4,
  ABANDONED: 200 / 4,
  JOINS: 204 / 4,
  FLAGS: 240 / 4,
} as const;

/** `flags` bit: publishers wait for the slowest live subscriber. */
export const FLAG_BACKPRESSURE = 1;

/** Byte offset of the subscriber table. */
export const TABLE_OFFSET = 256;
/** Bytes of one subscriber entry, and its words. */
export const ENTRY_BYTES = 8;
export const ENTRY_PID = 0;
export const ENTRY_CURSOR = 1;

/** Word offsets inside a slot, and the byte offset of the data. */
export const SLOT_SEQ = 0;
export const SLOT_OWNER = 1;
export const SLOT_LENGTH = 2;
export const SLOT_DATA = 12;

/** `owner` of a slot being written: this bit plus the writer's pid (bits 29–0). */
export const WRITING_BIT = 1 << 30;
export const PID_MASK = 0x3fffffff;
/** `length` of a position given up: no message. */
export const ABANDONED_LENGTH = 0xffffffff;

/** Largest ring (slots) and subscriber table. */
export const MAX_DEPTH = 2 ** 20;
export const MAX_SUBSCRIBERS = 2 ** 16;

/** Bytes from one slot to the next for messages of up to `capacity` bytes. */
export function slotStrideOf(capacity: number): number {
  return Math.ceil((SLOT_DATA + capacity) / 64) * 64;
}

/** Offset of slot 0 for a table of `maxSubscribers` entries. */
export function slotsOffsetOf(maxSubscribers: number): number {
  return TABLE_OFFSET + maxSubscribers * ENTRY_BYTES;
}

/** Bytes of a whole Broadcast. */
export function broadcastSize(depth: number, capacity: number, maxSubscribers: number): number {
  return slotsOffsetOf(maxSubscribers) + depth * slotStrideOf(capacity);
}

/** `seq` of a slot holding the published message of position `p` (int32). */
export function publishedSeq(p: number): number {
  return (2 * p + 1) | 0;
}
