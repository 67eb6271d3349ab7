import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SharedMemory, Region, Int32Ptr } from '../dist/index.js';
import { withShm } from './helpers.js';

test('a region written through a pointer reads back', async () => {
  await withShm(64, (shm) => {
    const r = Region.map(shm, 0, 64);
    const p = new Int32Ptr(r, 8);
    p.write(-42);
    assert.is(p.read(), -42);
    assert.is(r.read(8, 12).readInt32LE(0), -42);
    r.unmap();
  });
});

test.run();
