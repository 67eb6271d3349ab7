// The step harness over the Heap's protocol (src/heap/allocator.ts, HEAP_STEPS): a child
// process doing one malloc, free or named is stopped at each named step — including the
// k-th word it logs and writes — then let go on or SIGKILLed. After a kill this process's
// next call takes the lock over, rolls the dead operation back, and:
// - check() passes (every invariant of the layout holds);
// - nothing changed, unless the child was killed after its commit: then exactly its one
//   block is left allocated, owned by the dead child, and reclaimDead() frees it;
// - the heap is usable (malloc and free work).
// A repairer killed half-way through its rollback is repaired alike by the next one. A
// seeded explorer then runs random operations killed at random writes; a failure prints
// the seed that replays it (HEAP_SEED=... node test/run.js heap-steps).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap, HEAP_STEPS, Region } from '../dist/index.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { harness } from './fixtures/channel-harness.js';
import { prng } from './fixtures/prng.js';

const h = harness(test, 'hstep');
const AT = 4096;

function setup() {
  const shm = h.object(AT);
  const heap = h.keep(new Heap(shm, { size: 1 << 18, offset: AT }));
  const gate = new Gate(Region.map(shm, 0, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  return { shm, heap, gate };
}

function party(shm, arg) {
  return h.start('heap-party', 'op', { offset: AT, gateOffset: 0, ...arg }, { shm, timeoutMs: 20_000 });
}

/** The figures an operation changes. */
function figures(s) {
  return { used: s.used, free: s.free, blocks: s.blocks, freeBlocks: s.freeBlocks, named: s.named };
}

/** Blocks a, b, c, d with a and c freed: freeing b merges it with both neighbours. */
function prepareFree(heap) {
  const [a, b, c, d] = [heap.malloc(100), heap.malloc(200), heap.malloc(300), heap.malloc(400)];
  heap.free(a);
  heap.free(c);
  return { b, d };
}

// [op, step, nth]: every named step the operation passes, and some of its logged writes.
const CASES = [
  ...['heap.malloc.locked', 'heap.malloc.taken', 'heap.malloc.split', 'heap.malloc.marked', 'heap.commit'].map((s) => ['malloc', s, 1]),
  ['malloc', 'heap.log.entry', 1], ['malloc', 'heap.log.counted', 1], ['malloc', 'heap.log.entry', 7], ['malloc', 'heap.log.counted', 12],
  ...['heap.free.locked', 'heap.free.merged', 'heap.free.inserted', 'heap.commit'].map((s) => ['free', s, 1]),
  ['free', 'heap.log.counted', 1], ['free', 'heap.log.entry', 5], ['free', 'heap.log.counted', 14],
  ['named', 'heap.named.entered', 1], ['named', 'heap.commit', 1], ['named', 'heap.log.counted', 18],
  // A block over 64 KiB is reserved (committed, the child's own), zeroed unlocked, then named.
  ['named', 'heap.named.reserved', 1, { n: 100_000 }], ['named', 'heap.named.entered', 1, { n: 100_000 }],
  // An aligned malloc splits a free block off its front too.
  ['malloc', 'heap.malloc.split', 1, { align: 4096 }], ['malloc', 'heap.log.counted', 9, { align: 4096 }],
];
const COMMITTED = new Set(['heap.commit']);

test('every step of malloc, free and named is covered by a case', () => {
  const covered = new Set(CASES.map(([, s]) => s));
  for (const s of HEAP_STEPS) if (!s.startsWith('heap.repair.')) assert.ok(covered.has(s), `${s} has a case`);
});

for (const [op, step, nth, extra] of CASES) {
  for (const outcome of ['resume', 'kill']) {
    test(`${op}${extra ? ` ${JSON.stringify(extra)}` : ''} stopped at ${step}${nth > 1 ? ` (write ${nth})` : ''}, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
      const { shm, heap, gate } = setup();
      if (extra) heap.malloc(100); // the free block no longer starts aligned
      const arg = { op, step, nth, n: 1000, name: 'shared', ...extra };
      let target = 0;
      if (op === 'free') {
        const { b } = prepareFree(heap);
        target = b;
        arg.at = b;
      }
      const before = heap.check();
      const child = party(shm, arg);
      await gate.reached({ peer: child });
      assert.is(gate.step, step);
      if (outcome === 'resume') {
        gate.release();
        const r = await child.result();
        assert.ok(r.ok, JSON.stringify(r));
        const after = heap.check();
        if (op === 'free') assert.is(after.blocks, before.blocks - 1);
        else assert.is(after.blocks, before.blocks + 1);
        return;
      }
      child.kill();
      await child.exited;
      // The next call takes the dead child's lock over (within ~100 ms) and repairs.
      const after = heap.check();
      // A big named block killed before its naming commit: left reserved for the dead child.
      const reserved = op === 'named' && (extra?.n ?? 0) > 65536;
      const committed = COMMITTED.has(step) || reserved;
      if (reserved) {
        assert.is(after.named, 0, 'reserved, not named');
        assert.is(after.blocks, before.blocks + 1, 'reserved: its block stays');
        const r = heap.reclaimDead();
        assert.is(r.blocks, 1, 'the one block leaked is the dead child\'s');
        assert.equal(r.pids, [child.pid]);
        assert.equal(figures(heap.check()), figures(before));
      } else if (!committed) {
        assert.equal(figures(after), figures(before), 'rolled back: nothing changed');
        if (step !== `heap.${op}.locked` && !(step === 'heap.log.entry' && nth === 1)) assert.is(after.repairs, before.repairs + 1, 'one repair');
      } else if (op === 'malloc') {
        assert.is(after.blocks, before.blocks + 1, 'committed: its block stays');
        assert.equal(heap.reclaimDead(), { blocks: 1, bytes: 1024, pids: [child.pid] }, 'the one block leaked is the dead child\'s');
        assert.equal(figures(heap.check()), figures(before));
      } else if (op === 'free') {
        assert.is(after.blocks, before.blocks - 1, 'committed: freed');
      } else {
        assert.is(after.named, 1, 'committed: named');
      }
      if (op === 'free' && !committed) {
        heap.free(target); // still this process's block: free it now
        assert.is(heap.check().blocks, before.blocks - 1);
      }
      if (op === 'named') assert.is(heap.lookup('shared') !== undefined, committed && !reserved);
      // Usable: another process and this one allocate and free.
      const x = heap.malloc(5000);
      heap.free(x);
      const again = party(shm, { op: 'malloc', n: 64 });
      const r = await again.result();
      assert.ok(r.ok, JSON.stringify(r));
      heap.free(r.offset);
      heap.check();
    });
  }
}

for (const repairStep of ['heap.repair.found', 'heap.repair.undone', 'heap.repair.restored']) {
  test(`a repairer killed at ${repairStep} is repaired by the next one`, async () => {
    const { shm, heap, gate } = setup();
    const before = heap.check();
    const a = party(shm, { op: 'malloc', n: 3000, step: 'heap.malloc.marked' });
    await gate.reached({ peer: a });
    a.kill();
    await a.exited;
    gate.release(); // reset for the next party
    const b = party(shm, { op: 'stats', step: repairStep, nth: repairStep === 'heap.repair.undone' ? 5 : 1 });
    await gate.reached({ peer: b, timeoutMs: 15_000 });
    b.kill();
    await b.exited;
    const after = heap.check();
    assert.equal(figures(after), figures(before), 'rolled back');
    assert.ok(after.repairs >= 1);
    heap.free(heap.malloc(100));
  });
}

test('explorer: random operations killed at random writes leave a sound heap (seeded, replayable)', async () => {
  const seed = Number(process.env.HEAP_SEED ?? Date.now() % 1e9);
  const random = prng(seed);
  const { shm, heap, gate } = setup();
  const mine = [];
  const rounds = 10;
  try {
    for (let round = 0; round < rounds; round++) {
      const r = random();
      const op = mine.length > 0 && r < 0.35 ? 'free' : r < 0.8 ? 'malloc' : 'named';
      const arg = { op, n: 1 + Math.floor(random() * 5000), name: `n${Math.floor(random() * 3)}`, align: 16 << Math.floor(random() * 4) };
      if (op === 'free') arg.at = mine.splice(Math.floor(random() * mine.length), 1)[0];
      for (let i = 0; i < 1 + Math.floor(random() * 6); i++) mine.push(heap.malloc(1 + Math.floor(random() * 3000)));
      arg.step = random() < 0.5 ? 'heap.log.entry' : 'heap.log.counted';
      arg.nth = 1 + Math.floor(random() * 16);
      const child = party(shm, arg);
      let stopped = true;
      try {
        await gate.reached({ peer: child });
      } catch {
        stopped = false; // finished before its nth write
      }
      if (stopped) {
        child.kill();
        await child.exited;
        if (op === 'free') {
          // Killed before its commit: the block is still this process's to free.
          try {
            heap.free(arg.at);
          } catch (e) {
            assert.is(e.code, 'ERR_SHM_HEAP_NOT_A_BLOCK');
          }
        }
      } else {
        const res = await child.result();
        assert.ok(res.ok || res.error.code === 'ERR_SHM_HEAP_FULL', JSON.stringify(res));
      }
      gate.release();
      heap.check();
      heap.reclaimDead();
      const s = heap.check();
      assert.is(s.blocks, mine.length + s.named, `round ${round}: only this process's blocks and the named ones are left`);
    }
    for (const o of mine.splice(0)) heap.free(o);
    for (const { name } of heap.names()) heap.unname(name);
    const end = heap.check();
    assert.is(end.blocks, 0);
    assert.is(end.freeBlocks, 1);
  } catch (err) {
    err.message = `${err.message}\n  replay with HEAP_SEED=${seed} COVERAGE=0 node test/run.js heap-steps`;
    throw err;
  }
});

test.run();
