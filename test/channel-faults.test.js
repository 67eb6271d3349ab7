// A process killed with SIGKILL at any moment must never leave the others blocked forever,
// nor let a torn message through. The exact states (mid-send with the slot being written,
// mid-receive with the slot being read, and for layouts that have one, holding the lock)
// are reached by test/fixtures/channel-fault.js, which then waits to be killed; the parent
// waits for the kill to be reaped and checks that every API works again within about a
// second (the engine checks a busy peer's liveness every 100 ms). Then the real thing:
// producers and consumers killed at random moments while they stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, Int32Ptr, Region, TimeoutError } from '../dist/index.js';
import { CH, CHANNEL_AT, CTRL, checkMessage, controlArea, fillMessage, messageLength } from './fixtures/channel-common.js';
import { harness, track, until, within } from './fixtures/channel-harness.js';

const h = harness(test, 'chf');
const SOON = 1500; // "within about a second", with room for a loaded machine

/** A fresh object with the control area at 0 and a channel made by `make` at CHANNEL_AT. */
function setup(make) {
  const shm = h.object(CHANNEL_AT);
  const ch = h.keep(make(shm, { offset: CHANNEL_AT }));
  return { shm, ch, flag: flagOf(shm) };
}

/** The FLAG word of `shm`'s control area; the area stays mapped until the test ends. */
function flagOf(shm) {
  const area = controlArea(shm);
  h.defer(() => area.region.unmap()); // also keeps the region reachable: a pointer alone does not
  return area.word(CTRL.FLAG);
}

/** Starts a fault fixture, waits until it has reached its state, kills it and waits until it is reaped. */
async function killedIn(role, shm, arg = {}) {
  const flag = flagOf(shm);
  flag.store(0);
  const p = h.start('channel-fault', role, { offset: CHANNEL_AT, ...arg }, { shm });
  await until(() => flag.load() === 1, { what: `the ${role} child to reach its state`, peers: [p] });
  p.kill('SIGKILL');
  const exit = await within(10_000, p.exited, 'the killed child to be reaped');
  assert.is(exit.signal, 'SIGKILL');
  return { pid: p.pid };
}

const trimmed = (b) => (b === undefined ? undefined : Buffer.from(b).toString('latin1').replace(/\0+$/, ''));

// ---- killed mid-send -----------------------------------------------------------------

const MID_SEND = [
  ['SingleBuffered.Variable', (s, o) => new Channel.SingleBuffered.Variable(s, { capacity: 32, ...o }), []],
  ['Buffered.Variable', (s, o) => new Channel.Buffered.Variable(s, { depth: 4, capacity: 32, ...o }), ['one', 'two']],
  ['Buffered.Fixed', (s, o) => new Channel.Buffered.Fixed(s, { depth: 3, width: 32, ...o }), ['one']],
  ['Unbuffered.Variable', (s, o) => new Channel.Unbuffered.Variable(s, { capacity: 32, ...o }), []],
];

for (const [name, make, pre] of MID_SEND) {
  for (const mode of ['sync', 'async']) {
    test(`${name}: a sender killed mid-send (slot being written): the half-written message is never delivered, and a ${mode} receiver goes on within about a second`, async () => {
      const { shm, ch } = setup(make);
      for (const m of pre) assert.ok(ch.trySend(m));
      await killedIn('mid-send', shm, { length: 32 });
      const got = [];
      const t0 = performance.now();
      for (let i = 0; i < pre.length; i++) got.push(trimmed(mode === 'sync' ? ch.recvSync({ timeout: 5000 }) : await within(6000, ch.recv({ timeout: 5000 }))));
      assert.equal(got, pre, 'the whole messages before it are delivered');
      // the torn one is dropped, not delivered: the next receive waits for a real message
      let torn;
      try {
        torn = mode === 'sync' ? ch.recvSync({ timeout: 600 }) : await within(5000, ch.recv({ timeout: 600 }));
      } catch (err) {
        assert.ok(err instanceof TimeoutError, `${err.name}: ${err.message}`);
      }
      assert.is(torn, undefined, `the half-written message was delivered: ${torn?.toString('hex')}`);
      assert.is(ch.stats().queued, 0, 'the torn slot was dropped');
      if (name.startsWith('Unbuffered')) {
        const r = ch.recv({ timeout: 5000 });
        await within(6000, ch.send('after', { timeout: 5000 }));
        assert.is(trimmed(await within(6000, r)), 'after');
      } else if (mode === 'sync') {
        ch.sendSync('after', { timeout: 5000 });
        assert.is(trimmed(ch.recvSync({ timeout: 5000 })), 'after');
      } else {
        await within(6000, ch.send('after', { timeout: 5000 }));
        assert.is(trimmed(await within(6000, ch.recv({ timeout: 5000 }))), 'after');
      }
      const ms = performance.now() - t0 - 600;
      assert.ok(ms < SOON, `took ${ms.toFixed(0)} ms besides the 600 ms timeout`);
    });
  }
}

test('a receiver already waiting in another process when the sender dies mid-send: it skips the torn message and takes the next one', async () => {
  const { shm, ch, flag } = setup((s, o) => new Channel.SingleBuffered.Variable(s, { capacity: 32, ...o }));
  const writer = h.start('channel-fault', 'mid-send', { offset: CHANNEL_AT, length: 32 }, { shm });
  await until(() => flag.load() === 1, { what: 'the writer to stop mid-send', peers: [writer] });
  const r = h.start('channel-peer', 'recv', { offset: CHANNEL_AT, count: 1 }, { shm });
  await r.message('ready');
  await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to wait on the slot being written', peers: [r] });
  writer.kill('SIGKILL');
  await writer.exited;
  const t0 = performance.now();
  await until(() => ch.stats().queued === 0, { what: 'the receiver to drop the torn slot', peers: [r], timeoutMs: 5000 });
  assert.ok(performance.now() - t0 < SOON, `dropped after ${(performance.now() - t0).toFixed(0)} ms`);
  ch.sendSync('whole', { timeout: 5000 });
  const out = await r.result();
  assert.equal(out.messages.map((m) => trimmed(Buffer.from(m, 'hex'))), ['whole'], 'only the whole message was received');
});

test('SingleBuffered: after a sender died mid-send, a lone sender can send within about a second (the torn slot does not fill the channel forever)', async () => {
  const { shm, ch } = setup((s, o) => new Channel.SingleBuffered.Variable(s, { capacity: 32, ...o }));
  await killedIn('mid-send', shm, { length: 32 });
  const t0 = performance.now();
  let error;
  try {
    ch.sendSync('after', { timeout: 3000 });
  } catch (err) {
    error = err;
  }
  const ms = performance.now() - t0;
  assert.is(error, undefined, `sendSync failed after ${ms.toFixed(0)} ms: ${error?.name}: ${error?.message} (stats: ${JSON.stringify(ch.stats())})`);
  assert.ok(ms < SOON, `took ${ms.toFixed(0)} ms`);
  assert.is(trimmed(ch.recvSync({ timeout: 1000 })), 'after');
  assert.is(ch.tryRecv(), undefined, 'and nothing else');
});

// ---- a live process stopped mid-send -------------------------------------------------------

test('a sender stopped (alive) mid-send: receives wait for it without blocking the event loop, and their timeouts fire on time', async () => {
  const { shm, ch, flag } = setup((s, o) => new Channel.SingleBuffered.Variable(s, { capacity: 32, ...o }));
  const writer = h.start('channel-fault', 'mid-send', { offset: CHANNEL_AT, length: 32 }, { shm });
  await until(() => flag.load() === 1, { what: 'the writer to stop mid-send', peers: [writer] });
  const async = await h.start('channel-probe', 'loop-while-blocked', { offset: CHANNEL_AT, timeout: 300 }, { shm }).result(20_000);
  const sync = await h.start('channel-probe', 'sync-while-blocked', { offset: CHANNEL_AT, timeout: 300 }, { shm }).result(20_000);
  for (const [what, out] of [['recv', async], ['recvSync', sync]]) {
    assert.is(out.error?.name, 'TimeoutError', `${what}: ${JSON.stringify(out)}`);
    assert.ok(out.elapsed < 1500, `${what}({ timeout: 300 }) ended after ${out.elapsed.toFixed(0)} ms`);
  }
  assert.ok(async.maxGap < 150, `the event loop stalled for ${async.maxGap.toFixed(0)} ms`);
  assert.ok(writer.running, 'the writer was alive all along');
});

// ---- killed mid-receive --------------------------------------------------------------

test('Buffered: a receiver killed mid-receive (slot being read): the others go on, the slot is reused, nothing is delivered twice', async () => {
  const { shm, ch } = setup((s, o) => new Channel.Buffered.Variable(s, { depth: 2, capacity: 16, ...o }));
  ch.trySend('m1');
  ch.trySend('m2');
  await killedIn('mid-recv', shm, { width: 16 });
  const t0 = performance.now();
  assert.is(trimmed(ch.recvSync({ timeout: 5000 })), 'm2', 'm1 went with the dead receiver');
  const got = [];
  for (let i = 0; i < 6; i++) {
    ch.sendSync(`n${i}`, { timeout: 5000 }); // laps the ring: the dead reader's slot is reclaimed
    got.push(trimmed(ch.recvSync({ timeout: 5000 })));
  }
  assert.equal(got, ['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
  assert.ok(performance.now() - t0 < SOON, `took ${(performance.now() - t0).toFixed(0)} ms`);
  assert.is(ch.tryRecv(), undefined);
});

for (const mode of ['sync', 'async']) {
  test(`SingleBuffered: a receiver killed mid-receive: a ${mode} send can reuse the slot within about a second`, async () => {
    const { shm, ch } = setup((s, o) => new Channel.SingleBuffered.Fixed(s, { width: 8, ...o }));
    ch.trySend('m1');
    await killedIn('mid-recv', shm, { width: 8 });
    const t0 = performance.now();
    if (mode === 'sync') ch.sendSync('m2', { timeout: 5000 });
    else await within(6000, ch.send('m2', { timeout: 5000 }));
    assert.ok(performance.now() - t0 < SOON, `took ${(performance.now() - t0).toFixed(0)} ms`);
    assert.is(trimmed(ch.recvSync({ timeout: 1000 })), 'm2');
  });
}

test('Unbuffered: the receiver dies while copying the message out: the waiting send settles within about a second and the channel goes on', async () => {
  const { shm, ch } = setup((s, o) => new Channel.Unbuffered.Variable(s, { capacity: 16, ...o }));
  const s = track(ch.send('m1', { timeout: 10_000 }));
  await until(() => ch.stats().waiting.senders === 1, { what: 'the send to wait' });
  await killedIn('mid-recv', shm, { width: 16 });
  const t0 = performance.now();
  await within(5000, s.promise, 'the send');
  const ms = performance.now() - t0;
  assert.ok(ms < SOON, `the send settled after ${ms.toFixed(0)} ms`);
  assert.ok(!(s.error instanceof TimeoutError), `${s.error?.name}: ${s.error?.message}`);
  const r = ch.recv({ timeout: 5000, encoding: 'utf8' });
  await within(6000, ch.send('m2', { timeout: 5000 }));
  const got = await within(6000, r);
  assert.ok(got === 'm2' || (got === 'm1' && s.error !== undefined), `received ${got} (the first send ${s.error ? 'failed' : 'succeeded'})`);
});

// ---- the parent of the dead process is the one blocked ------------------------------------

for (const op of ['recvSync', 'recv']) {
  test(`a sender dies mid-send while its own parent is blocked receiving (${op}): the parent goes on within about a second`, async () => {
    // The dead child is a zombie until its parent's event loop reaps it, and a parent
    // blocked in a call does not run its event loop: a zombie must count as dead.
    const { shm, ch, flag } = setup((s, o) => new Channel.Buffered.Variable(s, { depth: 4, capacity: 32, ...o }));
    const sup = h.start('channel-fault', 'supervisor', { offset: CHANNEL_AT, op, length: 32, timeout: 5000 }, { shm, timeoutMs: 20_000 });
    await until(() => flag.load() === 1, { what: "the supervisor's child to stop mid-send", peers: [sup] });
    assert.ok(ch.trySend('x'), 'a whole message after the torn one');
    let out;
    try {
      out = await sup.result(15_000);
    } catch (err) {
      sup.kill();
      assert.unreachable(`the supervisor never finished its ${op} (killed): ${err.message.split('\n')[0]}`);
    }
    assert.is(out.error, undefined, JSON.stringify(out.error));
    assert.is(out.value.replace(/\0+$/, ''), 'x');
    assert.ok(out.elapsed < SOON + 1000, `${op} took ${out.elapsed.toFixed(0)} ms`);
  });
}

// ---- killed holding the lock (layouts with a lock word) ----------------------------------------

if (CH.LOCK !== undefined) {
  for (const mode of ['sync', 'async']) {
    test(`killed while holding the channel's lock: ${mode} send and receive work again within about a second`, async () => {
      const { shm, ch } = setup((s, o) => new Channel.Buffered.Variable(s, { depth: 4, capacity: 16, ...o }));
      ch.trySend('before');
      const { pid } = await killedIn('hold-lock', shm);
      assert.is(ch.stats().lockHolder, pid, 'the dead process still holds the lock word');
      const t0 = performance.now();
      if (mode === 'sync') {
        ch.sendSync('after', { timeout: 5000 });
        assert.is(trimmed(ch.recvSync({ timeout: 5000 })), 'before');
        assert.is(trimmed(ch.recvSync({ timeout: 5000 })), 'after');
      } else {
        await within(5000, ch.send('after', { timeout: 5000 }));
        assert.is(trimmed(await within(5000, ch.recv({ timeout: 5000 }))), 'before');
        assert.is(trimmed(await within(5000, ch.recv({ timeout: 5000 }))), 'after');
      }
      const ms = performance.now() - t0;
      assert.ok(ms < SOON, `took ${ms.toFixed(0)} ms`);
      assert.not.equal(ch.stats().lockHolder, pid);
    });
  }

  test('killed while holding the lock with a receiver in another process already waiting for it: that receiver goes on', async () => {
    const { shm, ch, flag } = setup((s, o) => new Channel.SingleBuffered.Variable(s, { capacity: 16, ...o }));
    const holder = h.start('channel-fault', 'hold-lock', { offset: CHANNEL_AT }, { shm });
    await until(() => flag.load() === 1, { what: 'the holder to take the lock', peers: [holder] });
    const r = h.start('channel-peer', 'recv', { offset: CHANNEL_AT }, { shm });
    await r.message('ready');
    await until(() => ch.stats().waiting.lock >= 1, { what: 'the receiver to wait for the lock', peers: [r] });
    holder.kill('SIGKILL');
    await holder.exited;
    const t0 = performance.now();
    await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to get past the lock and wait for a message', peers: [r], timeoutMs: 5000 });
    assert.ok(performance.now() - t0 < SOON);
    assert.ok(ch.trySend('go on'));
    assert.equal((await r.result()).messages.map((m) => trimmed(Buffer.from(m, 'hex'))), ['go on']);
  });
}

// ---- the real thing: kills at random moments ---------------------------------------------------

test('producers killed at random moments while streaming: the rest of the stream flows, every delivered message is whole', async () => {
  for (let round = 0; round < 3; round++) {
    const W = 1024;
    const { shm, ch } = setup((s, o) => new Channel.Buffered.Variable(s, { depth: 8, capacity: W, ...o }));
    // both stream without end; the victim is killed at a random point, the survivor after
    const stream = (id, async) => h.start('channel-stream', 'produce', { offset: CHANNEL_AT, id, count: 1e9, async, payload: 'Variable', width: W }, { shm });
    const victim = stream(0, round === 1);
    const survivor = stream(1, round === 2);
    await victim.message('ready');
    await survivor.message('ready');
    victim.send('go');
    survivor.send('go');
    const killAt = 100 + Math.floor(Math.random() * 1500);
    const seen = { 0: [], 1: [] };
    let killed = false;
    let afterKill = 0;
    while (!killed || afterKill < 2000) {
      const m = await within(10_000, ch.recv({ timeout: 8000 }), `message ${seen[0].length + seen[1].length} (round ${round}, ${killed ? 'after' : 'before'} the kill)`);
      const { producer, seq } = checkMessage(m, 'Variable', W); // throws on a torn message
      seen[producer].push(seq);
      if (killed && producer === 1) afterKill++;
      if (!killed && seen[0].length >= killAt) {
        victim.kill('SIGKILL');
        await victim.exited;
        killed = true;
      }
    }
    survivor.kill('SIGKILL');
    await survivor.exited;
    assert.equal(seen[1], Array.from({ length: seen[1].length }, (_, i) => i), `round ${round}: the survivor's messages, all, once, in order`);
    assert.equal(seen[0], Array.from({ length: seen[0].length }, (_, i) => i), `round ${round}: the victim's messages up to its death, in order, none missing in between`);
    assert.ok(seen[0].length >= killAt);
  }
});

test('consumers killed at random moments while receiving: the other consumer gets the rest, nothing twice, nothing torn, at most the one being received is lost', async () => {
  // Consumers do not share messages fairly (one often takes most), so the parent sends
  // until the victim has taken its random share and been killed, then 2,000 more.
  for (let round = 0; round < 3; round++) {
    const W = 512;
    const MAX = 150_000; // most messages a round may send (each consumer's record holds them all)
    const RECORD = 4 * (MAX + 2);
    const RESULTS = [64 * 1024, 64 * 1024 + RECORD]; // byte offsets of each consumer's record
    const { shm, ch } = setup((s, o) => new Channel.Buffered.Variable(s, { depth: 8, capacity: W, ...o }));
    shm.size = RESULTS[1] + RECORD;
    const [victim, survivor] = [0, 1].map((i) =>
      h.start('channel-stream', 'consume', { offset: CHANNEL_AT, async: (round + i) % 2 === 1, payload: 'Variable', width: W, results: { at: RESULTS[i], max: MAX } }, { shm }),
    );
    await victim.message('ready');
    await survivor.message('ready');
    victim.send('go');
    survivor.send('go');
    const region = Region.map(shm, RESULTS[0], RECORD);
    h.defer(() => region.unmap());
    const victimCount = new Int32Ptr(region, 0);
    const killAt = 5 + Math.floor(Math.random() * 300);
    const buf = Buffer.alloc(W);
    let killed = false;
    let sent = 0;
    for (let after = 0; after < 2000; sent++) {
      if (sent === MAX - 1) assert.unreachable(`the victim took only ${victimCount.load()} of ${sent} messages`);
      await within(10_000, ch.send(fillMessage(buf, 7, sent, messageLength('Variable', W, 7, sent)), { timeout: 8000 }), `send ${sent}`);
      if (killed) after++;
      else if (victimCount.load() >= killAt) {
        victim.kill('SIGKILL');
        await victim.exited;
        killed = true;
      }
    }
    ch.close();
    const out = await survivor.result();
    assert.is(out.torn, 0, `the survivor got torn messages: ${out.firstTorn}`);
    assert.is(out.error, null);
    const words = new Int32Array(region.bytes().buffer, region.bytes().byteOffset, MAX + 2);
    const victimSeqs = Array.from(words.subarray(2, 2 + Atomics.load(words, 0)), (w) => w & 0xffffff);
    assert.is(Atomics.load(words, 1), 0, 'the victim got no torn message');
    const survivorSeqs = out.perProducer[7] ?? [];
    for (const list of [victimSeqs, survivorSeqs]) for (let k = 1; k < list.length; k++) assert.ok(list[k] > list[k - 1], 'in order');
    const all = [...victimSeqs, ...survivorSeqs].sort((x, y) => x - y);
    assert.is(new Set(all).size, all.length, 'nothing delivered twice');
    const lost = sent - all.length;
    assert.ok(lost <= 1, `round ${round}: ${lost} of ${sent} messages lost (the victim had recorded ${victimSeqs.length})`);
  }
});

test.run();
