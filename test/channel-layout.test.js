// Where channels live and what is found there: the gem's Channel.new table (Channel.create),
// argument checks, offsets and alignment, overlapping structures, autosize, and headers
// that are garbage, zero, of another version or another kind, or corrupt in a field.
// All of these must end in a clear error (LayoutError for what is at the offset), never a
// crash and never a channel that silently misreads the memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import {
  Channel,
  Region,
  Mutex,
  SharedMemory,
  InvalidArgumentError,
  LayoutError,
  MisalignedError,
  OutOfRangeError,
  OverlapError,
  PayloadTooLargeError,
  MAX_WIDTH,
} from '../dist/index.js';
import { CH, KINDS } from './fixtures/channel-common.js';
import { harness, throws } from './fixtures/channel-harness.js';

const h = harness(test, 'chl');

/** Raw bytes of the object, for patching headers (kept mapped for the test). */
function raw(shm, offset = 0, length = shm.size - offset) {
  const region = Region.map(shm, offset, length);
  h.defer(() => region.unmap());
  return region;
}

// ---- Channel.create: the gem's table --------------------------------------------------

const TABLE = [
  // depth, width → class, depth, width of the result
  [0, 0, 'Unbuffered.Empty', 1, 0],
  [0, 8, 'Unbuffered.Fixed', 1, 8],
  [0, -8, 'Unbuffered.Variable', 1, 8],
  [1, 0, 'SingleBuffered.Empty', 1, 0],
  [1, 100, 'SingleBuffered.Fixed', 1, 100],
  [1, -200, 'SingleBuffered.Variable', 1, 200],
  [2, 0, 'Buffered.Empty', 2, 0],
  [3, 16, 'Buffered.Fixed', 3, 16],
  [64, 1, 'Buffered.Fixed', 64, 1],
  [5, -33, 'Buffered.Variable', 5, 33], // not in the gem: this port adds it
];

for (const [depth, width, name, d, w] of TABLE) {
  test(`Channel.create({ depth: ${depth}, width: ${width} }) is a ${name} of depth ${d}, ${width < 0 ? 'capacity' : 'width'} ${w}`, () => {
    const shm = h.object();
    const ch = h.keep(Channel.create(shm, { depth, width }));
    const [k, p] = name.split('.');
    assert.ok(ch instanceof Channel[k][p], `an instance of Channel.${name}`);
    assert.is(ch.kind, name);
    assert.is(ch.depth, d);
    assert.is(ch.width, w);
    assert.ok(shm.size >= ch.byteLength, 'autosize grew the object');
    if (w > 0) {
      throws(() => ch.trySend(Buffer.alloc(w + 1)), PayloadTooLargeError, undefined, 'one byte over the width or capacity');
      assert.ok(depth === 0 || ch.trySend(Buffer.alloc(w, 1)), 'exactly width or capacity fits');
    } else {
      throws(() => ch.trySend('x'), PayloadTooLargeError, /no data/);
    }
  });
}

test('Channel.create and the constructors check their arguments before touching the object', () => {
  const shm = h.object();
  throws(() => Channel.create(shm, { depth: -1, width: 0 }), OutOfRangeError, /depth/);
  throws(() => Channel.create(shm, { depth: 1.5, width: 0 }), InvalidArgumentError, /depth/);
  throws(() => Channel.create(shm, { depth: 1, width: '8' }), InvalidArgumentError, /width/);
  throws(() => Channel.create(shm, { width: 8 }), InvalidArgumentError, /depth/);
  throws(() => Channel.create(shm), TypeError);
  throws(() => Channel.create({}, { depth: 1, width: 8 }), InvalidArgumentError, /SharedMemory/);
  throws(() => new Channel.Buffered.Fixed(shm, { depth: 1, width: 8 }), OutOfRangeError, /depth/, 'Buffered needs depth >= 2');
  throws(() => new Channel.Buffered.Empty(shm, {}), InvalidArgumentError, /depth/);
  throws(() => new Channel.SingleBuffered.Fixed(shm, { width: 0 }), OutOfRangeError, /width/);
  throws(() => new Channel.SingleBuffered.Variable(shm, { capacity: 0 }), OutOfRangeError, /capacity/);
  throws(() => new Channel.Unbuffered.Fixed(shm, { width: MAX_WIDTH + 1 }), OutOfRangeError, /width/);
  throws(() => new Channel.Unbuffered.Variable(shm, {}), InvalidArgumentError, /capacity/);
  throws(() => new Channel.Unbuffered.Empty('not shm'), InvalidArgumentError, /SharedMemory/);
  assert.is(shm.size, 0, 'nothing was created or resized');
});

// ---- offsets, overlap, autosize ------------------------------------------------------

test('an offset must be a multiple of 16: otherwise MisalignedError (a RangeError)', () => {
  const shm = h.object(8192);
  for (const offset of [8, 4, 1, 24, 4100]) {
    const e = throws(() => new Channel.SingleBuffered.Fixed(shm, { width: 8, offset }), MisalignedError, /multiple of 16/, `offset ${offset}`);
    assert.ok(e instanceof RangeError);
    assert.is(e.code, 'ERR_SHM_MISALIGNED');
    throws(() => Channel.create(shm, { depth: 2, width: -8, offset }), MisalignedError, /multiple of 16/);
  }
  throws(() => Channel.create(shm, { depth: 1, width: 8, offset: -16 }), RangeError);
  throws(() => Channel.create(shm, { depth: 1, width: 8, offset: 16.5 }), TypeError);
  for (const offset of [16, 2048, 4096 + 16]) {
    const ch = Channel.create(shm, { depth: 1, width: 8, offset });
    assert.is(ch.offset, offset);
    ch.release();
  }
});

test('Channel.attach at a misaligned offset is refused (MisalignedError or LayoutError), never a misread', () => {
  const shm = h.object(8192);
  h.keep(Channel.create(shm, { depth: 2, width: 8, offset: 0 }));
  for (const offset of [8, 4]) {
    let error;
    try {
      Channel.attach(shm, { offset });
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof MisalignedError || error instanceof LayoutError, `offset ${offset}: got ${error?.name}: ${error?.message}`);
  }
});

test('two channels over overlapping ranges of one object in one process: OverlapError; adjacent ones are fine', () => {
  const shm = h.object();
  const a = h.keep(new Channel.Buffered.Fixed(shm, { depth: 4, width: 24, offset: 0 }));
  assert.ok(a.byteLength >= 256 + 4 * 24);
  for (const offset of [256, 16, a.byteLength - 16]) {
    const e = throws(() => new Channel.SingleBuffered.Fixed(shm, { width: 8, offset }), OverlapError, /overlap/, `offset ${offset}`);
    assert.is(e.code, 'ERR_SHM_OVERLAP');
  }
  // a second handle on the object (same inode) does not escape the check
  const shm2 = SharedMemory.open(shm.name, 0o600, { mode: 'open' });
  h.defer(() => shm2.close());
  throws(() => new Channel.SingleBuffered.Fixed(shm2, { width: 8, offset: 256 }), OverlapError, /overlap/, 'through another SharedMemory handle');
  // a mutex over the channel too
  throws(() => new Mutex(Region.map(shm, 128, 64)), OverlapError, /overlap/, 'a mutex inside the channel');
  // right after the end is fine
  const b = h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: a.byteLength }));
  assert.ok(a.trySend('a'));
  assert.ok(b.trySend('b'));
  assert.is(a.tryRecv({ encoding: 'latin1' }).replace(/\0+$/, ''), 'a');
  assert.is(b.tryRecv({ encoding: 'latin1' }).replace(/\0+$/, ''), 'b');
  // once released, the range is free for this process again
  b.release();
  const c = h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: a.byteLength }));
  assert.is(c.kind, 'SingleBuffered.Fixed');
});

test('two handles on the very same channel are not an overlap (new twice, attach, create)', () => {
  const shm = h.object();
  const a = h.keep(new Channel.Buffered.Variable(shm, { depth: 3, capacity: 50, offset: 64 }));
  const b = h.keep(new Channel.Buffered.Variable(shm, { depth: 3, capacity: 50, offset: 64 }));
  const c = h.keep(Channel.attach(shm, { offset: 64 }));
  const d = h.keep(Channel.create(shm, { depth: 3, width: -50, offset: 64 }));
  assert.ok(a.trySend('one'));
  assert.is(b.tryRecv({ encoding: 'utf8' }), 'one');
  assert.ok(c.trySend('two'));
  assert.is(d.tryRecv({ encoding: 'utf8' }), 'two');
});

test('autosize (the default) grows the object to fit; it never shrinks it', () => {
  const shm = h.object();
  assert.is(shm.size, 0);
  const a = h.keep(new Channel.Buffered.Fixed(shm, { depth: 8, width: 100, offset: 4096 }));
  assert.is(shm.size, 4096 + a.byteLength, 'grown to offset + channel size');
  const b = h.keep(new Channel.SingleBuffered.Empty(shm, { offset: 0 }));
  assert.is(shm.size, 4096 + a.byteLength, 'a channel below the end leaves the size alone');
  assert.ok(b.byteLength <= 4096);
});

test('autosize: false on an object too small: a clear OutOfRangeError, and the object is left alone', () => {
  const shm = h.object(300);
  const e = throws(() => new Channel.Buffered.Fixed(shm, { depth: 4, width: 64, autosize: false }), OutOfRangeError, /needs \d+ bytes.*300 bytes.*autosize/);
  assert.is(e.code, 'ERR_SHM_OUT_OF_RANGE');
  throws(() => Channel.create(shm, { depth: 0, width: -1000, autosize: false, offset: 16 }), OutOfRangeError, /autosize/);
  assert.is(shm.size, 300, 'not resized');
  assert.ok(raw(shm).read().every((b) => b === 0), 'nothing written');
  // big enough: fine without autosize
  shm.size = 320;
  const ch = h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, autosize: false }));
  assert.is(ch.byteLength, 320);
  assert.is(shm.size, 320);
});

// ---- what is at the offset -------------------------------------------------------------

test('attach to all zeros: LayoutError (nothing was created there)', () => {
  const shm = h.object(4096);
  const e = throws(() => Channel.attach(shm), LayoutError, /all zero|no concurrent-shm/);
  assert.is(e.code, 'ERR_SHM_BAD_LAYOUT');
  throws(() => Channel.attach(shm, { offset: 1024 }), LayoutError);
  assert.ok(raw(shm).read().every((b) => b === 0), 'attach wrote nothing');
});

test('attach past the end of the object, or to an object too small for a header: LayoutError', () => {
  const shm = h.object(32);
  throws(() => Channel.attach(shm), LayoutError, /only 32 bytes/);
  const empty = h.object();
  throws(() => Channel.attach(empty), LayoutError);
  throws(() => Channel.attach(h.object(4096), { offset: 4096 }), LayoutError);
});

test('random bytes at the offset: attach and new both give LayoutError and leave the bytes alone', () => {
  const shm = h.object(8192);
  const r = raw(shm);
  for (let round = 0; round < 30; round++) {
    const garbage = randomBytes(1024);
    if (round % 3 === 0) garbage.writeUInt32LE(0x4d485343, 0); // even with the right magic number
    // initState (byte 28) 0 or 2 here: a garbage state word is the next test's subject
    garbage.writeUInt32LE(round % 2 === 0 ? 0 : 2, 28);
    r.write(garbage, 0);
    throws(() => Channel.attach(shm), LayoutError, undefined, `attach, round ${round}`);
    for (const k of KINDS) throws(() => new (k.cls())(shm, k.opts), LayoutError, /refusing to overwrite|not a valid|corrupt|already|version|no concurrent-shm/, `new ${k.name}, round ${round}`);
    assert.ok(r.read(0, 1024).equals(garbage), 'the bytes were not overwritten');
  }
});

test('garbage whose initState word (byte 28) is none of 0/1/2 is refused at once, not after waiting 2 s for a phantom initialiser', () => {
  const shm = h.object(8192);
  const r = raw(shm);
  const garbage = randomBytes(1024);
  garbage.writeUInt32LE(0xdeadbeef, 28);
  r.write(garbage, 0);
  for (const [what, fn] of [['new', () => new Channel.SingleBuffered.Fixed(shm, { width: 8 })], ['attach', () => Channel.attach(shm)]]) {
    const t0 = performance.now();
    const e = throws(fn, LayoutError, undefined, what);
    const ms = performance.now() - t0;
    assert.ok(r.read(0, 1024).equals(garbage), 'the bytes were not overwritten');
    assert.ok(ms < 1000, `${what}: took ${ms.toFixed(0)} ms and said: ${e.message}`);
  }
});

/** A real channel's header bytes, to patch. */
function realChannel(shm, make = (s) => new Channel.Buffered.Fixed(s, { depth: 4, width: 24 })) {
  const ch = make(shm);
  const info = { kind: ch.kind, byteLength: ch.byteLength };
  ch.trySend('hello');
  ch.release();
  return info;
}

test('a layout version mismatch (byte 4 of a real header patched): LayoutError naming the version', () => {
  const shm = h.object();
  realChannel(shm);
  const r = raw(shm);
  // Version 2 is the old layout (two state words per slot): refused, not misread.
  r.write(Buffer.from([2]), 4);
  throws(() => Channel.attach(shm), LayoutError, /layout version 2; .* reads a Buffered\.Fixed of version 4 or 5 only/);
  throws(() => new Channel.Buffered.Fixed(shm, { depth: 4, width: 24 }), LayoutError, /version 2/);
  r.write(Buffer.from([6]), 4);
  throws(() => Channel.attach(shm), LayoutError, /layout version 6/);
  // version 5 is a chunked Variable channel: a Fixed channel's header saying 5 is corrupt
  r.write(Buffer.from([5]), 4);
  throws(() => Channel.attach(shm), LayoutError, /corrupt \(version 5, kind 3, payload 1/);
  r.write(Buffer.from([4]), 4);
  const ch = h.keep(Channel.attach(shm));
  assert.is(ch.tryRecv({ encoding: 'latin1' }).replace(/\0+$/, ''), 'hello', 'with the byte restored it is the same channel');
});

test('a different kind at the same offset (new with other parameters, create, another class): LayoutError; the channel there is unharmed', () => {
  const shm = h.object(8192);
  realChannel(shm);
  const others = [
    () => new Channel.Buffered.Fixed(shm, { depth: 5, width: 24 }),
    () => new Channel.Buffered.Fixed(shm, { depth: 4, width: 25 }),
    () => new Channel.Buffered.Variable(shm, { depth: 4, capacity: 24 }),
    () => new Channel.SingleBuffered.Fixed(shm, { width: 24 }),
    () => new Channel.Unbuffered.Empty(shm),
    () => Channel.create(shm, { depth: 2, width: 24 }),
  ];
  for (const make of others) throws(make, LayoutError, /already a Buffered\.Fixed|Mutex|not|already/, String(make));
  const ch = h.keep(Channel.attach(shm));
  assert.is(ch.kind, 'Buffered.Fixed');
  assert.is(ch.depth, 4);
  assert.is(ch.tryRecv({ encoding: 'latin1' }).replace(/\0+$/, ''), 'hello');
});

test('a mutex at the offset: Channel.attach says it is not a channel (LayoutError)', () => {
  const shm = h.object(4096);
  void new Mutex(Region.map(shm, 1024, 64));
  throws(() => Channel.attach(shm, { offset: 1024 }), LayoutError, /not a channel|Mutex/);
});

// Corrupt fields in an otherwise valid header. Each patch makes the header lie about the
// structure; attach must refuse it rather than build a channel that reads the wrong bytes.
const PATCHES = [
  ['the magic number', (b) => b.writeUInt32LE(0x4d485344, 0)],
  ['the kind byte (9, unknown)', (b) => (b[6] = 9)],
  ['the payload byte (5, unknown)', (b) => (b[7] = 5)],
  ['the slot stride (not a multiple of 64)', (b) => b.writeUInt32LE(100, 16)],
  ['the total size (disagrees with depth × stride)', (b) => b.writeUInt32LE(b.readUInt32LE(24) + 64, 24)],
  ['depth 0', (b) => {
    b.writeUInt32LE(0, 8);
    b.writeUInt32LE(256, 24);
  }],
];
for (const [what, patch] of PATCHES) {
  test(`a header with a corrupt field (${what}): attach gives LayoutError`, () => {
    const shm = h.object(8192);
    realChannel(shm);
    const r = raw(shm);
    const header = r.read(0, 64);
    patch(header);
    r.write(header, 0);
    throws(() => Channel.attach(shm), LayoutError);
  });
}

test('a header whose sizes are consistent but run past the end of the object: LayoutError, not a mapping error', () => {
  const shm = h.object();
  realChannel(shm, (s) => new Channel.SingleBuffered.Fixed(s, { width: 8 }));
  const size = shm.size;
  const r = raw(shm, 0, 64);
  const header = r.read(0, 64);
  // a Buffered header claiming 1000 slots: consistent in itself, far larger than the object
  header[6] = 3;
  header.writeUInt32LE(1000, 8);
  header.writeUInt32LE(256 + 1000 * 64, 24);
  r.write(header, 0);
  let error;
  try {
    Channel.attach(shm);
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof LayoutError, `expected LayoutError for a header that claims ${256 + 1000 * 64} bytes of a ${size}-byte object, got ${error?.name}: ${error?.message}`);
});

test('a header whose slot offset is not the layout\'s (256): LayoutError, not a channel that reads the wrong bytes', () => {
  const shm = h.object();
  realChannel(shm, (s) => new Channel.SingleBuffered.Fixed(s, { width: 8 }));
  const r = raw(shm, 0, 64);
  const header = r.read(0, 64);
  header.writeUInt32LE(0, 20); // slotsOffset 0 ...
  header.writeUInt32LE(64, 24); // ... and a total size consistent with it
  r.write(header, 0);
  let ch;
  let error;
  try {
    ch = Channel.attach(shm);
  } catch (err) {
    error = err;
  }
  if (ch) {
    // what it does then: the engine uses 256 regardless, outside the 64 bytes it mapped
    let use;
    try {
      ch.trySend('x');
    } catch (err) {
      use = err;
    }
    ch.release();
    assert.unreachable(`attach accepted a header with slotsOffset 0 (a ${ch.kind} of ${ch.byteLength} bytes); using it then threw ${use?.name}: ${use?.message}`);
  }
  assert.ok(error instanceof LayoutError, `got ${error?.name}: ${error?.message}`);
});

test('a SingleBuffered or Unbuffered header claiming more than one slot: LayoutError (they have exactly one)', () => {
  for (const [name, kindByte] of [['SingleBuffered', 2], ['Unbuffered', 1]]) {
    const shm = h.object(8192);
    realChannel(shm, (s) => new Channel.SingleBuffered.Fixed(s, { width: 8 }));
    const r = raw(shm, 0, 64);
    const header = r.read(0, 64);
    header[6] = kindByte;
    header.writeUInt32LE(3, 8);
    header.writeUInt32LE(256 + 3 * 64, 24);
    r.write(header, 0);
    let ch;
    let error;
    try {
      ch = Channel.attach(shm);
    } catch (err) {
      error = err;
    }
    if (ch) {
      const depth = ch.depth;
      ch.release();
      assert.unreachable(`attach accepted a ${name} header of depth 3 (got a ${name} channel of depth ${depth})`);
    }
    assert.ok(error instanceof LayoutError, `${name}: got ${error?.name}`);
  }
});

test('an initialisation that never finished (initState "initialising", initialiser gone): LayoutError after the 2 s grace, not a hang', () => {
  const shm = h.object(4096);
  const r = raw(shm, 0, 64);
  const words = Buffer.alloc(8);
  words.writeUInt32LE(1, 0); // initState: initialising
  words.writeUInt32LE(0x3ffffff0, 4); // initPid: no such process
  r.write(words, 28);
  const t0 = performance.now();
  throws(() => new Channel.SingleBuffered.Fixed(shm, { width: 8 }), LayoutError, /died while initialising|did not complete/);
  const ms = performance.now() - t0;
  assert.ok(ms < 5000, `gave up after ${ms} ms`);
});

test('a Variable slot whose length word was overwritten beyond capacity: LayoutError on receive, and the channel goes on', async () => {
  for (const make of [(s) => new Channel.SingleBuffered.Variable(s, { capacity: 40 }), (s) => new Channel.Buffered.Variable(s, { depth: 2, capacity: 40 })]) {
    const shm = h.object();
    const ch = h.keep(make(shm));
    const stride = (ch.byteLength - CH.SLOTS) / ch.depth;
    const r = raw(shm);
    const receivers = [
      () => ch.recvSync({ timeout: 1000 }),
      () => ch.tryRecv(),
      () => ch.recvIntoSync(Buffer.alloc(40), { timeout: 1000 }),
    ];
    for (const [i, receive] of receivers.entries()) {
      assert.ok(ch.trySend('fine'));
      const slot = (ch.stats().sent - 1) % ch.depth;
      const len = Buffer.alloc(4);
      len.writeUInt32LE(i === 0 ? 41 : 0xfffffff0, 0);
      r.write(len, CH.SLOTS + slot * stride + CH.SLOT_LENGTH);
      const e = throws(receive, LayoutError, /capacity|overwritten/, `receiver ${i}`);
      assert.is(e.code, 'ERR_SHM_BAD_LAYOUT');
    }
    // async too
    assert.ok(ch.trySend('fine'));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(1000, 0);
    r.write(len, CH.SLOTS + ((ch.stats().sent - 1) % ch.depth) * stride + CH.SLOT_LENGTH);
    let error;
    try {
      await ch.recv({ timeout: 1000 });
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof LayoutError, `recv: ${error?.name}`);
    // the bad slots were freed: the channel works
    assert.is(ch.stats().queued, 0);
    assert.ok(ch.trySend('after'));
    assert.is(ch.recvSync({ encoding: 'utf8', timeout: 1000 }), 'after');
  }
});

test.run();
