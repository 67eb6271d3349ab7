/**
 * The async waiter's thread: sleeps in the kernel on every word the main thread is
 * waiting on, at once, and reports which ones may have changed. One such thread serves
 * all pending async operations of a process, so they never hold a libuv thread-pool
 * thread (facts.md: a koffi `.async()` futex wait per operation starves the pool).
 *
 * It never reads shared memory itself: the memory may be unmapped by the main thread at
 * any time, and the kernel's futex calls fail safely (EFAULT) where a JS read would crash.
 * @internal
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { FUTEX } from '../sys/constants.js';
import * as sys from '../sys/libc.js';
import { futexWait, futexWake } from './futex.js';

/** A request from the main thread. */
export type WaiterRequest =
  | { op: 'add'; id: number; address: number; expected: number; timeoutMs: number }
  | { op: 'remove'; id: number };

interface Entry {
  address: number;
  expected: number;
  deadline: number;
}

const { port, controlAddress } = workerData as { port: MessagePort; controlAddress: number };
// control[0]: generation, bumped by the main thread with each request (the futex word).
// control[1]: set to 1 when the process exits: the thread must end so Node can join it.
// control[2]: set to 1 by this thread once its modules are loaded (see async-waiter.ts).
const control = new Int32Array(sys.view(controlAddress, 12));
// Even with nothing pending, wake up now and then: a blocking system call cannot be
// interrupted by Worker termination, so a bounded wait guarantees the thread can end.
const IDLE_MS = 1000;
const entries = new Map<number, Entry>();
const ENOSYS = sys.errnoValues.ENOSYS ?? 38;
const ETIMEDOUT = sys.errnoValues.ETIMEDOUT ?? 110;
const EINTR = sys.errnoValues.EINTR ?? 4;

// struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 __reserved; } × FUTEX_WAITV_MAX
const waitv = Buffer.alloc(24 * FUTEX.WAITV_MAX);
const waitvAddress = sys.addressOf(waitv);
// struct timespec (absolute, CLOCK_MONOTONIC) for futex_waitv
const timespec = Buffer.alloc(16);
const timespecAddress = sys.addressOf(timespec);
let haveWaitv = sys.platform === 'linux';

function drain(): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const req = m.message as WaiterRequest;
    if (req.op === 'add') {
      entries.set(req.id, { address: req.address, expected: req.expected, deadline: performance.now() + req.timeoutMs });
    } else {
      entries.delete(req.id);
    }
  }
}

function report(ids: number[]): void {
  for (const id of ids) entries.delete(id);
  if (ids.length > 0) parentPort!.postMessage(ids);
}

function setSlot(i: number, address: number, expected: number): void {
  const o = i * 24;
  waitv.writeBigUInt64LE(BigInt(expected >>> 0), o);
  waitv.writeBigUInt64LE(BigInt(address), o + 8);
  waitv.writeUInt32LE(FUTEX.SIZE_U32, o + 16);
  waitv.writeUInt32LE(0, o + 20);
}

/**
 * One round with futex_waitv over the control word and up to 127 distinct words. Waits on
 * the same word with the same expected value (many receives pending on one channel) share
 * a slot. Returns the ids to report, 'unsupported', or null (nothing to report).
 */
function waitAll(generation: number, groups: number[][], keys: [number, number][], timeoutMs: number): number[] | 'unsupported' | null {
  setSlot(0, controlAddress, generation);
  for (let i = 0; i < keys.length; i++) setSlot(i + 1, keys[i]![0], keys[i]![1]);
  let ts = 0;
  if (Number.isFinite(timeoutMs)) {
    // futex_waitv takes an absolute CLOCK_MONOTONIC time; process.hrtime is that clock on Linux.
    const at = process.hrtime.bigint() + BigInt(Math.ceil(timeoutMs * 1e6));
    timespec.writeBigInt64LE(at / 1_000_000_000n, 0);
    timespec.writeBigInt64LE(at % 1_000_000_000n, 8);
    ts = timespecAddress;
  }
  const r = sys.syscall6!(FUTEX.SYS_FUTEX_WAITV, waitvAddress, keys.length + 1, 0, ts, FUTEX.CLOCK_MONOTONIC, 0);
  if (r > 0) return groups[r - 1]!; // that word was woken
  if (r === 0) return null; // the control word: requests changed
  const e = sys.errno();
  if (e === ENOSYS) return 'unsupported';
  // A timeout or a signal: the next round reports what expired. EAGAIN (some value
  // already differed, the kernel does not say which) or EFAULT (a word is no longer
  // mapped): let the main thread re-check them all, unless only the requests changed.
  if (e === ETIMEDOUT || e === EINTR || Atomics.load(control, 0) !== generation) return null;
  return groups.flat();
}

Atomics.store(control, 2, 1);
futexWake(controlAddress + 8);

while (Atomics.load(control, 1) === 0) {
  const generation = Atomics.load(control, 0);
  drain();
  const now = performance.now();
  const list = [...entries];
  const expired = list.filter(([, e]) => e.deadline <= now).map(([id]) => id);
  if (expired.length > 0) {
    report(expired);
    continue;
  }
  const nearest = list.reduce((min, [, e]) => Math.min(min, e.deadline), Infinity) - now;
  if (list.length === 0) {
    futexWait(controlAddress, generation, IDLE_MS);
    continue;
  }
  if (haveWaitv) {
    const byWord = new Map<string, number>();
    const groups: number[][] = [];
    const keys: [number, number][] = [];
    for (const [id, e] of list) {
      const key = `${e.address}:${e.expected}`;
      let g = byWord.get(key);
      if (g === undefined) {
        byWord.set(key, (g = groups.length));
        groups.push([]);
        keys.push([e.address, e.expected]);
      }
      groups[g]!.push(id);
    }
    if (keys.length < FUTEX.WAITV_MAX) {
      const r = waitAll(generation, groups, keys, Math.min(nearest, IDLE_MS));
      if (r === 'unsupported') haveWaitv = false;
      else if (r !== null) report(r);
      continue;
    }
  }
  // Fallback (macOS, kernels before 5.16, or more than 127 waits): wait on each word in
  // turn for a short while. Pending requests are checked between turns.
  const slice = Math.min(nearest, list.length === 1 ? 50 : 1);
  for (const [id, e] of list) {
    if (Atomics.load(control, 0) !== generation) break;
    if (futexWait(e.address, e.expected, slice)) {
      report([id]);
      break;
    }
  }
}
