// The `concurrent-shm` command and a Heap: `ls` (table and --json) and `inspect` show
// its type, size, bytes used and free, the largest block that fits, blocks and names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Heap, SharedMemory } from '../dist/index.js';
import { uniqueName } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const cleanups = [];
test.after.each(() => {
  for (const f of cleanups.splice(0)) f();
});

function cli(args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, CONCURRENT_SHM_DEBUG: '', COLUMNS: '' } });
  if (r.error) throw r.error;
  return r;
}

function heapObject() {
  const name = uniqueName('cliheap');
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  const heap = new Heap(shm, { size: 65536 });
  cleanups.push(() => {
    heap.release();
    shm.unlink();
    shm.close();
  });
  heap.malloc(1000);
  heap.named('table', 100);
  return { name, heap };
}

test('ls --json and inspect --json: type heap with its figures', () => {
  const { name, heap } = heapObject();
  const want = heap.stats();
  const r = cli(['ls', '--json']);
  assert.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout).find((e) => e.name === name).structure;
  assert.is(s.type, 'heap');
  assert.is(s.kind, 'Heap');
  assert.is(s.description, 'Heap(size 65536)');
  assert.equal(s.heap, { size: 65536, used: want.used, free: want.free, largest: want.largest, blocks: 2, freeBlocks: want.freeBlocks, named: 1, repairs: 0, pendingRepair: false });
  assert.is(s.lockHolder, 0);
  const i = cli(['inspect', name, '--json']);
  assert.is(i.status, 0, i.stderr);
  assert.equal(JSON.parse(i.stdout).structure.heap, s.heap);
});

test('inspect and ls: the heap in text', () => {
  const { name, heap } = heapObject();
  const st = heap.stats();
  const r = cli(['inspect', name]);
  assert.is(r.status, 0, r.stderr);
  const field = (k) => new RegExp(`^${k}\\s+(.*)$`, 'm').exec(r.stdout)?.[1] ?? assert.unreachable(`no '${k}' in:\n${r.stdout}`);
  assert.is(field('structure'), 'Heap(size 65536) at offset 0, 65536 bytes');
  assert.is(field('used'), `${st.used} bytes in 2 blocks (1 named)`);
  assert.is(field('state'), 'ready');
  assert.is(field('free'), `${st.free} bytes in ${st.freeBlocks} block${st.freeBlocks === 1 ? '' : 's'}, the largest malloc that fits: ${st.largest} bytes`);
  assert.is(field('lock'), 'free');
  const l = cli(['ls', '--wide']);
  const line = l.stdout.split('\n').find((x) => x.includes(name));
  assert.match(line, new RegExp(`Heap .*${st.used}/65536 bytes used, 2 blocks \\(1 named\\), largest free ${st.largest}`));
});

test.run();
