// Async waits through io_uring (src/sync/uring-waits.ts) under a worker's end and under
// a long ping-pong with another process.
// - A worker that used async waits and is ended by worker.terminate() must leave no ring,
//   pipe or mapping behind: a terminated worker runs no 'exit' listener, and worker pools
//   terminate workers routinely. So workers wait through a waiter thread.
// - Two processes alternating on two words, each sleeping through asyncWaiter, must never
//   lose a wake-up (a lost one hangs the run), with cancels of timed waits racing wakes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Region } from '../dist/index.js';
import { asyncWaiter } from '../dist/sync/async-waiter.js';
import { futexWake } from '../dist/sync/futex.js';
import { view } from '../dist/sys/libc.js';
import { runFixture, withShm, within } from './helpers.js';

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
import { parentPort } from 'node:worker_threads';
const { asyncWaiter } = await import(${JSON.stringify(new URL('../dist/sync/async-waiter.js', import.meta.url).href)});
const { addressOf } = await import(${JSON.stringify(new URL('../dist/sys/libc.js', import.meta.url).href)});
const word = Buffer.alloc(4);
asyncWaiter.wait(addressOf(word), 0, Infinity); // pending until the worker ends
parentPort.postMessage(asyncWaiter.kind().kind);
`;

test('workers wait through a waiter thread, and ended by terminate() while an async wait is pending leave no ring, pipe or mapping behind', async () => {
  if (process.platform !== 'linux') return; // /proc
  const before = resources();
  for (let i = 0; i < 10; i++) {
    const worker = new Worker(workerSource, { eval: true });
    assert.is(await within(10_000, new Promise((r) => worker.once('message', r)), 'the worker'), 'thread');
    await worker.terminate();
  }
  await new Promise((r) => setTimeout(r, 50));
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
