/**
 * Reads the header and counters of a structure of this library (a channel or a mutex)
 * from an object's bytes, without writing anything. The byte layout is the one of
 * src/channel/layout.ts; the checks mirror `readHeader` in src/channel/structure.ts.
 * @internal
 */
import { processAlive } from '../sync/liveness.js';
import { lockPid } from '../sync/robust-lock.js';
import { cycleOf, describeHeader, describeVersions, H, headerConsistent, INIT_READY, isChunked, Kind, kindName, MAGIC, MW, PID_MASK, POS_MASK, READING, SLOT_STATE, TAIL_CLOSED, SLOTS_OFFSET, versionsOf, W, WRITING, type HeaderInfo } from '../channel/layout.js';
import type { ByteSource } from './source.js';

/** What the command reports about a structure. */
export interface Structure {
  /** Byte offset of the structure in the object. */
  offset: number;
  /** `"channel"`, `"mutex"`, `"watch"`, `"broadcast"` or `"heap"`. */
  type: 'channel' | 'mutex' | 'watch' | 'broadcast' | 'heap';
  /** Kind, such as `"Buffered.Fixed"` or `"Mutex"`. */
  kind: string;
  /** Kind with its parameters, such as `"Buffered.Fixed(depth 4, width 64)"`. */
  description: string;
  /** Number of slots (0 for a mutex). */
  depth: number;
  /** Fixed: bytes per message; Variable: capacity; Empty and mutex: 0. */
  width: number;
  /** Bytes the structure occupies. */
  byteLength: number;
  /** `false` while the header is being initialised (or its initialiser died doing it): no counters then. */
  ready: boolean;
  /** Process that initialised the header, and whether it still runs. */
  initPid: number;
  initPidAlive: boolean;
  /** Channel: closed by some process. Always `false` for a mutex. */
  closed: boolean;
  /** Channel: messages sent / taken so far (modulo depth × 256 × ⌊2^22 / depth⌋), messages in the channel now. */
  sent?: number;
  received?: number;
  queued?: number;
  /** Channel: processes sleeping in a send / a receive. Mutex: processes sleeping on the lock (`lock`). */
  waiting?: { senders?: number; receivers?: number; lock?: number };
  /** Channel: slots a process is writing or reading right now, with that process and whether it runs. */
  busy?: { slot: number; phase: 'writing' | 'reading'; pid: number; alive: boolean }[];
  /** Mutex: the process holding it, 0 if none, and whether it runs (`null` when free). */
  lockHolder?: number;
  lockHolderAlive?: boolean | null;
  /** Mutex: holders that died holding it. Watch: writers that died holding the writer lock. */
  deaths?: number;
  /** Watch: writes so far (modulo 2^32); its writer lock is in `lockHolder`, processes asleep waiting for a change in `waiting.receivers`. */
  version?: number;
  /** Broadcast: positions published so far (u32, wraps), positions abandoned by publishers that died, whether publishers wait for subscribers. */
  published?: number;
  abandoned?: number;
  backpressure?: boolean;
  /** Broadcast: the subscriber table's entries in use: pid, the position each reads next, whether it runs, and how far behind `published` it is. */
  subscribers?: { pid: number; cursor: number; alive: boolean; behind: number }[];
  /** Broadcast: places in the subscriber table. */
  maxSubscribers?: number;
  /** Heap: its figures (bytes with block headers; `largest`: the largest malloc that fits now), and the holder of its lock in `lockHolder`. */
  heap?: { size: number; used: number; free: number; largest: number; blocks: number; freeBlocks: number; named: number; repairs: number; pendingRepair: boolean };
}

/** The outcome of looking for a structure at an offset. */
export type Probe = { found: true; structure: Structure } | { found: false; reason: string };

/** `true` when a process with this id exists and has not exited (the library's own check: a zombie counts as dead). */
export function pidAlive(pid: number): boolean {
  return Number.isInteger(pid) && processAlive(pid);
}

/** Looks for a structure at `offset` of the object behind `src` (whose size is `size`). */
export function probe(src: ByteSource, size: number, offset: number): Probe {
  if (size < offset + H.SIZE) {
    return { found: false, reason: `the object is ${size} bytes long, too short for a ${H.SIZE}-byte header at offset ${offset}` };
  }
  const head = src.read(offset, H.SIZE);
  if (head.length < H.SIZE) return { found: false, reason: 'the object shrank while it was read' };
  const magic = head.readUInt32LE(H.MAGIC);
  if (magic !== MAGIC) {
    if (head.every((b) => b === 0)) return { found: false, reason: 'its header bytes are all zero' };
    return { found: false, reason: `found 0x${magic.toString(16).padStart(8, '0')} where the magic number 0x${MAGIC.toString(16)} ("CSHM") should be` };
  }
  const version = head.readUInt16LE(H.VERSION);
  const kind = head.readUInt8(H.KIND);
  if (!versionsOf(kind).includes(version)) {
    return { found: false, reason: `it has layout version ${version}; this version of concurrent-shm reads a ${kindName(kind, head.readUInt8(H.PAYLOAD))} of version ${describeVersions(kind)} only` };
  }
  const info: HeaderInfo = {
    kind: head.readUInt8(H.KIND),
    payload: head.readUInt8(H.PAYLOAD),
    depth: head.readUInt32LE(H.DEPTH),
    width: head.readUInt32LE(H.WIDTH),
    stride: head.readUInt32LE(H.STRIDE),
    totalSize: head.readUInt32LE(H.TOTAL),
  };
  if (isChunked(kind, version)) info.maxMessage = head.readUInt32LE(H.MAX_MESSAGE);
  const slots = head.readUInt32LE(H.SLOTS);
  const mutex = info.kind === Kind.Mutex;
  const watch = info.kind === Kind.Watch;
  const broadcast = info.kind === Kind.Broadcast;
  const consistent = headerConsistent(info, slots);
  if (!consistent) {
    return { found: false, reason: `the header is corrupt (kind ${info.kind}, payload ${info.payload}, depth ${info.depth}, width ${info.width}, stride ${info.stride}, size ${info.totalSize})` };
  }
  if (size < offset + info.totalSize) {
    return { found: false, reason: `its header describes ${info.totalSize} bytes, but the object ends ${size - offset} bytes after offset ${offset}` };
  }
  const initPid = head.readUInt32LE(H.INIT_PID);
  const s: Structure = {
    offset,
    type: mutex ? 'mutex' : watch ? 'watch' : broadcast ? 'broadcast' : info.kind === Kind.Heap ? 'heap' : 'channel',
    kind: kindName(info.kind, info.payload),
    description: describeHeader(info),
    depth: mutex ? 0 : info.depth,
    width: mutex ? 0 : info.width,
    byteLength: info.totalSize,
    ready: head.readUInt32LE(H.INIT) === INIT_READY,
    initPid,
    initPidAlive: pidAlive(initPid),
    closed: !mutex && !watch && info.kind !== Kind.Heap && head.readUInt32LE(H.CLOSED) !== 0,
  };
  if (!s.ready) return { found: true, structure: s };

  if (mutex) {
    const holder = lockPid(head.readUInt32LE(MW.LOCK * 4));
    s.lockHolder = holder;
    s.lockHolderAlive = holder === 0 ? null : pidAlive(holder);
    s.waiting = { lock: head.readUInt32LE(MW.LOCK_WAITERS * 4) };
    s.deaths = head.readUInt32LE(MW.DEATHS * 4);
    return { found: true, structure: s };
  }
  if (watch) {
    // Word offsets of src/watch/layout.ts: version 64, waiters 68, lock 128, lockWaiters 132, deaths 136.
    const control = src.read(offset, 140);
    if (control.length < 140) return { found: false, reason: 'the object shrank while it was read' };
    const holder = lockPid(control.readUInt32LE(128));
    s.version = control.readUInt32LE(64);
    s.lockHolder = holder;
    s.lockHolderAlive = holder === 0 ? null : pidAlive(holder);
    s.waiting = { lock: control.readUInt32LE(132), receivers: control.readUInt32LE(68) };
    s.deaths = control.readUInt32LE(136);
    return { found: true, structure: s };
  }
  if (broadcast) {
    // src/broadcast/layout.ts: tail 64, recvWaiters 132, sendWaiters 196, abandoned 200,
    // flags 240; the subscriber table (pid, cursor) from 256 to slotsOffset.
    const control = src.read(offset, slots);
    if (control.length < slots) return { found: false, reason: 'the object shrank while it was read' };
    const tail = control.readUInt32LE(64);
    s.published = tail;
    s.abandoned = control.readUInt32LE(200);
    s.backpressure = (control.readUInt32LE(240) & 1) !== 0;
    s.waiting = { senders: control.readUInt32LE(196), receivers: control.readUInt32LE(132) };
    s.maxSubscribers = (slots - SLOTS_OFFSET) / 8;
    s.subscribers = [];
    for (let at = SLOTS_OFFSET; at + 8 <= slots; at += 8) {
      const pid = control.readUInt32LE(at);
      if (pid === 0) continue;
      const cursor = control.readUInt32LE(at + 4);
      s.subscribers.push({ pid, cursor, alive: pidAlive(pid), behind: (tail - cursor) >>> 0 });
    }
    return { found: true, structure: s };
  }
  if (info.kind === Kind.Heap) return probeHeap(src, offset, s);
  const control = src.read(offset, SLOTS_OFFSET);
  if (control.length < SLOTS_OFFSET) return { found: false, reason: 'the object shrank while it was read' };
  const word = (index: number): number => control.readUInt32LE(index * 4);
  const tail = word(W.TAIL) & POS_MASK;
  const head_ = word(W.HEAD);
  if ((word(W.TAIL) & TAIL_CLOSED) !== 0) s.closed = true; // a closer may die before it sets `closed`
  const busy = busySlots(src, offset + SLOTS_OFFSET, info.depth, info.stride);
  const reading = busy.filter((b) => b.phase === 'reading').length;
  const cycle = cycleOf(info.depth);
  s.sent = tail;
  s.received = head_;
  // head never passes tail; if the words say so (memory overwritten), nothing is queued.
  const ahead = (tail - head_ + cycle) % cycle;
  s.queued = Math.min(info.depth, (ahead > cycle / 2 ? 0 : ahead) + reading);
  s.waiting = { senders: word(W.SEND_WAITERS), receivers: word(W.RECV_WAITERS) };
  s.busy = busy;
  return { found: true, structure: s };
}

/** Slots whose state word says a process is writing or reading them (read in chunks of up to 1 MiB). */
function busySlots(src: ByteSource, slotsStart: number, depth: number, stride: number): NonNullable<Structure['busy']> {
  const CHUNK = 1 << 20;
  const busy: NonNullable<Structure['busy']> = [];
  const at = SLOT_STATE * 4;
  const note = (slot: number, state: number): void => {
    const phase = state >>> 30;
    if (phase !== WRITING && phase !== READING) return;
    const pid = state & PID_MASK;
    busy.push({ slot, phase: phase === WRITING ? 'writing' : 'reading', pid, alive: pidAlive(pid) });
  };
  const perChunk = stride <= CHUNK / 16 ? Math.max(1, Math.floor(CHUNK / stride)) : 1;
  for (let i = 0; i < depth; i += perChunk) {
    const n = Math.min(perChunk, depth - i);
    const buf = perChunk === 1 ? src.read(slotsStart + i * stride + at, 4) : src.read(slotsStart + i * stride, (n - 1) * stride + at + 4);
    const base = perChunk === 1 ? 0 : at;
    for (let j = 0; j < n && base + j * stride + 4 <= buf.length; j++) note(i + j, buf.readUInt32LE(base + j * stride));
  }
  return busy;
}

/**
 * A heap's figures, from its control words (src/heap/layout.ts): used 96, free 100, blocks
 * 104, freeBlocks 108, named 112, bitmaps 128/132, list heads 256, lock 64..72, repairs 76,
 * logCount 80; the largest free block from the highest non-empty free list.
 */
function probeHeap(src: ByteSource, offset: number, s: Structure): Probe {
  const control = src.read(offset, 1792);
  if (control.length < 1792) return { found: false, reason: 'the object shrank while it was read' };
  const word = (byte: number): number => control.readUInt32LE(byte);
  const holder = lockPid(word(64));
  s.lockHolder = holder;
  s.lockHolderAlive = holder === 0 ? null : pidAlive(holder);
  s.waiting = { lock: word(68) };
  s.deaths = word(72);
  const freeBlocks = word(108);
  let largest = 0;
  const fl = word(128);
  if (fl !== 0) {
    const f = 31 - Math.clz32(fl);
    const sl = 31 - Math.clz32(word(132 + 4 * f));
    let b = sl < 0 ? 0 : word(256 + 4 * (f * 16 + sl));
    for (let n = 0; b !== 0 && n <= freeBlocks && b + 16 <= s.byteLength; n++) {
      const h = src.read(offset + b, 16);
      if (h.length < 16) break;
      largest = Math.max(largest, h.readUInt32LE(0) & ~15);
      b = h.readUInt32LE(8);
    }
  }
  s.heap = { size: s.byteLength, used: word(96), free: word(100), largest: largest === 0 ? 0 : largest - 16, blocks: word(104), freeBlocks, named: word(112), repairs: word(76), pendingRepair: word(80) !== 0 };
  return { found: true, structure: s };
}
