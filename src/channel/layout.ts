/**
 * Byte layout of the structures this library places in shared memory (layout version 1).
 * docs/layout.md holds the same tables for C programs. All fields are little-endian
 * 32-bit words (the byte order of every supported CPU), at offsets relative to the
 * structure's start, which is 16-byte aligned in the object.
 *
 * ## Header (every structure; bytes 0–63)
 * | offset | field       | type | written by                | meaning |
 * |-------:|-------------|------|---------------------------|---------|
 * | 0      | magic       | u32  | initialiser, once         | 0x4D485343, the bytes "CSHM" |
 * | 4      | version     | u16  | initialiser, once         | layout version, 1 |
 * | 6      | kind        | u8   | initialiser, once         | 1 Unbuffered, 2 SingleBuffered, 3 Buffered, 16 Mutex |
 * | 7      | payload     | u8   | initialiser, once         | 0 Empty, 1 Fixed, 2 Variable (0 for a mutex) |
 * | 8      | depth       | u32  | initialiser, once         | number of slots |
 * | 12     | width       | u32  | initialiser, once         | Fixed: bytes per message; Variable: capacity; Empty: 0 |
 * | 16     | slotStride  | u32  | initialiser, once         | bytes from one slot to the next |
 * | 20     | slotsOffset | u32  | initialiser, once         | offset of slot 0 (256) |
 * | 24     | totalSize   | u32  | initialiser, once         | bytes of the whole structure |
 * | 28     | initState   | u32  | initialiser               | 0 none, 1 initialising, 2 ready (stored last, release order) |
 * | 32     | initPid     | u32  | initialiser               | process that initialised it |
 * | 36     | closed      | u32  | `close()`, any process    | 0 open, 1 closed |
 *
 * ## Channel control words (each group on its own 64-byte cache line)
 * | offset | field        | written by                         | meaning |
 * |-------:|--------------|------------------------------------|---------|
 * | 64     | lock         | everyone, CAS                      | 0 free, else holder pid (robust lock: see sync/robust-lock.ts) |
 * | 68     | lockWaiters  | sleepers on `lock`                 | count of sleepers; unlock wakes only when non-zero |
 * | 128    | head         | receivers, under `lock`            | messages taken so far, modulo depth × ⌊2^31 / depth⌋; next slot to take is head % depth |
 * | 132    | notFullSeq   | receivers, atomic add              | bumped when a slot is freed, and on close: senders sleep on it |
 * | 136    | sendWaiters  | sleeping senders                   | count; a receiver wakes `notFullSeq` only when non-zero |
 * | 192    | tail         | senders, under `lock`              | slots claimed so far, modulo depth × ⌊2^31 / depth⌋; next slot to claim is tail % depth |
 * | 196    | notEmptySeq  | senders, atomic add                | bumped when a message is published, and on close: receivers sleep on it |
 * | 200    | recvWaiters  | sleeping receivers                 | count; a sender wakes `notEmptySeq` only when non-zero |
 * | 204    | recvActive   | receivers of an Unbuffered channel | count of receives in progress (spinning or sleeping): `trySend` hands over only when non-zero |
 *
 * ## Slots (from byte 256, `depth` slots of `slotStride` bytes, a multiple of 64)
 * | offset | field   | meaning |
 * |-------:|---------|---------|
 * | 0      | state   | bits 31–30: 0 EMPTY, 1 WRITING, 2 FULL, 3 READING; bits 29–0: pid of the process in that phase |
 * | 4      | length  | Variable: bytes of the message |
 * | 8      | data    | the message (Fixed: `width` bytes, zero-padded) |
 *
 * A slot goes EMPTY → WRITING (sender, under `lock`, with tail += 1) → FULL (sender,
 * after copying, atomic store) → READING (receiver, under `lock`, with head += 1) →
 * EMPTY (receiver, after copying). Copies happen outside the lock, so several senders
 * and receivers copy at once in a Buffered channel.
 *
 * ## Mutex (kind 16; 64 bytes)
 * Header as above (depth, width and slot fields 0; totalSize 64), then `lock` at 48 and
 * `lockWaiters` at 52 (the robust lock protocol), `deaths` at 56 (holders that died).
 * @internal
 */

export const MAGIC = 0x4d485343;
export const VERSION = 1;

/** Structure kinds (header byte 6). */
export const enum Kind {
  Unbuffered = 1,
  SingleBuffered = 2,
  Buffered = 3,
  Mutex = 16,
}

/** Payload kinds (header byte 7). */
export const enum Payload {
  Empty = 0,
  Fixed = 1,
  Variable = 2,
}

/** Header field offsets in bytes. */
export const H = {
  MAGIC: 0,
  VERSION: 4,
  KIND: 6,
  PAYLOAD: 7,
  DEPTH: 8,
  WIDTH: 12,
  STRIDE: 16,
  SLOTS: 20,
  TOTAL: 24,
  INIT: 28,
  INIT_PID: 32,
  CLOSED: 36,
  SIZE: 64,
} as const;

/** Indexes of 32-bit words in a channel's first 256 bytes (byte offset / 4). */
export const W = {
  INIT: H.INIT / 4,
  INIT_PID: H.INIT_PID / 4,
  CLOSED: H.CLOSED / 4,
  LOCK: 64 / 4,
  LOCK_WAITERS: 68 / 4,
  HEAD: 128 / 4,
  NOT_FULL_SEQ: 132 / 4,
  SEND_WAITERS: 136 / 4,
  TAIL: 192 / 4,
  NOT_EMPTY_SEQ: 196 / 4,
  RECV_WAITERS: 200 / 4,
  RECV_ACTIVE: 204 / 4,
} as const;

/** Indexes of 32-bit words in a mutex. */
export const MW = {
  LOCK: 48 / 4,
  LOCK_WAITERS: 52 / 4,
  DEATHS: 56 / 4,
} as const;

/** initState values. */
export const INIT_NONE = 0;
export const INIT_BUSY = 1;
export const INIT_READY = 2;

/** Byte offset of slot 0 in a channel. */
export const SLOTS_OFFSET = 256;
/** Bytes before a slot's data. */
export const SLOT_HEADER = 8;
/** Size of a mutex. */
export const MUTEX_SIZE = 64;

/** Slot phases (state >>> 30). */
export const EMPTY = 0;
export const WRITING = 1;
export const FULL = 2;
export const READING = 3;
/** Mask of the pid bits of a slot state. */
export const PID_MASK = 0x3fffffff;

/** A slot state word: phase and pid. */
export function slotState(phase: number, pid: number): number {
  return ((phase << 30) | (pid & PID_MASK)) | 0;
}

/** Bytes of a channel's slot for a payload of `payloadBytes`. */
export function slotStride(payloadBytes: number): number {
  return Math.ceil((SLOT_HEADER + payloadBytes) / 64) * 64;
}

/** Everything the header says about a structure. */
export interface HeaderInfo {
  kind: Kind;
  payload: Payload;
  depth: number;
  width: number;
  stride: number;
  totalSize: number;
}

/** Human name of a kind and payload ("SingleBuffered.Variable"). */
export function kindName(kind: number, payload: number): string {
  const k = kind === Kind.Unbuffered ? 'Unbuffered' : kind === Kind.SingleBuffered ? 'SingleBuffered' : kind === Kind.Buffered ? 'Buffered' : kind === Kind.Mutex ? 'Mutex' : `kind ${kind}`;
  if (kind === Kind.Mutex) return k;
  const p = payload === Payload.Empty ? 'Empty' : payload === Payload.Fixed ? 'Fixed' : payload === Payload.Variable ? 'Variable' : `payload ${payload}`;
  return `${k}.${p}`;
}

/** Description with parameters ("Buffered.Fixed(depth 4, width 64)"). */
export function describeHeader(h: HeaderInfo): string {
  if (h.kind === Kind.Mutex) return 'Mutex';
  const params: string[] = [];
  if (h.kind === Kind.Buffered) params.push(`depth ${h.depth}`);
  if (h.payload === Payload.Fixed) params.push(`width ${h.width}`);
  if (h.payload === Payload.Variable) params.push(`capacity ${h.width}`);
  return `${kindName(h.kind, h.payload)}${params.length ? `(${params.join(', ')})` : ''}`;
}
