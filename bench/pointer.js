#!/usr/bin/env node
// Pointer and region micro-benchmarks, each compared in the same run with what a user
// would write without the library:
//   - pointer read / write / atomic add  vs  the same access on an Int32Array /
//     BigInt64Array / Float64Array over a plain (non-shared) ArrayBuffer;
//   - region.read() / region.write() of 1 MiB  vs  Buffer.copy of 1 MiB between two
//     preallocated Buffers.
// Each row: warm-up and calibration, then 5 runs of about RUN_MS each (alternating the
// library and the baseline so that drift hits both), median reported.
//
//   npm run build && node bench/pointer.js            (about 1 s per measured operation)
//   node bench/pointer.js --quick                      (about 0.2 s, for a smoke run)
//
// Targets: pointer read/write >= 50 M ops/s; 1 MiB copies within 2x of Buffer.copy.
// The shared memory object is anonymous (its name is unlinked at creation), so nothing is
// left in /dev/shm even if the program is killed; it is closed and unmapped at the end.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SharedMemory, Region, Int32Ptr, Int64Ptr, Float64Ptr, pageSize } from '../dist/index.js';

const QUICK = process.argv.includes('--quick');
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? (QUICK ? 40 : 200));
const RUNS = 5;
const MiB = 1 << 20;

// ---- machine ----------------------------------------------------------------------------
function commit() {
  try {
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}
const cpus = os.cpus();
console.log('# concurrent-shm pointer and region benchmark');
console.log(`cpu:      ${cpus[0]?.model ?? 'unknown'} (${cpus.length} logical cores)`);
console.log(`node:     ${process.version} (V8 ${process.versions.v8}), ${process.platform}/${process.arch}`);
console.log(`os:       ${os.type()} ${os.release()}, page size ${pageSize}`);
console.log(`commit:   ${commit()}`);
console.log(`method:   warm-up, then median of ${RUNS} runs of ~${RUN_MS} ms each, library and baseline alternating\n`);

// ---- measurement ------------------------------------------------------------------------
let sink = 0; // results flow here so that no loop is optimised away

/** ns per operation of `body(n)` (which performs n operations), for one run of ~ms. */
function timeRun(body, n) {
  const t0 = process.hrtime.bigint();
  sink += Number(body(n)) || 0;
  return Number(process.hrtime.bigint() - t0) / n;
}

/** Finds an n that takes about RUN_MS (this is also the warm-up), then one more warm-up run. */
function calibrate(body) {
  let n = 64;
  for (;;) {
    const t0 = process.hrtime.bigint();
    sink += Number(body(n)) || 0;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= 20) {
      n = Math.max(1, Math.round((n * RUN_MS) / ms));
      break;
    }
    n *= 4;
  }
  timeRun(body, n);
  return n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median ns/op of the library body and of the baseline body, measured alternately. */
function compare(lib, base) {
  const nl = calibrate(lib);
  const nb = calibrate(base);
  const tl = [];
  const tb = [];
  for (let i = 0; i < RUNS; i++) {
    tl.push(timeRun(lib, nl));
    tb.push(timeRun(base, nb));
  }
  return { lib: median(tl), base: median(tb) };
}

const rows = [];
function opsRow(name, baselineName, lib, base) {
  const r = compare(lib, base);
  const row = { name, baselineName, unit: 'M ops/s', lib: 1e3 / r.lib, base: 1e3 / r.base };
  rows.push(row);
  printRow(row);
  return row;
}
function bytesRow(name, baselineName, bytes, lib, base) {
  const r = compare(lib, base);
  const row = { name, baselineName, unit: 'GB/s', lib: bytes / r.lib, base: bytes / r.base };
  rows.push(row);
  printRow(row);
  return row;
}
function printRow(row) {
  const ratio = row.lib / row.base;
  console.log(
    `${row.name.padEnd(30)} ${row.lib.toFixed(2).padStart(9)} ${row.unit.padEnd(8)}` +
      `  | ${row.baselineName.padEnd(34)} ${row.base.toFixed(2).padStart(9)} ${row.unit.padEnd(8)}` +
      `  | ratio ${ratio.toFixed(2)}`,
  );
}

// ---- setup ------------------------------------------------------------------------------
const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
let region;
let big;
try {
  shm.size = MiB + pageSize;
  region = Region.map(shm, 0, pageSize); // words for the pointers
  big = Region.map(shm, pageSize, MiB); // 1 MiB for the copies

  const i32p = new Int32Ptr(region, 0);
  const i64p = new Int64Ptr(region, 8);
  const f64p = new Float64Ptr(region, 16);
  const plain = new ArrayBuffer(64);
  const i32 = new Int32Array(plain, 0, 1);
  const i64 = new BigInt64Array(plain, 8, 1);
  const f64 = new Float64Array(plain, 16, 1);
  const bigints = Array.from({ length: 1024 }, (_, i) => BigInt(i) * 0x100000001n);

  console.log(`${'library'.padEnd(30)} ${'rate'.padStart(9)} ${''.padEnd(8)}  | ${'baseline'.padEnd(34)} ${'rate'.padStart(9)}`);
  console.log('-'.repeat(112));

  const reads = [
    opsRow('Int32Ptr.read()', 'Int32Array[0]', (n) => { let s = 0; for (let i = 0; i < n; i++) s += i32p.read(); return s; }, (n) => { let s = 0; for (let i = 0; i < n; i++) s += i32[0]; return s; }),
    opsRow('Int64Ptr.read()', 'BigInt64Array[0]', (n) => { let s = 0n; for (let i = 0; i < n; i++) s ^= i64p.read(); return s & 1n; }, (n) => { let s = 0n; for (let i = 0; i < n; i++) s ^= i64[0]; return s & 1n; }),
    opsRow('Float64Ptr.read()', 'Float64Array[0]', (n) => { let s = 0; for (let i = 0; i < n; i++) s += f64p.read(); return s; }, (n) => { let s = 0; for (let i = 0; i < n; i++) s += f64[0]; return s; }),
  ];
  const writes = [
    opsRow('Int32Ptr.write(v)', 'Int32Array[0] = v', (n) => { for (let i = 0; i < n; i++) i32p.write(i & 0x7fffffff); return i32p.read(); }, (n) => { for (let i = 0; i < n; i++) i32[0] = i & 0x7fffffff; return i32[0]; }),
    opsRow('Int64Ptr.write(bigint)', 'BigInt64Array[0] = bigint', (n) => { for (let i = 0; i < n; i++) i64p.write(bigints[i & 1023]); return i64p.read() & 1n; }, (n) => { for (let i = 0; i < n; i++) i64[0] = bigints[i & 1023]; return i64[0] & 1n; }),
    opsRow('Float64Ptr.write(v)', 'Float64Array[0] = v', (n) => { for (let i = 0; i < n; i++) f64p.write(i * 0.5); return f64p.read(); }, (n) => { for (let i = 0; i < n; i++) f64[0] = i * 0.5; return f64[0]; }),
  ];
  opsRow('Int32Ptr.add(1)', 'Atomics.add(Int32Array, 0, 1)', (n) => { for (let i = 0; i < n; i++) i32p.add(1); return i32p.load(); }, (n) => { for (let i = 0; i < n; i++) Atomics.add(i32, 0, 1); return i32[0]; });
  opsRow('Int64Ptr.add(1n)', 'Atomics.add(BigInt64Array, 0, 1n)', (n) => { for (let i = 0; i < n; i++) i64p.add(1n); return i64p.load() & 1n; }, (n) => { for (let i = 0; i < n; i++) Atomics.add(i64, 0, 1n); return i64[0] & 1n; });

  const src = Buffer.alloc(MiB, 0x5a);
  const dst = Buffer.alloc(MiB);
  big.write(src); // touch every page before measuring
  const copies = [
    bytesRow('region.read() 1 MiB', 'Buffer.copy 1 MiB', MiB, (n) => { let s = 0; for (let i = 0; i < n; i++) s += big.read()[i & 1023]; return s; }, (n) => { let s = 0; for (let i = 0; i < n; i++) s += src.copy(dst, 0, 0, MiB) + dst[i & 1023]; return s; }),
    bytesRow('region.readInto(buf) 1 MiB', 'Buffer.copy 1 MiB', MiB, (n) => { let s = 0; for (let i = 0; i < n; i++) s += big.readInto(dst) + dst[i & 1023]; return s; }, (n) => { let s = 0; for (let i = 0; i < n; i++) s += src.copy(dst, 0, 0, MiB) + dst[i & 1023]; return s; }),
    bytesRow('region.write(buf) 1 MiB', 'Buffer.copy 1 MiB', MiB, (n) => { let s = 0; for (let i = 0; i < n; i++) s += big.write(src); return s; }, (n) => { let s = 0; for (let i = 0; i < n; i++) s += src.copy(dst, 0, 0, MiB); return s; }),
  ];
  // What region.read() does is allocate a fresh 1 MiB Buffer and copy into it; this row
  // compares it with the same thing done on plain Buffers, to separate the cost of the
  // allocation (fresh pages are faulted in on first touch) from the cost of the copy.
  bytesRow('region.read() 1 MiB', 'Buffer.allocUnsafe + copy 1 MiB', MiB, (n) => { let s = 0; for (let i = 0; i < n; i++) s += big.read()[i & 1023]; return s; }, (n) => { let s = 0; for (let i = 0; i < n; i++) { const b = Buffer.allocUnsafe(MiB); src.copy(b, 0, 0, MiB); s += b[i & 1023]; } return s; });

  // ---- targets ----------------------------------------------------------------------------
  console.log('\n# targets');
  const minRw = Math.min(...reads.map((r) => r.lib), ...writes.map((r) => r.lib));
  console.log(`pointer read/write >= 50 M ops/s:   slowest ${minRw.toFixed(1)} M ops/s  -> ${minRw >= 50 ? 'met' : 'NOT met'}`);
  for (const c of copies) {
    const ratio = c.base / c.lib;
    console.log(`${c.name} within 2x of Buffer.copy: ${ratio.toFixed(2)}x slower  -> ${ratio <= 2 ? 'met' : 'NOT met'}`);
  }
  if (sink === 0.5) console.log(''); // keeps `sink` observable
} finally {
  region?.unmap();
  big?.unmap();
  shm.close();
}
