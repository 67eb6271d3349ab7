// `--load N`: N busy loops, each a separate Node process, running while a benchmark
// measures, so that the figures show what a user sees on a host whose cores are busy
// (a cluster with a worker per core, a build, a database).
//
// The loops are started before the measurement and always stopped after it:
//  - stopLoad() SIGKILLs them and waits for their exit (call it in a `finally`);
//  - a process 'exit' hook SIGKILLs them (also after process.exit() in a signal handler);
//  - the watchdog thread SIGKILLs them before it kills a stuck benchmark (trackLoadPid);
//  - and each loop checks its parent every few milliseconds and exits when the parent
//    is gone, so even a SIGKILLed benchmark leaves no spinning orphan behind.

import { spawn } from 'node:child_process';
import { trackLoadPid, untrackLoadPid } from './watchdog.js';

/** argv marker of a busy loop process (tests look for it in /proc/<pid>/cmdline). */
export const LOAD_MARKER = 'concurrent-shm-bench-load';

// The busy loop (argv: LOAD_MARKER, the benchmark's pid): says it runs (one byte on
// stdout), then computes forever. Every ~5 ms of work it asks for its parent's pid; any
// other pid than the benchmark's means the benchmark died (the loop was re-parented), so
// it exits. The pid comes from argv, not from process.ppid at start: the benchmark may
// die before the loop's first line runs.
const LOOP_SOURCE = `
const parent = Number(process.argv[2]);
process.stdout.write('1');
let x = 0;
for (;;) {
  for (let i = 0; i < 5e6; i++) x = (x + i) | 0;
  if (process.ppid !== parent) process.exit(0);
}
`;

const loops = new Set();
let exitHookInstalled = false;

function killAll() {
  for (const child of loops) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

/**
 * Parse a `--load` value: a whole number from 0 to 256.
 * @param {unknown} value
 * @returns {number}
 */
export function parseLoad(value) {
  if (value === undefined || value === null || value === '') return 0;
  const s = String(value).trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n > 256) throw new Error(`--load must be a whole number of busy loops from 0 to 256, got '${value}'`);
  return n;
}

/**
 * Start `n` busy loops and resolve once every one of them is running.
 * @param {number} n
 * @returns {Promise<{ pids: number[], stop: () => Promise<void> }>}
 */
export async function startLoad(n) {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killAll);
  }
  const started = [];
  try {
    for (let i = 0; i < n; i++) {
      const child = spawn(process.execPath, ['-e', LOOP_SOURCE, LOAD_MARKER, String(process.pid)], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      loops.add(child);
      started.push(child);
      child.once('exit', () => {
        loops.delete(child);
        untrackLoadPid(child.pid);
      });
      if (child.pid) trackLoadPid(child.pid);
    }
    await Promise.all(started.map((child) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('a busy loop of --load did not start within 10 s')), 10_000);
      child.once('error', (err) => { clearTimeout(timer); reject(new Error(`cannot start a busy loop of --load: ${err.message}`)); });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`a busy loop of --load exited (code ${code}, signal ${signal})`)); });
      child.stdout.once('data', () => {
        clearTimeout(timer);
        child.stdout.destroy();
        resolve();
      });
    })));
  } catch (err) {
    await stopLoad();
    throw err;
  }
  return { pids: started.map((c) => c.pid), stop: stopLoad };
}

/** SIGKILL every busy loop and wait (at most 5 s) until they have exited. Never throws. */
export async function stopLoad() {
  const waiting = [...loops].map((child) => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(resolve, 5000);
    timer.unref();
    child.once('exit', () => { clearTimeout(timer); resolve(); });
  }));
  killAll();
  await Promise.all(waiting);
}

/** Number of busy loops running now. */
export function loadCount() {
  return loops.size;
}
