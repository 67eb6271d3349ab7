// Watchdog for benchmark measurements.
//
// Two layers, so that a hung measurement never hangs the run:
//  1. In the main thread: every guarded step races a timer. When it fires, the
//     session is killed and the step fails with a TimeoutError.
//  2. In a helper worker thread: if the main thread itself is blocked (for
//     example a synchronous channel transport stuck in a futex wait, so the
//     timer of layer 1 can never run), the worker SIGKILLs every registered
//     peer process shortly after the deadline, and if the main thread is still
//     stuck after a further grace period it prints a message with a synchronous
//     write and SIGKILLs the whole benchmark process (after killing the peers,
//     so nothing is orphaned).
//
// Peer pids are kept in a SharedArrayBuffer so the worker can reach them
// without the main thread's help. Use trackPid/untrackPid (bench/lib/transport.js
// does this for every peer it spawns). The busy loops of `--load` (bench/lib/load.js)
// have their own slots (trackLoadPid): the worker kills them only when it kills the
// whole benchmark, since they must keep running while a failed transport's peers die.

import { Worker } from 'node:worker_threads';

const MAX_PIDS = 64;
const MAX_LOAD = 256;
const LOAD_START = 4 + MAX_PIDS;
// Int32 layout: [0] armed generation (0 = disarmed), [1] stop flag, [2] label length,
// [3] reserved, [4 .. 4 + MAX_PIDS) peer pids, [LOAD_START .. + MAX_LOAD) pids of the
// --load busy loops (0 = free slot).
const I32_LEN = LOAD_START + MAX_LOAD;
const BIG_OFFSET = I32_LEN * 4; // 8-byte aligned (I32_LEN is even)
const LABEL_OFFSET = BIG_OFFSET + 16;
const LABEL_MAX = 256;
const sab = new SharedArrayBuffer(LABEL_OFFSET + LABEL_MAX);
const i32 = new Int32Array(sab, 0, I32_LEN);
const big = new BigInt64Array(sab, BIG_OFFSET, 2); // [0] deadline (ms since epoch)
const labelBytes = new Uint8Array(sab, LABEL_OFFSET, LABEL_MAX);

/** Grace after the deadline before the worker kills the peers itself (ms). */
export const KILL_GRACE_MS = 2000;
/** Further grace before the worker kills the whole process (ms). */
export const FATAL_GRACE_MS = 10000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { sab, I32_LEN, LOAD_START, BIG_OFFSET, LABEL_OFFSET, LABEL_MAX, KILL_GRACE_MS, FATAL_GRACE_MS } = workerData;
const i32 = new Int32Array(sab, 0, I32_LEN);
const big = new BigInt64Array(sab, BIG_OFFSET, 2);
const labelBytes = new Uint8Array(sab, LABEL_OFFSET, LABEL_MAX);
function killPeers(end = LOAD_START) {
  for (let i = 4; i < end; i++) {
    const pid = Atomics.load(i32, i);
    if (pid > 0) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  }
}
let killedGen = 0;
for (;;) {
  Atomics.wait(i32, 1, 0, 200);
  if (Atomics.load(i32, 1) !== 0) break;
  const gen = Atomics.load(i32, 0);
  if (gen === 0) continue;
  const late = Date.now() - Number(Atomics.load(big, 0));
  if (late > KILL_GRACE_MS && killedGen !== gen) { killedGen = gen; killPeers(); }
  if (late > KILL_GRACE_MS + FATAL_GRACE_MS && killedGen === gen && Atomics.load(i32, 0) === gen) {
    const len = Atomics.load(i32, 2);
    const label = Buffer.from(labelBytes.slice(0, len)).toString('utf8');
    try { fs.writeSync(2, '\\n[bench watchdog] "' + label + '" is stuck and the main thread does not respond; killing peers and the benchmark process.\\n'); } catch {}
    killPeers(I32_LEN);
    process.kill(process.pid, 'SIGKILL');
  }
}
`;

let worker = null;
let generation = 0;

/** Start the helper thread (idempotent). It never keeps the process alive. */
export function startWatchdog() {
  if (worker) return;
  Atomics.store(i32, 1, 0);
  worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { sab, I32_LEN, LOAD_START, BIG_OFFSET, LABEL_OFFSET, LABEL_MAX, KILL_GRACE_MS, FATAL_GRACE_MS },
  });
  worker.unref();
  worker.on('error', () => {});
}

/** Stop the helper thread (idempotent). */
export function stopWatchdog() {
  if (!worker) return;
  Atomics.store(i32, 1, 1);
  Atomics.notify(i32, 1);
  worker = null;
}

/** Register a peer process pid so the watchdog can kill it. */
export function trackPid(pid) {
  track(pid, 4, LOAD_START);
}

/** Forget a pid (the process has exited). */
export function untrackPid(pid) {
  untrack(pid, 4, LOAD_START);
}

/** Register a busy loop of --load: killed only when the watchdog kills the benchmark. */
export function trackLoadPid(pid) {
  track(pid, LOAD_START, I32_LEN);
}

/** Forget a busy loop's pid (it has exited). */
export function untrackLoadPid(pid) {
  untrack(pid, LOAD_START, I32_LEN);
}

function track(pid, from, to) {
  if (!(pid > 0)) return;
  for (let i = from; i < to; i++) {
    if (Atomics.compareExchange(i32, i, 0, pid) === 0) return;
  }
}

function untrack(pid, from, to) {
  for (let i = from; i < to; i++) {
    if (Atomics.load(i32, i) === pid) Atomics.store(i32, i, 0);
  }
}

/** Send SIGKILL to every tracked peer pid (used on timeouts and at exit; not the busy loops). */
export function killTrackedPids() {
  for (let i = 4; i < LOAD_START; i++) {
    const pid = Atomics.load(i32, i);
    if (pid > 0) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}

export class TimeoutError extends Error {
  constructor(label, ms) {
    super(`${label}: no answer within ${+(ms / 1000).toFixed(1)} s (watchdog timeout); peer killed`);
    this.name = 'TimeoutError';
  }
}

/**
 * Run `fn` under the watchdog.
 * @template T
 * @param {string} label   what is being measured (shown in errors)
 * @param {number} ms      deadline
 * @param {() => Promise<T>} fn
 * @param {() => void} [onTimeout]  forceful cleanup (kill the session) when the deadline passes
 * @returns {Promise<T>}
 */
export async function guard(label, ms, fn, onTimeout) {
  const gen = ++generation === 0 ? ++generation : generation;
  const bytes = Buffer.from(label, 'utf8').subarray(0, LABEL_MAX);
  labelBytes.set(bytes);
  Atomics.store(i32, 2, bytes.length);
  Atomics.store(big, 0, BigInt(Date.now() + ms));
  Atomics.store(i32, 0, gen);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      try { onTimeout?.(); } catch { /* best effort */ }
      reject(new TimeoutError(label, ms));
    }, ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(fn), timeout]);
  } finally {
    clearTimeout(timer);
    Atomics.store(i32, 0, 0);
  }
}
