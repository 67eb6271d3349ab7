// The Heap: creating and attaching, malloc / calloc / free / sizeOf / map, alignment, the
// full-heap error, every bad input refused with nothing changed, channels, Watches and
// mutexes inside blocks (and the overlap rules around them), named blocks shared by real
// child processes, and reclaiming the blocks of dead ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, Heap, HeapFullError, HeapNameError, InvalidArgumentError, LayoutError, MisalignedError, Mutex, NotABlockError, OutOfRangeError, OverlapError, Region, SharedMemory, Watch, Int32Ptr } from '../dist/index.js';
import { harness } from './fixtures/channel-harness.js';
import { collectGarbage } from './fixtures/common.js';
import { heldRanges } from '../dist/shared-memory/registry.js';

const h = harness(test, 'heap');
const SIZE = 1 << 20;

function fresh(size = SIZE, options = {}) {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size, ...options }));
  return { shm, heap };
}

/** Every byte of the heap, to compare before and after a refused call. */
function snapshot(heap) {
  return Buffer.from(new Uint8Array(heap.region.mapping.buffer, heap.region.start, heap.byteLength));
}

test('a new heap: one free block, its figures, check() agrees; the object grew to fit', () => {
  const { shm, heap } = fresh();
  assert.is(shm.size >= SIZE, true);
  const s = heap.check();
  assert.is(s.size, SIZE);
  assert.is(s.used, 0);
  assert.is(s.blocks, 0);
  assert.is(s.freeBlocks, 1);
  assert.is(s.named, 0);
  assert.is(s.largest, s.free - 16);
  assert.ok(s.free > SIZE - 16384, `most of the heap is free (${s.free})`);
  assert.equal(heap.stats(), s);
});

test('attach: Heap.attach and new Heap of the same size share the heap; another size or garbage is a LayoutError', () => {
  const { shm, heap } = fresh(65536, { offset: 4096 });
  const off = heap.malloc(100);
  const other = h.keep(Heap.attach(shm, { offset: 4096 }));
  assert.is(other.byteLength, 65536);
  assert.is(other.sizeOf(off), 112);
  const same = h.keep(new Heap(shm, { size: 65536, offset: 4096 }));
  assert.is(same.stats().blocks, 1);
  // In this process the other size is an overlap of the heap it holds (another process gets a LayoutError).
  assert.throws(() => new Heap(shm, { size: 131072, offset: 4096 }), (e) => e instanceof OverlapError && /Heap\(size 65536\)/.test(e.message));
  assert.throws(() => Heap.attach(shm, { offset: 0 }), (e) => e instanceof LayoutError && /all zero/.test(e.message));
  const g = h.object(8192);
  const r = Region.map(g, 0, 64);
  new Uint8Array(r.mapping.buffer, r.start, 64).fill(7);
  r.unmap();
  assert.throws(() => new Heap(g, { size: 8192 * 2 }), (e) => e instanceof LayoutError);
  const ch = h.keep(new Channel.SingleBuffered.Fixed(g, { width: 8, offset: 4096 }));
  assert.throws(() => Heap.attach(g, { offset: 4096 }), (e) => e instanceof LayoutError && /not a Heap/.test(e.message));
  void ch;
});

test('another process: new Heap of the same size attaches, of another size is a LayoutError', async () => {
  const { shm, heap } = fresh(65536);
  heap.malloc(10);
  const same = await h.start('heap-party', 'create', { size: 65536 }, { shm }).result();
  assert.equal(same, { ok: true, size: 65536, blocks: 1 });
  const other = await h.start('heap-party', 'create', { size: 131072 }, { shm }).result();
  assert.is(other.ok, false);
  assert.is(other.error.code, 'ERR_SHM_BAD_LAYOUT');
  assert.match(other.error.message, /there is already a Heap\(size 65536\); asked for a Heap\(size 131072\)/);
});

test('malloc: 16-byte aligned blocks of at least n bytes that never overlap; free merges back to one block', () => {
  const { heap } = fresh();
  const blocks = [];
  for (let n = 1; n <= 3000; n += 37) blocks.push([heap.malloc(n), n]);
  for (const [off, n] of blocks) {
    assert.is(off % 16, 0, `aligned: ${off}`);
    assert.ok(heap.sizeOf(off) >= n && heap.sizeOf(off) < n + 48, `sizeOf(${off}) = ${heap.sizeOf(off)} for ${n}`);
    assert.is(heap.ownerOf(off), process.pid);
  }
  const sorted = blocks.map(([o]) => [o, o + heap.sizeOf(o)]).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i][0] >= sorted[i - 1][1] + 16, 'no overlap, room for a header between blocks');
  assert.is(heap.check().blocks, blocks.length);
  // Free in a scrambled order: every neighbour merges.
  for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i][0]);
  heap.check();
  for (let i = 1; i < blocks.length; i += 2) heap.free(blocks[i][0]);
  const s = heap.check();
  assert.is(s.blocks, 0);
  assert.is(s.freeBlocks, 1);
});

test('options.align: offsets in the object are multiples of it (the heap itself only 16-aligned); the front gap stays free', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 1 << 20, offset: 4112 }));
  const blocks = [];
  for (const align of [16, 32, 64, 256, 4096, 65536]) {
    for (const n of [1, 100, 5000]) {
      const off = heap.malloc(n, { align });
      assert.is(off % align, 0, `malloc(${n}, { align: ${align} }) = ${off}`);
      assert.ok(heap.sizeOf(off) >= n);
      blocks.push(off);
    }
    heap.check();
  }
  const c = heap.calloc(64, { align: 64 });
  assert.is(c % 64, 0);
  const n = heap.named('lines', 640, { align: 64 });
  assert.is(n % 64, 0);
  assert.is(heap.named('lines', 640, { align: 64 }), n);
  assert.throws(() => heap.named('lines', 640, { align: 65536 }), (e) => e instanceof HeapNameError && /not a multiple of 65536/.test(e.message));
  for (const o of [...blocks, c]) heap.free(o);
  heap.unname('lines');
  const s = heap.check();
  assert.is(s.blocks, 0);
  assert.is(s.freeBlocks, 1, 'every front gap merged back');
});

test('calloc zeroes the block (its whole usable size); malloc may hand back old bytes', () => {
  const { heap } = fresh();
  const a = heap.malloc(200);
  const r = heap.map(a);
  new Uint8Array(r.mapping.buffer, r.start, r.length).fill(0xab);
  r.unmap();
  heap.free(a);
  const b = heap.calloc(200);
  assert.is(b, a, 'the same block again (first fit at the same place)');
  const r2 = heap.map(b);
  assert.ok(new Uint8Array(r2.mapping.buffer, r2.start, r2.length).every((x) => x === 0));
  assert.is(r2.length, heap.sizeOf(b));
  r2.unmap();
});

test('map: a Region over exactly the block; typed pointers from it; another map sees the writes', () => {
  const { heap } = fresh();
  const off = heap.malloc(64);
  const r = heap.map(off);
  assert.is(r.offset, off);
  assert.is(r.length, 64);
  const p = new Int32Ptr(r, 8);
  p.store(42);
  const again = heap.map(off);
  assert.is(new Int32Ptr(again, 8).load(), 42);
  r.unmap();
  again.unmap();
});

test('the full heap: ERR_SHM_HEAP_FULL with the size asked and the largest free block; nothing changes; that largest fits', () => {
  const { heap } = fresh(65536);
  const taken = [];
  for (;;) {
    try {
      taken.push(heap.malloc(3000));
    } catch (e) {
      assert.instance(e, HeapFullError);
      assert.is(e.code, 'ERR_SHM_HEAP_FULL');
      assert.is(e.requested, 3000);
      const before = snapshot(heap);
      assert.is(e.largest, heap.stats().largest);
      assert.match(e.message, new RegExp(`cannot allocate 3000 bytes .* the largest free block holds ${e.largest} bytes; nothing changed`));
      assert.ok(snapshot(heap).equals(before));
      if (e.largest > 0) {
        const last = heap.malloc(e.largest);
        assert.is(heap.sizeOf(last), e.largest);
        taken.push(last);
      }
      break;
    }
  }
  assert.is(heap.stats().largest, 0);
  assert.throws(() => heap.malloc(1), (e) => e instanceof HeapFullError && e.largest === 0);
  for (const t of taken) heap.free(t);
  assert.is(heap.check().freeBlocks, 1);
});

test('bad input is refused with a code before anything is written', () => {
  const { heap, shm } = fresh(65536);
  const named = heap.named('n', 32);
  const a = heap.malloc(100);
  const b = heap.malloc(100);
  heap.free(b);
  const base = heap.offset;
  const cases = [
    ['malloc(0)', () => heap.malloc(0), OutOfRangeError],
    ['malloc(-1)', () => heap.malloc(-1), OutOfRangeError],
    ['malloc(1.5)', () => heap.malloc(1.5), InvalidArgumentError],
    ['malloc(NaN)', () => heap.malloc(NaN), InvalidArgumentError],
    ["malloc('8')", () => heap.malloc('8'), InvalidArgumentError],
    ['malloc(2^40)', () => heap.malloc(2 ** 40), OutOfRangeError],
    ['malloc(more than free)', () => heap.malloc(65536), HeapFullError],
    ['calloc(0)', () => heap.calloc(0), OutOfRangeError],
    ['malloc align 8', () => heap.malloc(8, { align: 8 }), OutOfRangeError, /power of two from 16 to 65536/],
    ['malloc align 48', () => heap.malloc(8, { align: 48 }), OutOfRangeError],
    ['malloc align 2^20', () => heap.malloc(8, { align: 1 << 20 }), OutOfRangeError],
    ["malloc align '64'", () => heap.malloc(8, { align: '64' }), InvalidArgumentError],
    ['malloc unknown option', () => heap.malloc(8, { alignment: 64 }), InvalidArgumentError, /unknown key "alignment"/],
    ['malloc options null', () => heap.malloc(8, null), InvalidArgumentError],
    ['free(freed)', () => heap.free(b), NotABlockError, /no live block starts there/],
    ['free(inside)', () => heap.free(a + 16), NotABlockError, /no live block starts there/],
    ['free(misaligned)', () => heap.free(a + 4), NotABlockError, /multiple of 16/],
    ['free(before the blocks)', () => heap.free(base + 64), NotABlockError, /outside the heap's blocks/],
    ['free(past the heap)', () => heap.free(base + 65536 + 16), NotABlockError, /outside/],
    ['free(-16)', () => heap.free(-16), NotABlockError],
    ['free(named)', () => heap.free(named), NotABlockError, /named block; remove it with unname/],
    ["free('1')", () => heap.free('1'), InvalidArgumentError],
    ['free(1.5)', () => heap.free(1.5), InvalidArgumentError],
    ['sizeOf(freed)', () => heap.sizeOf(b), NotABlockError],
    ['map(inside)', () => heap.map(a + 32), NotABlockError],
    ["named('')", () => heap.named('', 8), InvalidArgumentError, /empty/],
    ['named(NUL)', () => heap.named('a\0b', 8), InvalidArgumentError, /NUL/],
    ['named(57 bytes)', () => heap.named('x'.repeat(57), 8), InvalidArgumentError, /at most 56 bytes/],
    ['named(lone surrogate)', () => heap.named('a\ud800', 8), InvalidArgumentError, /valid Unicode/],
    ['named(5)', () => heap.named(5, 8), InvalidArgumentError],
    ["named('x', 0)", () => heap.named('x', 0), OutOfRangeError],
    ['named(existing, larger)', () => heap.named('n', 33), HeapNameError, /32 usable bytes, fewer than the 33/],
    ['lookup(7)', () => heap.lookup(7), InvalidArgumentError],
    ['reclaim(-1)', () => heap.reclaim(-1), InvalidArgumentError],
    ['reclaim(self)', () => heap.reclaim(process.pid), InvalidArgumentError, /still running/],
    ['options unknown key', () => new Heap(shm, { size: 65536, sise: 1 }), InvalidArgumentError, /unknown key "sise" \(did you mean 'size'\?\)/],
    ['options no size', () => new Heap(shm, {}), InvalidArgumentError],
    ['options size too small', () => new Heap(shm, { size: 4096, offset: 1 << 20 }), OutOfRangeError, /from \d+ \(with 64 names\)/],
    ['options size not a multiple of 16', () => new Heap(shm, { size: 100008, offset: 1 << 20 }), MisalignedError],
    ['options offset misaligned', () => new Heap(shm, { size: 65536, offset: 8 }), MisalignedError],
    ['options names too many', () => new Heap(shm, { size: 65536, names: 1e6, offset: 1 << 20 }), OutOfRangeError],
    ['attach misaligned', () => Heap.attach(shm, { offset: 24 }), MisalignedError],
    ['attach unknown key', () => Heap.attach(shm, { ofset: 0 }), InvalidArgumentError],
  ];
  for (const [what, call, Class, message] of cases) {
    const before = snapshot(heap);
    const size = shm.size;
    let error;
    try {
      call();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof Class, `${what}: threw ${error?.name}: ${error?.message}`);
    assert.ok(typeof error.code === 'string' && error.code.startsWith('ERR_SHM_'), `${what}: a code`);
    if (message) assert.match(error.message, message, `${what}: ${error.message}`);
    assert.ok(snapshot(heap).equals(before), `${what}: the heap's bytes are unchanged`);
    assert.is(shm.size, size, `${what}: the object's size is unchanged`);
  }
  heap.check();
});

test('a channel, a Watch and a Mutex live in blocks; a structure across a block boundary or over the heap is refused', () => {
  const { shm, heap } = fresh();
  const need = Channel.byteLength({ depth: 8, width: 64 });
  assert.is(need, 256 + 8 * 128);
  const at = heap.malloc(need);
  const ch = h.keep(new Channel.Buffered.Fixed(shm, { offset: at, depth: 8, width: 64, autosize: false }));
  ch.sendSync(Buffer.from('inside a heap block'));
  assert.is(ch.recvSync().subarray(0, 19).toString(), 'inside a heap block');
  const wat = heap.malloc(Watch.byteLength(100));
  const w = h.keep(new Watch(shm, { offset: wat, capacity: 100 }));
  w.write('hello');
  const mat = heap.malloc(64);
  const m = new Mutex(heap.map(mat));
  m.lock();
  m.unlock();
  // Across the end of its block: the heap refuses it.
  const small = heap.malloc(256);
  assert.throws(() => new Channel.Buffered.Fixed(shm, { offset: small, depth: 8, width: 64, autosize: false }), (e) => e instanceof OverlapError);
  // Not at a block's start, over the heap's control area: refused.
  assert.throws(() => new Channel.SingleBuffered.Fixed(shm, { offset: 256, width: 8, autosize: false }), (e) => e instanceof OverlapError);
  assert.throws(() => new Channel.SingleBuffered.Fixed(shm, { offset: at + 1024, width: 8, autosize: false }), (e) => e instanceof OverlapError);
  heap.check();
});

test('a heap inside a block of another heap', () => {
  const { shm, heap } = fresh();
  const at = heap.malloc(65536);
  const inner = h.keep(new Heap(shm, { size: 65536, offset: at }));
  const x = inner.malloc(1000);
  assert.ok(x > at && x < at + 65536);
  inner.check();
  heap.check();
});

test('named blocks: two processes racing for a name get one zeroed block; lookup, names and unname', async () => {
  const { shm, heap } = fresh();
  const parties = [0, 1, 2].map(() => h.start('heap-party', 'named', { name: 'counters', n: 64, adds: 1000 }, { shm }));
  const results = await Promise.all(parties.map((p) => p.result()));
  for (const r of results) assert.ok(r.ok, JSON.stringify(r));
  assert.is(new Set(results.map((r) => r.offset)).size, 1, 'one block for the name');
  const off = heap.lookup('counters');
  assert.is(off, results[0].offset);
  assert.is(heap.ownerOf(off), 0, 'a named block belongs to no process');
  const r = heap.map(off);
  const words = new Int32Array(r.mapping.buffer, r.start, 16);
  assert.equal([...words.subarray(0, 5)], [3000, 3000, 3000, 3000, 0], 'zeroed at first, then every add counted');
  r.unmap();
  assert.is(heap.named('counters', 8), off, 'a smaller size gets the same block');
  assert.equal(heap.names(), [{ name: 'counters', offset: off, size: 64 }]);
  assert.is(heap.lookup('other'), undefined);
  const s = heap.check();
  assert.is(s.named, 1);
  assert.is(heap.unname('counters'), true);
  assert.is(heap.unname('counters'), false);
  assert.is(heap.lookup('counters'), undefined);
  assert.equal(heap.check().blocks, 0, 'unname freed the block');
});

test('the name directory has room for `names` entries; then ERR_SHM_HEAP_FULL', () => {
  const { heap } = fresh(65536, { names: 2 });
  heap.named('a', 8);
  heap.named('ü✓', 8);
  assert.throws(() => heap.named('c', 8), (e) => e instanceof HeapFullError && /name directory is full \(2 names\)/.test(e.message));
  assert.is(heap.check().named, 2);
});

test('reclaim: the blocks of a process that exited (or was killed) are freed; named blocks and live owners stay', async () => {
  const { shm, heap } = fresh();
  const mine = heap.malloc(100);
  heap.named('keep', 100);
  const child = h.start('heap-party', 'leak', { count: 5, n: 300 }, { shm });
  const r = await child.result();
  assert.ok(r.ok);
  for (const o of r.offsets) assert.is(heap.ownerOf(o), child.pid);
  assert.is(heap.stats().blocks, 7);
  const got = heap.reclaim(child.pid);
  assert.equal(got, { blocks: 5, bytes: 5 * 320, pids: [child.pid] });
  assert.is(heap.check().blocks, 2);
  const again = h.start('heap-party', 'leak', { count: 3, n: 40 }, { shm });
  await again.result();
  const dead = heap.reclaimDead();
  assert.equal(dead, { blocks: 3, bytes: 3 * 64, pids: [again.pid] });
  assert.is(heap.sizeOf(mine), 112, 'the live owner keeps its block');
  assert.is(heap.check().blocks, 2);
});

test('release: idempotent; use after it is refused; the blocks stay for other handles', () => {
  const { shm, heap } = fresh();
  const off = heap.malloc(10);
  const other = h.keep(Heap.attach(shm));
  heap.release();
  heap.release();
  assert.throws(() => heap.malloc(10), (e) => e.code === 'ERR_SHM_UNMAPPED');
  assert.is(other.sizeOf(off), 16);
});

test('a heap handle dropped without release() is collected, and its claim on the bytes forgotten', async () => {
  const shm = h.object();
  let collected = false;
  const registry = new FinalizationRegistry(() => (collected = true));
  (() => {
    const heap = new Heap(shm, { size: 65536 });
    registry.register(heap, 'heap');
    heap.malloc(100);
  })();
  await collectGarbage();
  assert.ok(collected, 'the Heap was collected');
  // Its claim on the object's bytes is gone from this process's registry.
  assert.equal([...heldRanges(shm.key)].filter((r) => r.structure?.includes('Heap')), []);
  const heap = h.keep(Heap.attach(shm));
  assert.is(heap.stats().blocks, 1, 'the heap itself stays, with its block');
});

test.run();
