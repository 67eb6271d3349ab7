// release() of a handle with calls pending: the calls end, and the counts they had raised
// in shared memory are given back (other processes' handles must not see phantom waiters).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, RegionUnmappedError } from '../dist/index.js';
import { runFixture, withShm, within } from './helpers.js';

for (const kind of ['Unbuffered', 'SingleBuffered']) {
  test(`${kind}: release() ends a pending recv and gives back its waiter and receive counts`, async () => {
    await withShm(0, async (shm) => {
      const a = new Channel[kind].Variable(shm, { capacity: 16 });
      const b = Channel.attach(shm);
      const pending = a.recv().then(() => 'resolved', (err) => err);
      // wait until the receive sleeps (it is then counted as a waiter)
      const deadline = Date.now() + 5000;
      while (b.stats().waiting.receivers === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.is(b.stats().waiting.receivers, 1, 'the pending receive is counted');
      a.release();
      const outcome = await within(2000, pending, 'the released receive');
      assert.instance(outcome, RegionUnmappedError);
      assert.equal(b.stats().waiting, { senders: 0, receivers: 0 }, 'nothing left counted');
      // with no receive in progress, an Unbuffered trySend offers nothing
      if (kind === 'Unbuffered') assert.is(b.trySend('x'), false);
      b.release();
    }, 'rel');
  });
}

test('a process that exits with a receive pending gives back its counts', async () => {
  await withShm(0, async (shm) => {
    const ch = new Channel.Unbuffered.Variable(shm, { capacity: 16 });
    const res = await runFixture('exit-pending', [], { shm });
    assert.is(res.code, 0, res.stderr);
    assert.equal(ch.stats().waiting, { senders: 0, receivers: 0 });
    assert.is(ch.trySend('x'), false, 'no receive in progress any more');
    ch.release();
  }, 'rel');
});

test('a process that exits while its waiter thread is still starting exits cleanly (no abort)', async () => {
  // (Async waits go through the waiter thread only where io_uring cannot wait: forced here.)
  // The waiter thread takes some 40 ms to load here. A process exiting in the ~2 ms while
  // it loaded koffi aborted ("FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw"):
  // a 1 ms sweep over that time caught it in about two sweeps in three before the fix.
  const delays = Array.from({ length: 31 }, (_, i) => 30 + i);
  for (const ms of delays) {
    const res = await runFixture('exit-while-starting', [String(ms)], { timeoutMs: 10_000, env: { CONCURRENT_SHM_ASYNC_WAITS: 'thread' } });
    assert.equal([res.code, res.signal, res.stderr], [0, null, ''], `exit after ${ms} ms`);
  }
});

test.run();
