// The process-shared Mutex: construction rules (size, alignment, what is at the offset),
// lock / tryLock / unlock / synchronize, per-thread misuse (DeadlockError, NotOwnerError),
// mutual exclusion across processes, lockAsync (event loop free, timeout, signal), timeouts
// that end within a few ms of the deadline, and a holder killed with SIGKILL
// (OwnerDeadError, deadPid, deaths, then normal service). The protocol step by step,
// liveness regressions and the kill storm are in mutex-steps.test.js.
// Children are test/fixtures/mutex-peer.js.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Channel,
  Mutex,
  Region,
  AbortError,
  DeadlockError,
  InvalidArgumentError,
  LayoutError,
  MisalignedError,
  NotOwnerError,
  OutOfRangeError,
  OverlapError,
  OwnerDeadError,
  ShmError,
  TimeoutError,
} from '../dist/index.js';
import { MW } from '../dist/channel/layout.js';
import { delay, harness, rejects, throws, track, until, within } from './fixtures/channel-harness.js';

const h = harness(test, 'mtx');
const SOON = 1500;

function mutexAt(shm, offset = 0, length = 64) {
  const region = Region.map(shm, offset, length);
  h.defer(() => region.unmap());
  return new Mutex(region);
}

// ---- construction ------------------------------------------------------------------------

test('new Mutex(Region.map(shm, off, 64)): the first one initialises it, the others attach', () => {
  const shm = h.object(4096);
  assert.is(Mutex.SIZE, 64);
  assert.is(Mutex.ALIGNMENT, 16);
  const a = mutexAt(shm, 0);
  const b = mutexAt(shm, 0);
  const c = mutexAt(shm, 128, 100); // longer than needed is fine
  assert.is(a.isLocked, false);
  assert.is(a.holder, 0);
  assert.is(a.deaths, 0);
  a.lock();
  assert.ok(b.isLocked, 'the same mutex through another handle');
  assert.is(b.holder, process.pid);
  assert.not.ok(c.isLocked, 'another mutex');
  a.unlock();
});

test('a region too small or misaligned is refused with a RangeError (OutOfRangeError / MisalignedError)', () => {
  const shm = h.object(4096);
  const e1 = throws(() => mutexAt(shm, 0, 63), OutOfRangeError, /at least 64 bytes/);
  assert.ok(e1 instanceof RangeError);
  for (const offset of [8, 4, 1, 100]) {
    const e2 = throws(() => mutexAt(shm, offset), MisalignedError, /16-byte aligned/, `offset ${offset}`);
    assert.ok(e2 instanceof RangeError);
  }
  throws(() => new Mutex({}), InvalidArgumentError, /Region/);
  throws(() => new Mutex(), InvalidArgumentError);
  const raw = Region.map(shm, 0, 4096);
  assert.ok(raw.read().every((b) => b === 0), 'nothing was written');
  raw.unmap();
});

test('garbage or a channel at the offset: LayoutError, and the bytes are left alone', () => {
  const shm = h.object(8192);
  const raw = Region.map(shm, 0, 4096);
  h.defer(() => raw.unmap());
  const garbage = Buffer.alloc(64, 0x5a);
  garbage.writeUInt32LE(0, 28); // initState "none": not an initialisation in progress
  raw.write(garbage, 0);
  throws(() => mutexAt(shm, 0), LayoutError);
  assert.ok(raw.read(0, 64).equals(garbage));
  const ch = new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: 4096 });
  ch.release();
  throws(() => mutexAt(shm, 4096), LayoutError, /Mutex|already/);
});

test('a Mutex refused for what is at the offset leaves nothing registered: a channel can then be placed there', () => {
  const shm = h.object(4096);
  const raw = Region.map(shm, 0, 64);
  h.defer(() => raw.unmap());
  raw.write(Buffer.alloc(64, 0x77), 0);
  throws(() => mutexAt(shm, 0), LayoutError);
  raw.write(Buffer.alloc(64), 0); // cleared by whoever owns the object
  let error;
  try {
    h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8 }));
  } catch (err) {
    error = err;
  }
  assert.is(error, undefined, `the failed Mutex still blocks the range: ${error?.name}: ${error?.message}`);
});

test('a mutex overlapping a channel of this process: OverlapError', () => {
  const shm = h.object(4096);
  h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8 }));
  throws(() => mutexAt(shm, 64), OverlapError, /overlap/);
});

// ---- one thread ----------------------------------------------------------------------------

test('lock / tryLock / unlock; relocking in the same thread: DeadlockError; unlock when not held: NotOwnerError', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const other = mutexAt(shm); // a second handle on the same mutex
  throws(() => m.unlock(), NotOwnerError, /does not hold/, 'unlock of a free mutex');
  assert.ok(m.tryLock());
  assert.is(m.holder, process.pid);
  assert.is(m.tryLock(), false, 'tryLock when this thread holds it');
  const d = throws(() => m.lock({ timeout: 1000 }), DeadlockError, /already holds/);
  assert.is(d.code, 'ERR_SHM_DEADLOCK');
  assert.ok(d instanceof ShmError);
  throws(() => other.lock({ timeout: 1000 }), DeadlockError, undefined, 'through another handle');
  throws(() => m.lock({ timeout: 10 }), DeadlockError);
  // lockAsync while this thread holds it: refused (DeadlockError), or it waits for the
  // unlock like any other locker (another async task of this thread may hold it)
  const again = track(m.lockAsync({ timeout: 5000 }));
  await delay(20);
  m.unlock();
  await within(6000, again.promise, 'lockAsync by the holding thread');
  if (again.error === undefined) {
    assert.is(m.holder, process.pid, 'it got the mutex after the unlock');
    m.unlock();
  } else {
    assert.ok(again.error instanceof DeadlockError, `got ${again.error?.name}`);
  }
  const e = throws(() => m.unlock(), NotOwnerError);
  assert.is(e.code, 'ERR_SHM_NOT_OWNER');
  m.lock({ timeout: 1000 });
  m.unlock();
  await within(2000, m.lockAsync({ timeout: 1000 }));
  assert.ok(m.isLocked);
  m.unlock();
  assert.not.ok(m.isLocked);
  throws(() => m.lock({ timeout: -5 }), InvalidArgumentError, /timeout/);
});

test('synchronize returns what fn returns, unlocks when fn throws, and refuses nesting', () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  assert.is(m.synchronize(() => 42), 42);
  assert.not.ok(m.isLocked);
  const boom = new Error('boom');
  let caught;
  try {
    m.synchronize(() => {
      assert.ok(m.isLocked, 'held inside fn');
      throw boom;
    });
  } catch (err) {
    caught = err;
  }
  assert.is(caught, boom, 'the same error comes out');
  assert.not.ok(m.isLocked, 'unlocked after the throw');
  throws(() => m.synchronize(() => m.synchronize(() => 1)), DeadlockError);
  assert.not.ok(m.isLocked, 'the outer synchronize unlocked');
  throws(() => m.synchronize('nope'), InvalidArgumentError);
  assert.is(m.synchronize(() => 'again'), 'again');
});

// ---- other processes ---------------------------------------------------------------------

test('held by another process: tryLock is false, lock/lockAsync time out, unlock is NotOwnerError; after its unlock, lockAsync gets it', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const p = h.start('mutex-peer', 'hold', {}, { shm });
  const { pid } = await p.message('locked');
  assert.is(m.holder, pid);
  assert.is(m.tryLock(), false);
  throws(() => m.unlock(), NotOwnerError, undefined, 'unlock by a non-holder');
  assert.is(m.holder, pid, 'still held by the child');
  let t0 = performance.now();
  throws(() => m.lock({ timeout: 100 }), TimeoutError, /100 ms/);
  assert.ok(performance.now() - t0 >= 90);
  t0 = performance.now();
  await rejects(m.lockAsync({ timeout: 100 }), TimeoutError);
  assert.ok(performance.now() - t0 >= 90);
  const ac = new AbortController();
  const aborted = track(m.lockAsync({ signal: ac.signal }));
  await delay(50);
  ac.abort(new Error('changed my mind'));
  await within(2000, aborted.promise);
  assert.ok(aborted.error instanceof AbortError, `got ${aborted.error?.name}`);
  assert.is(aborted.error.code, 'ABORT_ERR');
  await rejects(m.lockAsync({ signal: AbortSignal.abort() }), AbortError);
  assert.is(m.holder, pid, 'the aborted and timed-out attempts took nothing');
  // now wait for real
  const got = track(m.lockAsync({ timeout: 10_000 }));
  await delay(50);
  assert.not.ok(got.settled);
  p.send('unlock');
  await within(5000, got.promise, 'lockAsync after the unlock');
  assert.is(got.error, undefined);
  assert.is(m.holder, process.pid);
  m.unlock();
  await p.result();
});

test('lockAsync does not block the event loop while it waits', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const p = h.start('mutex-peer', 'hold', {}, { shm });
  await p.message('locked');
  let ticks = 0;
  let maxGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 5);
  h.defer(() => clearInterval(timer));
  const got = track(m.lockAsync({ timeout: 10_000 }));
  await delay(600); // the measurement window
  clearInterval(timer);
  assert.not.ok(got.settled);
  assert.ok(maxGap < 150, `the event loop stalled for ${maxGap.toFixed(0)} ms`);
  assert.ok(ticks >= 30, `only ${ticks} ticks in 600 ms`);
  p.send('unlock');
  await within(5000, got.promise);
  m.unlock();
  await p.result();
});

test('mutual exclusion: 3 processes × 20,000 increments of a plain (non-atomic) counter under the mutex add up exactly', async () => {
  const shm = h.object(8192);
  const counterAt = 4096;
  const N = 20_000;
  const kids = [0, 1, 2].map((i) => h.start('mutex-peer', 'count', { n: N, counterAt, async: i === 2 }, { shm, timeoutMs: 90_000 }));
  for (const k of kids) await k.message('ready');
  for (const k of kids) k.send('go');
  const outs = await within(80_000, Promise.all(kids.map((k) => k.result(80_000))), 'the counters');
  assert.equal(outs.map((o) => o.done), [N, N, N]);
  const region = Region.map(shm, counterAt, 4);
  const total = region.read().readInt32LE(0);
  region.unmap();
  assert.is(total, 3 * N, `${3 * N - total} increments lost`);
  const m = mutexAt(shm);
  assert.not.ok(m.isLocked);
  assert.is(m.deaths, 0);
});

// ---- a holder that dies --------------------------------------------------------------------

async function heldByTheDead(shm) {
  const p = h.start('mutex-peer', 'die-holding', {}, { shm });
  const { pid } = await p.message('locked');
  p.kill('SIGKILL');
  await within(10_000, p.exited);
  return pid;
}

test('a holder killed with SIGKILL: the next lock() throws OwnerDeadError (ERR_SHM_OWNER_DEAD, deadPid) and the caller holds it; then all is normal', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const dead = await heldByTheDead(shm);
  assert.is(m.holder, dead);
  const t0 = performance.now();
  const e = throws(() => m.lock({ timeout: 5000 }), OwnerDeadError, new RegExp(`${dead}`));
  assert.ok(performance.now() - t0 < SOON);
  assert.is(e.code, 'ERR_SHM_OWNER_DEAD');
  assert.is(e.deadPid, dead);
  assert.ok(e instanceof ShmError);
  assert.is(m.holder, process.pid, 'the caller now holds it');
  assert.is(m.deaths, 1);
  throws(() => m.lock({ timeout: 1000 }), DeadlockError, undefined, 'and holds it for real');
  m.unlock();
  assert.not.ok(m.isLocked);
  m.lock({ timeout: 1000 });
  m.unlock();
  assert.is(m.synchronize(() => 'fine'), 'fine');
  assert.is(m.deaths, 1, 'one death counted');
});

test('tryLock in a loop: a live holder is looked at once per 100 ms of tries, not on every try; once it dies a try takes over within the bound', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const p = h.start('mutex-peer', 'die-holding', {}, { shm });
  const { pid } = await p.message('locked');
  const looked = performance.now();
  assert.is(m.tryLock(), false, 'the first try looks: alive');
  // Each look reads /proc (about 12 µs here); the tries after it, within the bound, do
  // not. The fastest of a few batches, so that a time slice lost meanwhile does not count.
  let perTry = Infinity;
  for (let batch = 0; batch < 5; batch++) {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) assert.is(m.tryLock(), false);
    perTry = Math.min(perTry, ((performance.now() - t0) * 1000) / 200);
  }
  p.kill('SIGKILL');
  await within(10_000, p.exited);
  const sinceLook = performance.now() - looked;
  if (sinceLook < 80) assert.is(m.tryLock(), false, `${sinceLook.toFixed(0)} ms after the last look at a live holder, a try does not look again`);
  let taken;
  await within(5000, (async () => {
    for (;;) {
      try {
        if (m.tryLock()) throw new Error('tryLock returned true over a dead holder without OwnerDeadError');
      } catch (err) {
        taken = performance.now();
        assert.instance(err, OwnerDeadError);
        assert.is(err.deadPid, pid);
        return;
      }
      await delay(5);
    }
  })(), 'a try taking over from the dead holder');
  assert.ok(taken - looked >= 95, `taken over ${(taken - looked).toFixed(0)} ms after a look found the holder alive: not before the bound`);
  assert.ok(taken - looked < 100 + SOON, `taken over ${(taken - looked).toFixed(0)} ms after the last look`);
  assert.is(m.holder, process.pid);
  m.unlock();
  assert.ok(perTry < 4, `tries within the bound cost ${perTry.toFixed(2)} µs each: they must not read /proc`);
});

test('a holder killed: tryLock throws OwnerDeadError and holds it; lockAsync rejects with OwnerDeadError and holds it', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const d1 = await heldByTheDead(shm);
  const e1 = throws(() => m.tryLock(), OwnerDeadError);
  assert.is(e1.deadPid, d1);
  assert.is(m.holder, process.pid);
  m.unlock();
  const d2 = await heldByTheDead(shm);
  const t0 = performance.now();
  const e2 = await rejects(within(5000, m.lockAsync({ timeout: 5000 })), OwnerDeadError);
  assert.ok(performance.now() - t0 < SOON);
  assert.is(e2.deadPid, d2);
  assert.is(m.holder, process.pid);
  m.unlock();
  assert.is(m.deaths, 2);
});

test('synchronize() on a dead holder throws OwnerDeadError without running fn, and leaves the mutex usable', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const dead = await heldByTheDead(shm);
  let ran = false;
  const e = throws(() => m.synchronize(() => (ran = true)), OwnerDeadError);
  assert.is(e.deadPid, dead);
  assert.not.ok(ran);
  assert.not.ok(m.isLocked, 'unlocked again');
  assert.is(m.synchronize(() => 7), 7);
  assert.is(m.deaths, 1);
});

test('waiters already blocked when the holder dies (lockAsync here, lock() in another process): one gets OwnerDeadError, the other the mutex after it', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const holder = h.start('mutex-peer', 'die-holding', {}, { shm });
  const { pid } = await holder.message('locked');
  const waiter = h.start('mutex-peer', 'lock', { timeout: 10_000 }, { shm });
  await waiter.message('ready');
  const mine = track(m.lockAsync({ timeout: 10_000 }));
  const words = Region.map(shm, 0, 64);
  h.defer(() => words.unmap());
  await until(() => words.read().readInt32LE(MW.LOCK_WAITERS * 4) >= 2, { what: 'both waiters to sleep on the mutex', peers: [waiter] });
  holder.kill('SIGKILL');
  await holder.exited;
  const t0 = performance.now();
  await within(5000, mine.promise, 'lockAsync');
  assert.ok(performance.now() - t0 < SOON, `lockAsync settled after ${(performance.now() - t0).toFixed(0)} ms`);
  const iGotTheDeath = mine.error instanceof OwnerDeadError;
  assert.ok(mine.error === undefined || iGotTheDeath, `lockAsync: ${mine.error?.name}`);
  assert.is(m.holder, process.pid);
  m.unlock();
  const out = await waiter.result(10_000);
  if (iGotTheDeath) assert.is(out.ok, true, JSON.stringify(out));
  else assert.is(out.error?.name, 'OwnerDeadError', JSON.stringify(out));
  if (!out.ok) assert.is(out.error.deadPid, pid);
  assert.is(m.deaths, 1, 'the death is counted once');
  assert.not.ok(m.isLocked);
});

// ---- timeouts ----------------------------------------------------------------------------

test('timeouts are honoured: lock / lockAsync with timeout 0 (one try), 1 and 50 ms end within a few ms of the deadline', async () => {
  const shm = h.object(4096);
  const m = mutexAt(shm);
  const holder = h.start('mutex-peer', 'hold', {}, { shm });
  await holder.message('locked');
  const over = [];
  for (const timeout of [0, 1, 50, 0, 1, 50]) {
    let t0 = performance.now();
    throws(() => m.lock({ timeout }), TimeoutError, undefined, `lock timeout ${timeout}`);
    const sync = performance.now() - t0;
    t0 = performance.now();
    await rejects(m.lockAsync({ timeout }), TimeoutError, undefined, `lockAsync timeout ${timeout}`);
    const async = performance.now() - t0;
    for (const [what, ms] of [['lock', sync], ['lockAsync', async]]) {
      assert.ok(ms >= timeout - 0.5, `${what}({ timeout: ${timeout} }) gave up after ${ms.toFixed(2)} ms`);
      over.push(ms - timeout);
      assert.ok(ms - timeout < 25, `${what}({ timeout: ${timeout} }) took ${ms.toFixed(1)} ms`);
    }
  }
  throws(() => m.lock({ timout: 5 }), InvalidArgumentError, /unknown key "timout" \(did you mean 'timeout'\?\)/);
  await rejects(m.lockAsync({ timeout: 5, signal: 'no' }), InvalidArgumentError, /signal/);
  await rejects(m.lockAsync({ sigal: AbortSignal.abort() }), InvalidArgumentError, /unknown key/);
  holder.send('unlock');
  await holder.result();
  if (process.env.MUTEX_VERBOSE) console.log(`timeout overshoot: max ${Math.max(...over).toFixed(2)} ms`);
});

for (const op of ['lock', 'lockAsync']) {
  test(`a holder dies while its own parent is blocked in ${op}(): the parent gets OwnerDeadError within about a second (a zombie counts as dead)`, async () => {
    const shm = h.object(4096);
    const m = mutexAt(shm);
    const sup = h.start('mutex-peer', 'supervisor', { timeout: 5000, async: op === 'lockAsync' }, { shm, timeoutMs: 20_000 });
    let out;
    try {
      out = await sup.result(15_000);
    } catch (err) {
      sup.kill();
      assert.unreachable(`the supervisor never finished its ${op} (killed): ${err.message.split('\n')[0]}`);
    }
    assert.is(out.error?.name, 'OwnerDeadError', JSON.stringify(out));
    assert.is(out.error.deadPid, out.worker);
    assert.ok(out.elapsed < SOON + 1000, `${op} took ${out.elapsed.toFixed(0)} ms`);
    assert.not.ok(m.isLocked);
  });
}

test.run();
