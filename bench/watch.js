#!/usr/bin/env node
// Watch benchmark (a latest value between processes), 64-byte values, in one run:
//   - read latency in this process: read() and readInto() vs a bare Atomics.load of one
//     word (the floor: what reading a shared flag costs) and a plain 64-byte copy;
//   - write → read latency across two processes: a ping-pong over two Watches, the peer
//     busy-polling `version` (the floor of the protocol), sleeping in waitSync (futex), and
//     awaiting wait() (an async sleep, as onChange and for await do);
//   - reads/s with 1 and 3 reader processes, while nobody writes and while a writer
//     process writes as fast as it can.
// Aim: a read <= 200 ns for 64 B.
//
//   npm run build && node bench/watch.js          (about 15 s)
//   node bench/watch.js --quick                   (about 4 s, a smoke run)
//
// The object is anonymous (no name in /dev/shm): nothing is left behind even if killed.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SharedMemory, Watch } from '../dist/index.js';

const QUICK = process.argv.includes('--quick');
const RUN_MS = QUICK ? 100 : 400;
const SIZE = 64;
const A = 0; // the Watch this process writes in the ping-pong
const B = 1024; // the one the peer answers on
const C = 2048; // the one readers read in the throughput runs

// ---- child roles -------------------------------------------------------------------------
if (process.argv[2] === '--child') {
  const [, , , role, arg] = process.argv;
  const shm = SharedMemory.inherited();
  if (role === 'pong-async') {
    const a = Watch.attach(shm, { offset: A });
    const b = Watch.attach(shm, { offset: B });
    const buf = Buffer.alloc(SIZE);
    let since = a.version;
    process.send({ type: 'ready' });
    for (;;) {
      since = await a.wait(since);
      a.readInto(buf);
      if (buf[0] === 0xff) break;
      b.write(buf);
    }
    process.exit(0);
  }
  if (role === 'pong' || role === 'pong-sleep') {
    const a = Watch.attach(shm, { offset: A });
    const b = Watch.attach(shm, { offset: B });
    const buf = Buffer.alloc(SIZE);
    let since = a.version;
    process.send({ type: 'ready' });
    for (;;) {
      let v;
      if (role === 'pong') while ((v = a.version) === since);
      else v = a.waitSync(since);
      since = v;
      a.readInto(buf);
      if (buf[0] === 0xff) break;
      b.write(buf);
    }
    process.exit(0);
  }
  if (role === 'reader') {
    const c = Watch.attach(shm, { offset: C });
    const buf = Buffer.alloc(SIZE);
    process.send({ type: 'ready' });
    process.once('message', () => {
      const end = performance.now() + Number(arg);
      let reads = 0;
      while (performance.now() < end) {
        for (let i = 0; i < 1000; i++) c.readInto(buf);
        reads += 1000;
      }
      process.send({ type: 'done', reads });
      process.exit(0);
    });
  }
  if (role === 'writer') {
    const c = Watch.attach(shm, { offset: C });
    const buf = Buffer.alloc(SIZE, 7);
    process.send({ type: 'ready' });
    process.once('message', () => {
      const end = performance.now() + Number(arg);
      let writes = 0;
      while (performance.now() < end) {
        for (let i = 0; i < 100; i++) {
          buf.writeUInt32LE(writes + i, 0);
          c.write(buf);
        }
        writes += 100;
      }
      process.send({ type: 'done', writes });
      process.exit(0);
    });
  }
}

function message(child, type) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m?.type !== type) return;
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before '${type}'`)));
  });
}

function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

let sink = 0;
/** Median ns per op of body(n) over 5 runs of about RUN_MS (after a calibration/warm-up). */
function nsPerOp(body) {
  let n = 1000;
  for (;;) {
    const t0 = performance.now();
    sink += body(n);
    const ms = performance.now() - t0;
    if (ms > RUN_MS / 4) {
      n = Math.max(1000, Math.round((n * RUN_MS) / ms / 5));
      break;
    }
    n *= 4;
  }
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    sink += body(n);
    runs.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return runs.sort((x, y) => x - y)[2];
}

async function main() {
  const cpus = os.cpus();
  console.log('# concurrent-shm Watch benchmark (64-byte values)');
  console.log(`cpu:      ${cpus[0]?.model ?? 'unknown'} (${cpus.length} logical cores)`);
  console.log(`node:     ${process.version}, ${process.platform}/${process.arch}`);
  console.log(`commit:   ${commit()}\n`);
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  const a = new Watch(shm, { capacity: SIZE, offset: A });
  const b = new Watch(shm, { capacity: SIZE, offset: B });
  const c = new Watch(shm, { capacity: SIZE, offset: C });
  const children = new Set();
  const fork = (role, arg = '') => {
    const child = shm.fork(fileURLToPath(import.meta.url), ['--child', role, String(arg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  try {
    // ---- 1. read latency here --------------------------------------------------------
    const value = Buffer.alloc(SIZE, 1);
    a.write(value);
    const target = Buffer.alloc(SIZE);
    const flag = new Int32Array(new SharedArrayBuffer(64));
    const src = Buffer.alloc(SIZE, 3);
    const floor = nsPerOp((n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += Atomics.load(flag, i & 15);
      return s;
    });
    const copy = nsPerOp((n) => {
      for (let i = 0; i < n; i++) src.copy(target);
      return target[0];
    });
    const readInto = nsPerOp((n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += a.readInto(target).length;
      return s;
    });
    const read = nsPerOp((n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += a.read().value.length;
      return s;
    });
    const version = nsPerOp((n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += a.version;
      return s;
    });
    const write = nsPerOp((n) => {
      for (let i = 0; i < n; i++) a.write(value);
      return 0;
    });
    const row = (name, ns, base) => console.log(`${name.padEnd(42)} ${ns.toFixed(1).padStart(8)} ns  ${(ns / base).toFixed(1).padStart(6)}x the floor`);
    console.log('## one process');
    row('bare Atomics.load of one word (the floor)', floor, floor);
    row('Buffer.copy of 64 B (plain memory)', copy, floor);
    row('watch.version', version, floor);
    row('watch.readInto(64 B buffer)', readInto, floor);
    row('watch.read() (allocates a Buffer)', read, floor);
    row('watch.write(64 B), uncontended', write, floor);
    console.log(`aim: a read <= 200 ns: ${readInto <= 200 ? 'met' : 'missed'} (readInto ${readInto.toFixed(0)} ns, read ${read.toFixed(0)} ns)\n`);

    // ---- 2. write -> read across two processes ---------------------------------------
    console.log('## write -> read across two processes (ping-pong, one way = round trip / 2)');
    for (const role of ['pong', 'pong-sleep', 'pong-async']) {
      const peer = fork(role);
      await message(peer, 'ready');
      const rounds = role === 'pong-async' ? (QUICK ? 500 : 2000) : QUICK ? 2000 : 10000;
      const out = Buffer.alloc(SIZE);
      const times = [];
      let since = b.version;
      for (let i = 0; i < rounds; i++) {
        out.writeUInt32LE(i, 4);
        const t0 = process.hrtime.bigint();
        a.write(out);
        if (role === 'pong') while (b.version === since);
        else b.waitSync(since);
        since = b.version;
        times.push(Number(process.hrtime.bigint() - t0) / 2);
      }
      out[0] = 0xff;
      a.write(out);
      await new Promise((r) => peer.once('exit', r));
      times.sort((x, y) => x - y);
      const q = (p) => (times[Math.floor(p * (times.length - 1))] / 1000).toFixed(2);
      const how = role === 'pong' ? 'peers busy-poll version' : role === 'pong-sleep' ? 'peers sleep in waitSync (futex)' : 'peer awaits wait(), this one waitSync';
      console.log(`${how.padEnd(38)} median ${q(0.5)} µs  p99 ${q(0.99)} µs  (${rounds} round trips)`);
    }
    console.log('');

    // ---- 3. reads/s with 1 and 3 reader processes -------------------------------------
    console.log('## reads/s of 64 B in reader processes (readInto)');
    c.write(value);
    for (const writing of [false, true]) {
      for (const readers of [1, 3]) {
        const ms = RUN_MS * 2;
        const rs = Array.from({ length: readers }, () => fork('reader', ms));
        const w = writing ? fork('writer', ms) : null;
        await Promise.all([...rs, ...(w ? [w] : [])].map((p) => message(p, 'ready')));
        const done = [...rs, ...(w ? [w] : [])].map((p) => message(p, 'done'));
        for (const p of [...rs, ...(w ? [w] : [])]) p.send({ type: 'go' });
        const results = await Promise.all(done);
        const reads = results.slice(0, readers).reduce((s, r) => s + r.reads, 0);
        const perReader = reads / readers / (ms / 1000);
        const writes = w ? results[readers].writes / (ms / 1000) : 0;
        console.log(
          `${readers} reader${readers > 1 ? 's' : ' '}, ${writing ? 'a writer writing flat out' : 'no writer              '}  ${(reads / (ms / 1000) / 1e6).toFixed(1).padStart(6)} M reads/s in all, ${(perReader / 1e6).toFixed(1).padStart(5)} M per reader (${(1e9 / perReader).toFixed(0)} ns/read)${writing ? `, ${(writes / 1e6).toFixed(2)} M writes/s` : ''}`,
        );
      }
    }
    console.log(`\n(${cpus.length} logical cores: with more processes than cores, they take turns.)`);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    for (const w of [a, b, c]) w.release();
    shm.close();
  }
  if (sink === 0.5) console.log('');
}

if (process.argv[2] !== '--child') await main();
