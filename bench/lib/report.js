// Plain-text table, baseline ratios, machine info and JSON output.

import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { asyncWaiter } from '../../dist/sync/async-waiter.js';
import { formatSize } from './transport.js';

export const JSON_SCHEMA = 'concurrent-shm/bench-ipc@1';

/** Machine description stored with results (and shown in the chart title). */
export function machineInfo() {
  const cpus = os.cpus();
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  // Only in a checkout of this repository: installed under node_modules, git would find
  // the enclosing project's repository and report its commit as ours.
  const commit = existsSync(new URL('../../.git', import.meta.url)) ? git('rev-parse', '--short', 'HEAD') : null;
  const status = commit ? git('status', '--porcelain', '--untracked-files=no') : null;
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown CPU',
    cores: cpus.length,
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    osRelease: os.release(),
    commit,
    dirty: status === null ? null : status.length > 0,
    date: new Date().toISOString(),
    asyncWaits: asyncWaits(),
  };
}

/** How this process's async waits sleep: "io_uring", or "thread (why)" (see docs/os-notes.md). */
function asyncWaits() {
  try {
    const { kind, why } = asyncWaiter.kind();
    return kind === 'io_uring' ? kind : `${kind} (${why})`;
  } catch (err) {
    return `refused: ${err.message}`;
  }
}

/** One-line machine summary, e.g. "AMD EPYC · 2 cores · 23.5 GiB · Node v20.20.2 · linux x64 · abc1234". */
export function machineSummary(m) {
  const parts = [
    m.cpuModel,
    `${m.cores} cores`,
    `${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`,
    `Node ${m.node}`,
    `${m.platform} ${m.arch}`,
  ];
  if (m.commit) parts.push(`commit ${m.commit}${m.dirty ? '+' : ''}`);
  if (m.asyncWaits) parts.push(`async waits: ${m.asyncWaits}`);
  parts.push(m.date.slice(0, 10));
  return parts.join(' · ');
}

/** " (--quick, --pin split, --load 2)" or "" */
export function runFlags(run) {
  const flags = [];
  if (run.quick) flags.push('--quick');
  if (run.pin) flags.push(`--pin ${run.pin}`);
  if (run.load) flags.push(`--load ${run.load}`);
  return flags.length ? ` (${flags.join(', ')})` : '';
}

/** Id of the floor row (bench/transports/bare-flag.js). */
export const FLOOR_ID = 'bare-flag';
/** The throughput reference: one process's memcpy (no round trip). */
export const MEMCPY_ID = 'memcpy';
/** Id of the alternative every row is also compared with. */
export const REFERENCE_ID = 'process-send-json';

/**
 * The baseline transport id of the throughput ratios (and the chart's bold row):
 * `requested` if it has results, else process-send-json, else the first channel transport,
 * else the first transport with results.
 */
export function chooseBaseline(results, requested) {
  const ok = results.filter((r) => !r.error || r.roundTripNs);
  if (requested && ok.some((r) => r.id === requested)) return requested;
  return (ok.find((r) => r.id === REFERENCE_ID) ?? ok.find((r) => r.kind === 'channel') ?? ok[0])?.id ?? null;
}

/** "27.1 µs" */
export function formatNs(ns) {
  if (!Number.isFinite(ns)) return '–';
  if (ns < 1e3) return `${sig(ns)} ns`;
  if (ns < 1e6) return `${sig(ns / 1e3)} µs`;
  if (ns < 1e9) return `${sig(ns / 1e6)} ms`;
  return `${sig(ns / 1e9)} s`;
}

/** GB/s (10^9 bytes per second) with 3 significant digits. */
export function formatGBps(bytesPerSec) {
  if (!Number.isFinite(bytesPerSec)) return '–';
  return sig(bytesPerSec / 1e9);
}

/** 3 significant digits: 1234 -> "1234", 27.13 -> "27.1", 3.021 -> "3.02", 0.02534 -> "0.0253". */
function sig(x) {
  if (x === 0) return '0';
  if (x >= 100) return x.toFixed(0);
  const decimals = x >= 10 ? 1 : x >= 1 ? 2 : Math.min(8, 2 - Math.floor(Math.log10(x)));
  return x.toFixed(decimals);
}

/**
 * "x 35.2 faster" / "x 1.8 slower" / "same" for a ratio = row speed / baseline speed.
 */
export function formatRatio(ratio) {
  if (!Number.isFinite(ratio) || ratio <= 0) return '–';
  if (Math.abs(ratio - 1) < 0.005) return 'same';
  return ratio > 1 ? `x ${fmtRatio(ratio)} faster` : `x ${fmtRatio(1 / ratio)} slower`;
}

function fmtRatio(r) {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

function throughputAt(result, size) {
  return result.throughput.find((t) => t.size === size)?.bytesPerSec ?? NaN;
}

function renderTable(header, rows, align) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells) => cells
    .map((c, i) => (align[i] === 'l' ? c.padEnd(widths[i]) : c.padStart(widths[i])))
    .join('  ')
    .trimEnd();
  return [fmt(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/** "6.4×": how many times the floor's round trip. */
export function formatTimes(x) {
  if (!Number.isFinite(x) || x <= 0) return '–';
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : +x.toPrecision(2)}×`;
}

/**
 * Round-trip ratios of one row: to the floor (this ÷ floor, "6.4×") and to process.send
 * (json) (process.send ÷ this, "x 35 faster"), NaN where the reference is not in the run.
 * @param {import('./measure.js').TransportResult} r
 * @param {import('./measure.js').TransportResult[]} results
 */
export function roundTripRatios(r, results) {
  const rt = r.roundTripNs?.median ?? NaN;
  const floor = results.find((x) => x.id === FLOOR_ID)?.roundTripNs?.median ?? NaN;
  const ref = results.find((x) => x.id === REFERENCE_ID)?.roundTripNs?.median ?? NaN;
  return { toFloor: rt / floor, toProcessSend: ref / rt };
}

/**
 * The plain-text report: the round trip of every transport (median, p99) with its ratio
 * to the floor and to process.send (json), then one-way throughput in GB/s, then
 * throughput relative to the baseline (process.send (json) unless --baseline says otherwise).
 * @param {{ results: import('./measure.js').TransportResult[], machine: object, quick?: boolean, load?: number }} run
 * @param {{ baseline?: string }} [options]
 */
export function formatReport(run, options = {}) {
  const { results } = run;
  const sizes = [...new Set(results.flatMap((r) => r.throughput.map((t) => t.size)))].sort((a, b) => a - b);
  const baselineId = chooseBaseline(results, options.baseline ?? run.baseline);
  const base = results.find((r) => r.id === baselineId);
  const hasFloor = results.some((r) => r.id === FLOOR_ID && r.roundTripNs);
  const hasRef = results.some((r) => r.id === REFERENCE_ID && r.roundTripNs);
  const lines = [];

  lines.push(`IPC benchmark${runFlags(run)} — ${machineSummary(run.machine)}`);
  if (run.load) {
    lines.push(`load: ${run.load} busy loop${run.load === 1 ? '' : 's'} (separate node processes) ran during every measurement, on ${run.machine.cores} CPUs`);
  } else {
    lines.push('load: none started (the machine may still be busy with other work)');
  }
  lines.push('');

  lines.push(`Round trip, ${run.roundTripSize ?? 64} B message:`);
  // A third ratio column only for a baseline asked for by name (--baseline).
  const extra = options.baseline && baselineId === options.baseline && baselineId !== REFERENCE_ID ? base : null;
  const header = ['transport', 'round trip', 'p99', '× floor', 'vs process.send (json)', ...(extra ? [`vs ${extra.id}`] : [])];
  const rows = results.filter((r) => r.roundTripNs || r.error).map((r) => {
    const { toFloor, toProcessSend } = roundTripRatios(r, results);
    const ok = !!r.roundTripNs;
    return [
      r.name,
      formatNs(r.roundTripNs?.median ?? NaN),
      formatNs(r.roundTripNs?.p99 ?? NaN),
      !ok ? '–' : r.id === FLOOR_ID ? 'floor' : formatTimes(toFloor),
      !ok ? '–' : r.id === REFERENCE_ID ? 'reference' : formatRatio(toProcessSend),
      ...(extra ? [!ok ? '–' : r.id === extra.id ? 'baseline' : formatRatio((extra.roundTripNs?.median ?? NaN) / r.roundTripNs.median)] : []),
    ];
  });
  lines.push(renderTable(header, rows, ['l', 'r', 'r', 'r', 'r', ...(extra ? ['r'] : [])]));
  const floorRt = results.find((r) => r.id === FLOOR_ID)?.roundTripNs?.median;
  if (floorRt && results.some((r) => r.id !== FLOOR_ID && r.roundTripNs && r.roundTripNs.median < floorRt)) {
    lines.push('(rows faster than the floor: the bare flag spins and never gives its CPU away, so on a busy CPU each');
    lines.push(' hand-over waits for a time slice; there it is no lower bound: read the process.send column)');
  }
  if (!hasFloor || !hasRef) {
    const missing = [!hasFloor && FLOOR_ID, !hasRef && REFERENCE_ID].filter(Boolean);
    lines.push(`(ratios need ${missing.join(' and ')} in the same run: add ${missing.length > 1 ? 'them' : 'it'} to --only)`);
  }

  if (sizes.length) {
    lines.push('');
    lines.push('One-way throughput, GB/s:');
    const trows = results.map((r) => [r.name, ...sizes.map((s) => formatGBps(throughputAt(r, s)))]);
    lines.push(renderTable(['transport', ...sizes.map(formatSize)], trows, ['l', ...sizes.map(() => 'r')]));
    const memcpy = results.find((r) => r.id === MEMCPY_ID);
    const largest = sizes[sizes.length - 1];
    const own = throughputAt(memcpy ?? { throughput: [] }, largest);
    if (own > 0) {
      const channels = results.filter((r) => r.kind === 'channel' && throughputAt(r, largest) > 0);
      lines.push(`${formatSize(largest)} one-way ÷ one process's memcpy (${formatGBps(own)} GB/s): ${channels.map((r) => `${r.name} ${(throughputAt(r, largest) / own).toFixed(2)}`).join(', ')}`);
    }
  }

  if (base && sizes.length) {
    lines.push('');
    lines.push(`Throughput relative to ${base.name} (${base.id}):`);
    const rrows = results.map((r) => [
      r.name,
      ...sizes.map((s) => (r.id === baselineId ? 'baseline' : formatRatio(throughputAt(r, s) / throughputAt(base, s)))),
    ]);
    lines.push(renderTable(['transport', ...sizes.map(formatSize)], rrows, ['l', ...sizes.map(() => 'r')]));
  }

  const failed = results.filter((r) => r.error);
  if (failed.length) {
    lines.push('');
    for (const r of failed) lines.push(`FAILED ${r.id}: ${r.error}`);
  }
  lines.push('');
  lines.push('round trip: median over batches of the mean time per ping-pong; p99 of single round trips (one more batch).');
  lines.push('× floor: this round trip ÷ the bare flag\'s (lower is better); vs process.send: how much faster than process.send (json).');
  lines.push('GB/s: 10^9 payload bytes per second, one-way, median over batches. Compare within one run: this machine\'s speed varies.');
  return lines.join('\n');
}

/** Print the report to stdout. */
export function printReport(run, options = {}) {
  process.stdout.write(formatReport(run, options) + '\n');
}

/** The JSON document written by --json. */
export function toJson(run, options = {}) {
  return {
    schema: JSON_SCHEMA,
    machine: run.machine,
    quick: !!run.quick,
    pin: run.pin ?? null,
    load: run.load ?? 0,
    baseline: chooseBaseline(run.results, options.baseline ?? run.baseline),
    roundTripSize: run.roundTripSize,
    sizes: run.sizes,
    durationMs: run.durationMs,
    results: run.results,
  };
}

/** Write results + machine info as JSON. */
export function writeJson(file, run, options = {}) {
  writeFileSync(file, JSON.stringify(toJson(run, options), null, 2) + '\n');
}
