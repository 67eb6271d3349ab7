/**
 * Creating or attaching to a structure (channel or mutex) in shared memory: the header
 * protocol of layout.ts. The first process to arrive initialises the header, everyone
 * else validates it. Bytes that are not a header of this library are never overwritten.
 * @internal
 */
import { InvalidArgumentError, LayoutError, MisalignedError, OutOfRangeError, OverlapError } from '../errors.js';
import { Region } from '../region/region.js';
import { SharedMemory } from '../shared-memory/shared-memory.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import { conflicts, findOverlap, hold } from '../shared-memory/registry.js';
import { processAlive } from '../sync/liveness.js';
import { describeHeader, describeVersions, H, headerConsistent, isChunked, kindName, SLOT_HEADER, INIT_BUSY, INIT_NONE, INIT_READY, MAGIC, versionFor, versionsOf, W, type HeaderInfo } from './layout.js';

const pause = new Int32Array(new SharedArrayBuffer(4));

function where(region: Region): string {
  return `at offset ${region.offset} of shared memory '${region.objectName}'`;
}

/** Reads and checks a ready header. */
export function readHeader(region: Region): HeaderInfo {
  const dv = new DataView(region.mapping.buffer!, region.start, H.SIZE);
  const magic = dv.getUint32(H.MAGIC, true);
  if (magic !== MAGIC) {
    throw new LayoutError(`no concurrent-shm structure ${where(region)}: found 0x${magic.toString(16).padStart(8, '0')} where the magic number 0x${MAGIC.toString(16)} ("CSHM") should be`);
  }
  const version = dv.getUint16(H.VERSION, true);
  const kind = dv.getUint8(H.KIND);
  if (!versionsOf(kind).includes(version)) {
    throw new LayoutError(`the structure ${where(region)} has layout version ${version}; this version of concurrent-shm reads a ${kindName(kind, dv.getUint8(H.PAYLOAD))} of version ${describeVersions(kind)} only`);
  }
  const info: HeaderInfo = {
    kind: dv.getUint8(H.KIND),
    payload: dv.getUint8(H.PAYLOAD),
    depth: dv.getUint32(H.DEPTH, true),
    width: dv.getUint32(H.WIDTH, true),
    stride: dv.getUint32(H.STRIDE, true),
    totalSize: dv.getUint32(H.TOTAL, true),
  };
  // Version 5 is a chunked Variable channel: version 4 plus its largest message.
  if (isChunked(info.kind, version)) info.maxMessage = dv.getUint32(H.MAX_MESSAGE, true);
  const consistent = headerConsistent(info, dv.getUint32(H.SLOTS, true));
  if (!consistent) throw new LayoutError(`the header ${where(region)} is corrupt (version ${version}, kind ${info.kind}, payload ${info.payload}, depth ${info.depth}, width ${info.width}, stride ${info.stride}, slots at ${dv.getUint32(H.SLOTS, true)}, size ${info.totalSize}${info.maxMessage === undefined ? '' : `, maxMessage ${info.maxMessage}`})`);
  return info;
}

/**
 * Initialises the header at the start of `region` with `wanted`, or validates the one
 * there. With `wanted` null, only attaches (an empty spot is an error). `init`, when
 * given, writes the structure's own initial words after the header's fields and before
 * the header is marked ready (so no attacher ever sees them missing).
 */
export function initOrAttach(region: Region, wanted: HeaderInfo | null, slotsOffset: number, init?: () => void): HeaderInfo {
  const buffer = region.mapping.buffer!;
  const w = new Int32Array(buffer, region.start, H.SIZE / 4);
  const deadline = performance.now() + 2000;
  for (;;) {
    const state = Atomics.load(w, W.INIT);
    if (state === INIT_READY) {
      const found = readHeader(region);
      if (wanted !== null && !sameShape(found, wanted)) {
        throw new LayoutError(`${where(region)} there is already a ${describeHeader(found)}; asked for a ${describeHeader(wanted)}`);
      }
      return found;
    }
    if (state === INIT_NONE) {
      const bytes = new Uint8Array(buffer, region.start, H.SIZE);
      const used = bytes.findIndex((b) => b !== 0);
      // Another creator may have won the CAS below and be writing fields right now.
      if (used !== -1 && Atomics.load(w, W.INIT) !== INIT_NONE) continue;
      if (used !== -1) {
        throw new LayoutError(`no concurrent-shm structure ${where(region)}: its header bytes are not zero and not a valid header (byte ${used} is ${bytes[used]}); refusing to overwrite them`);
      }
      if (wanted === null) throw new LayoutError(`no concurrent-shm structure ${where(region)}: the bytes there are all zero (create it first)`);
      if (Atomics.compareExchange(w, W.INIT, INIT_NONE, INIT_BUSY) === INIT_NONE) {
        // Whatever lies after the header becomes ours: control words and slot headers
        // start at zero (an empty channel), never as leftovers adopted as state.
        if (slotsOffset > 0 && region.length >= slotsOffset) {
          new Uint8Array(buffer, region.start + H.SIZE, slotsOffset - H.SIZE).fill(0);
          for (let i = 0; i < wanted.depth; i++) new Uint8Array(buffer, region.start + slotsOffset + i * wanted.stride, SLOT_HEADER).fill(0);
        }
        const dv = new DataView(buffer, region.start, H.SIZE);
        dv.setUint16(H.VERSION, versionFor(wanted.kind, wanted.maxMessage !== undefined), true);
        if (wanted.maxMessage !== undefined) dv.setUint32(H.MAX_MESSAGE, wanted.maxMessage, true);
        dv.setUint8(H.KIND, wanted.kind);
        dv.setUint8(H.PAYLOAD, wanted.payload);
        dv.setUint32(H.DEPTH, wanted.depth, true);
        dv.setUint32(H.WIDTH, wanted.width, true);
        dv.setUint32(H.STRIDE, wanted.stride, true);
        dv.setUint32(H.SLOTS, slotsOffset, true);
        dv.setUint32(H.TOTAL, wanted.totalSize, true);
        Atomics.store(w, W.INIT_PID, process.pid);
        // A structure with more to set up than zeros (a Heap's first free block, a
        // Broadcast's slot words) does it here, before `ready`.
        init?.();
        Atomics.store(w, H.MAGIC / 4, MAGIC | 0);
        // Ready is stored last: whoever sees it sees every field above.
        Atomics.store(w, W.INIT, INIT_READY);
        return wanted;
      }
      continue;
    }
    if (state !== INIT_BUSY) {
      throw new LayoutError(`no concurrent-shm structure ${where(region)}: its state word holds ${state}, which no initialiser writes; refusing to touch it`);
    }
    // Another process is initialising: wait a little, and give up if it died doing it.
    if (performance.now() > deadline) {
      const pid = Atomics.load(w, W.INIT_PID);
      const why = pid !== 0 && !processAlive(pid) ? `process ${pid} died while initialising it` : 'its initialisation did not complete within 2 s';
      throw new LayoutError(`the structure ${where(region)} is unusable: ${why} (state ${state}); delete the object and create it again`);
    }
    Atomics.wait(pause, 0, 0, 1);
  }
}

/**
 * Records that this process has a structure at `[start, end)` of the object, refusing
 * one that overlaps another structure (two handles on the same structure are fine).
 * `admits` goes into the record (a structure that holds others: later structures inside
 * it are no overlap); `admitsNow`, for a structure attached (not created) here, admits
 * the structures this process already has inside it. Returns the function that forgets it.
 */
export function holdStructure(region: Region, info: HeaderInfo, admits?: (start: number, end: number) => boolean, admitsNow?: (start: number, end: number) => boolean): () => void {
  const key = region.mapping.objectKey;
  const start = region.offset;
  const end = start + info.totalSize;
  const signature = `${start}:${describeHeader(info)}`;
  const other = findOverlap(key, start, end, (r) => conflicts(r, signature, start, end, admitsNow));
  if (other !== undefined) {
    throw new OverlapError(`a ${describeHeader(info)} at bytes ${start}..${end} of shared memory '${region.objectName}' would overlap ${other.what} at bytes ${other.start}..${other.end}`);
  }
  return hold(key, { start, end, what: `a ${describeHeader(info)}`, structure: signature, ...(admits ? { admits } : {}) });
}

/** Checks room for a new structure at `offset` (overlap with this process's structures first, then the object's size, growing it with `autosize`); returns its size. */
export function prepareCreate(shm: SharedMemory, wanted: HeaderInfo, offset: number, autosize: boolean): number {
  const total = wanted.totalSize;
  const other = findOverlap(shm.key, offset, offset + total, (r) => conflicts(r, `${offset}:${describeHeader(wanted)}`, offset, offset + total));
  if (other !== undefined) {
    throw new OverlapError(`a ${describeHeader(wanted)} at bytes ${offset}..${offset + total} of shared memory '${shm.name}' would overlap ${other.what} at bytes ${other.start}..${other.end}`);
  }
  const size = shm.size;
  if (size < offset + total) {
    if (!autosize) {
      throw new OutOfRangeError(`a ${describeHeader(wanted)} needs ${total} bytes at offset ${offset}, but shared memory '${shm.name}' is ${size} bytes (set its size or pass autosize: true)`);
    }
    shm.growTo(offset + total);
  }
  return total;
}

/** The ready header at `offset` of `shm`, or `null` (no room, not ready, not a valid header). Reads only. */
export function peekHeader(shm: SharedMemory, offset: number): HeaderInfo | null {
  if (shm.size < offset + H.SIZE) return null;
  const head = Region.map(shm, offset, H.SIZE);
  try {
    const w = new Int32Array(head.mapping.buffer!, head.start, H.SIZE / 4);
    return Atomics.load(w, W.INIT) === INIT_READY ? readHeader(head) : null;
  } catch {
    return null;
  } finally {
    head.unmap();
  }
}

/** `true` when two headers describe the same structure (kind, payload, depth, width, size, largest message). */
export function sameShape(a: HeaderInfo, b: HeaderInfo): boolean {
  return a.kind === b.kind && a.payload === b.payload && a.depth === b.depth && a.width === b.width && a.totalSize === b.totalSize && a.maxMessage === b.maxMessage;
}

/** Reads the size of the structure another process created at `offset`, checked against the object's size. */
export function attachedSize(shm: SharedMemory, offset: number): number {
  const head = Region.map(shm, offset, H.SIZE);
  let total: number;
  try {
    total = readHeader(head).totalSize;
  } finally {
    head.unmap();
  }
  if (offset + total > shm.size) {
    throw new LayoutError(`the header at offset ${offset} of shared memory '${shm.name}' describes ${total} bytes, but the object ends at ${shm.size}: it is corrupt or truncated`);
  }
  return total;
}

/**
 * `Watch.attach`, `Broadcast.attach`, `Heap.attach`: checks the arguments and that the
 * structure at `options.offset` (default 0) is a `name` (kind `kind`), waiting for a
 * creator that is still initialising it. Returns the offset, for the constructor to
 * attach there.
 * @throws {@link LayoutError} when there is none (zeros, garbage, another structure, another layout version).
 */
export function attachOffset(shm: SharedMemory, options: { offset?: number } | undefined, kind: number, name: string): number {
  if (!(shm instanceof SharedMemory)) throw new InvalidArgumentError(`${name}.attach needs a SharedMemory, got ${describe(shm)}`);
  const offset = checkIndex('options.offset', checkOptions<{ offset: number }>('options', options, ['offset']).offset ?? 0);
  if (offset % 16 !== 0) throw new MisalignedError(`a ${name}'s offset must be a multiple of 16, got ${offset}`);
  if (shm.size < offset + H.SIZE) throw new LayoutError(`no ${name} at offset ${offset} of shared memory '${shm.name}': the object is only ${shm.size} bytes long`);
  const head = Region.map(shm, offset, H.SIZE);
  try {
    const found = initOrAttach(head, null, 0);
    if (found.kind !== kind) throw new LayoutError(`the structure at offset ${offset} of shared memory '${shm.name}' is not a ${name} (it is a ${describeHeader(found)})`);
  } finally {
    head.unmap();
  }
  return offset;
}
