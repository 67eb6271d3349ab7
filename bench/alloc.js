#!/usr/bin/env node
// Allocation benchmark: bytes allocated on the JavaScript heap, and garbage collections,
// per message of `sendSync` + `recvIntoSync`, in ONE process (send, then receive the same
// message, alternately: the channel never blocks), over a million messages.
//
//   node bench/alloc.js [--messages N] [--runs R] [--json]
//
// A hot path that allocates nothing never triggers a collection however long it runs; one
// that allocates ~200 bytes per call triggers a scavenge every few thousand messages, and
// each of those pauses every other thing the process does.
//
// How it counts: v8.GCProfiler records the heap's used size before and after every
// collection, so the bytes allocated during the run are
//     (used at the end − used at the start) + Σ (used before a GC − used after it)
// which does not depend on when collections happen. The same loop with a plain
// `Uint8Array.set` instead of the channel calls (the "harness" row) shows what the loop
// itself costs: 0 bytes. Each row runs `--runs` times (default 3), each time in a fresh
// process, after a warm-up of 10 % of the messages (so the JIT has compiled the path being
// measured); the figure can differ from run to run, because what the optimizing compiler
// manages to keep off the heap depends on what it saw first, so the table gives the
// median run and the range. A `PerformanceObserver` counts 'gc' entries as a cross-check;
// process.memoryUsage() before and after is printed for reference.

import { parseCommand } from './lib/args.js';
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const ROWS = [
  { id: 'harness', name: 'harness only (Uint8Array.set, no channel)' },
  { id: 'sb-fixed', name: 'SingleBuffered.Fixed 64: sendSync + recvIntoSync', kind: ['SingleBuffered', 'Fixed', { width: 64 }] },
  { id: 'sb-variable', name: 'SingleBuffered.Variable 64: sendSync + recvIntoSync', kind: ['SingleBuffered', 'Variable', { capacity: 64 }] },
  { id: 'b-fixed', name: 'Buffered.Fixed 8×64: sendSync + recvIntoSync', kind: ['Buffered', 'Fixed', { depth: 8, width: 64 }] },
];

const USAGE = `usage: node bench/alloc.js [--messages N] [--runs R] [--json]

Bytes allocated on the JS heap and garbage collections per message of
sendSync + recvIntoSync, one process, a million messages (each run in a fresh process).

options:
  --messages N   messages per run (default 1000000)
  --runs R       runs per row, each in a fresh process (default 3)
  --json         print the results as JSON instead of a table
  -h, --help     this text
`;

/** One row, in this process: returns { bytesPerMessage, gcs, ... }. */
async function measureRow(row, messages) {
  const msg = Buffer.alloc(64, 0x78);
  const buf = Buffer.alloc(64);
  let step;
  let cleanup = () => {};
  if (row.kind) {
    const { Channel, SharedMemory } = await import('../dist/index.js');
    const [kind, payload, options] = row.kind;
    const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
    const ch = new Channel[kind][payload](shm, options);
    step = () => {
      ch.sendSync(msg);
      return ch.recvIntoSync(buf);
    };
    cleanup = () => {
      ch.release();
      shm.close();
    };
  } else {
    step = () => {
      buf.set(msg);
      return 64;
    };
  }
  const loop = (n) => {
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += step();
    return bytes;
  };

  // Warm-up: 10 % of the messages in 20 calls, so that `loop` itself gets optimized (not
  // only on-stack replaced) and compiling it does not land in the measured run.
  for (let i = 0; i < 20; i++) loop(Math.max(100, Math.round(messages / 200)));
  globalThis.gc?.();

  let gcEntries = 0;
  const observer = new PerformanceObserver((list) => { gcEntries += list.getEntries().length; });
  observer.observe({ entryTypes: ['gc'] });
  const memBefore = process.memoryUsage();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const usedBefore = v8.getHeapStatistics().used_heap_size;
  const t0 = performance.now();
  const received = loop(messages);
  const ms = performance.now() - t0;
  const usedAfter = v8.getHeapStatistics().used_heap_size;
  const profile = profiler.stop();
  const memAfter = process.memoryUsage();
  // Let the observer's queued entries arrive.
  await new Promise((r) => setTimeout(r, 50));
  observer.disconnect();
  cleanup();

  if (received !== 64 * messages) throw new Error(`${row.name}: received ${received} bytes, expected ${64 * messages}`);
  let freed = 0;
  const byType = {};
  for (const s of profile.statistics) {
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    byType[s.gcType] = (byType[s.gcType] ?? 0) + 1;
  }
  const allocated = Math.max(0, usedAfter - usedBefore + freed);
  return {
    id: row.id,
    name: row.name,
    messages,
    bytesAllocated: allocated,
    bytesPerMessage: allocated / messages,
    gcs: profile.statistics.length,
    gcsByType: byType,
    gcEntries,
    nsPerMessage: (ms * 1e6) / messages,
    heapUsedDelta: memAfter.heapUsed - memBefore.heapUsed,
    rssDelta: memAfter.rss - memBefore.rss,
  };
}

function fmtBytes(n) {
  const a = Math.abs(n);
  if (a >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (a >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

/** The run with the median bytes per message, with the range over all runs. */
function summarize(runs) {
  const ok = runs.filter((r) => !r.error);
  if (!ok.length) return runs[0];
  const sorted = [...ok].sort((a, b) => a.bytesPerMessage - b.bytesPerMessage);
  const med = sorted[(sorted.length - 1) >> 1];
  return { ...med, runs: runs.length, min: sorted[0].bytesPerMessage, max: sorted.at(-1).bytesPerMessage, all: runs };
}

function fmtPerMessage(x) {
  return x < 0.05 ? '0' : x.toFixed(x < 10 ? 2 : 0);
}

function table(results) {
  const header = ['what (one process, send then receive)', 'B/message', 'range', 'GCs', 'by type', 'ns/message', 'heapUsed Δ', 'rss Δ'];
  const rows = results.map((r) => r.error
    ? [r.name, '–', '–', '–', r.error, '–', '–', '–']
    : [
      r.name,
      fmtPerMessage(r.bytesPerMessage),
      `${fmtPerMessage(r.min)}–${fmtPerMessage(r.max)}`,
      String(r.gcs),
      Object.entries(r.gcsByType).map(([k, v]) => `${v} ${k}`).join(', ') || '-',
      r.nsPerMessage.toFixed(0),
      fmtBytes(r.heapUsedDelta),
      fmtBytes(r.rssDelta),
    ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/** Run one row in a fresh child process (this script with --row). */
function runChild(row, messages) {
  return new Promise((resolve) => {
    const child = fork(fileURLToPath(import.meta.url), ['--row', row.id, '--messages', String(messages)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: ['--expose-gc'],
    });
    let result = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('message', (m) => { result = m; });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(result ?? { id: row.id, name: row.name, error: `exited (code ${code}, signal ${signal})` });
    });
  });
}

export async function main(argv) {
  const args = parseCommand(argv, {
    messages: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    row: { type: 'string' },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if (typeof args === 'number') return args;
  const messages = Number(args.messages);
  if (!Number.isSafeInteger(messages) || messages < 1000) {
    process.stderr.write('--messages must be a whole number ≥ 1000\n');
    return 2;
  }
  const runs = Number(args.runs);
  if (!Number.isSafeInteger(runs) || runs < 1 || runs > 100) {
    process.stderr.write('--runs must be a whole number from 1 to 100\n');
    return 2;
  }
  if (args.row) {
    const row = ROWS.find((r) => r.id === args.row);
    try {
      process.send(await measureRow(row, messages));
    } catch (err) {
      process.send({ id: row.id, name: row.name, error: err.message });
    }
    return 0;
  }
  const results = [];
  for (const row of ROWS) {
    process.stderr.write(`${row.name} ...\n`);
    const all = [];
    for (let i = 0; i < runs; i++) all.push(await runChild(row, messages));
    results.push(summarize(all));
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ node: process.version, messages, runs, results }, null, 2) + '\n');
  } else {
    process.stdout.write(`Allocation per message, ${messages.toLocaleString('en')} messages of 64 B, median of ${runs} run${runs === 1 ? '' : 's'} (each a fresh process), Node ${process.version}\n\n`);
    process.stdout.write(table(results) + '\n\n');
    process.stdout.write('B/message: bytes allocated on the JS heap per send + receive (GC-independent, from v8.GCProfiler); range over the runs.\n');
    const mismatch = results.flatMap((r) => (r.all ?? []).filter((x) => !x.error && x.gcEntries !== x.gcs).map((x) => `${x.id}: ${x.gcs} vs ${x.gcEntries}`));
    process.stdout.write(`GCs: collections during the median run (PerformanceObserver 'gc' entries: ${mismatch.length ? `differ: ${mismatch.join(', ')}` : 'the same counts'}).\n`);
  }
  return results.some((r) => r.error) ? 1 : 0;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  process.exitCode = await main(process.argv.slice(2));
  if (process.send && process.argv.includes('--row')) process.disconnect();
}
