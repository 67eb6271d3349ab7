// Heap under load: several processes (and this one) run thousands of random malloc / free
// of mixed sizes at once. Every block is stamped over its whole length with its owner and
// number and checked before it is freed: no block overlaps another or is handed out twice.
// At the end nothing is lost: check() passes, no block is left and the free bytes add up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Heap } from '../dist/index.js';
import { harness } from './fixtures/channel-harness.js';
import { prng } from './fixtures/prng.js';
import { checkStamp, sizeOf, stampBlock } from './fixtures/heap-common.js';

const h = harness(test, 'hstress');
const PARTIES = 3;
const OPS = 20000;

test(`${PARTIES} processes and this one × ${OPS} random malloc / free: no overlap, nothing lost`, async () => {
  const seed = Number(process.env.HEAP_SEED ?? Date.now() % 1e9);
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 4 << 20, offset: 4096 }));
  const empty = heap.check();
  const parties = Array.from({ length: PARTIES }, (_, i) => h.start('heap-party', 'stress', { offset: 4096, seed: seed + i + 1, ops: OPS, live: 48 }, { shm, timeoutMs: 60_000 }));
  // This process takes part too, between the children's turns.
  const random = prng(seed);
  const u8 = new Uint8Array(heap.region.mapping.buffer, heap.region.start, heap.byteLength);
  const live = [];
  let bad = 0;
  for (let i = 0; i < OPS; i++) {
    if (live.length > 0 && (live.length >= 48 || random() < 0.5)) {
      const [offset, n, id] = live.splice(Math.floor(random() * live.length), 1)[0];
      if (!checkStamp(u8, offset - 4096, n, process.pid, id)) bad++;
      heap.free(offset);
    } else {
      const n = sizeOf(random);
      const offset = heap.malloc(n);
      stampBlock(u8, offset - 4096, n, process.pid, i);
      live.push([offset, n, i]);
    }
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  for (const [offset, n, id] of live) {
    if (!checkStamp(u8, offset - 4096, n, process.pid, id)) bad++;
    heap.free(offset);
  }
  const results = await Promise.all(parties.map((p) => p.result(60_000)));
  for (const r of results) {
    assert.ok(r.ok, `seed ${seed}: ${JSON.stringify(r)}`);
    assert.is(r.bad, 0, `seed ${seed}: a child found a broken stamp`);
  }
  assert.is(bad, 0, `seed ${seed}: this process found a broken stamp`);
  const end = heap.check();
  assert.is(end.blocks, 0, `seed ${seed}`);
  assert.is(end.used, 0);
  assert.is(end.free, empty.free, 'every byte is free again');
  assert.is(end.freeBlocks, 1, 'merged back into one block');
  assert.is(end.repairs, 0, 'nobody died');
});

test('processes SIGKILLed at random moments of their malloc / free storms: the heap stays sound, reclaimDead frees what they held', async () => {
  const seed = Number(process.env.HEAP_SEED ?? Date.now() % 1e9);
  const random = prng(seed);
  const shm = h.object();
  const heap = h.keep(new Heap(shm, { size: 4 << 20, offset: 4096 }));
  const empty = heap.check();
  for (let round = 0; round < 6; round++) {
    const parties = [0, 1].map((i) => h.start('heap-party', 'stress', { offset: 4096, seed: seed + 10 * round + i, ops: 1e7, live: 48 }, { shm, timeoutMs: 60_000 }));
    // Let them get going (their first malloc shows in the block count), then kill each at a random moment.
    const start = performance.now();
    while (heap.stats().blocks === 0 && performance.now() - start < 10_000) await new Promise((r) => setTimeout(r, 2));
    for (const p of parties) {
      await new Promise((r) => setTimeout(r, random() * 30));
      p.kill();
      await p.exited;
    }
    const s = heap.check(); // takes over a lock a killed party held, rolls its operation back
    const got = heap.reclaimDead();
    assert.equal(got.blocks, s.blocks, `seed ${seed}, round ${round}: every block left was a dead party's`);
    const after = heap.check();
    assert.is(after.blocks, 0, `seed ${seed}`);
    assert.is(after.free, empty.free, `seed ${seed}: every byte free again`);
    assert.is(after.freeBlocks, 1);
  }
});

test.run();
