// Edges of the Heap's promises: structures in blocks (nested heaps, second handles in
// either order, collected handles, reused blocks, frees of blocks still in use), aligned
// malloc and its HeapFullError, the lock lost to a takeover, adopt, and pid reuse against
// reclaim and the lock. The pid-reuse tests need control of process ids (root,
// /proc/sys/kernel/ns_last_pid writable) and skip themselves without it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, accessSync, constants } from 'node:fs';
import { BlockInUseError, Channel, Heap, HeapCorruptError, HeapFullError, Mutex, NotABlockError, OverlapError, Region, Watch } from '../dist/index.js';
import { setStepHook } from '../dist/sync/steps.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { harness, throws } from './fixtures/channel-harness.js';
import { prng } from './fixtures/prng.js';

const h = harness(test, 'hedges');
const SIZE = 1 << 20;

test('a channel in a block of a heap nested in a block of another heap is admitted by both heaps', () => {
  const shm = h.object();
  const outer = h.keep(new Heap(shm, { size: SIZE }));
  const at = outer.malloc(65536);
  const inner = h.keep(new Heap(shm, { size: 65536, offset: at }));
  const need = Channel.byteLength({ depth: 0, width: 8 });
  const x = inner.malloc(need);
  // The bytes lie within one live block of the inner heap, which lies within one live
  // block of the outer heap: the outer heap admits any range inside one of its blocks.
  let ch;
  try {
    ch = new Channel.SingleBuffered.Fixed(shm, { offset: x, width: 8, autosize: false });
  } catch (err) {
    assert.unreachable(`a channel in a block of the inner heap was refused: ${err.name}: ${err.message}`);
  }
  ch.release();
});

test('a second handle on a heap (attach, or new Heap of the same shape) is admitted while a structure lives in one of its blocks', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE, offset: 4096 }));
  const at = heap.malloc(Channel.byteLength({ depth: 0, width: 8 }));
  const ch = h.keep(new Channel.SingleBuffered.Fixed(shm, { offset: at, width: 8, autosize: false }));
  void ch;
  // Two handles on one structure are fine, and the channel is inside a live block of it.
  for (const [what, open] of [
    ['Heap.attach', () => Heap.attach(shm, { offset: 4096 })],
    ['new Heap of the same size', () => new Heap(shm, { size: SIZE, offset: 4096 })],
  ]) {
    let other;
    try {
      other = open();
    } catch (err) {
      assert.unreachable(`${what} refused a second handle: ${err.name}: ${err.message}`);
    }
    other.release();
  }
});

test('a collected heap handle (finalizer not yet run) refuses no structure', async () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE }));
  const at = heap.malloc(Channel.byteLength({ depth: 0, width: 8 }));
  (() => {
    // A second handle that the program simply drops (a helper that attached and returned).
    Heap.attach(shm).stats();
  })();
  await new Promise((resolve) => setImmediate(resolve));
  globalThis.gc();
  // Synchronously after the collection the dropped handle's claim is still registered; a
  // collected handle maps nothing, so its claim admits everything.
  let ch;
  try {
    ch = new Channel.SingleBuffered.Fixed(shm, { offset: at, width: 8, autosize: false });
  } catch (err) {
    assert.unreachable(`a channel in a live block was refused because of a collected handle: ${err.name}: ${err.message}`);
  }
  ch.release();
});

test('malloc with align takes a free block that is aligned already, without padding', () => {
  const shm = h.object();
  // Heap at object offset 48: its arena is a multiple of 64 from the heap's start, so the
  // data of its one free block is at a multiple of 64 in the object (no gap needed).
  const heap = h.keep(new Heap(shm, { size: SIZE, offset: 48 }));
  const { largest } = heap.stats();
  const n = largest - 64;
  let off;
  try {
    off = heap.malloc(n, { align: 64 });
  } catch (err) {
    assert.ok(err instanceof HeapFullError);
    assert.unreachable(`malloc(${n}, { align: 64 }) with a free 64-aligned block of ${largest} bytes: ${err.message}`);
  }
  assert.is(off % 64, 0);
  heap.check();
});

test('a channel created in a block that malloc reused is a fresh channel, not the freed one', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE }));
  const need = Channel.byteLength({ depth: 0, width: 8 });
  const at = heap.malloc(need);
  const old = new Channel.SingleBuffered.Fixed(shm, { offset: at, width: 8, autosize: false });
  old.sendSync(Buffer.from('stale!!!'));
  old.release();
  heap.free(at);
  // Another part of the program (or another process) allocates and creates its channel,
  // as docs/api/heap.md shows: new Channel(shm, { offset: heap.malloc(...) }).
  const at2 = heap.malloc(need);
  assert.is(at2, at, 'the freed block came back');
  const ch = h.keep(new Channel.SingleBuffered.Fixed(shm, { offset: at2, width: 8, autosize: false }));
  const got = ch.tryRecv();
  // malloc zeroes a block's first 64 bytes: no structure header survives in a reused block.
  assert.is(got, undefined, `the new channel holds a message sent before the block was freed: ${got}`);
  // The same with another shape: the stale header is "not zero and not" this channel.
  ch.release();
  heap.free(at2);
  const at3 = heap.malloc(need);
  assert.is(at3, at);
  let other;
  try {
    other = new Channel.SingleBuffered.Fixed(shm, { offset: at3, width: 4, autosize: false });
  } catch (err) {
    assert.unreachable(`a channel in a reused block was refused: ${err.name}: ${err.message}`);
  }
  other.release();
});

test('a structure opened before the heap is admitted when the heap is attached, and refused when it lies outside every live block', () => {
  const shm = h.object();
  const AT = 4096;
  const need = Channel.byteLength({ depth: 0, width: 8 });
  const first = new Heap(shm, { size: SIZE, offset: AT });
  const x = first.malloc(need);
  const y = first.malloc(need);
  first.free(y); // y: inside the heap, in no live block
  first.release();
  // Channels opened by offset (from a message, say) before this process holds the heap.
  const inBlock = h.keep(new Channel.SingleBuffered.Fixed(shm, { offset: x, width: 8, autosize: false }));
  for (const open of [() => Heap.attach(shm, { offset: AT }), () => new Heap(shm, { size: SIZE, offset: AT })]) {
    const heap = open();
    assert.is(heap.ownerOf(x), process.pid);
    heap.release();
  }
  inBlock.release();
  const stray = new Channel.SingleBuffered.Fixed(shm, { offset: y, width: 8, autosize: false });
  try {
    for (const open of [() => Heap.attach(shm, { offset: AT }), () => new Heap(shm, { size: SIZE, offset: AT })]) {
      throws(open, OverlapError, /would overlap a SingleBuffered/, 'a heap over a channel in no live block');
    }
  } finally {
    stray.release();
  }
  // And a structure straddling two blocks is refused by the heap that holds them.
  const heap = h.keep(Heap.attach(shm, { offset: AT }));
  const a = heap.malloc(32);
  heap.malloc(32);
  throws(() => new Channel.SingleBuffered.Fixed(shm, { offset: a + 16, width: 8, autosize: false }), OverlapError, /overlap a Heap/, 'a channel running past its block');
});

test('no block comes out of malloc holding a structure header, even one that lay inside a freed block', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 1 << 16 }));
  const big = heap.malloc(4096);
  // A channel in the middle of a block (admitted: it lies within one live block).
  const old = new Channel.SingleBuffered.Fixed(shm, { offset: big + 1024, width: 8, autosize: false });
  old.sendSync(Buffer.from('stale!!!'));
  old.release();
  heap.free(big);
  // Two blocks: the second one's data starts where the old channel's header is.
  assert.is(heap.malloc(1008), big);
  const at = heap.malloc(Channel.byteLength({ depth: 0, width: 8 }));
  assert.is(at, big + 1024);
  const bytes = new Uint8Array(heap.region.mapping.buffer, heap.region.start + at - heap.offset, 64);
  assert.ok(bytes.every((b) => b === 0), 'the first 64 bytes of a new block are zero');
  const ch = h.keep(new Channel.SingleBuffered.Fixed(shm, { offset: at, width: 8, autosize: false }));
  assert.is(ch.tryRecv(), undefined);
  heap.check();
});

test('free and unname refuse a block in which this process still has a structure, changing nothing', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE }));
  const c = heap.malloc(Channel.byteLength({ depth: 0, width: 8 }));
  const ch = new Channel.SingleBuffered.Fixed(shm, { offset: c, width: 8, autosize: false });
  const w = heap.malloc(Watch.byteLength(16) + 256);
  const watch = new Watch(shm, { offset: w + 128, capacity: 16 }); // inside, not at the start
  const m = heap.named('lock', 64);
  const mutex = new Mutex(heap.map(m));
  const inner = heap.malloc(16384);
  const nested = new Heap(shm, { size: 16384, offset: inner });
  const before = heap.check();
  throws(() => heap.free(c), BlockInUseError, /^free\(\d+\): the block at offset \d+ of the Heap .* still holds a SingleBuffered.* of this process at bytes \d+\.\.\d+; release it first; nothing changed$/);
  throws(() => heap.free(w), BlockInUseError, /a Watch/);
  throws(() => heap.unname('lock'), BlockInUseError, /^unname\("lock"\): .*a Mutex/);
  throws(() => heap.free(inner), BlockInUseError, /a Heap/);
  assert.equal(heap.check(), before, 'nothing changed');
  assert.is(heap.lookup('lock'), m);
  ch.release();
  watch.release();
  mutex.release();
  nested.release();
  heap.free(c);
  heap.free(w);
  heap.free(inner);
  assert.is(heap.unname('lock'), true);
  assert.is(heap.check().blocks, 0);
});

test('malloc with align: HeapFullError.largest is a size malloc really gets at that alignment (seeded)', () => {
  const seed = Number(process.env.HEAP_SEED ?? Date.now() % 1e9); // HEAP_SEED=... replays a failure
  const rnd = prng(seed);
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 1 << 18, offset: 16 * Math.floor(rnd() * 64) }));
  const live = [];
  let fulls = 0;
  for (let i = 0; i < 3000; i++) {
    const align = 16 << Math.floor(rnd() * 9); // 16 .. 4096
    if (live.length > 0 && rnd() < 0.45) {
      heap.free(live.splice(Math.floor(rnd() * live.length), 1)[0]);
      continue;
    }
    const n = 1 + Math.floor(rnd() ** 3 * 40000);
    try {
      const o = heap.malloc(n, { align });
      assert.is(o % align, 0, `seed ${seed}: alignment`);
      live.push(o);
    } catch (err) {
      if (!(err instanceof HeapFullError)) throw err;
      fulls++;
      assert.ok(err.largest < n, `seed ${seed}: refused ${n} at ${align} but largest says ${err.largest}`);
      if (err.largest > 0) live.push(heap.malloc(err.largest, { align }));
    }
  }
  assert.ok(fulls > 0, `seed ${seed}: the heap was never full`);
  heap.check();
});

test('an operation whose lock was taken over from this process reports HeapCorruptError', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE }));
  const word = new Int32Array(heap.region.mapping.buffer, heap.region.start, 32);
  const other = process.pid + 1;
  // Another process, judging this one dead, takes the lock over in the middle of a malloc.
  setStepHook((step) => {
    if (step === 'heap.malloc.locked') Atomics.store(word, 16, other);
  });
  try {
    throws(() => heap.malloc(100), HeapCorruptError, /may be corrupt: another process took its lock over from this one \(pid \d+, judged dead\)/);
  } finally {
    setStepHook(undefined);
  }
  assert.is(Atomics.load(word, 16), other, 'the lock was left to its new holder');
  Atomics.store(word, 16, 0);
  heap.check();
});

test('adopt(offset) makes this process the owner: reclaimDead then leaves the block of a dead allocator', async () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 1 << 18 }));
  const child = h.start('heap-edges-party', 'hold', { offset: 0, n: 64 }, { shm });
  const { offset } = await child.message('held');
  assert.is(heap.ownerOf(offset), child.pid);
  assert.is(heap.adopt(offset), child.pid);
  assert.is(heap.ownerOf(offset), process.pid);
  child.kill();
  await child.exited;
  assert.equal(heap.reclaimDead(), { blocks: 0, bytes: 0, pids: [] });
  assert.is(heap.sizeOf(offset), 64);
  const named = heap.named('n', 16);
  const before = heap.check();
  throws(() => heap.adopt(named), NotABlockError, /^adopt\(\d+\): .* is a named block, which belongs to no process; nothing changed$/);
  throws(() => heap.adopt(offset + 16), NotABlockError, /^adopt\(\d+\): not a block/);
  assert.equal(heap.check(), before);
  heap.free(offset);
});

test('named() of a block over 64 KiB zeroes it without the lock, and a racing namer of the same name gets the same block', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 1 << 20 }));
  // Leave garbage where the block will be.
  const g = heap.malloc(300_000);
  new Uint8Array(heap.region.mapping.buffer, heap.region.start + g - heap.offset, 300_000).fill(7);
  heap.free(g);
  let inner;
  let reservedSeen = 0;
  setStepHook((step) => {
    if (step !== 'heap.named.reserved' || reservedSeen++ > 0) return;
    // The lock is free while the reserved block is zeroed: other operations go on.
    const s = heap.stats();
    assert.is(s.blocks, 1);
    assert.is(s.named, 0);
    // Another namer of the same name gets there first.
    inner = heap.named('big', 200_000);
  });
  let outer;
  try {
    outer = heap.named('big', 200_000);
  } finally {
    setStepHook(undefined);
  }
  assert.is(reservedSeen, 2);
  assert.is(outer, inner, 'one block for the name');
  const s = heap.check();
  assert.is(s.blocks, 1, 'the loser gave its reserve back');
  assert.is(s.named, 1);
  assert.is(heap.ownerOf(outer), 0);
  const bytes = new Uint8Array(heap.region.mapping.buffer, heap.region.start + outer - heap.offset, heap.sizeOf(outer));
  assert.ok(bytes.every((b) => b === 0), 'zeroed');
  assert.is(heap.named('big', 100), outer);
});

function canSetPids() {
  try {
    accessSync('/proc/sys/kernel/ns_last_pid', constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

test('reclaim(pid) judges the pid under the lock: a live process that got the pid meanwhile keeps its block', async () => {
  if (!canSetPids()) {
    console.log('  (skipped: needs root and a writable /proc/sys/kernel/ns_last_pid)');
    return;
  }
  const AT = 4096;
  const shm = h.object(AT);
  const heap = h.keep(new Heap(shm, { size: 1 << 18, offset: AT }));
  const gate = new Gate(Region.map(shm, 0, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  const lockWord = new Int32Array(heap.region.mapping.buffer, heap.region.start, 32);
  for (let attempt = 0; attempt < 10; attempt++) {
    // A process that allocated and died: its pid P is free.
    const dead = h.start('heap-edges-party', 'hold', { offset: AT, n: 64 }, { shm });
    await dead.message('held');
    dead.kill();
    await dead.exited;
    const P = dead.pid;
    // The heap is busy (another operation in progress: this process holds the lock).
    assert.is(Atomics.compareExchange(lockWord, 16, 0, process.pid), 0);
    // reclaim(P): P is dead now, so it goes on and waits for the lock; stop it right there.
    const r = h.start('heap-edges-party', 'reclaim', { offset: AT, pid: P, step: 'mutex.lock.counted', gateOffset: 0 }, { shm });
    await gate.reached({ peer: r });
    Atomics.store(lockWord, 16, 0);
    // The pid is reused by a new process, which allocates a block and keeps using it.
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(P - 1));
    const q = h.start('heap-edges-party', 'hold', { offset: AT, n: 64 }, { shm });
    if (q.pid !== P) {
      // Another process on the machine took P first: try again.
      q.kill();
      gate.release();
      await r.result();
      continue;
    }
    const { offset } = await q.message('held');
    assert.is(heap.ownerOf(offset), P);
    gate.release();
    const reclaimed = await r.result();
    assert.ok(q.running, 'the new owner of pid P is alive');
    q.send('go');
    const held = await q.result();
    // The live process's block is left alone. The heap cannot tell the dead process's
    // block from it (both say owner P), so reclaim(P) refuses as for any running process
    // and frees nothing; the dead one's block waits until P is gone again.
    assert.is(held.freed, 'ok', `the live process (pid ${P}) could not free its block: ${held.freed}; reclaim said ${JSON.stringify(reclaimed)}`);
    assert.is(reclaimed.ok, false, `reclaim(${P}) of a running process: ${JSON.stringify(reclaimed)}`);
    assert.is(reclaimed.error.code, 'ERR_SHM_INVALID_ARGUMENT');
    assert.match(reclaimed.error.message, /still running/);
    assert.ok(heap.check().blocks >= 1, "the dead process's block is still there");
    return;
  }
  assert.unreachable('could not get the dead pid back in 10 attempts');
});

// A lock word holding only a pid let this takeover CAS succeed against the new holder:
// the tag beside the pid (src/sync/robust-lock.ts) makes the word differ, and the CAS fail.
test('a lock takeover waits for the new holder when the dead holder pid is reused before its CAS', async () => {
  if (!canSetPids()) {
    console.log('  (skipped: needs root and a writable /proc/sys/kernel/ns_last_pid)');
    return;
  }
  const AT = 4096;
  for (let attempt = 0; attempt < 10; attempt++) {
    const shm = h.object(AT);
    const heap = h.keep(new Heap(shm, { size: 1 << 18, offset: AT }));
    const gates = [0, 64, 128].map((at) => new Gate(Region.map(shm, at, GATE_BYTES)));
    h.defer(() => gates.forEach((g) => g.region.unmap()));
    const [gH, gC, gQ] = gates;
    const op = (step, gateOffset) => h.start('heap-party', 'op', { offset: AT, op: 'malloc', n: 64, step, gateOffset }, { shm, timeoutMs: 20_000 });
    // H holds the heap's lock and dies.
    const H = op('heap.malloc.locked', 0);
    await gH.reached({ peer: H });
    H.kill();
    await H.exited;
    const P = H.pid;
    // C waits for the lock, proves P dead, and is about to CAS P -> C.
    const C = op('mutex.lock.takeover', 64);
    await gC.reached({ peer: C });
    // Meanwhile another caller (this process) takes over from P, repairs, and lets go.
    heap.stats();
    // P is given to a new process Q, which takes the lock and is in the middle of a malloc.
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(P - 1));
    const Q = op('heap.malloc.taken', 128);
    if (Q.pid !== P) {
      Q.kill();
      gC.release();
      await C.exited;
      continue;
    }
    await gQ.reached({ peer: Q });
    // C's CAS finds P in the lock word, now Q's, with another tag: it fails, and C goes to
    // sleep waiting for Q (it counts itself in lockWaiters). Without the tag it would take
    // the lock and finish its malloc beside Q.
    const lockWords = new Int32Array(heap.region.mapping.buffer, heap.region.start, 32);
    gC.release();
    let cExited = false;
    C.exited.then(() => (cExited = true));
    const until = Date.now() + 10_000;
    while (!cExited && Atomics.load(lockWords, 17) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    gQ.release();
    const q = await Q.result();
    const c = await C.result();
    // Expected: C waits for Q; two distinct blocks; the heap sound.
    let problem = '';
    if (c.ok && q.ok && c.offset === q.offset) problem = `both got the block at ${c.offset}`;
    try {
      heap.check();
    } catch (err) {
      problem += ` check(): ${err.message}`;
    }
    assert.is(problem, '', `C ${JSON.stringify(c)}, Q ${JSON.stringify(q)}, stats ${JSON.stringify(heap.stats?.())}`);
    return;
  }
  assert.unreachable('could not get the dead pid back in 10 attempts');
});

test.run();
