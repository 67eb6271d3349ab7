// Broadcast (publish/subscribe fan-out): the API in one process, validation, attach, and
// publishers and subscribers in real child processes (every subscriber gets every
// message in order exactly once, lag counted exactly, back-pressure waits for the slowest
// live subscriber and not for a dead one, close, async waits that never block the loop).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AbortError,
  Broadcast,
  BROADCAST_STEPS,
  Channel,
  ChannelClosedError,
  ClosedWriteError,
  InvalidArgumentError,
  LaggedError,
  LayoutError,
  MisalignedError,
  OutOfRangeError,
  OverlapError,
  PayloadTooLargeError,
  Region,
  RegionUnmappedError,
  TimeoutError,
  Watch,
} from '../dist/index.js';
import { harness, rejects, throws, until, within } from './fixtures/channel-harness.js';
import { checkValue, valueOf } from './fixtures/watch-values.js';

const h = harness(test, 'bcast');

function fresh(options = {}) {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 8, capacity: 64, ...options }));
  return { shm, bc };
}

function party(shm, role, arg = {}) {
  return h.start('broadcast-party', role, { offset: 0, ...arg }, { shm, timeoutMs: 30_000 });
}

/** Header and control words (256), 64 table entries of 8 bytes, depth slots of ⌈(12 + capacity) / 64⌉ · 64. */
const bc_size = (depth, capacity, max = 64) => 256 + 8 * max + depth * Math.ceil((12 + capacity) / 64) * 64;

const msg = (id, seq, big = false) => valueOf((id << 20) | seq, { big });

/** Checks one subscriber's messages: whole, in order per publisher, no duplicates; returns them per publisher. */
function checkOrder(got, what) {
  const last = new Map();
  const per = new Map();
  for (const n of got) {
    assert.ok(n !== -1, `${what}: a whole message`);
    const id = n >>> 20;
    const seq = n & 0xfffff;
    if (last.has(id)) assert.ok(seq > last.get(id), `${what}: publisher ${id}'s seq ${seq} after ${last.get(id)} (in order, once)`);
    last.set(id, seq);
    per.set(id, (per.get(id) ?? 0) + 1);
  }
  return per;
}

test('publish and receive in one process: strings, Buffers, views, encodings, recvInto, tryRecv', () => {
  const { bc } = fresh();
  const a = bc.subscribe();
  const b = bc.subscribe();
  assert.is(bc.subscribers, 2);
  bc.publishSync('hello');
  bc.publishSync(Buffer.from([1, 2, 3]));
  assert.ok(bc.tryPublish(new Float64Array([1.5])));
  bc.publishSync('');
  for (const s of [a, b]) {
    assert.is(s.recvSync({ encoding: 'utf8' }), 'hello');
    assert.equal(s.recvSync(), Buffer.from([1, 2, 3]));
    const target = Buffer.alloc(64);
    assert.is(s.recvIntoSync(target), 8);
    assert.is(target.readDoubleLE(0), 1.5);
    assert.is(s.tryRecv({ encoding: 'latin1' }), '');
    assert.is(s.tryRecv(), undefined);
    assert.is(s.received, 4);
    assert.is(s.missed, 0);
  }
  assert.is(bc.published, 4);
  const st = bc.stats();
  assert.equal(st.subscribers.map((x) => x.cursor), [4, 4]);
  assert.equal([st.depth, st.capacity, st.maxSubscribers, st.backpressure, st.closed, st.abandoned], [8, 64, 64, false, false, 0]);
  a.close();
  a.close();
  b.unsubscribe();
  assert.is(bc.subscribers, 0);
  throws(() => a.recvSync(), ChannelClosedError, /subscriber .* is closed/);
  assert.ok(BROADCAST_STEPS.length >= 10);
});

test("a subscriber starts at the next message; from: 'oldest' at the oldest still in the ring", () => {
  const { bc } = fresh({ depth: 4 });
  const none = bc.subscribe({ from: 'oldest' });
  assert.is(none.tryRecv(), undefined, 'a fresh ring has no message');
  bc.publishSync('a');
  bc.publishSync('b');
  const next = bc.subscribe();
  const oldest = bc.subscribe({ from: 'oldest' });
  assert.is(next.tryRecv(), undefined);
  assert.equal([oldest.tryRecv({ encoding: 'utf8' }), oldest.tryRecv({ encoding: 'utf8' }), oldest.tryRecv()], ['a', 'b', undefined]);
  assert.equal([none.tryRecv({ encoding: 'utf8' }), none.tryRecv({ encoding: 'utf8' })], ['a', 'b']);
  for (const x of 'cdefg') bc.publishSync(x);
  const late = bc.subscribe({ from: 'oldest' });
  assert.equal([1, 2, 3, 4].map(() => late.tryRecv({ encoding: 'utf8' })), ['d', 'e', 'f', 'g'], 'the last depth messages');
  // `next` joined at c's position; c has been overwritten since (depth 4): it lagged by one.
  assert.is(throws(() => next.recvSync(), LaggedError).missed, 1);
  assert.is(next.recvSync({ encoding: 'utf8' }), 'd');
  assert.is(Broadcast.byteLength({ depth: 4, capacity: 64 }), bc_size(4, 64));
});

test('an overrun subscriber gets LaggedError with the exact count, then continues from the oldest', () => {
  const { bc } = fresh({ depth: 4 });
  const s = bc.subscribe();
  const fast = bc.subscribe();
  for (let i = 0; i < 10; i++) {
    bc.publishSync(`m${i}`);
    assert.is(fast.recvSync({ encoding: 'utf8' }), `m${i}`);
  }
  const err = throws(() => s.recvSync(), LaggedError, /missed 6 messages/);
  assert.is(err.code, 'ERR_SHM_LAGGED');
  assert.is(err.missed, 6);
  assert.equal([6, 7, 8, 9].map(() => s.recvSync({ encoding: 'utf8' })), ['m6', 'm7', 'm8', 'm9']);
  assert.is(s.missed, 6);
  assert.is(s.received + s.missed, bc.published);
  // tryRecv reports a lag too
  for (let i = 0; i < 5; i++) bc.publishSync(`n${i}`);
  const e2 = throws(() => s.tryRecv(), LaggedError);
  assert.is(e2.missed, 1);
  assert.is(s.tryRecv({ encoding: 'utf8' }), 'n1');
});

test('bad input is refused before anything changes; unknown keys refused', () => {
  const shm = h.object();
  throws(() => new Broadcast(shm), InvalidArgumentError, /needs options.depth/);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 8, dept: 1 }), InvalidArgumentError, /unknown key "dept"/);
  throws(() => new Broadcast(shm, { depth: 6, capacity: 8 }), OutOfRangeError, /power of two/);
  throws(() => new Broadcast(shm, { depth: 1, capacity: 8 }), OutOfRangeError);
  throws(() => new Broadcast(shm, { depth: 2 ** 21, capacity: 8 }), OutOfRangeError);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 0 }), OutOfRangeError);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 1.5 }), InvalidArgumentError);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 8, maxSubscribers: 0 }), OutOfRangeError);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 8, backpressure: 'yes' }), InvalidArgumentError);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 8, offset: 8 }), MisalignedError);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 8, autosize: false }), OutOfRangeError, /set its size or pass autosize/);
  throws(() => new Broadcast({}, { depth: 8, capacity: 8 }), InvalidArgumentError);
  assert.is(shm.size, 0, 'nothing was created');
  const bc = h.keep(new Broadcast(shm, { depth: 8, capacity: 16 }));
  const s = bc.subscribe();
  bc.publishSync('kept');
  throws(() => bc.publishSync('x'.repeat(17)), PayloadTooLargeError, /17 bytes exceeds this Broadcast channel's capacity of 16/);
  throws(() => bc.tryPublish(new Float64Array(3)), PayloadTooLargeError);
  throws(() => bc.publishSync(42), InvalidArgumentError);
  throws(() => bc.publishSync('a', { timeout: -1 }), InvalidArgumentError);
  throws(() => bc.publishSync('a', { timout: 1 }), InvalidArgumentError, /did you mean 'timeout'/);
  throws(() => bc.publishSync('a', { signal: undefined }), InvalidArgumentError, /unknown key "signal"/);
  throws(() => bc.subscribe({ from: 'newest' }), InvalidArgumentError, /'next', 'oldest'/);
  throws(() => bc.subscribe({ form: 'next' }), InvalidArgumentError, /unknown key/);
  throws(() => s.recvSync({ encodng: 'utf8' }), InvalidArgumentError, /unknown key/);
  throws(() => s.recvSync({ encoding: 'klingon' }), InvalidArgumentError);
  throws(() => s.recvIntoSync(Buffer.alloc(8)), OutOfRangeError);
  throws(() => s.recvIntoSync([]), InvalidArgumentError);
  assert.is(bc.published, 1, 'nothing else was published');
  assert.is(bc.subscribers, 1, 'no subscriber was added');
  assert.is(s.recvSync({ encoding: 'utf8' }), 'kept');
  assert.is(s.tryRecv(), undefined);
  throws(() => Broadcast.attach(shm, { offset: 0, depth: 8 }), InvalidArgumentError);
});

test('maxSubscribers: rounded up to 8; a full table refuses; a dead subscriber’s place is reused', async () => {
  const { shm, bc } = fresh({ maxSubscribers: 3 });
  assert.is(bc.maxSubscribers, 8);
  const subs = [];
  for (let i = 0; i < 7; i++) subs.push(bc.subscribe());
  const holder = party(shm, 'hold');
  await holder.message('ready');
  throws(() => bc.subscribe(), OutOfRangeError, /8 subscriber places, all taken/);
  holder.kill();
  await holder.exited;
  const again = bc.subscribe();
  assert.is(bc.subscribers, 8);
  again.close();
  for (const s of subs) s.close();
});

test('attach finds a Broadcast of any shape; zeros, garbage, other kinds and other shapes are refused', () => {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 16, capacity: 100, offset: 64, maxSubscribers: 16, backpressure: true }));
  const a = h.keep(Broadcast.attach(shm, { offset: 64 }));
  assert.equal([a.depth, a.capacity, a.maxSubscribers, a.backpressure], [16, 100, 16, true]);
  const s = a.subscribe();
  bc.publishSync('from the creator');
  assert.is(s.recvSync({ encoding: 'utf8' }), 'from the creator');
  h.keep(new Broadcast(shm, { depth: 16, capacity: 100, offset: 64, maxSubscribers: 16, backpressure: true }));
  throws(() => new Broadcast(shm, { depth: 16, capacity: 100, offset: 64, maxSubscribers: 16 }), LayoutError, /with back-pressure; asked for one without/);
  throws(() => new Broadcast(shm, { depth: 8, capacity: 100, offset: 64 }), OverlapError, /Broadcast\(depth 8, capacity 100\) .* would overlap a Broadcast\(depth 16, capacity 100\)/);
  throws(() => Broadcast.attach(h.object(4096)), LayoutError, /all zero/);
  throws(() => Broadcast.attach(h.object(16)), LayoutError, /only 16 bytes/);
  const g = h.object(4096);
  const r = Region.map(g, 0, 64);
  new Uint8Array(r.mapping.buffer, r.start, 64).fill(0xab);
  r.unmap();
  throws(() => Broadcast.attach(g), LayoutError, /no concurrent-shm structure/);
  throws(() => new Broadcast(g, { depth: 8, capacity: 8 }), LayoutError);
  const c = h.object();
  h.keep(new Watch(c, { capacity: 32 }));
  throws(() => Broadcast.attach(c), LayoutError, /not a Broadcast \(it is a Watch/);
  throws(() => Channel.attach(shm, { offset: 64 }), LayoutError, /not a channel \(it is a Broadcast/);
  throws(() => Watch.attach(shm, { offset: 64 }), LayoutError, /not a Watch/);
  // a corrupt header: depth 12 (not a power of two)
  const k = h.object();
  h.keep(new Broadcast(k, { depth: 8, capacity: 8 })).release();
  const kr = Region.map(k, 0, 64);
  new DataView(kr.mapping.buffer, kr.start, 64).setUint32(8, 12, true);
  kr.unmap();
  throws(() => Broadcast.attach(k), LayoutError, /corrupt/);
});

test('every subscriber process gets every message of every publisher process, in order, exactly once', async () => {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 8, capacity: 4096, backpressure: true }));
  const N = 600;
  const subs = [0, 1, 2].map((i) => party(shm, 'subscriber', { count: 2 * N + 1, async: i === 1, into: i === 2, big: true }));
  await Promise.all(subs.map((s) => s.message('ready')));
  const pubs = [1, 2].map((id) => party(shm, 'publisher', { id, from: 0, count: N, async: id === 2, big: true }));
  const mine = bc.subscribe();
  let count = 0;
  const reading = (async () => {
    for await (const m of mine) if (checkValue(m, { big: true }) !== -1) count++;
  })();
  for (const p of pubs) assert.ok((await p.result()).ok);
  bc.publishSync(msg(3, 0, true));
  await until(() => count === 2 * N + 1, { what: 'this process to receive them all' });
  mine.close();
  await reading;
  for (const [i, s] of subs.entries()) {
    const r = await s.result();
    assert.ok(r.ok, JSON.stringify(r));
    assert.is(r.torn, 0);
    assert.is(r.missed, 0, 'back-pressure: nobody lags');
    const per = checkOrder(r.got, `subscriber ${i}`);
    assert.equal([per.get(1), per.get(2), per.get(3)], [N, N, 1], `subscriber ${i} got every message`);
  }
});

test('without back-pressure a slow subscriber process is overrun: received + missed = published, in order, never torn', async () => {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 4, capacity: 64 }));
  const slow = party(shm, 'subscriber', { delayMs: 2, until: 'timeout', timeout: 1500 });
  const fast = party(shm, 'subscriber', { until: 'timeout', timeout: 1500 });
  await Promise.all([slow.message('ready'), fast.message('ready')]);
  const pub = party(shm, 'publisher', { id: 1, from: 0, count: 3000 });
  assert.ok((await pub.result()).ok);
  for (const [name, s] of [['slow', slow], ['fast', fast]]) {
    const r = await s.result();
    assert.ok(r.ok, JSON.stringify(r));
    assert.is(r.torn, 0);
    checkOrder(r.got, name);
    assert.is(r.got.length + r.missed, 3000, `${name}: every message received or counted missed (${r.got.length} + ${r.missed})`);
    assert.is(r.lags.reduce((x, y) => x + y, 0), r.missed);
    // the messages it did not get are exactly the ones counted
    const seqs = new Set(r.got.map((n) => n & 0xfffff));
    assert.is(seqs.size, r.got.length);
    if (name === 'slow') assert.ok(r.missed > 0, 'the slow one was overrun');
  }
  assert.is(bc.published, 3000);
});

test('back-pressure: publishers wait for the slowest live subscriber, and not for a dead one', async () => {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 4, capacity: 64, backpressure: true }));
  const holder = party(shm, 'hold');
  await holder.message('ready');
  for (let i = 0; i < 4; i++) assert.ok(bc.tryPublish(`m${i}`));
  assert.is(bc.tryPublish('full'), false, 'a ring ahead of the holder: no room');
  throws(() => bc.publishSync('x', { timeout: 150 }), TimeoutError, /publish on the Broadcast/);
  await rejects(bc.publish('x', { timeout: 150 }), TimeoutError);
  assert.is(bc.published, 4, 'nothing more was published');
  // A live subscriber that leaves lets them go on.
  const waiting = bc.publish('after leave', { timeout: 10_000 });
  holder.send('go');
  await within(5000, waiting);
  // A dead subscriber never holds them up (its pid is checked after ~100 ms).
  const dead = party(shm, 'hold');
  await dead.message('ready');
  for (let i = 0; i < 4; i++) assert.ok(bc.tryPublish(`d${i}`));
  assert.is(bc.tryPublish('x'), false);
  const blocked = bc.publish('after death', { timeout: 10_000 });
  dead.kill();
  await dead.exited;
  const t0 = performance.now();
  await within(5000, blocked);
  assert.ok(performance.now() - t0 < 2000, `publish went on within 2 s of the kill (${Math.round(performance.now() - t0)} ms)`);
  assert.is(bc.subscribers, 0, 'the dead subscriber’s place was freed');
});

test('back-pressure in another process: a blocked publisher child goes on once the slow subscriber reads', async () => {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 2, capacity: 64, backpressure: true }));
  const s = bc.subscribe();
  const pub = party(shm, 'publisher', { id: 1, from: 0, count: 6 });
  const words = new Int32Array(bc.region.mapping.buffer, bc.region.start, 64);
  await until(() => Atomics.load(words, 196 / 4) > 0, { what: 'the publisher asleep waiting for room', peers: [pub] });
  assert.is(bc.published, 2);
  const got = [];
  while (got.length < 6) got.push(checkValue(await s.recv({ timeout: 5000 })));
  assert.equal(got, [0, 1, 2, 3, 4, 5].map((i) => (1 << 20) | i));
  assert.ok((await pub.result()).ok);
});

test('close: publishes refused, subscribers drain then get ChannelClosedError; blocked receivers in other processes wake', async () => {
  const { shm, bc } = fresh();
  const s = bc.subscribe();
  const child = party(shm, 'subscriber', { timeout: 20_000 });
  await child.message('ready');
  bc.publishSync('one');
  bc.publishSync('two');
  await new Promise((r) => setTimeout(r, 30));
  bc.close();
  bc.close();
  assert.ok(bc.closed);
  throws(() => bc.publishSync('x'), ClosedWriteError, /Write to closed channel/);
  throws(() => bc.tryPublish('x'), ClosedWriteError);
  await rejects(bc.publish('x'), ClosedWriteError);
  assert.equal([s.recvSync({ encoding: 'utf8' }), s.recvSync({ encoding: 'utf8' })], ['one', 'two']);
  throws(() => s.recvSync(), ChannelClosedError, /closed and this subscriber received every message/);
  await rejects(s.recv(), ChannelClosedError);
  assert.is(s.tryRecv(), undefined);
  const late = bc.subscribe({ from: 'oldest' });
  const seen = [];
  for await (const m of late) seen.push(m.toString());
  assert.equal(seen, ['one', 'two'], 'for await drains and ends');
  const r = await child.result();
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal([r.got.length, r.closed], [2, true]);
});

test('async: recv resolves; timeout, abort, subscriber close and release reject; the event loop keeps running', async () => {
  const { shm, bc } = fresh();
  const s = bc.subscribe();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    const p = s.recv({ encoding: 'utf8', timeout: 5000 });
    setTimeout(() => bc.publishSync('later'), 100);
    assert.is(await within(5000, p), 'later');
    assert.ok(ticks >= 5, `timers ran while recv waited (${ticks} ticks)`);
    const t0 = ticks;
    await rejects(s.recv({ timeout: 200 }), TimeoutError);
    assert.ok(ticks - t0 >= 10, `timers ran during a 200 ms wait (${ticks - t0} ticks)`);
    const ac = new AbortController();
    const q = s.recv({ signal: ac.signal });
    setTimeout(() => ac.abort('stop'), 20);
    await rejects(q, AbortError);
    const into = Buffer.alloc(64);
    const r = s.recvInto(into, { timeout: 5000 });
    const other = party(shm, 'publisher', { id: 7, from: 0, count: 1 });
    const length = await within(5000, r);
    assert.is(checkValue(into.subarray(0, length)), (7 << 20) | 0);
    assert.ok((await other.result()).ok);
    const c = s.recv();
    setTimeout(() => s.close(), 20);
    await rejects(c, ChannelClosedError);
    const s2 = bc.subscribe();
    const d = s2.recv();
    setTimeout(() => bc.release(), 20);
    await rejects(d, RegionUnmappedError);
    throws(() => bc.publishSync('x'), RegionUnmappedError);
    throws(() => s2.recvSync(), RegionUnmappedError);
  } finally {
    clearInterval(timer);
  }
});

test('for await yields every message in order until close; a lag ends the loop, the next loop goes on', async () => {
  // Back-pressure keeps the publisher within the ring of the loop, however slowly the loop
  // is scheduled (without it, a loaded machine lets the publisher overrun it).
  const { bc } = fresh({ depth: 4, backpressure: true });
  const s = bc.subscribe();
  const seen = [];
  const loop = (async () => {
    for await (const m of s) seen.push(m.toString());
  })();
  for (let i = 0; i < 20; i++) await bc.publish(`m${i}`);
  await until(() => seen.length === 20, { what: 'all 20 messages' });
  bc.close();
  await within(5000, loop);
  assert.equal(seen, Array.from({ length: 20 }, (_, i) => `m${i}`));
  const { bc: b2 } = fresh({ depth: 2 });
  const t = b2.subscribe();
  for (let i = 0; i < 5; i++) b2.publishSync(`x${i}`);
  const err = await rejects((async () => {
    for await (const m of t) void m;
  })(), LaggedError);
  assert.is(err.missed, 3);
  const rest = [];
  b2.close();
  for await (const m of t) rest.push(m.toString());
  assert.equal(rest, ['x3', 'x4']);
});

test('recvSync sleeps in the kernel: a blocked receiver child uses little CPU', async () => {
  const { shm, bc } = fresh();
  const child = party(shm, 'subscriber', { count: 1, timeout: 20_000 });
  await child.message('ready');
  const { cpuMs } = await import('./fixtures/channel-harness.js');
  await new Promise((r) => setTimeout(r, 100)); // past its spin
  const before = cpuMs(child.pid);
  await new Promise((r) => setTimeout(r, 500));
  const used = cpuMs(child.pid) - before;
  assert.ok(used < 150, `the waiting child used ${used} ms of CPU in 500 ms`);
  bc.publishSync(msg(1, 1));
  const r = await child.result();
  assert.equal(r.got, [(1 << 20) | 1]);
});

test('a subscriber dropped without close() frees its place once collected', async () => {
  if (!globalThis.gc) return; // test/run.js runs files with --expose-gc
  const { bc } = fresh({ backpressure: true });
  (() => {
    bc.subscribe();
  })();
  assert.is(bc.subscribers, 1);
  for (let i = 0; i < 50 && bc.subscribers > 0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.is(bc.subscribers, 0, 'its place was freed');
  for (let i = 0; i < 20; i++) assert.ok(bc.tryPublish('x'), 'nobody holds publishers up');
});

test('try-calls alone are never wedged by a dead party: tryPublish past a dead subscriber, tryRecv past a dead publisher', async () => {
  const shm = h.object();
  const bc = h.keep(new Broadcast(shm, { depth: 2, capacity: 64, backpressure: true }));
  const holder = party(shm, 'hold');
  await holder.message('ready');
  assert.ok(bc.tryPublish('a') && bc.tryPublish('b'));
  assert.is(bc.tryPublish('c'), false);
  holder.kill();
  await holder.exited;
  const t0 = performance.now();
  await until(() => bc.tryPublish('c'), { what: 'tryPublish to get past the dead subscriber', timeoutMs: 5000, every: 5 });
  assert.ok(performance.now() - t0 < 2000);
  // A publisher killed mid-copy (stopped by the step gate at publish.copied), then polled past.
  const { Gate, GATE_BYTES } = await import('./fixtures/step-gate.js');
  const shm2 = h.object(4096);
  const bc2 = h.keep(new Broadcast(shm2, { depth: 4, capacity: 64, offset: 4096 }));
  const gate = new Gate(Region.map(shm2, 0, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  const s = bc2.subscribe();
  const a = h.start('broadcast-party', 'publisher', { offset: 4096, gateOffset: 0, id: 1, from: 0, count: 1, step: 'broadcast.publish.copied' }, { shm: shm2 });
  await gate.reached({ peer: a });
  a.kill();
  await a.exited;
  bc2.publishSync(msg(2, 0));
  let got;
  await until(() => (got = s.tryRecv()) !== undefined, { what: 'tryRecv to get past the dead publisher', timeoutMs: 5000, every: 5 });
  assert.is(checkValue(got), (2 << 20) | 0);
  assert.is(bc2.stats().abandoned, 1);
});

test.run();
