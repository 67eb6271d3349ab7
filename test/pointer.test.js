// Typed pointers: every width and sign, the value domain, bits, atomics, alignment and
// the byte layout in memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SharedMemory,
  Region,
  Int8Ptr,
  Int16Ptr,
  Int32Ptr,
  Int64Ptr,
  UInt8Ptr,
  UInt16Ptr,
  UInt32Ptr,
  UInt64Ptr,
  Float32Ptr,
  Float64Ptr,
  IntDomainError,
  InvalidArgumentError,
  MisalignedError,
  OutOfRangeError,
} from '../dist/index.js';
import { uniqueName } from './helpers.js';
import { expectThrows } from './fixtures/common.js';

// One 4 KiB object for the whole file, zeroed before each test.
const shm = SharedMemory.open(uniqueName('ptr'), 0o600, { mode: 'excl' });
shm.size = 4096;
const whole = Region.map(shm, 0, 4096);
test.before.each(() => {
  whole.write(Buffer.alloc(4096));
});
test.after(() => {
  whole.unmap();
  shm.unlink();
  shm.close();
});

const SMALL = [
  { Ptr: Int8Ptr, width: 1, min: -128, max: 127, read: (b) => b.readInt8(0) },
  { Ptr: UInt8Ptr, width: 1, min: 0, max: 255, read: (b) => b.readUInt8(0) },
  { Ptr: Int16Ptr, width: 2, min: -32768, max: 32767, read: (b) => b.readInt16LE(0) },
  { Ptr: UInt16Ptr, width: 2, min: 0, max: 65535, read: (b) => b.readUInt16LE(0) },
  { Ptr: Int32Ptr, width: 4, min: -(2 ** 31), max: 2 ** 31 - 1, read: (b) => b.readInt32LE(0) },
  { Ptr: UInt32Ptr, width: 4, min: 0, max: 2 ** 32 - 1, read: (b) => b.readUInt32LE(0) },
];
const BIG = [
  { Ptr: Int64Ptr, width: 8, min: -(2n ** 63n), max: 2n ** 63n - 1n, read: (b) => b.readBigInt64LE(0) },
  { Ptr: UInt64Ptr, width: 8, min: 0n, max: 2n ** 64n - 1n, read: (b) => b.readBigUInt64LE(0) },
];
const INTS = [...SMALL, ...BIG];
const one = (t) => (typeof t.min === 'bigint' ? 1n : 1);

test('integer round trips at min, max, 0 and -1/1, through read/write and load/store; the bytes agree', () => {
  for (const t of INTS) {
    const p = new t.Ptr(whole, 16);
    assert.is(p.width, t.width, t.Ptr.name);
    assert.is(p.min, t.min, `${t.Ptr.name}.min`);
    assert.is(p.max, t.max, `${t.Ptr.name}.max`);
    const values = [t.min, t.max, t.min === 0 || t.min === 0n ? one(t) : -one(t), typeof t.min === 'bigint' ? 0n : 0];
    for (const v of values) {
      p.write(v);
      assert.is(p.read(), v, `${t.Ptr.name} read after write ${v}`);
      assert.is(t.read(whole.read(16, 16 + t.width)), v, `${t.Ptr.name} bytes after write ${v}`);
      p.store(typeof t.min === 'bigint' ? 0n : 0);
      p.store(v);
      assert.is(p.load(), v, `${t.Ptr.name} load after store ${v}`);
    }
    assert.ok(whole.read(16 + t.width, 32).every((b) => b === 0), `${t.Ptr.name} wrote only its own bytes`);
    assert.ok(whole.read(0, 16).every((b) => b === 0));
  }
});

test('float round trips, including extremes, NaN, infinities and -0', () => {
  const p64 = new Float64Ptr(whole, 8);
  for (const v of [0, -0, 1.5, -Math.PI, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, NaN]) {
    p64.write(v);
    assert.ok(Object.is(p64.read(), v), `Float64 ${v}`);
    assert.ok(Object.is(whole.read(8, 16).readDoubleLE(0), v));
  }
  const p32 = new Float32Ptr(whole, 4);
  const F32_MAX = 3.4028234663852886e38;
  for (const v of [0, -0, 1.5, F32_MAX, -F32_MAX, 2 ** -149, Infinity, -Infinity, NaN]) {
    p32.write(v);
    assert.ok(Object.is(p32.read(), v), `Float32 ${v}`);
  }
  p32.write(Math.PI);
  assert.is(p32.read(), Math.fround(Math.PI), 'a Float32 rounds');
  p32.write(1e39);
  assert.is(p32.read(), Infinity, 'out of Float32 range: infinity, as in C');
  assert.is(p32.width, 4);
  assert.is(p64.width, 8);
  for (const bad of ['1', null, undefined, 1n, {}, true]) {
    expectThrows(() => p64.write(bad), InvalidArgumentError, /Float64 value must be a number/, String(bad));
    expectThrows(() => p32.write(bad), InvalidArgumentError, /Float32 value must be a number/, String(bad));
  }
  assert.is(p32.read(), Infinity, 'rejected writes changed nothing');
});

test('IntDomainError one past each end: a RangeError with code ERR_SHM_INT_DOMAIN; nothing written', () => {
  for (const t of INTS) {
    const p = new t.Ptr(whole, 8);
    p.write(t.max);
    const tooSmall = t.min - one(t);
    const tooBig = t.max + one(t);
    for (const v of [tooSmall, tooBig]) {
      for (const [op, fn] of [
        ['write', () => p.write(v)],
        ['store', () => p.store(v)],
        ['exchange', () => p.exchange(v)],
        ['add', () => p.add(v)],
      ]) {
        const err = expectThrows(fn, IntDomainError, /does not fit in an? U?Int\d+ \(/, `${t.Ptr.name}.${op}(${v})`);
        assert.ok(err instanceof RangeError, 'IntDomainError is a RangeError');
        assert.ok(err instanceof OutOfRangeError);
        assert.is(err.code, 'ERR_SHM_INT_DOMAIN');
        assert.is(err.name, 'IntDomainError');
        assert.ok(err.message.includes(String(t.min)) && err.message.includes(String(t.max)), 'the message gives the domain');
      }
      assert.is(p.read(), t.max, `${t.Ptr.name}: nothing was written`);
    }
  }
});

test('InvalidArgumentError (a TypeError) for non-integers; booleans write 1 and 0', () => {
  for (const t of INTS) {
    const p = new t.Ptr(whole, 0);
    p.write(t.max);
    for (const bad of [1.5, NaN, Infinity, '1', null, undefined, {}, [1]]) {
      const err = expectThrows(() => p.write(bad), InvalidArgumentError, /must be (an integer|a bigint)/, `${t.Ptr.name}.write(${String(bad)})`);
      assert.ok(err instanceof TypeError);
      assert.is(err.code, 'ERR_SHM_INVALID_ARGUMENT');
      expectThrows(() => p.add(bad), InvalidArgumentError, undefined, `${t.Ptr.name}.add(${String(bad)})`);
    }
    assert.is(p.read(), t.max, 'nothing was written');
    p.write(true);
    assert.is(p.read(), one(t), `${t.Ptr.name}: true writes 1`);
    p.write(false);
    assert.is(p.read(), typeof t.min === 'bigint' ? 0n : 0, `${t.Ptr.name}: false writes 0`);
    p.store(true);
    assert.is(p.load(), one(t));
  }
});

test('64-bit pointers: bigint values, safe numbers accepted, unsafe numbers rejected', () => {
  const i = new Int64Ptr(whole, 0);
  const u = new UInt64Ptr(whole, 8);
  i.write(Number.MAX_SAFE_INTEGER);
  assert.is(i.read(), 2n ** 53n - 1n);
  assert.type(i.read(), 'bigint');
  i.write(-Number.MAX_SAFE_INTEGER);
  assert.is(i.read(), -(2n ** 53n - 1n));
  u.write(12345);
  assert.is(u.read(), 12345n);
  for (const unsafe of [2 ** 53, -(2 ** 53), 2 ** 63, 1e300]) {
    expectThrows(() => i.write(unsafe), InvalidArgumentError, /not a safe integer: pass a bigint/, String(unsafe));
    expectThrows(() => u.write(unsafe), InvalidArgumentError, /not a safe integer/);
  }
  expectThrows(() => u.write(-1), IntDomainError, undefined, 'a negative number into UInt64');
  assert.is(i.read(), -(2n ** 53n - 1n), 'unchanged');
  assert.is(u.read(), 12345n);
  // bigints into the narrow pointers are accepted within their domain
  const b = new Int16Ptr(whole, 16);
  b.write(-300n);
  assert.is(b.read(), -300);
  expectThrows(() => b.write(32768n), IntDomainError);
});

test('asIntPtr / asUIntPtr / asFloatPtr pick the width from the region length', () => {
  const cases = [
    [1, Int8Ptr, UInt8Ptr, null],
    [2, Int16Ptr, UInt16Ptr, null],
    [4, Int32Ptr, UInt32Ptr, Float32Ptr],
    [8, Int64Ptr, UInt64Ptr, Float64Ptr],
  ];
  for (const [len, S, U, F] of cases) {
    const r = Region.map(shm, 64, len);
    assert.instance(r.asIntPtr(), S, `length ${len}`);
    assert.instance(r.asUIntPtr(), U);
    if (F) assert.instance(r.asFloatPtr(), F);
    else expectThrows(() => r.asFloatPtr(), OutOfRangeError, /Region length must be 4 or 8 bytes to use as a float pointer/);
    const p = r.asIntPtr();
    p.write(typeof p.min === 'bigint' ? -1n : -1);
    assert.ok(r.read().every((x) => x === 0xff), 'the pointer covers the whole region');
    assert.is(p.objectOffset, 64);
    r.unmap();
  }
  const GEM = /^Region length must be 1, 2, 4, or 8 bytes to use as an integer pointer/;
  for (const len of [3, 5, 16]) {
    const r = Region.map(shm, 0, len);
    const e1 = expectThrows(() => r.asIntPtr(), OutOfRangeError, GEM, `asIntPtr length ${len}`);
    assert.ok(e1 instanceof RangeError);
    expectThrows(() => r.asUIntPtr(), RangeError, GEM, `asUIntPtr length ${len}`);
    r.unmap();
  }
});

test('a pointer at an offset inside a larger region; offsets outside the region are rejected', () => {
  const r = Region.map(shm, 100, 16); // object bytes 100..116
  const p = new Int32Ptr(r, 8);
  assert.is(p.objectOffset, 108);
  p.write(0x11223344);
  assert.is(whole.read(108, 112).readInt32LE(0), 0x11223344);
  assert.ok(whole.read(100, 108).every((b) => b === 0));
  const s = r.slice(4, 16); // object bytes 104..116
  const q = new Int32Ptr(s, 4);
  assert.is(q.objectOffset, 108);
  assert.is(q.read(), 0x11223344, 'a pointer in a slice sees the same bytes');
  new Int64Ptr(r, 8); // the last 8 bytes fit exactly
  expectThrows(() => new Int32Ptr(r, 13), OutOfRangeError, /Int32 \(4 bytes\) at byte 13 does not fit in a region of 16 bytes/);
  expectThrows(() => new Int64Ptr(r, 9), OutOfRangeError);
  expectThrows(() => new Int8Ptr(r, 16), OutOfRangeError);
  expectThrows(() => new Int8Ptr(r, -1), OutOfRangeError);
  expectThrows(() => new Int8Ptr(r, 1.5), InvalidArgumentError);
  expectThrows(() => new Float64Ptr(s, 5), OutOfRangeError);
  r.unmap();
});

test('bit / setBit for every width, top bit included, other bits preserved', () => {
  for (const t of INTS) {
    const bits = t.width * 8;
    for (const at of [0, 1]) {
      // at 0: aligned (setBit is atomic); at 1: misaligned (plain read-modify-write)
      whole.write(Buffer.alloc(64));
      const p = new t.Ptr(whole, 8 + at);
      for (const bit of [0, 1, bits - 2, bits - 1]) {
        assert.not.ok(p.bit(bit), `${t.Ptr.name}@${at} bit ${bit} starts clear`);
        p.setBit(bit, true);
        assert.ok(p.bit(bit), `${t.Ptr.name}@${at} bit ${bit} set`);
      }
      // every set bit is where it should be in memory
      const raw = whole.read(8 + at, 8 + at + t.width);
      const asBig = raw.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
      const expected = (1n << 0n) | (1n << 1n) | (1n << BigInt(bits - 2)) | (1n << BigInt(bits - 1));
      assert.is(asBig, expected, `${t.Ptr.name}@${at} bytes`);
      if (t.min !== 0 && t.min !== 0n) assert.ok(p.read() < 0, `${t.Ptr.name}: the top bit is the sign`);
      p.setBit(bits - 1, false);
      assert.not.ok(p.bit(bits - 1));
      assert.ok(p.bit(bits - 2) && p.bit(1) && p.bit(0), 'clearing one bit kept the others');
      p.setBit(0, 0); // falsy clears, as in the gem's ptr[bit] = value
      assert.not.ok(p.bit(0));
      p.setBit(0, 'yes'); // truthy sets
      assert.ok(p.bit(0));
      expectThrows(() => p.bit(bits), OutOfRangeError, new RegExp(`bit must be below ${bits}`));
      expectThrows(() => p.setBit(bits, true), OutOfRangeError);
      expectThrows(() => p.bit(-1), OutOfRangeError);
      expectThrows(() => p.bit(1.5), InvalidArgumentError);
      assert.ok(whole.read(0, 8 + at).every((b) => b === 0), 'no byte before the pointer was touched');
      assert.ok(whole.read(8 + at + t.width, 32).every((b) => b === 0), 'no byte after it was touched');
    }
  }
});

test('atomic operations return the previous value and compute the right result, wrapping around', () => {
  for (const t of INTS) {
    const big = typeof t.min === 'bigint';
    const n = (x) => (big ? BigInt(x) : x);
    const p = new t.Ptr(whole, 16);
    const name = t.Ptr.name;
    p.store(n(5));
    assert.is(p.add(n(3)), n(5), `${name}.add returns the previous value`);
    assert.is(p.load(), n(8));
    assert.is(p.sub(n(2)), n(8));
    assert.is(p.load(), n(6));
    assert.is(p.and(n(0b0100)), n(6));
    assert.is(p.load(), n(4));
    assert.is(p.or(n(0b0011)), n(4));
    assert.is(p.load(), n(7));
    assert.is(p.xor(n(0b0101)), n(7));
    assert.is(p.load(), n(2));
    assert.is(p.exchange(n(9)), n(2));
    assert.is(p.load(), n(9));
    assert.is(p.compareExchange(n(1), n(100)), n(9), `${name}: a failed compareExchange returns the current value`);
    assert.is(p.load(), n(9), 'and changes nothing');
    assert.is(p.compareExchange(n(9), n(100)), n(9));
    assert.is(p.load(), n(100), 'a successful compareExchange stores the replacement');
    // wrapping around
    p.store(t.max);
    assert.is(p.add(n(1)), t.max);
    assert.is(p.load(), t.min, `${name}: max + 1 wraps to min`);
    assert.is(p.sub(n(1)), t.min);
    assert.is(p.load(), t.max, `${name}: min - 1 wraps to max`);
    assert.is(p.add(t.max), t.max);
    const wrapped = big ? BigInt[t.min === 0n ? 'asUintN' : 'asIntN'](64, t.max * 2n) : wrap(t, t.max * 2);
    assert.is(p.load(), wrapped, `${name}: max + max wraps`);
    assert.is(t.read(whole.read(16, 16 + t.width)), wrapped, 'the bytes agree');
  }
});

function wrap(t, v) {
  const mod = 2 ** (t.width * 8);
  let x = ((v % mod) + mod) % mod;
  if (t.min < 0 && x > t.max) x -= mod;
  return x;
}

test('misaligned pointers: atomics throw MisalignedError; plain read/write work and are byte-correct', () => {
  const cases = [
    [Int16Ptr, 1, -2, [0xfe, 0xff]],
    [UInt16Ptr, 3, 0xabcd, [0xcd, 0xab]],
    [Int32Ptr, 1, -559038737, [0xef, 0xbe, 0xad, 0xde]],
    [UInt32Ptr, 2, 0xdeadbeef, [0xef, 0xbe, 0xad, 0xde]],
    [Int64Ptr, 4, -2n, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    [UInt64Ptr, 3, 0x0102030405060708n, [8, 7, 6, 5, 4, 3, 2, 1]],
  ];
  for (const [Ptr, at, value, bytes] of cases) {
    const p = new Ptr(whole, 32 + at);
    assert.not.ok(p.isAligned, `${Ptr.name} at ${at}`);
    p.write(value);
    assert.is(p.read(), value, `${Ptr.name} misaligned round trip`);
    assert.equal([...whole.read(32 + at, 32 + at + bytes.length)], bytes, `${Ptr.name} misaligned bytes (little-endian)`);
    assert.ok(whole.read(32, 32 + at).every((b) => b === 0), 'bytes before untouched');
    const one = typeof value === 'bigint' ? 1n : 1;
    for (const [op, fn] of [
      ['load', () => p.load()],
      ['store', () => p.store(one)],
      ['add', () => p.add(one)],
      ['sub', () => p.sub(one)],
      ['and', () => p.and(one)],
      ['or', () => p.or(one)],
      ['xor', () => p.xor(one)],
      ['exchange', () => p.exchange(one)],
      ['compareExchange', () => p.compareExchange(one, one)],
    ]) {
      const err = expectThrows(fn, MisalignedError, /atomic operations need an? U?Int\d+ aligned to \d bytes/, `${Ptr.name}.${op}`);
      assert.ok(err instanceof RangeError);
      assert.is(err.code, 'ERR_SHM_MISALIGNED');
    }
    assert.is(p.read(), value, 'rejected atomics changed nothing');
    whole.write(Buffer.alloc(64), 0);
  }
  for (const [Ptr, at] of [[Float32Ptr, 1], [Float64Ptr, 4]]) {
    const p = new Ptr(whole, 32 + at);
    assert.not.ok(p.isAligned);
    p.write(-1.25);
    assert.is(p.read(), -1.25, `${Ptr.name} misaligned`);
    const raw = whole.read(32 + at, 32 + at + p.width);
    assert.is(p.width === 4 ? raw.readFloatLE(0) : raw.readDoubleLE(0), -1.25);
  }
  for (const Ptr of [Int8Ptr, UInt8Ptr]) assert.ok(new Ptr(whole, 33).isAligned, 'a byte is always aligned');
  assert.ok(new Int64Ptr(whole, 8).isAligned);
});

test('native little-endian layout', () => {
  new Int32Ptr(whole, 0).write(0x01020304);
  assert.equal([...whole.read(0, 4)], [4, 3, 2, 1]);
  new UInt16Ptr(whole, 4).write(0xbeef);
  assert.equal([...whole.read(4, 6)], [0xef, 0xbe]);
  new Int64Ptr(whole, 8).write(0x0102030405060708n);
  assert.equal([...whole.read(8, 16)], [8, 7, 6, 5, 4, 3, 2, 1]);
  new Float64Ptr(whole, 16).write(1);
  assert.equal([...whole.read(16, 24)], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  new Float32Ptr(whole, 24).write(1);
  assert.equal([...whole.read(24, 28)], [0, 0, 0x80, 0x3f]);
  new Int8Ptr(whole, 28).write(-1);
  assert.equal([...whole.read(28, 29)], [0xff]);
  // and the reverse: bytes written through the region read as native integers
  whole.write(Buffer.from([0x78, 0x56, 0x34, 0x12]), 32);
  assert.is(new UInt32Ptr(whole, 32).read(), 0x12345678);
  assert.is(new UInt32Ptr(whole, 32).load(), 0x12345678);
});

test('two pointers over the same bytes see each other (different widths)', () => {
  const wide = new UInt32Ptr(whole, 0);
  const lo = new UInt8Ptr(whole, 0);
  const hi = new UInt16Ptr(whole, 2);
  wide.write(0xaabbccdd);
  assert.is(lo.read(), 0xdd);
  assert.is(hi.read(), 0xaabb);
  hi.add(1);
  assert.is(wide.read(), 0xaabcccdd);
});

test.run();
