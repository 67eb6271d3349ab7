// Adversarial cases against the Heap: each test states what the documentation promises
// and checks it. Some need control of process ids (root, /proc/sys/kernel/ns_last_pid
// writable) and skip themselves without it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, accessSync, constants } from 'node:fs';
import { Channel, Heap, HeapFullError, Region } from '../dist/index.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { harness } from './fixtures/channel-harness.js';

const h = harness(test, 'hbreak');
const SIZE = 1 << 20;

test('a channel inside a block of a heap that lives inside a block of another heap (docs: "or another Heap")', () => {
  const shm = h.object();
  const outer = h.keep(new Heap(shm, { size: SIZE }));
  const at = outer.malloc(65536);
  const inner = h.keep(new Heap(shm, { size: 65536, offset: at }));
  const need = Channel.byteLength({ depth: 0, width: 8 });
  const x = inner.malloc(need);
  // Expected: admitted, the bytes lie within one live block of the inner heap, which lies
  // within one live block of the outer heap. Observed: OverlapError from the outer heap,
  // whose admission rule wants the structure to *start* at one of its own blocks.
  let ch;
  try {
    ch = new Channel.SingleBuffered.Fixed(shm, { offset: x, width: 8, autosize: false });
  } catch (err) {
    assert.unreachable(`a channel in a block of the inner heap was refused: ${err.name}: ${err.message}`);
  }
  ch.release();
});

test('a second handle on a heap, once a structure of this process lives in one of its blocks', () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE, offset: 4096 }));
  const at = heap.malloc(Channel.byteLength({ depth: 0, width: 8 }));
  const ch = h.keep(new Channel.SingleBuffered.Fixed(shm, { offset: at, width: 8, autosize: false }));
  void ch;
  // Expected (registry: "two handles on one structure are fine"; heap.md: Heap.attach and
  // new Heap of the same size share the heap): a second handle. Observed: OverlapError,
  // the channel inside the heap is taken for a structure overlapping it.
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

test('a heap handle that was collected (finalizer not yet run) does not refuse structures in blocks of another handle', async () => {
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: SIZE }));
  const at = heap.malloc(Channel.byteLength({ depth: 0, width: 8 }));
  (() => {
    // A second handle that the program simply drops (a helper that attached and returned).
    Heap.attach(shm).stats();
  })();
  await new Promise((resolve) => setImmediate(resolve));
  globalThis.gc();
  // Synchronously after the collection: the dropped handle's claim is still registered and
  // its admits() says false (the WeakRef is empty), so it refuses everything inside it.
  let ch;
  try {
    ch = new Channel.SingleBuffered.Fixed(shm, { offset: at, width: 8, autosize: false });
  } catch (err) {
    assert.unreachable(`a channel in a live block was refused because of a collected handle: ${err.name}: ${err.message}`);
  }
  ch.release();
});

test('malloc with align refuses a request that a free block, already aligned, fits', () => {
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

test('a channel created in a block that malloc reused is a fresh channel, not the freed one (heap.md creates structures in malloc blocks)', () => {
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
  // Expected: a new, empty channel. Observed: it attached to the freed channel's header
  // (still intact in the block's data) and receives the old message.
  assert.is(got, undefined, `the new channel holds a message sent before the block was freed: ${got}`);
  // The same with another shape: the stale header is "not zero and not" this channel.
  heap.free(at2);
  ch.release();
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

function canSetPids() {
  try {
    accessSync('/proc/sys/kernel/ns_last_pid', constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

test('reclaim(pid) frees the block of a live process that got the dead pid after reclaim checked it', async () => {
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
    const dead = h.start('heap-break-party', 'hold', { offset: AT, n: 64 }, { shm });
    await dead.message('held');
    dead.kill();
    await dead.exited;
    const P = dead.pid;
    // The heap is busy (another operation in progress: this process holds the lock).
    assert.is(Atomics.compareExchange(lockWord, 16, 0, process.pid), 0);
    // reclaim(P): P is dead now, so it goes on and waits for the lock; stop it right there.
    const r = h.start('heap-break-party', 'reclaim', { offset: AT, pid: P, step: 'mutex.lock.counted', gateOffset: 0 }, { shm });
    await gate.reached({ peer: r });
    Atomics.store(lockWord, 16, 0);
    // The pid is reused by a new process, which allocates a block and keeps using it.
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(P - 1));
    const q = h.start('heap-break-party', 'hold', { offset: AT, n: 64 }, { shm });
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
    // Expected: the live process's block is left alone (reclaim frees the blocks of the
    // dead process only: 1 block, the one `dead` left). Observed: both freed, and the live
    // process's own free of its block is refused.
    assert.is(held.freed, 'ok', `the live process (pid ${P}) could not free its block: ${held.freed}; reclaim said ${JSON.stringify(reclaimed)}`);
    assert.is(reclaimed.blocks, 1);
    heap.check();
    return;
  }
  assert.unreachable('could not get the dead pid back in 10 attempts');
});

test('a lock takeover that proved its holder dead, then CASes after the pid was reused, enters beside the new holder', async () => {
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
    // C's CAS finds P in the lock word (now Q's) and succeeds: two holders.
    gC.release();
    const c = await C.result();
    gQ.release();
    const q = await Q.result();
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
