import { InvalidArgumentError, OutOfRangeError, RegionUnmappedError, ShmClosedError } from '../errors.js';
import { Float32Ptr, Float64Ptr, Int16Ptr, Int32Ptr, Int64Ptr, Int8Ptr, UInt16Ptr, UInt32Ptr, UInt64Ptr, UInt8Ptr } from '../pointer/pointer.js';
import { pageSize, SharedMemory } from '../shared-memory/shared-memory.js';
import * as sys from '../sys/libc.js';
import { systemError } from '../system-error.js';
import { checkIndex, checkOptions, describe } from '../validate.js';
import { Mapping } from './mapping.js';
import { byteLengthOf, bytesOf } from './view-bytes.js';

/** Options of {@link Region.map}. */
export interface MapOptions {
  /**
   * Skip the bounds check against the object's size and get the raw OS behaviour:
   * on Linux the map succeeds and an access past the object's end kills the process
   * with SIGBUS; on macOS the map fails with EINVAL. **Unsafe**; default `false`.
   */
  unchecked?: boolean;
}

// A region that is garbage collected gives its lease on the mapping back.
const leases = new FinalizationRegistry<Mapping>((mapping) => mapping.release());

/**
 * A mapped range of a shared memory object (`mmap` with `PROT_READ | PROT_WRITE`,
 * `MAP_SHARED`): what one process writes there, every process that maps the same bytes
 * sees.
 *
 * Regions made by {@link Region.slice} are views of the same mapping. The mapping stays
 * while any region over it is reachable, and goes away when {@link Region.unmap} is
 * called on any of them or when all of them have been garbage collected. After that,
 * every access through the regions and the pointers made from them throws
 * {@link RegionUnmappedError}.
 */
export class Region implements Disposable {
  /** @internal */
  readonly mapping: Mapping;
  /** @internal Byte offset of this region inside `mapping.buffer`. */
  readonly start: number;
  readonly #length: number;
  #u8: Uint8Array | null = null;
  #buf: Buffer | null = null;

  private constructor(mapping: Mapping, start: number, length: number) {
    this.mapping = mapping;
    this.start = start;
    this.#length = length;
    mapping.acquire();
    leases.register(this, mapping, this);
  }

  /**
   * Maps `length` bytes of `shm` starting at `offset`.
   *
   * Any offset is accepted (the library maps from the page boundary below it). The range
   * must lie within the object's current size, on every OS, unless `unchecked` is set.
   *
   * @throws {@link OutOfRangeError} when the range passes the end of the object (set `shm.size` first).
   * @throws {@link ShmClosedError} when `shm` is closed.
   * @throws {@link ShmSystemError} when `mmap` fails.
   */
  static map(shm: SharedMemory, offset: number, length: number, options?: MapOptions): Region {
    if (!(shm instanceof SharedMemory)) {
      throw new InvalidArgumentError(`Region.map needs a SharedMemory, got ${describe(shm)}`);
    }
    checkIndex('offset', offset);
    checkIndex('length', length, 1);
    if (!Number.isSafeInteger(offset + length)) throw new OutOfRangeError(`offset + length must be a safe integer, got ${offset} + ${length}`);
    const unchecked = checkOptions<MapOptions>('options', options, ['unchecked']).unchecked ?? false;
    if (shm.closed) throw new ShmClosedError(`cannot map shared memory '${shm.name}': it is closed`);
    const size = shm.size;
    const end = offset + length;
    if (end > size) {
      if (!unchecked) {
        throw new OutOfRangeError(
          `cannot map bytes ${offset}..${end} of shared memory '${shm.name}': it is only ${size} bytes long ` +
            '(set shm.size first; { unchecked: true } gives the raw OS behaviour)',
        );
      }
      if (shm.rules.mapPastEndFails) {
        // What macOS's mmap answers for a range past the end (done here so injected rules behave the same).
        throw systemError(`map bytes ${offset}..${end}, past the end (${size} bytes) of shared memory`, 'mmap', sys.errnoValues.EINVAL ?? 22, shm.name);
      }
    }
    const aligned = offset - (offset % pageSize);
    const mapLength = end - aligned;
    const { PROT_READ, PROT_WRITE, MAP_SHARED } = sys.C;
    const address = sys.mmap(0, mapLength, PROT_READ | PROT_WRITE, MAP_SHARED, shm.fd, aligned);
    if (address === -1 || address === 0) throw systemError('map shared memory', 'mmap', sys.errno(), shm.name);
    const mapping = new Mapping(address, mapLength, aligned, shm.key, shm.name, end);
    return new Region(mapping, offset - aligned, length);
  }

  /** Length in bytes. */
  get length(): number {
    return this.#length;
  }

  /** Offset of the region's first byte in the shared memory object. */
  get offset(): number {
    return this.mapping.objectOffset + this.start;
  }

  /** `false` once the mapping is gone (see {@link Region.unmap}). */
  get isMapped(): boolean {
    return this.mapping.mapped;
  }

  /** Name of the shared memory object. */
  get objectName(): string {
    return this.mapping.objectName;
  }

  /**
   * Absolute address of the first byte in this process (for passing to native code).
   * @internal
   */
  get address(): number {
    this.#check();
    return this.mapping.address + this.start;
  }

  /**
   * Copies bytes `[start, end)` of the region into a new Buffer.
   * @throws {@link OutOfRangeError} unless `0 <= start <= end <= length`.
   */
  read(start = 0, end: number = this.#length): Buffer {
    this.#checkRange(start, end);
    const u8 = this.#view();
    const out = Buffer.allocUnsafe(end - start);
    out.set(u8.subarray(start, end));
    return out;
  }

  /**
   * Copies bytes `[start, end)` of the region into `target` (no allocation: the way to
   * read large ranges fast, since a fresh Buffer's pages must first be faulted in).
   * @returns The number of bytes copied (`end - start`).
   * @throws {@link OutOfRangeError} unless `0 <= start <= end <= length` and the bytes fit in `target`.
   */
  readInto(target: Uint8Array, start = 0, end: number = this.#length): number {
    if (!(target instanceof Uint8Array)) throw new InvalidArgumentError(`target must be a Uint8Array or Buffer, got ${describe(target)}`);
    this.#check();
    this.#checkRange(start, end);
    if (end - start > byteLengthOf(target)) {
      throw new OutOfRangeError(`cannot copy ${end - start} bytes into a target of ${byteLengthOf(target)}`);
    }
    target.set(this.#view().subarray(start, end));
    return end - start;
  }

  /**
   * Writes `data` at byte `at` of the region; a string is written as UTF-8.
   * Nothing is written when the data does not fit.
   * @returns The number of bytes written.
   * @throws {@link OutOfRangeError} when `at + data length > length`.
   * @throws {@link InvalidArgumentError} when `data` is not a string or an ArrayBufferView.
   */
  write(data: string | ArrayBufferView, at = 0): number {
    checkIndex('at', at);
    this.#check();
    if (typeof data === 'string') {
      const n = Buffer.byteLength(data);
      this.#checkFits(n, at);
      this.#buffer().write(data, at, n, 'utf8');
      return n;
    }
    if (!ArrayBuffer.isView(data)) {
      throw new InvalidArgumentError(`data must be a string or an ArrayBufferView (Buffer, Uint8Array, ...), got ${describe(data)}`);
    }
    const bytes = bytesOf(data);
    this.#checkFits(bytes.length, at);
    this.#view().set(bytes, at);
    return bytes.length;
  }

  /**
   * A sub-region over bytes `[start, end)` of this one: a view of the same mapping, not a copy.
   * It keeps the mapping alive as long as it is reachable.
   */
  slice(start: number, end: number = this.#length): Region {
    this.#check();
    this.#checkRange(start, end);
    return new Region(this.mapping, this.start + start, end - start);
  }

  /**
   * A Uint8Array over the region's bytes, without copying.
   *
   * **Unsafe.** The view does not keep the region mapped. After the mapping goes away
   * (by {@link Region.unmap} or by garbage collection of every region over it), the view
   * no longer reaches the shared object: it reads zeros and its writes are lost. It
   * never crashes the process, but nothing tells you, so keep the region reachable for
   * as long as you use the view.
   */
  bytes(): Uint8Array {
    this.#check();
    return this.#view();
  }

  /** A signed integer pointer as wide as the region (1, 2, 4 or 8 bytes), as the gem's `as_intptr`. */
  asIntPtr(): Int8Ptr | Int16Ptr | Int32Ptr | Int64Ptr {
    switch (this.#length) {
      case 1: return new Int8Ptr(this);
      case 2: return new Int16Ptr(this);
      case 4: return new Int32Ptr(this);
      case 8: return new Int64Ptr(this);
      default: throw new OutOfRangeError(`Region length must be 1, 2, 4, or 8 bytes to use as an integer pointer (it is ${this.#length})`);
    }
  }

  /** An unsigned integer pointer as wide as the region (1, 2, 4 or 8 bytes), as the gem's `as_uintptr`. */
  asUIntPtr(): UInt8Ptr | UInt16Ptr | UInt32Ptr | UInt64Ptr {
    switch (this.#length) {
      case 1: return new UInt8Ptr(this);
      case 2: return new UInt16Ptr(this);
      case 4: return new UInt32Ptr(this);
      case 8: return new UInt64Ptr(this);
      default: throw new OutOfRangeError(`Region length must be 1, 2, 4, or 8 bytes to use as an integer pointer (it is ${this.#length})`);
    }
  }

  /** A floating-point pointer as wide as the region (4 or 8 bytes). */
  asFloatPtr(): Float32Ptr | Float64Ptr {
    switch (this.#length) {
      case 4: return new Float32Ptr(this);
      case 8: return new Float64Ptr(this);
      default: throw new OutOfRangeError(`Region length must be 4 or 8 bytes to use as a float pointer (it is ${this.#length})`);
    }
  }

  /**
   * Unmaps the mapping this region belongs to, for it and every region sliced from the
   * same mapping. Idempotent. Later accesses through them, or through pointers made
   * from them, throw {@link RegionUnmappedError}.
   */
  unmap(): void {
    if (!this.mapping.mapped) return;
    leases.unregister(this);
    this.mapping.detach();
    this.#u8 = null;
    this.#buf = null;
  }

  /** Unmaps (`using region = Region.map(...)`). */
  [Symbol.dispose](): void {
    this.unmap();
  }

  #check(): void {
    if (!this.mapping.mapped) {
      throw new RegionUnmappedError(`region of shared memory '${this.mapping.objectName}' at offset ${this.offset} is unmapped`);
    }
  }

  #view(): Uint8Array {
    this.#check();
    return (this.#u8 ??= new Uint8Array(this.mapping.buffer!, this.start, this.#length));
  }

  #buffer(): Buffer {
    return (this.#buf ??= Buffer.from(this.mapping.buffer!, this.start, this.#length));
  }

  #checkRange(start: number, end: number): void {
    checkIndex('start', start);
    checkIndex('end', end);
    if (start > end || end > this.#length) {
      throw new OutOfRangeError(`range ${start}..${end} is outside the region (length ${this.#length})`);
    }
  }

  #checkFits(n: number, at: number): void {
    if (at + n > this.#length) {
      throw new OutOfRangeError(`cannot write ${n} bytes at ${at}: the region is ${this.#length} bytes long`);
    }
  }
}
