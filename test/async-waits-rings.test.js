// The io_uring of each JavaScript thread (src/sys/uring.ts, src/sync/uring-waits.ts) under
// the ways a thread ends, many threads, a flood of completions and fork().
// - However a worker ends (terminate(), process.exit(), an uncaught exception), its ring
//   is dropped by the kernel: no futex wait of it is left, and the pipe's write end (the
//   ring's fixed file) is closed: the pipe, reopened here, reads end-of-file.
// - 70,000 waits woken at once while the thread is busy overflow both the completion ring
//   (128 entries) and the pipe (64 KiB): every wait still ends.
// - Many workers with rings of their own, all woken by one FUTEX_WAKE; then new workers.
// - fork() while the ring has pending waits: the ring's pages are pinned, so the kernel
//   copies them for the child and the parent's ring keeps working.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, constants, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { asyncWaiter } from '../dist/sync/async-waiter.js';
import { futexWake } from '../dist/sync/futex.js';
import { addressOf, SYS_FUTEX, syscall6 } from '../dist/sys/libc.js';
import { within } from './helpers.js';

const uring = process.platform === 'linux' && asyncWaiter.kind().kind === 'io_uring';
const dist = (f) => JSON.stringify(new URL(`../dist/${f}`, import.meta.url).href);
const wakeAll = (address) => syscall6(SYS_FUTEX, address, 1, 0x7fffffff, 0, 0, 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** fd number → link target, for the pipes of this process. */
function pipeFds() {
  const m = new Map();
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      const l = readlinkSync(`/proc/self/fd/${f}`);
      if (l.startsWith('pipe:')) m.set(f, l);
    } catch {
      // closed meanwhile
    }
  }
  return m;
}

/** Whether a pipe reopened here (read end, non-blocking) still has a writer. */
function hasWriter(fd) {
  try {
    return readSync(fd, Buffer.alloc(64)) !== 0;
  } catch (err) {
    if (err.code === 'EAGAIN') return true;
    throw err;
  }
}

const endingWorker = `
import { parentPort, workerData } from 'node:worker_threads';
const { asyncWaiter } = await import(${dist('sync/async-waiter.js')});
const { address, how } = workerData;
for (let i = 0; i < 5; i++) asyncWaiter.wait(address + 4 * i, 0, Infinity);
parentPort.postMessage(asyncWaiter.kind().kind);
parentPort.once('message', () => {
  if (how === 'exit') process.exit(0);
  throw new Error('ended by an exception');
});
`;

for (const how of ['terminate', 'exit', 'throw']) {
  test(`a worker ended by ${how} with waits pending leaves no wait and closes its pipe's write end`, async () => {
    if (!uring) return;
    const words = Buffer.from(new SharedArrayBuffer(32));
    const address = addressOf(words);
    const before = pipeFds();
    const worker = new Worker(endingWorker, { eval: true, workerData: { address, how } });
    worker.on('error', () => {});
    const exited = new Promise((r) => worker.once('exit', r));
    assert.is(await within(10_000, new Promise((r) => worker.once('message', r)), 'the worker starting'), 'io_uring');
    // Every pipe the worker made, reopened here: while the worker lives, its ring holds
    // the write end of one of them.
    const mine = [...pipeFds()].filter(([f, l]) => !before.has(f) && ![...before.values()].includes(l));
    const reopened = mine.map(([f]) => openSync(`/proc/self/fd/${f}`, constants.O_RDONLY | constants.O_NONBLOCK));
    try {
      assert.ok(reopened.some(hasWriter), 'a pipe with a writer while the worker lives');
      if (how === 'terminate') await worker.terminate();
      else worker.postMessage('end');
      await within(10_000, exited, 'the worker ending');
      // The kernel drops the ring in the background.
      let left = true;
      for (let i = 0; i < 50 && left; i++) {
        await sleep(20);
        left = reopened.some(hasWriter);
      }
      assert.not.ok(left, "the ring's fixed file (the pipe's write end) is closed");
      assert.equal([0, 1, 2, 3, 4].map((i) => wakeAll(address + 4 * i)), [0, 0, 0, 0, 0], 'no wait left in the kernel');
    } finally {
      reopened.forEach((fd) => closeSync(fd));
    }
  });
}

test('70,000 waits woken at once while the thread is busy (completion ring and pipe overflow) all end', async () => {
  if (!uring) return;
  const n = 70_000;
  const words = Buffer.from(new SharedArrayBuffer(4));
  const address = addressOf(words);
  let ended = 0;
  const all = [];
  for (let i = 0; i < n; i++) all.push(asyncWaiter.wait(address, 0, Infinity).then(() => ended++));
  await sleep(50);
  Atomics.store(new Int32Array(words.buffer), 0, 1);
  assert.is(wakeAll(address), n);
  const end = Date.now() + 200;
  while (Date.now() < end); // the event loop reads nothing meanwhile
  await within(20_000, Promise.all(all), `all waits ending (${ended} of ${n} so far)`);
  assert.is(asyncWaiter.pending, 0);
});

test('30 workers with rings of their own, 20 waits each on one word, all woken by one FUTEX_WAKE; twice', async () => {
  if (!uring) return;
  const source = `
  const { parentPort, workerData: { address } } = await import('node:worker_threads');
  const { asyncWaiter } = await import(${dist('sync/async-waiter.js')});
  const all = [];
  for (let i = 0; i < 20; i++) all.push(asyncWaiter.wait(address, 0, Infinity));
  parentPort.postMessage(asyncWaiter.kind().kind);
  await Promise.all(all);
  parentPort.postMessage('woken');
  `;
  for (let round = 0; round < 2; round++) {
    const words = Buffer.from(new SharedArrayBuffer(4));
    const address = addressOf(words);
    const workers = Array.from({ length: 30 }, () => new Worker(source, { eval: true, workerData: { address } }));
    try {
      const kinds = await within(30_000, Promise.all(workers.map((w) => new Promise((r) => w.once('message', r)))), 'the workers starting');
      assert.equal(new Set(kinds), new Set(['io_uring']));
      await sleep(50);
      const woken = Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
      Atomics.store(new Int32Array(words.buffer), 0, 1);
      assert.is(wakeAll(address), 600);
      await within(20_000, woken, 'every worker woken');
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
});

test("fork() while the ring has a wait pending: the parent's ring keeps working", async () => {
  if (!uring) return;
  const libc = koffi.load('libc.so.6');
  const fork = libc.func('int fork(void)');
  const exit = libc.func('void _exit(int)');
  const waitpid = libc.func('int waitpid(int, _Out_ int *, int)');
  const words = Buffer.from(new SharedArrayBuffer(8));
  const address = addressOf(words);
  const w = new Int32Array(words.buffer);
  const pending = asyncWaiter.wait(address + 4, 0, Infinity);
  for (let i = 0; i < 50; i++) {
    const woken = asyncWaiter.wait(address, w[0], Infinity);
    const pid = fork();
    if (pid === 0) exit(0);
    waitpid(pid, [0], 0);
    Atomics.add(w, 0, 1);
    futexWake(address);
    await within(5000, woken, `the wait after fork ${i}`);
  }
  Atomics.store(w, 1, 1);
  futexWake(address + 4);
  await within(5000, pending, 'the wait pending across the forks');
  assert.is(asyncWaiter.kind().kind, 'io_uring');
});

test.run();
