// The Promise API: timeouts and AbortSignals (nothing sent or received when they fire),
// an event loop that keeps running while receives are pending, a thread pool that is never
// starved by them, many pending operations at once (also past the 127 that futex_waitv
// takes in one call), and a process that stays alive while a wait is pending and exits on
// its own once it settles. Measurements use generous thresholds: this machine is shared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Channel, Int32Ptr, Region, AbortError, ChannelClosedError, InvalidArgumentError, TimeoutError } from '../dist/index.js';
import { CH } from './fixtures/channel-common.js';
import { harness, rejects, throws, track, until, within, delay } from './fixtures/channel-harness.js';

const h = harness(test, 'cha');
const SMALL_FILE = fileURLToPath(new URL('./fixtures/channel-common.js', import.meta.url));

/** Records setInterval gaps from now until stop(). */
function loopMeter(everyMs = 5) {
  let ticks = 0;
  let maxGap = 0;
  let last = performance.now();
  const t0 = last;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, everyMs);
  h.defer(() => clearInterval(timer));
  return {
    stop() {
      clearInterval(timer);
      const elapsed = performance.now() - t0;
      return { ticks, maxGap: Math.max(maxGap, performance.now() - last), elapsed, expected: elapsed / everyMs };
    },
  };
}

function assertLoopRan(m, what) {
  // A blocked loop shows one gap as long as the whole wait; a free one ticks every few ms.
  assert.ok(m.maxGap < 150, `${what}: the event loop stalled for ${m.maxGap.toFixed(0)} ms`);
  assert.ok(m.ticks >= m.expected * 0.25, `${what}: only ${m.ticks} ticks in ${m.elapsed.toFixed(0)} ms`);
}

// ---- timeouts and AbortSignal --------------------------------------------------------

test('recv({ signal }): aborting a pending receive rejects with AbortError (code ABORT_ERR, cause = reason) and takes nothing', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8 }));
  const ac = new AbortController();
  const r = track(ch.recv({ signal: ac.signal }));
  await until(() => ch.stats().waiting.receivers === 1, { what: 'the receive to sleep' });
  const reason = new Error('stop it');
  ac.abort(reason);
  await within(2000, r.promise, 'the aborted receive');
  assert.ok(r.error instanceof AbortError, `got ${r.error?.name}`);
  assert.is(r.error.code, 'ABORT_ERR');
  assert.is(r.error.name, 'AbortError');
  assert.is(r.error.cause, reason);
  assert.is(ch.stats().waiting.receivers, 0, 'no waiter left behind');
  // a message sent now goes to the next receive, not to the aborted one
  assert.ok(ch.trySend('next'));
  assert.is((await within(2000, ch.recv({ encoding: 'latin1' }))).replace(/\0+$/, ''), 'next');
  assert.is(ch.stats().received, 1);
});

test('an already-aborted signal rejects send and recv at once, sending and taking nothing', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 8 }));
  const signal = AbortSignal.abort('nope');
  ch.trySend('there');
  await rejects(ch.recv({ signal }), AbortError);
  await rejects(ch.send('x', { signal }), AbortError);
  await rejects(ch.recvInto(Buffer.alloc(8), { signal }), AbortError);
  const s = ch.stats();
  assert.is(s.sent, 1);
  assert.is(s.received, 0);
  assert.is(ch.tryRecv({ encoding: 'utf8' }), 'there');
});

test('send({ signal }) on a full channel: AbortError, and the message is not sent', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.SingleBuffered.Variable(shm, { capacity: 16 }));
  assert.ok(ch.trySend('first'));
  const ac = new AbortController();
  const s = track(ch.send('second', { signal: ac.signal }));
  await until(() => ch.stats().waiting.senders === 1, { what: 'the send to sleep' });
  ac.abort();
  await within(2000, s.promise);
  assert.ok(s.error instanceof AbortError, `got ${s.error?.name}`);
  assert.is(s.error.code, 'ABORT_ERR');
  assert.is(ch.stats().sent, 1);
  assert.is(ch.tryRecv({ encoding: 'utf8' }), 'first');
  assert.is(ch.tryRecv(), undefined, '"second" was never sent');
});

test('Unbuffered: send({ signal }) aborted while waiting for a receiver: AbortError and the channel is left empty', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Unbuffered.Variable(shm, { capacity: 16 }));
  const ac = new AbortController();
  const s = track(ch.send('offer', { signal: ac.signal }));
  await until(() => ch.stats().waiting.senders === 1, { what: 'the send to wait for a receiver' });
  ac.abort();
  await within(2000, s.promise);
  assert.ok(s.error instanceof AbortError, `got ${s.error?.name}`);
  const st = ch.stats();
  assert.is(st.queued, 0, 'the offer was withdrawn');
  assert.is(ch.tryRecv(), undefined);
  // and the channel still works
  const r = ch.recv({ encoding: 'utf8' });
  await within(2000, ch.send('real', { timeout: 1000 }));
  assert.is(await within(2000, r), 'real');
});

test('Unbuffered: send/sendSync with a timeout and no receiver: TimeoutError, and the channel is left empty', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Unbuffered.Fixed(shm, { width: 8 }));
  const t0 = performance.now();
  throws(() => ch.sendSync('a', { timeout: 60 }), TimeoutError, /timed out/);
  assert.ok(performance.now() - t0 >= 50);
  assert.is(ch.stats().queued, 0);
  assert.is(ch.tryRecv(), undefined, 'sendSync left nothing behind');
  await rejects(ch.send('b', { timeout: 60 }), TimeoutError, /timed out/);
  assert.is(ch.stats().queued, 0);
  assert.is(ch.tryRecv(), undefined, 'send left nothing behind');
  assert.is(ch.trySend('c'), false, 'trySend with no receiver waiting: false');
  assert.is(ch.stats().sent, 0);
});

test('AbortSignal.timeout() works as a signal', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.SingleBuffered.Empty(shm));
  const t0 = performance.now();
  const e = await rejects(ch.recv({ signal: AbortSignal.timeout(50) }), AbortError);
  assert.ok(performance.now() - t0 >= 40);
  assert.is(e.cause?.name, 'TimeoutError');
});

// ---- the event loop and the thread pool ------------------------------------------------

test('the event loop keeps running while receives and sends are pending (setInterval keeps its rate)', async () => {
  const shm = h.object();
  const a = h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8, offset: 0 }));
  const b = h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: 1024 }));
  const u = h.keep(new Channel.Unbuffered.Fixed(shm, { width: 16, offset: 2048 }));
  b.trySend('full');
  const meter = loopMeter(5);
  const r = track(a.recv());
  const s = track(b.send('waits'));
  const us = track(u.send('rendezvous'));
  await until(() => a.stats().waiting.receivers === 1 && b.stats().waiting.senders === 1 && u.stats().waiting.senders === 1, { what: 'all three to sleep' });
  await delay(600); // a measurement window, not a synchronisation
  assert.not.ok(r.settled || s.settled || us.settled, 'still pending');
  const m = meter.stop();
  assertLoopRan(m, 'while pending');
  // and they complete promptly when their peer shows up
  const t0 = performance.now();
  a.trySend('x');
  b.tryRecv();
  const got = u.tryRecv();
  await within(3000, Promise.all([r.promise, s.promise, us.promise]));
  const wake = performance.now() - t0;
  assert.ok(wake < 500, `woken after ${wake.toFixed(0)} ms`);
  assert.is(r.error, undefined);
  assert.is(s.error, undefined);
  assert.is(us.error, undefined);
  assert.is(got.toString('latin1').replace(/\0+$/, ''), 'rendezvous');
});

async function threadPoolResponsive(what) {
  // 8 reads at once: more than libuv's 4 pool threads, so each thread is used twice
  const t0 = performance.now();
  const reads = Array.from({ length: 8 }, () => readFile(SMALL_FILE));
  await within(10_000, Promise.all(reads), `fs reads ${what}`);
  const ms = performance.now() - t0;
  assert.ok(ms < 300, `${what}: 8 small fs.promises.readFile calls took ${ms.toFixed(0)} ms`);
}

test('the thread pool is not starved: 64 receives pending on 64 channels, fs.promises.readFile still completes at once', async () => {
  const shm = h.object();
  const chans = Array.from({ length: 64 }, (_, i) => h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 16, offset: i * 512 })));
  const pending = chans.map((c) => track(c.recv()));
  await until(() => chans.every((c) => c.stats().waiting.receivers === 1), { what: '64 receives to sleep', timeoutMs: 20_000 });
  await threadPoolResponsive('64 channels');
  assert.ok(pending.every((p) => !p.settled));
  // each is woken by its own message only
  chans[17].trySend('seventeen');
  await within(3000, pending[17].promise);
  assert.is(pending[17].value.toString('latin1').replace(/\0+$/, ''), 'seventeen');
  await delay(50);
  assert.is(pending.filter((p) => p.settled).length, 1, 'the others are still pending');
  for (const c of chans) c.close();
  await within(5000, Promise.all(pending.map((p) => p.promise)), 'every receive to end on close');
  assert.ok(pending.filter((_, i) => i !== 17).every((p) => p.error instanceof ChannelClosedError));
});

test('the thread pool is not starved: 64 receives pending on one channel; 64 messages reach 64 receivers, once each', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 16 }));
  const pending = Array.from({ length: 64 }, () => track(ch.recv({ encoding: 'utf8' })));
  await until(() => ch.stats().waiting.receivers === 64, { what: '64 receives to sleep', timeoutMs: 20_000 });
  await threadPoolResponsive('64 receives on one channel');
  for (let i = 0; i < 64; i++) await within(5000, ch.send(`m${i}`), `send ${i}`);
  await within(5000, Promise.all(pending.map((p) => p.promise)));
  const got = pending.map((p) => p.value).sort();
  assert.equal(got, Array.from({ length: 64 }, (_, i) => `m${i}`).sort(), 'each message once');
  assert.is(ch.stats().waiting.receivers, 0);
});

test('many async receives pending on one channel raise no process warning (no MaxListenersExceededWarning)', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8 }));
  const warnings = [];
  const onWarning = (w) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  h.defer(() => process.off('warning', onWarning));
  const pending = Array.from({ length: 32 }, () => track(ch.recv()));
  await until(() => ch.stats().waiting.receivers === 32, { what: '32 receives to sleep', timeoutMs: 20_000 });
  ch.close();
  await within(5000, Promise.all(pending.map((p) => p.promise)));
  await delay(10); // warnings are emitted on the next tick
  assert.equal(warnings, [], 'no warning');
});

test('200 receives pending (more than futex_waitv takes at once): each is woken by its message, and all end on close', async () => {
  const shm = h.object();
  const N = 200;
  const chans = Array.from({ length: N }, (_, i) => h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: i * 320 })));
  const pending = chans.map((c) => track(c.recv()));
  await until(() => chans.every((c) => c.stats().waiting.receivers === 1), { what: `${N} receives to sleep`, timeoutMs: 30_000 });
  await threadPoolResponsive(`${N} channels`);
  for (const i of [0, 150, 199]) {
    const t0 = performance.now();
    chans[i].trySend(`c${i}`);
    await within(5000, pending[i].promise, `receive ${i}`);
    assert.ok(performance.now() - t0 < 1000, `receive ${i} woke after ${(performance.now() - t0).toFixed(0)} ms`);
    assert.is(pending[i].value.toString('latin1').replace(/\0+$/, ''), `c${i}`);
  }
  for (const c of chans) c.close();
  await within(10_000, Promise.all(pending.map((p) => p.promise)), 'every receive to end on close');
  assert.is(pending.filter((p) => p.error instanceof ChannelClosedError).length, N - 3);
});

test('breaking out of for await leaves the channel usable and the rest of the messages in it', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Fixed(shm, { depth: 8, width: 4 }));
  for (let i = 0; i < 5; i++) ch.trySend(`${i}`);
  const got = [];
  for await (const m of ch) {
    got.push(m.toString('latin1').replace(/\0+$/, ''));
    if (got.length === 2) break;
  }
  assert.equal(got, ['0', '1']);
  assert.is(ch.stats().queued, 3);
  assert.is(ch.stats().waiting.receivers, 0);
  assert.is(ch.tryRecv().toString('latin1').replace(/\0+$/, ''), '2');
});

// ---- a live process holding the channel's lock ----------------------------------------------
// The parent stores its own (live) pid in the lock word (byte 64), as a process would
// that was stopped (SIGSTOP, a debugger, a long page fault) inside a send. The children
// measure what their waits do meanwhile; the parent releases the word after a while, so a
// child that blocks does not hang the suite. Only for layouts with a lock word; the same
// question for a lock-free layout (a peer stopped mid-send) is in channel-faults.test.js.

async function withLockHeldByParent(shm, role, arg, holdMs) {
  const region = Region.map(shm, 0, 128);
  h.defer(() => region.unmap());
  const lock = new Int32Ptr(region, CH.LOCK);
  assert.is(lock.compareExchange(0, process.pid), 0);
  const p = h.start('channel-probe', role, arg, { shm, timeoutMs: 30_000 });
  const released = delay(holdMs).then(() => lock.store(0));
  const out = await p.result(20_000);
  await released;
  return out;
}

if (CH.LOCK !== undefined) {
  test('an async receive while another (live) process holds the channel lock: the event loop keeps running and the timeout fires', async () => {
    const shm = h.object();
    h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8 }));
    const out = await withLockHeldByParent(shm, 'loop-while-blocked', { timeout: 300 }, 4000);
    assert.is(out.error?.name, 'TimeoutError', `the receive should time out while the lock is held: ${JSON.stringify(out)}`);
    assert.ok(out.elapsed < 2000, `the 300 ms timeout fired after ${out.elapsed.toFixed(0)} ms`);
    assert.ok(out.maxGap < 150, `the child's event loop stalled for ${out.maxGap.toFixed(0)} ms while its recv() waited for the lock`);
  });

  test('a blocking receive with a timeout while another (live) process holds the channel lock: TimeoutError after about the timeout', async () => {
    const shm = h.object();
    h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8 }));
    const out = await withLockHeldByParent(shm, 'sync-while-blocked', { timeout: 300 }, 4000);
    assert.is(out.error?.name, 'TimeoutError', JSON.stringify(out));
    assert.ok(out.elapsed < 2000, `recvSync({ timeout: 300 }) returned after ${out.elapsed.toFixed(0)} ms`);
  });
}

// ---- process lifetime ------------------------------------------------------------------

test('a pending async receive keeps the process alive, and it ends when the receive settles', async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16 }));
  const p = h.start('channel-probe', 'keepalive', {}, { shm, timeoutMs: 30_000 });
  await until(() => ch.stats().waiting.receivers === 1, { what: 'the child to wait', peers: [p], timeoutMs: 15_000 });
  await delay(400); // a window in which a process that is not kept alive would have exited
  assert.ok(p.running, 'the child is still alive while its receive is pending');
  ch.trySend('wake up');
  const out = await p.result(10_000);
  assert.is(out.value, 'wake up', 'and it exits on its own once the receive has settled');
});

for (const mode of ['a message', 'a timeout']) {
  test(`a process whose async receive has settled (by ${mode}) exits on its own, without process.exit`, async () => {
    const shm = h.object();
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16 }));
    const arg = mode === 'a message' ? {} : { timeout: 300 };
    const p = h.start('channel-probe', 'keepalive', arg, { shm, timeoutMs: 30_000 });
    await until(() => ch.stats().waiting.receivers === 1, { what: 'the child to wait', peers: [p], timeoutMs: 15_000 });
    if (mode === 'a message') ch.trySend('bye');
    await until(() => p.stdout.includes('\n'), { what: 'the child to print its outcome', peers: [p], timeoutMs: 10_000 });
    const printed = Date.now();
    // the child has nothing left to do: it should be gone within a few seconds
    const exited = await Promise.race([p.exited, delay(5000).then(() => null)]);
    if (exited === null) {
      p.kill();
      assert.unreachable(`the child printed ${p.stdout.trim()} and was still alive ${Date.now() - printed} ms later (killed): its process never exits once the async waiter thread has started`);
    }
    assert.is(exited.code, 0, p.stderr);
  });
}

// ---- a message that changes while its send waits -----------------------------------

for (const [what, change] of [
  ['grown (a length-tracking view over a resizable ArrayBuffer)', (ab) => ab.resize(48)],
  ['transferred (its buffer detached)', (ab) => structuredClone(ab, { transfer: [ab] })],
]) {
  test(`send(): a message ${what} while the send waits is refused, nothing is sent, the next slot is untouched, and the channel goes on`, async () => {
    const shm = h.object();
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16 }));
    ch.sendSync('first');
    ch.sendSync('second'); // full: the next send waits
    const ab = new ArrayBuffer(8, { maxByteLength: 64 });
    new Uint8Array(ab).fill(7);
    const pending = ch.send(new Uint8Array(ab)).then(() => 'sent', (err) => err);
    change(ab);
    assert.is(ch.recvSync({ encoding: 'utf8' }), 'first'); // room: the send claims and fills
    const outcome = await within(5000, pending, 'the waiting send');
    assert.instance(outcome, InvalidArgumentError, `the send ${outcome === 'sent' ? 'went through' : `failed with ${outcome}`}`);
    assert.match(outcome.message, /changed from 8 to \d+ bytes .* nothing was sent/);
    assert.is(ch.recvSync({ encoding: 'utf8' }), 'second', 'the message after it is whole');
    assert.is(ch.tryRecv(), undefined, 'nothing of the refused message was delivered');
    ch.sendSync('third');
    assert.is(ch.recvSync({ encoding: 'utf8' }), 'third');
  });
}

// ---- a receive target that changes while the receive waits -------------------------

for (const [what, change] of [
  ['shrunk (a length-tracking view over a resizable ArrayBuffer)', (ab) => ab.resize(4)],
  ['transferred (its buffer detached)', (ab) => structuredClone(ab, { transfer: [ab] })],
]) {
  test(`recvInto(): a target ${what} while the receive waits gets an InvalidArgumentError and takes nothing: the message stays, and the channel goes on`, async () => {
    const shm = h.object();
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16 }));
    const ab = new ArrayBuffer(16, { maxByteLength: 64 });
    const target = new Uint8Array(ab);
    // Twice first, so that the copy would go through the target's cached words.
    for (const m of ['one', 'two']) {
      ch.sendSync(m);
      assert.is(await ch.recvInto(target), 3);
    }
    const pending = ch.recvInto(target).then((n) => n, (err) => err);
    change(ab);
    ch.sendSync('a message of 12');
    const outcome = await within(5000, pending, 'the waiting receive');
    assert.instance(outcome, InvalidArgumentError, `the receive ${typeof outcome === 'number' ? `returned ${outcome}` : `failed with ${outcome}`}`);
    assert.match(outcome.message, /target changed to \d+ bytes .* messages can be 16 bytes\. Nothing was taken: the next message stays in the channel/);
    assert.is(await within(2000, ch.recv({ encoding: 'utf8' })), 'a message of 12', 'the message is still there');
    ch.sendSync('next');
    assert.is(await within(2000, ch.recv({ encoding: 'utf8' })), 'next');
  });
}

test.run();
