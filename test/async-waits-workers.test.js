// Async waits through io_uring (src/sync/uring-waits.ts) under a worker's end and under
// a long ping-pong with another process.
// - A worker that used async waits and is ended by worker.terminate() must leave no ring,
//   wait, pipe or descriptor behind: a terminated worker runs no 'exit' listener, and
//   worker pools terminate workers routinely.
// - Two processes alternating on two words, each sleeping through asyncWaiter, must never
//   lose a wake-up (a lost one hangs the run), with cancels of timed waits racing wakes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Region } from '../dist/index.js';
import { asyncWaiter } from '../dist/sync/async-waiter.js';
import { futexWake } from '../dist/sync/futex.js';
import { addressOf, SYS_FUTEX, syscall6, view } from '../dist/sys/libc.js';
import { runFixture, withShm, within } from './helpers.js';

const uring = asyncWaiter.kind().kind === 'io_uring';

/** io_uring descriptors, pipe descriptors and io_uring mappings of this process. */
function resources() {
  const links = readdirSync('/proc/self/fd').map((f) => {
    try {
      return readlinkSync(`/proc/self/fd/${f}`);
    } catch {
      return '';
    }
  });
  return {
    rings: links.filter((l) => l.includes('io_uring')).length,
    pipes: links.filter((l) => l.startsWith('pipe:')).length,
    mappings: readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('io_uring')).length,
  };
}

const workerSource = `
import { parentPort, workerData } from 'node:worker_threads';
const { asyncWaiter } = await import(${JSON.stringify(new URL('../dist/sync/async-waiter.js', import.meta.url).href)});
const { address } = workerData;
parentPort.postMessage(asyncWaiter.kind().kind);
await asyncWaiter.wait(address, 0, Infinity); // woken by the main thread
parentPort.postMessage('woken');
asyncWaiter.wait(address + 4, 0, Infinity); // pending until the worker is ended
parentPort.postMessage('waiting');
`;

/** Wakes every sleeper on the word at `address`; returns how many there were. */
const wakeAll = (address) => syscall6(SYS_FUTEX, address, 1, 0x7fffffff, 0, 0, 0);

test('workers wait through io_uring as well; ended by terminate() with a wait pending, they leave no wait, descriptor or pipe behind', async () => {
  if (process.platform !== 'linux') return; // /proc
  const words = Buffer.from(new SharedArrayBuffer(8));
  const address = addressOf(words);
  const w = new Int32Array(words.buffer, 0, 2);
  const before = resources();
  for (let i = 0; i < 10; i++) {
    const worker = new Worker(workerSource, { eval: true, workerData: { address } });
    const messages = [];
    const next = () => new Promise((r) => worker.once('message', r));
    messages.push(await within(10_000, next(), 'the worker starting'));
    const woken = next();
    await new Promise((r) => setTimeout(r, 20));
    Atomics.store(w, 0, 1);
    futexWake(address);
    messages.push(await within(5000, woken, 'the worker woken'));
    messages.push(await within(5000, next(), 'the worker waiting again'));
    assert.equal(messages, [uring ? 'io_uring' : 'thread', 'woken', 'waiting']);
    Atomics.store(w, 0, 0);
    await worker.terminate();
  }
  // The kernel drops a terminated worker's ring in the background, and its wait with it.
  await new Promise((r) => setTimeout(r, 300));
  assert.is(wakeAll(address + 4), uring ? 0 : wakeAll(address + 4), 'no wait of an ended worker is left in the kernel');
  assert.equal(resources(), before);
});

test('a ping-pong of 5,000 rounds with another process, both sleeping through async waits, loses no wake-up', async () => {
  const rounds = 5000;
  await withShm(4096, async (shm) => {
    const region = Region.map(shm, 0, 4096);
    try {
      const w = new Int32Array(view(region.address, 8));
      const child = runFixture('uring-pingpong', [String(rounds)], { shm, timeoutMs: 60_000 });
      const run = async () => {
        for (let i = 1; i <= rounds; i++) {
          Atomics.store(w, 0, i);
          futexWake(region.address);
          for (let v; (v = Atomics.load(w, 1)) < i; ) await asyncWaiter.wait(region.address + 4, v, i % 3 === 0 ? 0.01 : Infinity);
        }
      };
      await within(60_000, run(), 'the ping-pong');
      const res = await child;
      assert.is(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout), { kind: asyncWaiter.kind().kind, pending: 0 });
      assert.is(asyncWaiter.pending, 0);
    } finally {
      region.unmap();
    }
  }, 'pp');
});

test.run();
