// The C reader of docs/heap-layout.md, compiled and run against this library: the page's
// ```c block is saved as heap.c and compiled with test/fixtures/heap-c-main.c
// (`cc -std=c11 -Wall -Wextra -Werror -O2`); the program takes the heap's lock, walks every
// block of a heap the JS side made and checks the statistics words, finds a named block,
// and reports an overwritten heap. Skipped, with a message, only when no C compiler is installed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { Heap } from '../dist/index.js';
import { cBlocks, compiler, compileSketch } from './fixtures/c-sketch.js';
import { harness } from './fixtures/channel-harness.js';
import { prng } from './fixtures/prng.js';

const build = compileSketch(test, { name: 'heap-c', sources: { 'heap.c': cBlocks('heap-layout.md').join('\n') }, main: 'heap-c-main.c', flags: ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O2'], libs: ['-lrt'] });
const BINARY = build?.binary;

const h = harness(test, 'hc');

function runC(args) {
  if (build?.status !== 0) throw new Error(`the C reader did not compile:\n${build?.output}`);
  const r = spawnSync(BINARY, args.map(String), { encoding: 'utf8', timeout: 10_000 });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim());
}

if (compiler === undefined) {
  test('C reader (skipped: no C compiler installed)', () => {});
} else {
  test('the C reader compiles without warnings', () => {
    assert.is(build.status, 0, build.output);
  });

  test('C walks a heap JS made (after random malloc / free) and agrees with stats(); finds a named block', () => {
    const shm = h.object();
    const heap = h.keep(new Heap(shm, { size: 1 << 20, offset: 4096 }));
    const random = prng(7);
    const live = [];
    for (let i = 0; i < 2000; i++) {
      if (live.length > 0 && random() < 0.45) heap.free(live.splice(Math.floor(random() * live.length), 1)[0]);
      else live.push(heap.malloc(1 + Math.floor(random() * 3000)));
    }
    const table = heap.named('table', 64);
    const r = heap.map(table);
    new Int32Array(r.mapping.buffer, r.start, 1)[0] = 1234567;
    r.unmap();
    const s = heap.check();
    const c = runC(['walk', shm.name, 4096, 'table']);
    assert.is(c.rc, 0, JSON.stringify(c));
    assert.equal({ used: c.used, free: c.free, blocks: c.blocks, freeBlocks: c.freeBlocks, named: c.named }, { used: s.used, free: s.free, blocks: s.blocks, freeBlocks: s.freeBlocks, named: 1 });
    assert.ok(c.largest >= s.largest, 'the largest free block C sees is at least what malloc can get');
    assert.is(c.lookup + 4096, table, 'C finds the named block at the offset JS got');
    assert.is(c.word0, 1234567, 'and reads what JS wrote there');
    assert.is(heap.stats().blocks, s.blocks, 'the lock C took is free again');
  });

  test('C reports a heap whose memory was overwritten', () => {
    const shm = h.object();
    const heap = h.keep(new Heap(shm, { size: 65536 }));
    const a = heap.malloc(100);
    heap.malloc(100);
    new Int32Array(heap.region.mapping.buffer, heap.region.start + a - 16 + 4, 1)[0] = 999; // prevPhys of a
    const c = runC(['walk', shm.name, 0]);
    assert.is(c.rc, -4, JSON.stringify(c));
    assert.is(c.at, a - 16);
    assert.throws(() => heap.check(), (e) => e.code === 'ERR_SHM_HEAP_CORRUPT' && /says the block before it is at 999/.test(e.message));
  });
}

test.run();
