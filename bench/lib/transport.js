// The transport interface of the IPC benchmark, and helpers for writing one.
//
// A transport is an ES module under bench/transports/ whose default export is a
// `Transport`. To add one: drop the file in bench/transports/ and list its file
// name in TRANSPORT_FILES in bench/lib/transports.js. bench/transports/README.md
// describes the contract in prose.

import { fork, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { trackPid, untrackPid, killTrackedPids } from './watchdog.js';
import { pinProcess } from './affinity.js';

/**
 * @typedef {object} Transport
 * @property {string} id     Stable id used in JSON output and `--only` (kebab-case, equal to the file name without `.js`).
 * @property {string} name   Human-readable name shown in tables and charts (keep it under ~28 characters).
 * @property {'channel' | 'reference' | 'alternative'} [kind]  `'channel'` for transports built on concurrent-shm
 *           channels, `'reference'` for the floor (bare-flag). Defaults to `'alternative'`.
 * @property {string} [description]  One line on how the transport works (shown by `--list`).
 * @property {(options: OpenOptions) => Promise<Session>} open
 *           Start the peer (child process or worker) and connect to it. Resolves once the peer is ready to
 *           answer, so start-up cost is not measured. Must not leave anything behind if it rejects.
 */

/**
 * @typedef {object} OpenOptions
 * @property {number} roundTripSize  Payload size of round-trip messages in bytes (64).
 * @property {number[]} sizes        Payload sizes `throughput()` will be called with (64 … 1 MiB); size buffers from the largest.
 * @property {boolean} quick         `--quick` mode.
 */

/**
 * @typedef {object} Session
 * @property {(iterations: number, samples?: Float64Array) => Promise<number>} [roundTrip]  (omitted only by
 *   the memcpy reference, which has no peer)
 *   Ping-pong `iterations` times: send one message of `roundTripSize` bytes to the peer, wait until the peer has
 *   received it as a message and sent the same bytes back, and has been received here; then the next. Returns
 *   the total elapsed time in nanoseconds (a number, e.g. from `nowNs()`). When `samples` is given (length >=
 *   iterations) the transport SHOULD store the duration of round trip i in `samples[i]` (ns); it is used for p99
 *   only. Transports that ignore it simply get no p99.
 * @property {(size: number, count: number) => Promise<number>} throughput
 *   Send `count` separate messages of exactly `size` payload bytes to the peer as fast as the transport allows
 *   (respecting its own backpressure), reusing one payload object: never allocate a payload per message in the
 *   sending loop. Any set-up (telling the peer how many messages to expect) happens BEFORE timing starts. Timing
 *   starts just before the first send and ends when the peer's acknowledgement that it has received all `count`
 *   messages (`count * size` payload bytes, which the peer must check) arrives here. Returns elapsed nanoseconds.
 * @property {() => Promise<void>} close
 *   Graceful shutdown: stop the peer and wait for it to exit, release sockets, temp files, shared memory.
 * @property {() => void} [kill]
 *   Optional forceful, synchronous, never-throwing cleanup, called by the harness after a timeout or error
 *   (instead of close()). Peers spawned with forkPeer/spawnPeer are SIGKILLed by the harness anyway.
 */

/** Current time in nanoseconds as a double (sub-microsecond resolution). */
export function nowNs() {
  return performance.now() * 1e6;
}

/** Absolute path of a peer script in bench/transports/peers/. */
export function peerPath(file) {
  return fileURLToPath(new URL(`../transports/peers/${file}`, import.meta.url));
}

/** URL of a peer script in bench/transports/peers/ (for `new Worker(url)`). */
export function peerUrl(file) {
  return new URL(`../transports/peers/${file}`, import.meta.url);
}

let peerCpus = null;

/**
 * CPU list peers must run on (`--pin`), or null when unpinned. registerChild() pins child
 * processes itself; an in-process peer (a worker thread) must pin its own thread with
 * pinCurrentThread(cpus) from bench/lib/affinity.js (see peers/worker-peer.js).
 */
export function peerCpuList() {
  return peerCpus;
}

/** Set by the harness for `--pin`; null to unpin. */
export function setPeerCpuList(cpus) {
  peerCpus = cpus;
}

const children = new Set();
const tempDirs = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanupAll);
}

/**
 * Register a child process so it is SIGKILLed on timeout, error and process exit,
 * and reachable by the watchdog thread even when the main thread is blocked.
 * forkPeer/spawnPeer call this; call it yourself for children you create otherwise.
 * @param {import('node:child_process').ChildProcess} child
 */
export function registerChild(child) {
  installExitHook();
  children.add(child);
  trackPid(child.pid);
  if (peerCpus !== null && child.pid) {
    try {
      pinProcess(child.pid, peerCpus);
    } catch (err) {
      try { child.kill('SIGKILL'); } catch { /* ignore */ }
      throw err;
    }
  }
  child.once('exit', () => {
    children.delete(child);
    untrackPid(child.pid);
  });
  return child;
}

/** Register a temporary directory to remove at exit (and on cleanupAll). */
export function registerTempDir(dir) {
  installExitHook();
  tempDirs.add(dir);
  return dir;
}

const cleanups = new Set();

/**
 * Register a synchronous, never-throwing cleanup (for example unlinking a shared memory
 * object) that runs on timeout, error and process exit. Returns a function that runs it
 * now (if it has not run yet) and unregisters it — call that from close().
 * @param {() => void} fn
 * @returns {() => void}
 */
export function registerCleanup(fn) {
  installExitHook();
  const entry = () => {
    if (!cleanups.delete(entry)) return;
    try { fn(); } catch { /* best effort */ }
  };
  cleanups.add(entry);
  return entry;
}

/** Remove a registered temporary directory now. */
export function removeTempDir(dir) {
  tempDirs.delete(dir);
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
}

/**
 * SIGKILL every registered child, run every registered cleanup and remove every registered
 * temp dir (synchronous; the harness calls it after each failed transport and at exit).
 */
export function cleanupAll() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* ignore */ }
  }
  killTrackedPids();
  for (const entry of [...cleanups]) entry();
  for (const dir of tempDirs) removeTempDir(dir);
}

/**
 * `child_process.fork` a peer script from bench/transports/peers/, registered for cleanup.
 * The peer should exit on its own when the IPC channel disconnects (so it dies with us).
 */
export function forkPeer(file, args = [], options = {}) {
  const child = fork(peerPath(file), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options });
  return registerChild(child);
}

/**
 * Spawn `node peer-script args…` with stdin as a pipe, registered for cleanup.
 * The peer should exit when its stdin ends (that happens when we die).
 */
export function spawnPeer(file, args = [], options = {}) {
  const child = spawn(process.execPath, [...process.execArgv, peerPath(file), ...args], {
    stdio: ['pipe', 'inherit', 'inherit'],
    ...options,
  });
  return registerChild(child);
}

/** Resolve when the child has exited; SIGKILL it if it has not exited within `ms`. */
export function waitExit(child, ms = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try { child.kill('SIGKILL'); } catch { /* ignore */ }
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * A single-slot "pending operation" helper: transports keep at most one operation in flight.
 * `start(executor)` returns a promise; `fail(err)` rejects the current one (e.g. when the peer dies).
 */
export class Pending {
  constructor(label) {
    this.label = label;
    this.reject = null;
    this.dead = null;
  }

  /** @template T @param {(resolve: (v: T) => void, reject: (e: Error) => void) => void} executor @returns {Promise<T>} */
  start(executor) {
    if (this.dead) return Promise.reject(this.dead);
    if (this.reject) return Promise.reject(new Error(`${this.label}: operation already in progress`));
    return new Promise((resolve, reject) => {
      this.reject = reject;
      const done = (v) => { this.reject = null; resolve(v); };
      const fail = (e) => { this.reject = null; reject(e); };
      try {
        executor(done, fail);
      } catch (e) {
        fail(e);
      }
    });
  }

  /** Reject the operation in flight (if any) and every later one. */
  fail(err) {
    this.dead ??= err;
    const reject = this.reject;
    this.reject = null;
    reject?.(err);
  }
}

/** Human-readable size: 64 B, 4 KiB, 1 MiB. */
export function formatSize(bytes) {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

/**
 * The ping-pong of a message-based transport: send a ping, wait for the echo (delivered
 * to the handler given to `listen`), record its time, repeat. Resolves with the total ns.
 * @param {Pending} pending  the session's Pending (rejects when the peer fails)
 * @param {object} o
 * @param {number} o.iterations
 * @param {Float64Array} [o.samples]  per round trip ns, if wanted
 * @param {() => void} o.send  sends one ping
 * @param {(handler: ((...args: any[]) => void) | null) => void} o.listen  installs (or removes) the echo handler
 * @param {(...args: any[]) => string | null} o.check  what is wrong with an echo, or null
 * @returns {Promise<number>}
 */
export function eventRoundTrip(pending, { iterations, samples, send, listen, check }) {
  return pending.start((resolve, reject) => {
    let i = 0;
    let t0 = 0;
    let tPrev = 0;
    listen((...echo) => {
      const t = nowNs();
      const problem = check(...echo);
      if (problem) {
        listen(null);
        reject(new Error(problem));
        return;
      }
      if (samples) samples[i] = t - tPrev;
      if (++i === iterations) {
        listen(null);
        resolve(t - t0);
        return;
      }
      tPrev = t;
      send();
    });
    t0 = tPrev = nowNs();
    send();
  });
}
