// Shrinking and growing an object that others map: never a SIGBUS through the safe API.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import { dupSync } from './fixtures/dup.js';
import { Channel, SharedMemory, SizeInUseError } from '../dist/index.js';
import { within, withShm } from './helpers.js';

test('a shrink below a mapping held by another thread of this process is refused (SizeInUseError)', async () => {
  await withShm(8192, async (shm) => {
    const worker = new Worker(new URL('./fixtures/worker-maps.js', import.meta.url), { workerData: { fd: dupSync(shm) } });
    const next = () => new Promise((resolve) => worker.once('message', resolve));
    try {
      assert.is(await within(10_000, next(), 'the worker mapping'), 'mapped');
      assert.throws(() => (shm.size = 4096), (err) => err instanceof SizeInUseError && /in some thread\) up to byte 8192/.test(err.message));
      assert.is(shm.size, 8192, 'nothing changed');
      worker.postMessage('go');
      assert.is(await within(10_000, next(), 'the worker unmapping'), 'unmapped');
      shm.size = 4096; // allowed now
      assert.is(shm.size, 4096);
    } finally {
      await worker.terminate();
    }
  }, 'shr');
});

test('autosize only grows: a channel placed low in an object another handle grew keeps the larger size', async () => {
  await withShm(0, async (shm) => {
    const other = SharedMemory.fromFd(dupSync(shm));
    other.size = 1 << 20;
    const ch = new Channel.SingleBuffered.Variable(shm, { capacity: 16 }); // needs 320 bytes
    assert.is(shm.size, 1 << 20);
    ch.release();
    other.close();
  }, 'shr');
});

test('growing with setSize reserves the memory and never shrinks what another handle grew meanwhile', async () => {
  await withShm(4096, async (shm) => {
    shm.setSize(65536);
    assert.ok(shm.stat().blocks * 512 >= 65536, 'reserved');
  }, 'shr');
});

test.run();
