// Region: mapping at any offset, reads and writes, slices, unmapping and garbage
// collection without crashes, and the Linux rule for mapping past the end (SIGBUS).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  SharedMemory,
  Region,
  Int32Ptr,
  pageSize,
  InvalidArgumentError,
  OutOfRangeError,
  RegionUnmappedError,
  ShmClosedError,
} from '../dist/index.js';
import { uniqueName, within } from './helpers.js';
import { collectGarbage, expectThrows, mappingsOf } from './fixtures/common.js';

// The objects a test creates, removed after it whether it passed or not.
const objects = [];
function object(size, tag = 'rgn') {
  const shm = SharedMemory.open(uniqueName(tag), 0o600, { mode: 'excl' });
  objects.push(shm);
  if (size > 0) shm.size = size;
  return shm;
}
test.after.each(() => {
  for (const shm of objects.splice(0)) {
    try {
      shm.unlink();
    } catch {}
    shm.close();
  }
});

test('map at an unaligned offset: bytes land at that offset of the object', () => {
  const shm = object(3 * pageSize);
  const r = Region.map(shm, pageSize + 1, 100); // 4097 on 4 KiB pages
  assert.is(r.offset, pageSize + 1);
  assert.is(r.length, 100);
  assert.ok(r.isMapped);
  assert.is(r.objectName, shm.name);
  r.write('abc');
  r.write(Buffer.from([0xfe]), 99);
  const whole = Region.map(shm, 0, 3 * pageSize);
  assert.is(whole.read(pageSize + 1, pageSize + 4).toString(), 'abc');
  assert.is(whole.read(pageSize + 100, pageSize + 101)[0], 0xfe);
  assert.is(whole.read(pageSize, pageSize + 1)[0], 0, 'the byte before the region is untouched');
  assert.is(whole.read(pageSize + 101, pageSize + 102)[0], 0, 'the byte after the region is untouched');
  // a region crossing a page boundary at an odd offset
  const across = Region.map(shm, 2 * pageSize - 3, 6);
  across.write('123456');
  assert.is(whole.read(2 * pageSize - 3, 2 * pageSize + 3).toString(), '123456');
  // and the reverse direction: writes through the whole mapping show in the small ones
  whole.write('XYZ', pageSize + 1);
  assert.is(r.read(0, 3).toString(), 'XYZ');
  for (const off of [1, 7, pageSize - 1, pageSize, 2 * pageSize + 5]) {
    const x = Region.map(shm, off, 1);
    x.write(Buffer.from([off & 0xff]));
    assert.is(whole.read(off, off + 1)[0], off & 0xff, `offset ${off}`);
    x.unmap();
  }
});

test('read returns a copy of a range', () => {
  const shm = object(64);
  const r = Region.map(shm, 0, 64);
  r.write('0123456789');
  const all = r.read();
  assert.ok(Buffer.isBuffer(all));
  assert.is(all.length, 64);
  assert.is(r.read(2, 5).toString(), '234');
  assert.is(r.read(5).length, 59, 'end defaults to the length');
  assert.is(r.read(7, 7).length, 0, 'an empty range');
  const copy = r.read(0, 4);
  copy.fill(0x41);
  assert.is(r.read(0, 4).toString(), '0123', 'changing the copy does not change the region');
  r.write('zz');
  assert.is(copy.toString(), 'AAAA', 'and writing the region does not change the copy');
});

test('readInto copies a range into a caller buffer; a range that does not fit is refused and nothing is copied', () => {
  const shm = object(64);
  const r = Region.map(shm, 0, 64);
  r.write('0123456789');
  const target = Buffer.alloc(8, 0x2e);
  assert.is(r.readInto(target, 2, 6), 4);
  assert.is(target.toString(), '2345....');
  assert.is(r.readInto(target, 60), 4, 'end defaults to the length');
  expectThrows(() => r.readInto(Buffer.alloc(3), 0, 4), OutOfRangeError, /cannot copy 4 bytes into a target of 3/);
  expectThrows(() => r.readInto(target, 5, 65), OutOfRangeError, /outside the region/);
  expectThrows(() => r.readInto('nope'), InvalidArgumentError, /target must be a Uint8Array/);
  assert.is(target.subarray(4).toString(), '....', 'refused calls copied nothing');
  r.unmap();
  expectThrows(() => r.readInto(target), RegionUnmappedError, /unmapped/);
});

test('write: UTF-8 strings, Buffer, Uint8Array, DataView, Float64Array views with byteOffset', () => {
  const shm = object(256);
  const r = Region.map(shm, 0, 256);
  const s = 'héllo €𝄞';
  const n = r.write(s, 10);
  assert.is(n, Buffer.byteLength(s), 'returns the number of bytes (UTF-8)');
  assert.is(n, 14);
  assert.equal(r.read(10, 10 + n), Buffer.from(s, 'utf8'));
  assert.is(r.read(10, 10 + n).toString('utf8'), s);

  assert.is(r.write(Buffer.from([1, 2, 3]), 30), 3);
  assert.equal([...r.read(30, 33)], [1, 2, 3]);

  const backing = new Uint8Array([9, 9, 4, 5, 6, 9]);
  assert.is(r.write(backing.subarray(2, 5), 40), 3, 'a Uint8Array view with a byteOffset');
  assert.equal([...r.read(40, 43)], [4, 5, 6]);

  const ab = new ArrayBuffer(16);
  new Uint8Array(ab).set([0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
  assert.is(r.write(new DataView(ab, 4, 4), 50), 4, 'a DataView with a byteOffset');
  assert.equal([...r.read(50, 54)], [0xde, 0xad, 0xbe, 0xef]);

  const f64 = new Float64Array([1.5, -2.25, Math.PI]);
  const view = new Float64Array(f64.buffer, 8, 2); // -2.25, PI
  assert.is(r.write(view, 64), 16, 'a Float64Array view: byteLength, not element count');
  const back = r.read(64, 80);
  assert.is(back.readDoubleLE(0), -2.25);
  assert.is(back.readDoubleLE(8), Math.PI);

  assert.is(r.write(''), 0, 'an empty string writes nothing');
  assert.is(r.write(new Uint8Array(0), 256), 0, 'an empty write at the very end');
});

test('a write past the end throws OutOfRangeError and writes nothing', () => {
  const shm = object(16);
  const r = Region.map(shm, 0, 16);
  r.write(Buffer.alloc(16, 0x11));
  const before = r.read();
  expectThrows(() => r.write(Buffer.alloc(17, 0x22)), OutOfRangeError, /cannot write 17 bytes at 0: the region is 16 bytes long/);
  expectThrows(() => r.write(Buffer.alloc(4, 0x22), 13), OutOfRangeError, /4 bytes at 13/);
  expectThrows(() => r.write('€€€€€€', 0), OutOfRangeError, /18 bytes/, '6 characters but 18 bytes');
  expectThrows(() => r.write('x', 17), OutOfRangeError);
  expectThrows(() => r.write(new Float64Array(3), 0), OutOfRangeError, /24 bytes/);
  for (const bad of [42, [1, 2], new ArrayBuffer(4), null, undefined, { length: 1 }]) {
    expectThrows(() => r.write(bad), InvalidArgumentError, /string or an ArrayBufferView/, String(bad));
  }
  expectThrows(() => r.write('x', -1), OutOfRangeError);
  expectThrows(() => r.write('x', 1.5), InvalidArgumentError);
  assert.equal(r.read(), before, 'nothing was written by any rejected call');
});

test('slice is a view: writes are visible both ways, offsets add up', () => {
  const shm = object(4096);
  const r = Region.map(shm, 100, 1000);
  const s = r.slice(10, 20);
  assert.is(s.length, 10);
  assert.is(s.offset, 110);
  s.write('slice');
  assert.is(r.read(10, 15).toString(), 'slice');
  r.write('PARENT', 12);
  assert.is(s.read(0, 8).toString(), 'slPARENT');
  const ss = s.slice(2, 4);
  assert.is(ss.offset, 112);
  assert.is(ss.read().toString(), 'PA');
  assert.is(r.slice(990).length, 10, 'end defaults to the length');
  assert.is(Region.map(shm, 110, 10).read(0, 8).toString(), 'slPARENT', 'the object sees it');
  expectThrows(() => r.slice(0, 1001), OutOfRangeError, /outside the region/);
  expectThrows(() => r.slice(5, 4), OutOfRangeError);
  expectThrows(() => s.slice(0, 11), OutOfRangeError);
  expectThrows(() => ss.write('abc'), OutOfRangeError, undefined, 'a slice bounds writes');
});

test('a slice keeps the mapping alive after its parent is dropped and collected', async () => {
  const shm = object(4096);
  let slice;
  (() => {
    const parent = Region.map(shm, 0, 4096);
    parent.write('keep me', 100);
    slice = parent.slice(100, 107);
  })();
  (() => {
    // control: a region dropped with nothing over it goes away in the same collections
    Region.map(shm, 0, 4096).write('x', 0);
  })();
  assert.is(mappingsOf(shm.name).length, 2);
  await collectGarbage();
  assert.is(mappingsOf(shm.name).length, 1, 'the control mapping was collected, the sliced one was not');
  assert.ok(slice.isMapped);
  assert.is(slice.read().toString(), 'keep me');
  slice.write('KEEP');
  assert.is(Region.map(shm, 100, 4).read().toString(), 'KEEP');
});

test('a collected region unmaps: the mapping leaves /proc/self/maps and stops holding the size', async () => {
  const shm = object(4 * pageSize);
  (() => {
    Region.map(shm, pageSize, 2 * pageSize).write('gone soon');
  })();
  assert.is(mappingsOf(shm.name).length, 1);
  await collectGarbage();
  assert.is(mappingsOf(shm.name).length, 0, 'the shared mapping is gone');
  shm.setSize(0); // would throw SizeInUseError while the mapping is held
  assert.is(shm.size, 0);
});

test('unmap is idempotent and every later access throws RegionUnmappedError', () => {
  const shm = object(64);
  const r = Region.map(shm, 8, 8);
  const sibling = r.slice(0, 4);
  const p = new Int32Ptr(r, 4);
  p.write(7);
  r.unmap();
  assert.not.ok(r.isMapped);
  assert.not.ok(sibling.isMapped, 'a slice shares the mapping');
  assert.not.ok(p.isValid);
  r.unmap();
  sibling.unmap();
  r[Symbol.dispose]();
  const accesses = [
    ['read', () => r.read()],
    ['read range', () => r.read(0, 1)],
    ['write string', () => r.write('x')],
    ['write bytes', () => r.write(new Uint8Array(1))],
    ['bytes', () => r.bytes()],
    ['asIntPtr', () => r.asIntPtr()],
    ['asUIntPtr', () => r.asUIntPtr()],
    ['asFloatPtr', () => r.asFloatPtr()],
    ['new Int32Ptr', () => new Int32Ptr(r, 0)],
    ['sibling read', () => sibling.read()],
    ['sibling write', () => sibling.write('x')],
    ['pointer read', () => p.read()],
    ['pointer write', () => p.write(1)],
    ['pointer load', () => p.load()],
    ['pointer add', () => p.add(1)],
    ['pointer bit', () => p.bit(0)],
    ['pointer setBit', () => p.setBit(0, true)],
  ];
  for (const [what, fn] of accesses) {
    const err = expectThrows(fn, RegionUnmappedError, /unmapped/, what);
    assert.is(err.code, 'ERR_SHM_UNMAPPED');
    assert.ok(err.message.includes(shm.name), `${what}: names the object`);
  }
  // metadata stays readable
  assert.is(r.length, 8);
  assert.is(r.offset, 8);
  // the object was not changed by the failed writes
  const check = Region.map(shm, 8, 8);
  assert.is(check.read(4, 8).readInt32LE(0), 7);
  assert.ok(check.read(0, 4).every((b) => b === 0));
});

test('slice of an unmapped region throws RegionUnmappedError', () => {
  const shm = object(64);
  const r = Region.map(shm, 0, 64);
  r.unmap();
  expectThrows(() => r.slice(0, 8), RegionUnmappedError, /unmapped/);
});

test('Symbol.dispose unmaps', () => {
  const shm = object(64);
  const r = Region.map(shm, 0, 64);
  r[Symbol.dispose]();
  assert.not.ok(r.isMapped);
  assert.is(mappingsOf(shm.name).length, 0);
});

test('a bytes() view kept after unmap reads zeros, its writes do not reach the object, nothing crashes', async () => {
  const shm = object(4096);
  const r = Region.map(shm, 0, 4096);
  const view = r.bytes();
  assert.ok(view instanceof Uint8Array);
  assert.is(view.length, 4096);
  view[0] = 0x5a;
  assert.is(r.read(0, 1)[0], 0x5a, 'while mapped, the view is the region (no copy)');
  view.fill(0x77, 1, 100);
  r.unmap();
  assert.is(mappingsOf(shm.name).length, 0, 'the object is no longer mapped');
  assert.ok(view.every((b) => b === 0), 'a stale view reads zeros');
  view.fill(0x33);
  const check = Region.map(shm, 0, 100);
  assert.is(check.read(0, 1)[0], 0x5a, 'the object kept what was written before unmap');
  assert.ok(check.read(1, 100).every((b) => b === 0x77), 'writes to the stale view did not reach the object');
  // still nothing crashes once the regions are gone too
  await collectGarbage();
  view.fill(1);
  assert.is(view[4095], 1);
});

test("the gem's hazard: a pointer whose region was collected throws RegionUnmappedError instead of faulting", async () => {
  const shm = object(1);
  // Ruby: ptr = Region.map(shm, 0, 1).as_intptr; GC.start; ptr[] -> segfault
  const ptr = Region.map(shm, 0, 1).asIntPtr();
  ptr.write(42);
  assert.is(ptr.read(), 42);
  await collectGarbage(5);
  assert.not.ok(ptr.isValid, 'the region was collected and its mapping went away');
  const err = expectThrows(() => ptr.read(), RegionUnmappedError, /used after its region was unmapped/);
  assert.is(err.code, 'ERR_SHM_UNMAPPED');
  expectThrows(() => ptr.write(1), RegionUnmappedError);
  assert.is(Region.map(shm, 0, 1).asIntPtr().read(), 42, 'the object kept the value');
});

test('mapping past the end without unchecked throws OutOfRangeError and maps nothing', () => {
  const shm = object(100);
  expectThrows(() => Region.map(shm, 0, 101), OutOfRangeError, /cannot map bytes 0\.\.101 .* only 100 bytes long/);
  expectThrows(() => Region.map(shm, 100, 1), OutOfRangeError);
  expectThrows(() => Region.map(shm, pageSize, 1), OutOfRangeError);
  expectThrows(() => Region.map(shm, 0, 0), OutOfRangeError, /length must be at least 1/);
  expectThrows(() => Region.map(shm, -1, 1), OutOfRangeError);
  expectThrows(() => Region.map(shm, 0.5, 1), InvalidArgumentError);
  expectThrows(() => Region.map(shm, 0, 2 ** 53 - 1), OutOfRangeError);
  expectThrows(() => Region.map({ fd: shm.fd }, 0, 1), InvalidArgumentError, /needs a SharedMemory/);
  expectThrows(() => Region.map(shm, 0, 1, 'unchecked'), InvalidArgumentError);
  assert.is(mappingsOf(shm.name).length, 0);
  const empty = object(0);
  expectThrows(() => Region.map(empty, 0, 1), OutOfRangeError, /set shm.size first/);
  empty.unlink();
  empty.close();
  expectThrows(() => Region.map(empty, 0, 1), ShmClosedError);
  assert.is(Region.map(shm, 99, 1).length, 1, 'the last byte can be mapped');
});

test('unchecked: on Linux a map past the end succeeds; an access past the end kills the process with SIGBUS', async () => {
  const shm = object(pageSize);
  // In this process: the map itself succeeds, and the part within the object works.
  const r = Region.map(shm, 0, 2 * pageSize, { unchecked: true });
  assert.is(r.length, 2 * pageSize);
  r.write('inside', 10);
  assert.is(r.read(10, 16).toString(), 'inside');
  r.unmap();
  // In a child: touching the page past the end is a bus error (the gem's README rule).
  const fixture = fileURLToPath(new URL('./fixtures/sigbus.js', import.meta.url));
  const child = spawn('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', process.execPath, fixture, shm.name, String(pageSize)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const [code, signal] = await within(20_000, new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s]))), 'the SIGBUS child');
    assert.match(stdout, /mapped \d+ bytes/, `the child mapped past the end (stdout: ${stdout}, stderr: ${stderr})`);
    assert.match(stdout, /within ok/, 'reading within the object worked');
    assert.not.match(stdout, /past the end read/, 'the read past the end returned');
    assert.is(signal, 'SIGBUS', `exit code ${code}, signal ${signal}, stderr: ${stderr}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  assert.is(shm.size, pageSize, "the child's crash changed nothing");
});

test.run();
