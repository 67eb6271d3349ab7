/**
 * Typed pointers into a region: the gem's `Value::Int8Ptr … UInt64Ptr`, plus floats and
 * atomic operations.
 *
 * A pointer does not keep its region alive (as in the gem). Unlike the gem, an access
 * after the region was unmapped, explicitly or by garbage collection, throws
 * {@link RegionUnmappedError} instead of faulting.
 * @module
 */
import { IntDomainError, InvalidArgumentError, MisalignedError, OutOfRangeError, RegionUnmappedError } from '../errors.js';
import type { Mapping } from '../region/mapping.js';
import type { Region } from '../region/region.js';
import { checkIndex, describe } from '../validate.js';

type IntArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
type BigArray = BigInt64Array | BigUint64Array;

/** "an" before Int8…Int64, "a" before UInt…/Float…. */
function article(typeName: string): string {
  return typeName.startsWith('I') ? 'an' : 'a';
}

function unmapped(m: Mapping, offset: number): RegionUnmappedError {
  return new RegionUnmappedError(
    `pointer at offset ${offset} of shared memory '${m.objectName}' used after its region was unmapped`,
  );
}

/** What every pointer shares: where it points and whether that memory is still mapped. */
abstract class PointerBase {
  /** @internal */
  protected readonly m: Mapping;
  /** @internal Byte offset inside the mapping's buffer. */
  protected readonly at: number;
  /** Offset of the pointed-to value in the shared memory object. */
  readonly objectOffset: number;
  /** Width in bytes (1, 2, 4 or 8). */
  abstract readonly width: number;

  protected constructor(region: Region, byteOffset: number, width: number, typeName: string) {
    if (typeof region !== 'object' || region === null || typeof (region as Partial<Region>).isMapped !== 'boolean' || !('mapping' in region)) {
      throw new InvalidArgumentError(`a ${typeName} pointer needs a Region, got ${describe(region)}`);
    }
    checkIndex('byteOffset', byteOffset);
    if (byteOffset + width > region.length) {
      throw new OutOfRangeError(
        `${article(typeName)} ${typeName} (${width} bytes) at byte ${byteOffset} does not fit in a region of ${region.length} bytes`,
      );
    }
    if (!region.isMapped) void region.address; // throws RegionUnmappedError
    this.m = region.mapping;
    this.at = region.start + byteOffset;
    this.objectOffset = region.offset + byteOffset;
  }

  /** `true` while the memory is mapped; after that, every access throws {@link RegionUnmappedError}. */
  get isValid(): boolean {
    return this.m.mapped;
  }

  /** `true` when the address is a multiple of the width, as atomic operations require. */
  get isAligned(): boolean {
    return (this.m.address + this.at) % this.width === 0;
  }

  /** @internal Absolute address in this process. */
  get address(): number {
    if (!this.m.mapped) throw unmapped(this.m, this.objectOffset);
    return this.m.address + this.at;
  }

  protected fail(): never {
    throw unmapped(this.m, this.objectOffset);
  }
}

interface IntSpec {
  name: string;
  width: 1 | 2 | 4;
  min: number;
  max: number;
  Array: { new (buffer: ArrayBuffer, byteOffset: number, length: number): IntArray };
  get: (dv: DataView) => number;
  set: (dv: DataView, v: number) => void;
}

/**
 * An integer pointer of 8, 16 or 32 bits; values are numbers.
 *
 * `read`/`write` are plain loads and stores. `load`, `store`, `add`, `sub`, `and`,
 * `or`, `xor`, `exchange` and `compareExchange` are atomic, across processes too; they
 * need an aligned pointer and throw {@link MisalignedError} otherwise.
 */
abstract class SmallIntPtr extends PointerBase {
  readonly width: number;
  /** Smallest value that fits. */
  readonly min: number;
  /** Largest value that fits. */
  readonly max: number;
  readonly #a: IntArray | null;
  readonly #dv: DataView;
  readonly #spec: IntSpec;

  protected constructor(region: Region, byteOffset: number, spec: IntSpec) {
    super(region, byteOffset, spec.width, spec.name);
    this.width = spec.width;
    this.min = spec.min;
    this.max = spec.max;
    this.#spec = spec;
    const buffer = this.m.buffer!;
    this.#a = this.at % spec.width === 0 ? new spec.Array(buffer, this.at, 1) : null;
    this.#dv = new DataView(buffer, this.at, spec.width);
  }

  /** Reads the value (a plain load). */
  read(): number {
    if (!this.m.mapped) this.fail();
    return this.#a !== null ? this.#a[0]! : this.#spec.get(this.#dv);
  }

  /**
   * Writes `value` (a plain store); `true` / `false` write 1 / 0, as in the gem.
   * @throws {@link IntDomainError} when the value does not fit; {@link InvalidArgumentError} when it is not an integer.
   */
  write(value: number | boolean): void {
    const v = this.#check(value);
    if (!this.m.mapped) this.fail();
    if (this.#a !== null) this.#a[0] = v;
    else this.#spec.set(this.#dv, v);
  }

  /** Reads bit `bit` (0 = least significant). */
  bit(bit: number): boolean {
    this.#checkBit(bit);
    return ((this.read() >>> bit) & 1) === 1;
  }

  /** Sets (`on` true) or clears bit `bit`; atomic when the pointer is aligned. */
  setBit(bit: number, on: boolean): void {
    this.#checkBit(bit);
    const mask = 1 << bit;
    if (!this.m.mapped) this.fail();
    const a = this.#a;
    if (a !== null) {
      if (on) Atomics.or(a, 0, mask);
      else Atomics.and(a, 0, ~mask);
    } else {
      const v = this.#spec.get(this.#dv);
      this.#spec.set(this.#dv, on ? v | mask : v & ~mask);
    }
  }

  /** Atomic load (sequentially consistent). */
  load(): number {
    return Atomics.load(this.#atomic(), 0);
  }
  /** Atomic store. */
  store(value: number | boolean): void {
    const v = this.#check(value);
    Atomics.store(this.#atomic(), 0, v);
  }
  /** Atomically adds `value` (wrapping around); returns the previous value. */
  add(value: number): number {
    const v = this.#check(value);
    return Atomics.add(this.#atomic(), 0, v);
  }
  /** Atomically subtracts `value` (wrapping around); returns the previous value. */
  sub(value: number): number {
    const v = this.#check(value);
    return Atomics.sub(this.#atomic(), 0, v);
  }
  /** Atomic bitwise and; returns the previous value. */
  and(value: number): number {
    const v = this.#check(value);
    return Atomics.and(this.#atomic(), 0, v);
  }
  /** Atomic bitwise or; returns the previous value. */
  or(value: number): number {
    const v = this.#check(value);
    return Atomics.or(this.#atomic(), 0, v);
  }
  /** Atomic bitwise xor; returns the previous value. */
  xor(value: number): number {
    const v = this.#check(value);
    return Atomics.xor(this.#atomic(), 0, v);
  }
  /** Atomically replaces the value; returns the previous one. */
  exchange(value: number): number {
    const v = this.#check(value);
    return Atomics.exchange(this.#atomic(), 0, v);
  }
  /** Atomically replaces the value with `replacement` if it equals `expected`; returns the previous value either way. */
  compareExchange(expected: number, replacement: number): number {
    const e = this.#check(expected);
    const r = this.#check(replacement);
    return Atomics.compareExchange(this.#atomic(), 0, e, r);
  }

  #atomic(): IntArray {
    if (!this.m.mapped) this.fail();
    if (this.#a === null) {
      throw new MisalignedError(
        `atomic operations need ${article(this.#spec.name)} ${this.#spec.name} aligned to ${this.width} bytes; this one is at object offset ${this.objectOffset}`,
      );
    }
    return this.#a;
  }

  #check(value: unknown): number {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) {
        throw new InvalidArgumentError(`${article(this.#spec.name)} ${this.#spec.name} value must be an integer or a boolean, got ${describe(value)}`);
      }
    } else if (typeof value === 'boolean') {
      return value ? 1 : 0;
    } else if (typeof value === 'bigint') {
      if (value < BigInt(this.min) || value > BigInt(this.max)) throw this.#domain(value);
      return Number(value);
    } else {
      throw new InvalidArgumentError(`${article(this.#spec.name)} ${this.#spec.name} value must be an integer or a boolean, got ${describe(value)}`);
    }
    if (value < this.min || value > this.max) throw this.#domain(value);
    return value;
  }

  #domain(value: number | bigint): IntDomainError {
    return new IntDomainError(`${describe(value)} does not fit in ${article(this.#spec.name)} ${this.#spec.name} (${this.min}..${this.max})`);
  }

  #checkBit(bit: number): void {
    checkIndex('bit', bit);
    if (bit >= this.width * 8) throw new OutOfRangeError(`bit must be below ${this.width * 8} for ${article(this.#spec.name)} ${this.#spec.name}, got ${bit}`);
  }
}

interface BigSpec {
  name: string;
  min: bigint;
  max: bigint;
  Array: { new (buffer: ArrayBuffer, byteOffset: number, length: number): BigArray };
  get: (dv: DataView) => bigint;
  set: (dv: DataView, v: bigint) => void;
}

/**
 * A 64-bit integer pointer; values are `bigint` (a safe-integer `number` is accepted when writing).
 * Atomic operations as on {@link SmallIntPtr}.
 */
abstract class BigIntPtr extends PointerBase {
  readonly width = 8;
  /** Smallest value that fits. */
  readonly min: bigint;
  /** Largest value that fits. */
  readonly max: bigint;
  readonly #a: BigArray | null;
  readonly #dv: DataView;
  readonly #spec: BigSpec;

  protected constructor(region: Region, byteOffset: number, spec: BigSpec) {
    super(region, byteOffset, 8, spec.name);
    this.min = spec.min;
    this.max = spec.max;
    this.#spec = spec;
    const buffer = this.m.buffer!;
    this.#a = this.at % 8 === 0 ? new spec.Array(buffer, this.at, 1) : null;
    this.#dv = new DataView(buffer, this.at, 8);
  }

  /** Reads the value (a plain load). */
  read(): bigint {
    if (!this.m.mapped) this.fail();
    return this.#a !== null ? this.#a[0]! : this.#spec.get(this.#dv);
  }
  /** Writes `value` (a plain store); booleans write 1n / 0n. */
  write(value: bigint | number | boolean): void {
    const v = this.#check(value);
    if (!this.m.mapped) this.fail();
    if (this.#a !== null) this.#a[0] = v;
    else this.#spec.set(this.#dv, v);
  }
  /** Reads bit `bit` (0 = least significant). */
  bit(bit: number): boolean {
    this.#checkBit(bit);
    return ((this.read() >> BigInt(bit)) & 1n) === 1n;
  }
  /** Sets or clears bit `bit`; atomic when aligned. */
  setBit(bit: number, on: boolean): void {
    this.#checkBit(bit);
    const mask = BigInt.asIntN(64, 1n << BigInt(bit));
    const m = this.#spec.name === 'UInt64' ? BigInt.asUintN(64, mask) : mask;
    if (!this.m.mapped) this.fail();
    const a = this.#a as BigInt64Array | null;
    if (a !== null) {
      if (on) Atomics.or(a, 0, m);
      else Atomics.and(a, 0, this.#spec.name === 'UInt64' ? BigInt.asUintN(64, ~m) : ~m);
    } else {
      const v = this.#spec.get(this.#dv);
      this.#spec.set(this.#dv, on ? v | m : v & ~m);
    }
  }
  /** Atomic load. */
  load(): bigint {
    return Atomics.load(this.#atomic(), 0);
  }
  /** Atomic store. */
  store(value: bigint | number | boolean): void {
    Atomics.store(this.#atomic(), 0, this.#check(value));
  }
  /** Atomically adds (wrapping around); returns the previous value. */
  add(value: bigint | number): bigint {
    return Atomics.add(this.#atomic(), 0, this.#check(value));
  }
  /** Atomically subtracts (wrapping around); returns the previous value. */
  sub(value: bigint | number): bigint {
    return Atomics.sub(this.#atomic(), 0, this.#check(value));
  }
  /** Atomic bitwise and; returns the previous value. */
  and(value: bigint | number): bigint {
    return Atomics.and(this.#atomic(), 0, this.#check(value));
  }
  /** Atomic bitwise or; returns the previous value. */
  or(value: bigint | number): bigint {
    return Atomics.or(this.#atomic(), 0, this.#check(value));
  }
  /** Atomic bitwise xor; returns the previous value. */
  xor(value: bigint | number): bigint {
    return Atomics.xor(this.#atomic(), 0, this.#check(value));
  }
  /** Atomically replaces the value; returns the previous one. */
  exchange(value: bigint | number): bigint {
    return Atomics.exchange(this.#atomic(), 0, this.#check(value));
  }
  /** Atomic compare-and-exchange; returns the previous value either way. */
  compareExchange(expected: bigint | number, replacement: bigint | number): bigint {
    return Atomics.compareExchange(this.#atomic(), 0, this.#check(expected), this.#check(replacement));
  }

  #atomic(): BigInt64Array {
    if (!this.m.mapped) this.fail();
    if (this.#a === null) {
      throw new MisalignedError(`atomic operations need ${article(this.#spec.name)} ${this.#spec.name} aligned to 8 bytes; this one is at object offset ${this.objectOffset}`);
    }
    return this.#a as BigInt64Array;
  }

  #check(value: unknown): bigint {
    let v: bigint;
    if (typeof value === 'bigint') v = value;
    else if (typeof value === 'boolean') return value ? 1n : 0n;
    else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
    else if (typeof value === 'number' && Number.isInteger(value)) {
      throw new InvalidArgumentError(`${describe(value)} is not a safe integer: pass a bigint to ${article(this.#spec.name)} ${this.#spec.name}`);
    } else {
      throw new InvalidArgumentError(`${article(this.#spec.name)} ${this.#spec.name} value must be a bigint, an integer or a boolean, got ${describe(value)}`);
    }
    if (v < this.min || v > this.max) {
      throw new IntDomainError(`${describe(v)} does not fit in ${article(this.#spec.name)} ${this.#spec.name} (${this.min}..${this.max})`);
    }
    return v;
  }

  #checkBit(bit: number): void {
    checkIndex('bit', bit);
    if (bit >= 64) throw new OutOfRangeError(`bit must be below 64 for ${article(this.#spec.name)} ${this.#spec.name}, got ${bit}`);
  }
}

/** A floating-point pointer (32 or 64 bits). Plain loads and stores; no atomic operations. */
abstract class FloatPtr extends PointerBase {
  readonly width: number;
  readonly #a: Float32Array | Float64Array | null;
  readonly #dv: DataView;
  readonly #name: string;

  protected constructor(region: Region, byteOffset: number, width: 4 | 8) {
    const name = width === 4 ? 'Float32' : 'Float64';
    super(region, byteOffset, width, name);
    this.width = width;
    this.#name = name;
    const buffer = this.m.buffer!;
    const Arr = width === 4 ? Float32Array : Float64Array;
    this.#a = this.at % width === 0 ? new Arr(buffer, this.at, 1) : null;
    this.#dv = new DataView(buffer, this.at, width);
  }

  /** Reads the value. */
  read(): number {
    if (!this.m.mapped) this.fail();
    if (this.#a !== null) return this.#a[0]!;
    return this.width === 4 ? this.#dv.getFloat32(0, true) : this.#dv.getFloat64(0, true);
  }

  /** Writes `value` (any number, NaN and infinities included; a Float32 rounds it). */
  write(value: number): void {
    if (typeof value !== 'number') throw new InvalidArgumentError(`${article(this.#name)} ${this.#name} value must be a number, got ${describe(value)}`);
    if (!this.m.mapped) this.fail();
    if (this.#a !== null) this.#a[0] = value;
    else if (this.width === 4) this.#dv.setFloat32(0, value, true);
    else this.#dv.setFloat64(0, value, true);
  }
}

const LE = true;
const I8: IntSpec = { name: 'Int8', width: 1, min: -128, max: 127, Array: Int8Array, get: (d) => d.getInt8(0), set: (d, v) => d.setInt8(0, v) };
const U8: IntSpec = { name: 'UInt8', width: 1, min: 0, max: 255, Array: Uint8Array, get: (d) => d.getUint8(0), set: (d, v) => d.setUint8(0, v) };
const I16: IntSpec = { name: 'Int16', width: 2, min: -32768, max: 32767, Array: Int16Array, get: (d) => d.getInt16(0, LE), set: (d, v) => d.setInt16(0, v, LE) };
const U16: IntSpec = { name: 'UInt16', width: 2, min: 0, max: 65535, Array: Uint16Array, get: (d) => d.getUint16(0, LE), set: (d, v) => d.setUint16(0, v, LE) };
const I32: IntSpec = { name: 'Int32', width: 4, min: -2147483648, max: 2147483647, Array: Int32Array, get: (d) => d.getInt32(0, LE), set: (d, v) => d.setInt32(0, v, LE) };
const U32: IntSpec = { name: 'UInt32', width: 4, min: 0, max: 4294967295, Array: Uint32Array, get: (d) => d.getUint32(0, LE), set: (d, v) => d.setUint32(0, v, LE) };
const I64: BigSpec = { name: 'Int64', min: -(2n ** 63n), max: 2n ** 63n - 1n, Array: BigInt64Array, get: (d) => d.getBigInt64(0, LE), set: (d, v) => d.setBigInt64(0, v, LE) };
const U64: BigSpec = { name: 'UInt64', min: 0n, max: 2n ** 64n - 1n, Array: BigUint64Array, get: (d) => d.getBigUint64(0, LE), set: (d, v) => d.setBigUint64(0, v, LE) };

/** A signed 8-bit integer at `byteOffset` of `region`. */
export class Int8Ptr extends SmallIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, I8); }
}
/** An unsigned 8-bit integer at `byteOffset` of `region`. */
export class UInt8Ptr extends SmallIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, U8); }
}
/** A signed 16-bit integer at `byteOffset` of `region` (little-endian, the byte order of every supported CPU). */
export class Int16Ptr extends SmallIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, I16); }
}
/** An unsigned 16-bit integer at `byteOffset` of `region`. */
export class UInt16Ptr extends SmallIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, U16); }
}
/** A signed 32-bit integer at `byteOffset` of `region`. */
export class Int32Ptr extends SmallIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, I32); }
}
/** An unsigned 32-bit integer at `byteOffset` of `region`. */
export class UInt32Ptr extends SmallIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, U32); }
}
/** A signed 64-bit integer (`bigint`) at `byteOffset` of `region`. */
export class Int64Ptr extends BigIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, I64); }
}
/** An unsigned 64-bit integer (`bigint`) at `byteOffset` of `region`. */
export class UInt64Ptr extends BigIntPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, U64); }
}
/** A 32-bit float at `byteOffset` of `region`. */
export class Float32Ptr extends FloatPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, 4); }
}
/** A 64-bit float at `byteOffset` of `region`. */
export class Float64Ptr extends FloatPtr {
  constructor(region: Region, byteOffset = 0) { super(region, byteOffset, 8); }
}

export type { SmallIntPtr, BigIntPtr, FloatPtr, PointerBase };
