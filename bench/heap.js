#!/usr/bin/env node
// Heap benchmark (malloc / free inside shared memory), in one run:
//   - malloc + free pairs per second in one process, mixed sizes (16 B – 4 KiB), two
//     patterns: a pair at a time, and churn (256 blocks live, free the oldest, malloc one);
//     beside the same patterns on a JS Map of ArrayBuffers (what a user would do in one
//     process) — the ratio says what sharing costs;
//   - two processes contending for the one heap (its lock), pairs per second in total;
//   - fragmentation after a mixed workload: the largest block malloc can get / free bytes.
// Aim: >= 2 M pairs/s in one process.
//
//   npm run build && node bench/heap.js          (about 10 s)
//   node bench/heap.js --quick                   (about 3 s, a smoke run)
//
// The object is anonymous (no name in /dev/shm): nothing is left behind even if killed.
import { fileURLToPath } from 'node:url';
import { Heap, Region, SharedMemory } from '../dist/index.js';
import { parseCommand } from './lib/args.js';

const usage = `usage: node bench/heap.js [--quick]

  --quick   short runs (a smoke test of the script, not figures to quote)
`;
const HEAP_AT = 4096;
const HEAP_SIZE = 64 << 20;

// ---- child role: pairs in a loop until told to stop ------------------------------------
if (process.argv[2] === '--child') {
  const shm = SharedMemory.inherited();
  const heap = Heap.attach(shm, { offset: HEAP_AT });
  // The first 64 bytes of the object: word 0 start (1) / stop (2), word 1 ready.
  const ctl = Region.map(shm, 0, 64);
  const words = new Int32Array(ctl.mapping.buffer, ctl.start, 16);
  const sizes = mixedSizes(4096, 2);
  Atomics.store(words, 1, 1); // ready
  while (Atomics.load(words, 0) === 0);
  let pairs = 0;
  while (Atomics.load(words, 0) === 1) {
    for (let i = 0; i < 256; i++) heap.free(heap.malloc(sizes[(pairs + i) & 4095]));
    pairs += 256;
  }
  process.stdout.write(`${JSON.stringify({ pairs })}\n`);
  process.exit(0);
}

/** `n` sizes from 16 B to 4 KiB, small ones more often (seeded). */
function mixedSizes(n, seed) {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Int32Array.from({ length: n }, () => (random() < 0.7 ? 16 + Math.floor(random() * 240) : 256 + Math.floor(random() * 3840)));
}

const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);

/** Runs `fn(count)` in batches of `ms`; the median rate in ops per second. */
function rate(fn, ms, batches) {
  fn(10_000); // warm up
  const rates = [];
  for (let b = 0; b < batches; b++) {
    let ops = 0;
    const start = performance.now();
    let now = start;
    while (now - start < ms) {
      fn(4096);
      ops += 4096;
      now = performance.now();
    }
    rates.push(ops / ((now - start) / 1000));
  }
  return median(rates);
}

async function main() {
  const values = parseCommand(process.argv.slice(2), { quick: { type: 'boolean', default: false } }, usage);
  if (typeof values === 'number') process.exit(values);
  const QUICK = values.quick;
  const MS = QUICK ? 100 : 400;
  const BATCHES = QUICK ? 3 : 5;

  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  const heap = new Heap(shm, { size: HEAP_SIZE, offset: HEAP_AT });
  const sizes = mixedSizes(4096, 1);
  console.log(`Heap of ${HEAP_SIZE >> 20} MiB, sizes 16 B – 4 KiB (70 % under 256 B); medians of ${BATCHES} batches of ${MS} ms\n`);

  // 1. One process.
  let k = 0;
  const pairs = rate((n) => {
    for (let i = 0; i < n; i++) heap.free(heap.malloc(sizes[k++ & 4095]));
  }, MS, BATCHES);
  const ring = new Float64Array(256);
  for (let i = 0; i < 256; i++) ring[i] = heap.malloc(sizes[i]);
  let head = 0;
  const churn = rate((n) => {
    for (let i = 0; i < n; i++) {
      heap.free(ring[head]);
      ring[head] = heap.malloc(sizes[k++ & 4095]);
      head = (head + 1) & 255;
    }
  }, MS, BATCHES);
  for (const o of ring) heap.free(o);
  const map = new Map();
  let id = 0;
  const mapPairs = rate((n) => {
    for (let i = 0; i < n; i++) {
      map.set(id, new ArrayBuffer(sizes[k++ & 4095]));
      map.delete(id++);
    }
  }, MS, BATCHES);
  for (let i = 0; i < 256; i++) map.set(i, new ArrayBuffer(sizes[i]));
  let mhead = 0;
  const mapChurn = rate((n) => {
    for (let i = 0; i < n; i++) {
      map.delete(mhead);
      map.set(mhead, new ArrayBuffer(sizes[k++ & 4095]));
      mhead = (mhead + 1) & 255;
    }
  }, MS, BATCHES);
  map.clear();
  console.log('one process                       heap (shared)   Map of ArrayBuffers   heap / Map');
  console.log(`  malloc + free, a pair at a time  ${fmt(pairs).padStart(8)}/s   ${fmt(mapPairs).padStart(12)}/s        ${(pairs / mapPairs).toFixed(2)}×`);
  console.log(`  churn (256 live, oldest freed)   ${fmt(churn).padStart(8)}/s   ${fmt(mapChurn).padStart(12)}/s        ${(churn / mapChurn).toFixed(2)}×`);

  // 2. Two processes contending (this one and a child), pairs at a time.
  const ctl = Region.map(shm, 0, 64);
  const words = new Int32Array(ctl.mapping.buffer, ctl.start, 16);
  const totals = [];
  for (let b = 0; b < (QUICK ? 1 : 3); b++) {
    Atomics.store(words, 0, 0);
    Atomics.store(words, 1, 0);
    const child = shm.fork(fileURLToPath(import.meta.url), ['--child'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    while (Atomics.load(words, 1) === 0) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(words, 0, 1);
    let mine = 0;
    const start = performance.now();
    while (performance.now() - start < MS * 2) {
      for (let i = 0; i < 256; i++) heap.free(heap.malloc(sizes[(mine + i) & 4095]));
      mine += 256;
    }
    Atomics.store(words, 0, 2);
    const secs = (performance.now() - start) / 1000;
    await exited;
    const theirs = JSON.parse(out.trim()).pairs;
    totals.push({ total: (mine + theirs) / secs, mine: mine / secs, theirs: theirs / secs });
  }
  const t = totals.sort((x, y) => x.total - y.total)[totals.length >> 1];
  console.log(`\ntwo processes contending           ${fmt(t.total)}/s in total (${fmt(t.mine)}/s here, ${fmt(t.theirs)}/s in the other; one process alone: ${fmt(pairs)}/s)`);
  ctl.unmap();

  // 3. Fragmentation after a mixed workload.
  const random = (() => {
    let a = 42;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let x = Math.imul(a ^ (a >>> 15), a | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
  })();
  const live = [];
  const total = heap.stats().free;
  const big = () => (random() < 0.9 ? sizes[Math.floor(random() * 4096)] : 4096 + Math.floor(random() * 60_000));
  for (let round = 0; round < (QUICK ? 2 : 6); round++) {
    while (heap.stats().used < total * 0.7) live.push(heap.malloc(big()));
    while (heap.stats().used > total * 0.35) heap.free(live.splice(Math.floor(random() * live.length), 1)[0]);
  }
  const s = heap.check();
  console.log(`\nfragmentation after ${QUICK ? 2 : 6} rounds of fill to 70 % / free at random to 35 % (sizes 16 B – 64 KiB):`);
  console.log(`  ${s.blocks} blocks live, ${s.freeBlocks} free blocks; largest allocatable ${fmt(s.largest)}B of ${fmt(s.free)}B free = ${((100 * s.largest) / s.free).toFixed(1)} %`);
  for (const o of live) heap.free(o);
  heap.release();
  shm.close();
}

main();
