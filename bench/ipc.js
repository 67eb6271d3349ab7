#!/usr/bin/env node
// IPC benchmark: round-trip latency and one-way throughput of message passing between
// two processes, for every transport listed in bench/lib/transports.js, next to the
// floor (a bare flag in shared memory) and process.send, idle or with --load N busy loops.
//
//   node bench/ipc.js [--quick] [--load N] [--json FILE] [--svg FILE] [--only id,id] [--baseline id]
//
// Programmatic use: `import { runBenchmark } from './bench/ipc.js'`.

import { parseCommand } from './lib/args.js';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadTransports, TRANSPORT_FILES } from './lib/transports.js';
import { measureTransport, ROUND_TRIP_SIZE, SIZES } from './lib/measure.js';
import { machineInfo, printReport, writeJson, chooseBaseline, JSON_SCHEMA } from './lib/report.js';
import { writeSvg } from './lib/svg.js';
import { createProgress } from './lib/progress.js';
import { startWatchdog, stopWatchdog } from './lib/watchdog.js';
import { cleanupAll, setPeerCpuList } from './lib/transport.js';
import { pinPlan, getAffinity, pinProcess } from './lib/affinity.js';
import { parseLoad, startLoad, stopLoad } from './lib/load.js';

export { formatReport, printReport, writeJson, toJson } from './lib/report.js';
export { renderSvg, writeSvg } from './lib/svg.js';
export { createProgress } from './lib/progress.js';
export { TRANSPORT_FILES } from './lib/transports.js';

/**
 * @typedef {object} BenchmarkRun
 * @property {import('./lib/measure.js').TransportResult[]} results  in transport order
 * @property {ReturnType<typeof machineInfo>} machine
 * @property {boolean} quick
 * @property {string | null} baseline  chosen baseline transport id
 * @property {number} roundTripSize
 * @property {number[]} sizes
 * @property {number} durationMs
 * @property {'same' | 'split' | null} pin  CPU pinning used (null: unpinned)
 * @property {number} load  busy loops that ran during the measurement (--load)
 */

/**
 * Run the IPC benchmark.
 * @param {object} [options]
 * @param {boolean} [options.quick]        shorter measurements (~0.1 s each)
 * @param {string[] | string} [options.only]  transport ids to run (array or comma-separated); default all
 * @param {(ev: import('./lib/progress.js').ProgressEvent) => void} [options.onProgress]
 * @param {string} [options.baseline]      baseline transport id for ratios
 * @param {number[]} [options.sizes]       throughput message sizes (default 64 B, 4 KiB, 64 KiB, 1 MiB)
 * @param {number} [options.timeoutMs]     watchdog timeout per measurement (default 60 s)
 * @param {'same' | 'split'} [options.pin] pin this process and the peers to CPUs (Linux, taskset); default unpinned
 * @param {number} [options.load]          busy loops (separate processes) to run during the measurement; default 0
 * @returns {Promise<BenchmarkRun>}
 */
export async function runBenchmark(options = {}) {
  const quick = !!options.quick;
  const sizes = options.sizes ?? SIZES;
  const onProgress = options.onProgress ?? (() => {});
  const load = parseLoad(options.load);
  const only = typeof options.only === 'string'
    ? options.only.split(',').map((s) => s.trim()).filter(Boolean)
    : options.only;

  let transports = await loadTransports(TRANSPORT_FILES);
  if (only && only.length) {
    const known = new Set(transports.map((t) => t.id));
    const unknown = only.filter((id) => !known.has(id));
    if (unknown.length) {
      throw new Error(`unknown transport id(s): ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
    }
    transports = transports.filter((t) => only.includes(t.id));
  }

  const plan = pinPlan(options.pin);
  const started = Date.now();
  const machine = machineInfo();
  const stepsPer = 1 + sizes.length;
  const total = transports.length * stepsPer;
  const results = [];
  startWatchdog();
  let restoreAffinity = null;
  try {
    if (plan) {
      const original = getAffinity(process.pid);
      pinProcess(process.pid, plan.parent);
      restoreAffinity = () => pinProcess(process.pid, original);
      setPeerCpuList(plan.peer);
    }
    // After pinning: the busy loops are not pinned, the scheduler places them.
    if (load > 0) await startLoad(load);
    for (const [i, transport] of transports.entries()) {
      let step = i * stepsPer;
      const result = await measureTransport(transport, {
        quick,
        sizes,
        timeoutMs: options.timeoutMs,
        onStep: ({ label, skipped }) => {
          step++;
          onProgress({ type: 'step', step, total, id: transport.id, name: transport.name, label, skipped });
        },
      });
      if (result.error) {
        onProgress({ type: 'error', step, total, id: transport.id, name: transport.name, error: result.error });
      }
      results.push(result);
    }
  } finally {
    await stopLoad();
    stopWatchdog();
    cleanupAll();
    setPeerCpuList(null);
    if (restoreAffinity) {
      try { restoreAffinity(); } catch { /* best effort */ }
    }
  }
  onProgress({ type: 'done', step: total, total });
  return {
    results,
    machine,
    quick,
    baseline: chooseBaseline(results, options.baseline),
    roundTripSize: ROUND_TRIP_SIZE,
    sizes: [...sizes],
    durationMs: Date.now() - started,
    pin: plan ? plan.mode : null,
    load,
  };
}

const USAGE = `usage: node bench/ipc.js [options]

Measures inter-process message passing: 64 B round-trip latency and one-way
throughput at 64 B, 4 KiB, 64 KiB and 1 MiB, for every transport. Every round
trip is also given as a multiple of the floor (bare-flag: a flag ping-ponged in
shared memory) and against process.send (json), from the same run.

options:
  --quick             short measurements (~0.1 s each instead of ~0.4 s)
  --load N            run N busy loops (separate node processes) during the
                      measurement: what a user sees on a host whose cores are busy
  --json FILE         write results and machine info as JSON
  --svg FILE          write a chart (SVG)
  --only ID,ID        run only these transports (ids: --list; keep bare-flag and
                      process-send-json for the ratios)
  --baseline ID       transport the throughput ratios are relative to
                      (default: process-send-json)
  --timeout SECONDS   watchdog timeout per measurement (default 60)
  --pin same|split    pin to CPUs (Linux, taskset): everything on CPU 0, or
                      this process on CPU 0 and the peers on CPU 1 (default: unpinned)
  --from FILE         do not measure: print the table (and --svg) from a --json file
  --list              list transports and exit
  -h, --help          this text
`;

/** The command line: `argv` without node and script. Resolves to the exit code. */
export async function main(argv) {
  const args = parseCommand(argv, {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
    only: { type: 'string' },
    baseline: { type: 'string' },
    timeout: { type: 'string' },
    pin: { type: 'string' },
    load: { type: 'string' },
    from: { type: 'string' },
    list: { type: 'boolean', default: false },
  }, USAGE);
  if (typeof args === 'number') return args;
  if (args.list) {
    for (const t of await loadTransports()) {
      const note = t.loadError ? `  [cannot load: ${t.loadError.message}]` : '';
      process.stdout.write(`${t.id.padEnd(24)} ${t.name.padEnd(26)} ${t.description ?? ''}${note}\n`);
    }
    return 0;
  }
  const timeoutMs = args.timeout !== undefined ? Number(args.timeout) * 1000 : undefined;
  if (timeoutMs !== undefined && !(timeoutMs > 0)) {
    process.stderr.write(`--timeout must be a positive number of seconds\n`);
    return 2;
  }

  let load;
  try {
    load = parseLoad(args.load);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    return 2;
  }

  const onSignal = (signal) => {
    cleanupAll(); // the busy loops of --load are killed by the exit hook of lib/load.js
    process.stderr.write(`\ninterrupted (${signal})\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  if (args.from) {
    const run = JSON.parse(readFileSync(args.from, 'utf8'));
    if (run.schema !== JSON_SCHEMA) {
      process.stderr.write(`${args.from}: not a ${JSON_SCHEMA} file\n`);
      return 2;
    }
    if (args.baseline) run.baseline = args.baseline;
    printReport(run, { baseline: args.baseline });
    if (args.svg) {
      writeSvg(args.svg, run, { baseline: args.baseline });
      process.stderr.write(`wrote ${args.svg}\n`);
    }
    return 0;
  }

  const progress = createProgress();
  let run;
  try {
    run = await runBenchmark({
      quick: args.quick,
      only: args.only,
      baseline: args.baseline,
      timeoutMs,
      pin: args.pin,
      load,
      onProgress: progress.update,
    });
  } catch (err) {
    progress.clear();
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  printReport(run, { baseline: args.baseline });
  if (args.json) {
    writeJson(args.json, run, { baseline: args.baseline });
    process.stderr.write(`wrote ${args.json}\n`);
  }
  if (args.svg) {
    writeSvg(args.svg, run, { baseline: args.baseline });
    process.stderr.write(`wrote ${args.svg}\n`);
  }
  return run.results.some((r) => r.error) ? 1 : 0;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  process.exitCode = await main(process.argv.slice(2));
}
