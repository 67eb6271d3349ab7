/**
 * Byte layout of the structures this library places in shared memory (channels: layout
 * version 4, and 5 for a chunked channel). docs/layout.md holds the same tables for C
 * programs, and docs/chunked-layout.md those of version 5. All fields are little-endian
 * 32-bit words (the byte order of every supported CPU), at offsets relative to the
 * structure's start, which is 16-byte aligned in the object.
 *
 * ## Header (every structure; bytes 0–63)
 * | offset | field       | type | written by                | meaning |
 * |-------:|-------------|------|---------------------------|---------|
 * | 0      | magic       | u32  | initialiser, once         | 0x4D485343, the bytes "CSHM" |
 * | 4      | version     | u16  | initialiser, once         | layout version: channels 4, a chunked channel 5 (below); Mutex, Watch, Heap 3 (tagged lock words); Broadcast 2 |
 * | 6      | kind        | u8   | initialiser, once         | 1 Unbuffered, 2 SingleBuffered, 3 Buffered, 16 Mutex, 32 Watch, 40 Broadcast, 48 Heap |
 * | 7      | payload     | u8   | initialiser, once         | 0 Empty, 1 Fixed, 2 Variable (0 for a mutex) |
 * | 8      | depth       | u32  | initialiser, once         | number of slots |
 * | 12     | width       | u32  | initialiser, once         | Fixed: bytes per message; Variable: capacity; Empty: 0 |
 * | 16     | slotStride  | u32  | initialiser, once         | bytes from one slot to the next |
 * | 20     | slotsOffset | u32  | initialiser, once         | offset of slot 0 (256) |
 * | 24     | totalSize   | u32  | initialiser, once         | bytes of the whole structure |
 * | 28     | initState   | u32  | initialiser               | 0 none, 1 initialising, 2 ready (stored last, release order) |
 * | 32     | initPid     | u32  | initialiser               | process that initialised it |
 * | 36     | closed      | u32  | `close()`, any process    | 0 open, 1 closed; a channel's `close()` sets `tail`'s bit 31 first (below) |
 * | 40     | maxMessage  | u32  | initialiser, once         | version 5 only (a chunked Variable channel): the largest message, > width; version 4: 0, ignored |
 *
 * ## Layout versions
 * Channels are version 4: one state word per slot and the closed bit in `tail`. A
 * Variable channel created with `maxMessage` larger than its capacity is version 5:
 * version 4 plus `maxMessage` at 40, the chunk words at 212–236 and the chunk flags in
 * each slot's length word (below); a reader of version 4 only refuses it by its version
 * instead of misreading a chunk as a message. Versions 2 and 3 of a channel (two state
 * words per slot, `seq` and `owner`) are refused on attach. A Mutex, a Watch
 * and a Heap are version 3 (a tag beside the pid in their lock words, sync/robust-lock.ts;
 * a chunked channel's lock words carry it too); a Broadcast is version 2.
 *
 * ## Channel control words (each group on its own 64-byte cache line)
 * | offset | field        | written by                         | meaning |
 * |-------:|--------------|------------------------------------|---------|
 * | 64     | tail         | a sender, by CAS, holding the slot of position `tail`; an Unbuffered sender taking its message back; `close()` (bit 31) | bits 30–0: next position to send to, modulo the cycle (below); bit 31: closed (no CAS of a sender succeeds any more) |
 * | 128    | head         | a receiver, by CAS, holding the slot of position `head`, or finding that position's message gone | next position to receive from, modulo the cycle |
 * | 192    | sendWaiters  | sleeping senders                   | count; whoever frees or skips a slot bumps `notFullSeq` and wakes only when non-zero |
 * | 196    | recvWaiters  | sleeping receivers                 | count; whoever publishes bumps `notEmptySeq` and wakes only when non-zero |
 * | 200    | notFullSeq   | see sendWaiters, `close()`         | futex word senders sleep on |
 * | 204    | notEmptySeq  | see recvWaiters, `close()`         | futex word receivers sleep on |
 * | 208    | recvActive   | receivers of an Unbuffered channel | receives in progress: `trySend` offers only when non-zero |
 *
 * The cycle is depth × 256 × ⌊2^22 / depth⌋ (at most 2^30, {@link cycleOf}): a whole
 * number of 256 laps, so a slot's lap tag never jumps when head and tail wrap.
 *
 * ## Chunk words (version 5 only; zero and unused in version 4)
 * | offset | field         | written by                       | meaning |
 * |-------:|---------------|----------------------------------|---------|
 * | 212    | sendLock      | senders (CAS)                    | robust lock (sync/robust-lock.ts): 0 free, else the lock word (pid and tag) of the sender whose message is going out |
 * | 216    | sendWaiters   | senders sleeping on `sendLock`   | count; the unlocker wakes one when non-zero |
 * | 220    | sendDeaths    | a sender taking over             | senders that died holding `sendLock` |
 * | 224    | sendSerial    | the holder of `sendLock`         | serial of the message being sent; bumped (seq-cst) before its first chunk is claimed, and once more when its sender gives it up |
 * | 228    | recvLock      | receivers (CAS)                  | robust lock: 0 free, else the lock word of the receiver taking (reassembling) a message |
 * | 232    | recvWaiters   | receivers sleeping on `recvLock` | count, as sendWaiters |
 * | 236    | recvDeaths    | a receiver taking over           | receivers that died holding `recvLock` |
 * | 240    | droppedSerial | receivers (first and last chunk), repair | the serial of a message of several chunks from when a receiver takes its first chunk, the serial before it once whole (a repairer freeing a first chunk that went with a dead receiver stores the serial): an Unbuffered sender whose last chunk was taken checks it: its own serial there, its message was not delivered |
 *
 * ## Slots (from byte 256, `depth` slots of `slotStride` bytes, a multiple of 64)
 * | offset | field    | meaning |
 * |-------:|----------|---------|
 * | 0      | state    | bits 31–30 phase: 0 FREE, 1 WRITING, 2 FULL, 3 READING; bits 29–22 lap tag: the lap (position / depth) modulo 256 of the position it is for; bits 21–0 the pid of the writer or reader (0 in FREE and FULL) |
 * | 4      | reserved | 0 |
 * | 8      | data     | Fixed: `width` bytes (zero-padded); Variable: u32 length, then the message at 12; Empty: nothing |
 *
 * A message of position p (lap tag t) goes FREE|t → WRITING|t|pid (sender's CAS, then
 * its CAS of `tail` p → p + 1) → FULL|t (publish) → READING|t|pid (receiver's CAS, then
 * its CAS of `head`) → FREE|t+1 (free, for position p + depth). The protocol, its repair
 * of dead parties and its step names are in slot-protocol.ts.
 *
 * In a version-5 channel each slot holds one chunk. Its length word: bits 29–0 the chunk's
 * bytes at 12 (at most the capacity), bit 30 MORE (chunks of the same message follow),
 * bit 31 CONT (continues a message: not its first chunk). A first chunk with MORE set
 * begins with an 8-byte prefix: u32 total length of the message (at 12), u32 its
 * `sendSerial` (at 16); its bytes of the message follow at 20 (the chunk's length counts
 * the prefix). A message of at most the capacity is one chunk, flags 0: the same bytes as
 * version 4.
 *
 * A slot's state word and the first 56 bytes of a Fixed message (52 of a Variable one)
 * share one 64-byte cache line: a small message moves between cores in one line.
 *
 * ## Mutex (kind 16; 64 bytes)
 * Header as above (depth, width and slot fields 0; totalSize 64), then `lock` at 48 and
 * `lockWaiters` at 52 (the robust lock protocol), `deaths` at 56 (holders that died).
 *
 * ## Broadcast (kind 40)
 * Header as a Variable channel whose slots start after a subscriber table
 * (slotsOffset = 256 + 8 · maxSubscribers); depth a power of two. The control words,
 * table and slots are in src/broadcast/layout.ts and docs/broadcast-layout.md.
 *
 * ## Watch (kind 32)
 * Header as a Variable channel of depth 2 (the two value buffers are its "slots"; width
 * is the capacity); the control words and buffers are in src/watch/layout.ts and
 * docs/watch-layout.md.
 * @internal
 */

export const MAGIC = 0x4d485343;
/** Layout version of Broadcasts. */
export const VERSION = 2;
/**
 * Layout version of the structures with a robust lock (Mutex, Watch, Heap): version 2
 * with a tag beside the pid in the lock word (bits 31–22; the pid in bits 21–0, see
 * sync/robust-lock.ts). A reader of version 2 would take a tagged word for a dead pid.
 */
export const VERSION_TAGGED_LOCK = 3;
/**
 * Layout version of channels: one state word per slot (phase, lap tag, pid) and the
 * closed bit in `tail`. Versions 2 and 3 had two state words per slot and are refused.
 */
export const VERSION_CHANNEL = 4;
/** Layout version of a chunked Variable channel (maxMessage > capacity): version 4 plus the chunk fields. */
export const VERSION_CHUNKED = 5;
/** The layout versions this library reads (and writes) a structure of this kind as. */
export function versionsOf(kind: number): readonly number[] {
  if (kind === Kind.Mutex || kind === Kind.Watch || kind === Kind.Heap) return TAGGED_LOCK_VERSIONS;
  if (kind === Kind.Unbuffered || kind === Kind.SingleBuffered || kind === Kind.Buffered) return CHANNEL_VERSIONS;
  return PLAIN_VERSIONS;
}
const TAGGED_LOCK_VERSIONS = Object.freeze([VERSION_TAGGED_LOCK]);
const CHANNEL_VERSIONS = Object.freeze([VERSION_CHANNEL, VERSION_CHUNKED]);
const PLAIN_VERSIONS = Object.freeze([VERSION]);

/** The layout version a new structure of this kind is written with. */
export function versionFor(kind: number, chunked: boolean): number {
  return chunked ? VERSION_CHUNKED : versionsOf(kind)[0]!;
}

/** Whether a header of this kind and version is a chunked channel's. */
export function isChunked(kind: number, version: number): boolean {
  return version === VERSION_CHUNKED && versionsOf(kind) === CHANNEL_VERSIONS;
}

/** What a reader of this kind accepts, in words ("4 or 5"). */
export function describeVersions(kind: number): string {
  return versionsOf(kind).join(' or ');
}

/** Structure kinds (header byte 6). */
export const enum Kind {
  Unbuffered = 1,
  SingleBuffered = 2,
  Buffered = 3,
  Mutex = 16,
  Watch = 32,
  Broadcast = 40,
  Heap = 48,
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
  MAX_MESSAGE: 40,
  SIZE: 64,
} as const;

/** Indexes of 32-bit words in a channel's first 256 bytes (byte offset / 4). */
export const W = {
  INIT: H.INIT / 4,
  INIT_PID: H.INIT_PID / 4,
  CLOSED: H.CLOSED / 4,
  TAIL: 64 / 4,
  HEAD: 128 / 4,
  SEND_WAITERS: 192 / 4,
  RECV_WAITERS: 196 / 4,
  NOT_FULL_SEQ: 200 / 4,
  NOT_EMPTY_SEQ: 204 / 4,
  RECV_ACTIVE: 208 / 4,
  SEND_LOCK: 212 / 4,
  SEND_LOCK_WAITERS: 216 / 4,
  SEND_DEATHS: 220 / 4,
  SEND_SERIAL: 224 / 4,
  RECV_LOCK: 228 / 4,
  RECV_LOCK_WAITERS: 232 / 4,
  RECV_DEATHS: 236 / 4,
  DROPPED_SERIAL: 240 / 4,
} as const;

/** Version 5: bits of a slot's length word. */
export const CHUNK_CONT = 0x80000000;
export const CHUNK_MORE = 0x40000000;
export const CHUNK_LENGTH_MASK = 0x3fffffff;
/** Version 5: bytes of the prefix (total length, serial) of a first chunk with MORE set. */
export const CHUNK_PREFIX = 8;
/** Largest `maxMessage`: the total length field is 32 bits. */
export const MAX_MESSAGE = 2 ** 32 - 1;
/** Smallest capacity of a chunked channel: a first chunk carries its 8-byte prefix and at least some of the message. */
export const MIN_CHUNKED_CAPACITY = 16;
/** Largest capacity of a chunked channel: a chunk's length has 30 bits. */
export const MAX_CHUNKED_CAPACITY = CHUNK_LENGTH_MASK;

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
/** Bytes before a slot's data: the state word and a reserved word (0). */
export const SLOT_HEADER = 8;
/** Word offsets inside a slot. */
export const SLOT_STATE = 0;
/** Variable: the length word (data's first 4 bytes); the message follows it. */
export const SLOT_LENGTH = 2;
/** Bytes of a Variable message's length word. */
export const LENGTH_BYTES = 4;
/** Size of a mutex. */
export const MUTEX_SIZE = 64;

/** Slot phases (state >>> 30). */
export const FREE = 0;
export const WRITING = 1;
export const FULL = 2;
export const READING = 3;
/** Set in the phases of a party at work on a slot (WRITING, READING), clear in FREE and FULL. */
export const BUSY_PHASE_BIT = 0x40000000;
/** A slot state's lap tag: bits 29–22, the lap of its position modulo 256. */
export const TAG_SHIFT = 22;
export const TAG_MASK = 0xff;
/** Mask of the pid bits of a slot state (bits 21–0; 0 in FREE and FULL states). */
export const PID_MASK = 0x3fffff;
/** `tail`'s bit 31: the channel is closed; no sender can move `tail` any more. */
export const TAIL_CLOSED = 0x80000000 | 0;
/** `head` and `tail` without the closed bit. */
export const POS_MASK = 0x7fffffff;

/** A slot state word: phase, lap tag (modulo 256), pid (0 for FREE and FULL). */
export function slotState(phase: number, tag: number, pid: number): number {
  return (phase << 30) | ((tag & TAG_MASK) << TAG_SHIFT) | (pid & PID_MASK);
}

/** Signed distance between two lap tags, in [-128, 128). */
export function tagDiff(a: number, b: number): number {
  return (((a - b) & TAG_MASK) << 24) >> 24;
}

/** Byte offset of a message inside its slot. */
export function dataOffset(payload: Payload): number {
  return payload === Payload.Variable ? SLOT_HEADER + LENGTH_BYTES : SLOT_HEADER;
}

/** Bytes of a channel's slot for messages of `width` bytes. */
export function slotStride(payload: Payload, width: number): number {
  return Math.ceil((dataOffset(payload) + (payload === Payload.Empty ? 0 : width)) / 64) * 64;
}

/** Everything the header says about a structure. */
export interface HeaderInfo {
  kind: Kind;
  payload: Payload;
  depth: number;
  width: number;
  stride: number;
  totalSize: number;
  /** Version 5 (chunked Variable channel): the largest message, more than `width`. Absent otherwise. */
  maxMessage?: number;
}

/** Human name of a kind and payload ("SingleBuffered.Variable"). */
export function kindName(kind: number, payload: number): string {
  const k = kind === Kind.Unbuffered ? 'Unbuffered' : kind === Kind.SingleBuffered ? 'SingleBuffered' : kind === Kind.Buffered ? 'Buffered' : kind === Kind.Mutex ? 'Mutex' : kind === Kind.Watch ? 'Watch' : `kind ${kind}`;
  if (kind === Kind.Mutex) return k;
  if (kind === Kind.Watch) return 'Watch';
  if (kind === Kind.Broadcast) return 'Broadcast';
  if (kind === Kind.Heap) return 'Heap';
  const p = payload === Payload.Empty ? 'Empty' : payload === Payload.Fixed ? 'Fixed' : payload === Payload.Variable ? 'Variable' : `payload ${payload}`;
  return `${k}.${p}`;
}

/** Description with parameters ("Buffered.Fixed(depth 4, width 64)"). */
export function describeHeader(h: HeaderInfo): string {
  if (h.kind === Kind.Mutex) return 'Mutex';
  if (h.kind === Kind.Watch) return `Watch(capacity ${h.width})`;
  if (h.kind === Kind.Broadcast) return `Broadcast(depth ${h.depth}, capacity ${h.width})`;
  if (h.kind === Kind.Heap) return `Heap(size ${h.totalSize})`;
  const params: string[] = [];
  if (h.kind === Kind.Buffered) params.push(`depth ${h.depth}`);
  if (h.payload === Payload.Fixed) params.push(`width ${h.width}`);
  if (h.payload === Payload.Variable) params.push(`capacity ${h.width}`);
  if (h.maxMessage !== undefined) params.push(`maxMessage ${h.maxMessage}`);
  return `${kindName(h.kind, h.payload)}${params.length ? `(${params.join(', ')})` : ''}`;
}

/**
 * `true` when a header's fields describe a structure this version can use: a known kind
 * and payload, and sizes that agree with each other (`slotsOffset` as read from byte 20).
 */
export function headerConsistent(info: HeaderInfo, slotsOffset: number): boolean {
  if (info.maxMessage !== undefined && info.kind !== Kind.Unbuffered && info.kind !== Kind.SingleBuffered && info.kind !== Kind.Buffered) return false;
  if (info.kind === Kind.Mutex) return info.totalSize === MUTEX_SIZE;
  if (info.kind === Kind.Heap) {
    // src/heap/layout.ts: depth = name entries, blocks from slotsOffset (after a 2304-byte control area).
    return info.payload === Payload.Empty && info.width === 0 && info.stride === 0 && info.depth <= 65536 && slotsOffset % 64 === 0 && slotsOffset >= 2304 + info.depth * 64 && info.totalSize % 16 === 0 && info.totalSize >= slotsOffset + 48;
  }
  if (info.kind === Kind.Watch) {
    // Two value buffers laid out as the slots of a Variable channel of depth 2.
    return (
      info.payload === Payload.Variable &&
      info.depth === 2 &&
      info.width >= 1 &&
      info.stride === slotStride(Payload.Variable, info.width) &&
      slotsOffset === SLOTS_OFFSET &&
      info.totalSize === SLOTS_OFFSET + 2 * info.stride
    );
  }
  if (info.kind === Kind.Broadcast) {
    // A ring of depth slots (a power of two) after a table of 8-byte subscriber entries
    // (a multiple of 8 of them): src/broadcast/layout.ts.
    const table = slotsOffset - SLOTS_OFFSET;
    return (
      info.payload === Payload.Variable &&
      info.depth >= 2 &&
      info.depth <= 2 ** 20 &&
      (info.depth & (info.depth - 1)) === 0 &&
      info.width >= 1 &&
      info.stride === slotStride(Payload.Variable, info.width) &&
      table >= 64 &&
      table % 64 === 0 &&
      info.totalSize === slotsOffset + info.depth * info.stride
    );
  }
  if (info.kind !== Kind.Unbuffered && info.kind !== Kind.SingleBuffered && info.kind !== Kind.Buffered) return false;
  if (
    info.maxMessage !== undefined &&
    !(info.payload === Payload.Variable && info.width >= MIN_CHUNKED_CAPACITY && info.width <= MAX_CHUNKED_CAPACITY && info.maxMessage > info.width && info.maxMessage <= MAX_MESSAGE)
  ) {
    return false;
  }
  return (
    info.payload <= Payload.Variable &&
    info.stride % 64 === 0 &&
    (info.kind === Kind.Buffered ? info.depth >= 2 : info.depth === 1) &&
    (info.payload === Payload.Empty ? info.width === 0 : info.width >= 1) &&
    info.stride === slotStride(info.payload, info.width) &&
    slotsOffset === SLOTS_OFFSET &&
    info.totalSize === SLOTS_OFFSET + info.depth * info.stride
  );
}

/**
 * The modulus of a channel's head and tail: depth × 256 × ⌊2^22 / depth⌋ (at most 2^30),
 * so that the number of laps is a multiple of 256 and a slot's lap tag never jumps when
 * head and tail wrap.
 */
export function cycleOf(depth: number): number {
  return depth * 256 * Math.floor(2 ** 22 / depth);
}
