// Messages larger than a slot: Variable channels created with `maxMessage` above their
// capacity (src/channel/chunks.ts). Options refused before any write; the layout (version 5
// for chunked channels only, version 4 otherwise); messages of every length around the
// chunk boundaries, whole, through every kind, sync and async, try*, recvInto; several
// senders and receivers in real child processes (never interleaved, each sender's order
// kept, exactly once); a sender SIGKILLed half-way (receivers get nothing of its message, the
// next arrives whole, no wedge); a receiver SIGKILLed half-way (the rest is dropped, the next
// arrives whole); give-ups (timeout, abort, close, release) leave nothing behind; a stream
// copy through a 4 KiB channel with 1 MiB writes. Every wait has a watchdog.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortError,
  Channel,
  ChannelClosedError,
  ClosedWriteError,
  DeadlockError,
  InvalidArgumentError,
  LayoutError,
  OutOfRangeError,
  OverlapError,
  PayloadTooLargeError,
  Region,
  RegionUnmappedError,
  TimeoutError,
  Watch,
} from '../dist/index.js';
import { H, W } from '../dist/channel/layout.js';
import { harness, rejects, settle, throws, until, within } from './fixtures/channel-harness.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { big, CHANNEL_AT, drain, KINDS, MAX_MESSAGE, noWedge, tagOf } from './fixtures/chunk-kinds.js';

const h = harness(test, 'chunk');
const it = (name, ms, fn) => test(name, () => within(ms, fn(), name));
const MiB = 1024 * 1024;

function setup(kind) {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(kind.make(shm));
  return { shm, ch };
}

/** Lengths around every boundary of a channel of capacity `c`: one chunk, the first chunk's 8-byte prefix, later chunks. */
function lengthsAround(c) {
  const first = c - 8;
  return [0, 1, 9, c - 1, c, c + 1, first + c - 1, first + c, first + c + 1, first + 5 * c, 10_000, 65_537];
}

// ---- options: refused before anything is written ---------------------------------------

test('bad maxMessage: not an integer, below the capacity, too large, on Fixed / Empty kinds, a capacity too small to chunk: refused with a code, nothing written', () => {
  const shm = h.object();
  const cases = [
    [() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 100.5 }), InvalidArgumentError, /maxMessage must be an integer/],
    [() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: '1000' }), InvalidArgumentError, /maxMessage must be an integer/],
    [() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 63 }), OutOfRangeError, /at least the capacity \(64\)/],
    [() => new Channel.SingleBuffered.Variable(shm, { capacity: 64, maxMessage: 2 ** 32 }), OutOfRangeError, /at most 4294967295/],
    [() => new Channel.Unbuffered.Variable(shm, { capacity: 8, maxMessage: 1000 }), OutOfRangeError, /capacity from 16/],
    [() => new Channel.Buffered.Fixed(shm, { depth: 2, width: 64, maxMessage: 1000 }), InvalidArgumentError, /Variable channels only/],
    [() => new Channel.SingleBuffered.Empty(shm, { maxMessage: 1000 }), InvalidArgumentError, /Variable channels only/],
    [() => new Channel(shm, { depth: 2, width: 64, maxMessage: 1000 }), InvalidArgumentError, /Variable channels only/],
    [() => new Channel(shm, { depth: 2, width: -64, maxMessage: -1 }), OutOfRangeError, /at least the capacity/],
  ];
  for (const [make, Class, re] of cases) {
    const e = throws(make, Class, re);
    assert.ok(typeof e.code === 'string' && e.code.length > 0, `a code on ${e.message}`);
  }
  assert.is(shm.size, 0, 'nothing was created: the object was not even grown');
});

test('maxMessage equal to the capacity is an ordinary channel (layout version 4); larger makes version 5 with maxMessage in the header', () => {
  const shm = h.object();
  const plain = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 64 }));
  const chunked = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 5000, offset: 4096 }));
  const r = Region.map(shm, 0, shm.size);
  h.defer(() => r.unmap());
  const dv = new DataView(r.mapping.buffer, r.start, shm.size);
  assert.is(dv.getUint16(H.VERSION, true), 4);
  assert.is(dv.getUint32(H.MAX_MESSAGE, true), 0);
  assert.is(plain.maxMessage, 64);
  assert.is(dv.getUint16(4096 + H.VERSION, true), 5);
  assert.is(dv.getUint32(4096 + H.MAX_MESSAGE, true), 5000);
  assert.is(chunked.maxMessage, 5000);
  assert.is(chunked.byteLength, plain.byteLength, 'no bigger in memory: the chunk words live in unused control words');
  const attached = h.keep(Channel.attach(shm, { offset: 4096 }));
  assert.is(attached.maxMessage, 5000, 'attach reads maxMessage');
  // (in this process the overlap registry answers first; another process gets a LayoutError: see the layout test below)
  throws(() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 5001, offset: 4096 }), OverlapError, /maxMessage 5001.*overlap .*maxMessage 5000/);
  throws(() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, offset: 4096 }), OverlapError, /capacity 64\) .*overlap .*maxMessage 5000/);
  // A version-5 header whose maxMessage is not above the capacity is corrupt.
  dv.setUint32(4096 + H.MAX_MESSAGE, 64, true);
  throws(() => Channel.attach(shm, { offset: 4096 }), LayoutError, /corrupt.*version 5/);
  dv.setUint32(4096 + H.MAX_MESSAGE, 5000, true);
  // Without handles of its own here, a create with another maxMessage meets the header: LayoutError.
  chunked.release();
  attached.release();
  throws(() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 5001, offset: 4096 }), LayoutError, /already a Buffered\.Variable\(depth 2, capacity 64, maxMessage 5000\); asked for .*maxMessage 5001/);
  throws(() => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, offset: 4096 }), LayoutError, /already a .*maxMessage 5000/);
});

test('a channel is chunked only as a Variable one: a Fixed channel whose header says 5 is corrupt; a Watch is version 3 only, never read as a chunked channel', () => {
  const shm = h.object();
  new Watch(shm, { capacity: 64 }).release();
  new Channel.SingleBuffered.Fixed(shm, { width: 64, offset: 4096 }).release();
  const r = Region.map(shm, 0, shm.size);
  h.defer(() => r.unmap());
  const dv = new DataView(r.mapping.buffer, r.start, shm.size);
  // The Watch's own version is 3 (tagged lock words): a maxMessage in its header is not read.
  dv.setUint32(H.MAX_MESSAGE, 100_000, true);
  Watch.attach(shm).release();
  dv.setUint16(H.VERSION, 2, true);
  throws(() => Watch.attach(shm), LayoutError, /layout version 2; .* reads a Watch of version 3 only/);
  dv.setUint16(4096 + H.VERSION, 5, true);
  dv.setUint32(4096 + H.MAX_MESSAGE, 100_000, true);
  throws(() => Channel.attach(shm, { offset: 4096 }), LayoutError, /corrupt/);
});

it('a message larger than maxMessage: PayloadTooLargeError naming the limit, nothing sent (every send call)', 10_000, async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 64, maxMessage: 1000 }));
  const tooBig = Buffer.alloc(1001);
  throws(() => ch.sendSync(tooBig), PayloadTooLargeError, /1001 bytes exceeds .* maxMessage of 1000/);
  throws(() => ch.trySend(tooBig), PayloadTooLargeError, /maxMessage of 1000/);
  throws(() => ch.trySend('é'.repeat(501)), PayloadTooLargeError, /1002 bytes/);
  await rejects(ch.send(tooBig), PayloadTooLargeError, /maxMessage of 1000/);
  assert.is(ch.stats().sent, 0, 'nothing claimed');
  const sent = ch.send(Buffer.alloc(1000, 1));
  assert.is((await ch.recv({ timeout: 5000 })).length, 1000, 'exactly maxMessage goes');
  await sent;
});

// ---- messages whole, every kind -----------------------------------------------------------

for (const kind of KINDS) {
  it(`${kind.name}: messages of every length around the chunk boundaries arrive whole and in order (async both ways, then sync send / async receive)`, 20_000, async () => {
    const { ch } = setup(kind);
    const lengths = lengthsAround(kind.capacity);
    const sending = (async () => {
      for (const [i, n] of lengths.entries()) await ch.send(big(`a${i}`, n));
    })();
    for (const [i, n] of lengths.entries()) {
      const m = await ch.recv({ timeout: 5000 });
      assert.is(m.length, Math.max(n, big(`a${i}`, 0).length));
      assert.is(tagOf(m), `a${i}`);
    }
    await sending;
    // strings, encodings, empty
    const s = ch.send('é'.repeat(kind.capacity * 2));
    assert.is(await ch.recv({ encoding: 'utf8', timeout: 5000 }), 'é'.repeat(kind.capacity * 2));
    await s;
    const e = ch.send(Buffer.alloc(0));
    assert.is((await ch.recv({ timeout: 5000 })).length, 0);
    await e;
    await noWedge(ch);
  });
}

it('Buffered: a sync sender and a sync receiver in two processes; sha256 of a 10 MiB message equal, through a 4 KiB channel', 30_000, async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 4096, maxMessage: 16 * MiB, offset: CHANNEL_AT }));
  const child = h.start('chunk-peer', 'send', { offset: CHANNEL_AT, messages: [['ten', 10 * MiB], ['small', 100], ['two', 2 * MiB + 1]] }, { shm });
  await child.message('ready');
  child.send('go');
  const a = ch.recvSync({ timeout: 20_000 });
  assert.is(a.length, 10 * MiB);
  assert.is(createHash('sha256').update(a).digest('hex'), createHash('sha256').update(big('ten', 10 * MiB)).digest('hex'));
  assert.is(tagOf(ch.recvSync({ timeout: 5000 })), 'small');
  const into = Buffer.alloc(3 * MiB);
  const n = ch.recvIntoSync(into, { timeout: 5000 });
  assert.is(n, 2 * MiB + 1, 'recvInto: a target larger than the capacity is filled');
  assert.is(tagOf(into.subarray(0, n)), 'two');
  const r = await child.result();
  assert.is(r.error, null, JSON.stringify(r.error));
});

it('recvInto: a target shorter than the next message is refused (OutOfRangeError naming both lengths) and the message stays for the next receive', 10_000, async () => {
  for (const kind of KINDS) {
    const { ch } = setup(kind);
    for (const n of [kind.capacity, kind.capacity * 4]) {
      const sent = ch.send(big('long', n));
      const small = Buffer.alloc(n - 1);
      await rejects(ch.recvInto(small, { timeout: 5000 }), OutOfRangeError, new RegExp(`holds ${n - 1} bytes.* is ${n} bytes; it stays in the channel`));
      if (n > kind.capacity && kind.name !== 'Buffered.Variable') {
        // one slot: the first chunk is back in it; the send waits for the rest
      }
      const target = Buffer.alloc(n);
      assert.is(await ch.recvInto(target, { timeout: 5000 }), n);
      assert.is(tagOf(target), 'long');
      await sent;
    }
    ch.release();
  }
});

it('trySend / tryRecv never wait: a message that fits the free slots goes whole; one that does not is refused (false), nothing sent; tryRecv takes only a whole message', 10_000, async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 64, maxMessage: 10_000 }));
  assert.is(ch.tryRecv(), undefined);
  assert.ok(ch.trySend(big('three', 56 + 64 * 2)), '3 chunks fit 4 free slots');
  assert.not.ok(ch.trySend(big('two', 56 + 64)), '2 more chunks do not fit the 1 slot left');
  assert.is(ch.stats().queued, 3, 'nothing of the refused message went in');
  assert.is(tagOf(ch.tryRecv()), 'three');
  assert.not.ok(ch.trySend(big('five', 56 + 64 * 4)), 'more chunks than slots: never by trySend');
  // A message not whole yet: tryRecv takes nothing of it.
  const sending = settle(ch.send(big('big', 1000)));
  await new Promise((r) => setTimeout(r, 20));
  assert.is(ch.tryRecv(), undefined, 'the first 4 chunks are in, the rest is not');
  assert.is(ch.stats().queued, 4);
  assert.is(tagOf(await ch.recv({ timeout: 5000 })), 'big');
  assert.is((await sending).error, undefined);
  const u = h.keep(new Channel.Unbuffered.Variable(shm, { capacity: 64, maxMessage: 1000, offset: 4096 }));
  assert.not.ok(u.trySend('x'), 'Unbuffered: no receive in progress');
});

// ---- several senders and receivers --------------------------------------------------------

it('3 sender processes and 2 receiver processes (sync and async) plus this one: every message whole, exactly once, each sender\'s in order, never interleaved', 60_000, async () => {
  const shm = h.object();
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 256, maxMessage: MAX_MESSAGE, offset: CHANNEL_AT }));
  const plans = [0, 1, 2].map((s) => Array.from({ length: 12 }, (_, i) => [`s${s}m${i}`, [10, 256, 300, 5000, 70_000][(i + s) % 5] + i]));
  const senders = plans.map((messages, s) => h.start('chunk-peer', 'send', { offset: CHANNEL_AT, messages, async: s === 1 }, { shm }));
  const receivers = [false, true].map((async) => h.start('chunk-peer', 'recv', { offset: CHANNEL_AT, async }, { shm }));
  for (const p of [...senders, ...receivers]) await p.message('ready');
  for (const p of [...senders, ...receivers]) p.send('go');
  const mine = [];
  const total = plans.flat().length;
  const results = [];
  // this process receives too, until the senders are done
  const done = Promise.all(senders.map((p) => p.result(50_000))).then((r) => results.push(...r));
  while (results.length < senders.length) {
    const r = await settle(ch.recv({ timeout: 50 }));
    if (r.value) mine.push([tagOf(r.value), r.value.length]);
  }
  await done;
  for (const r of results) assert.is(r.error, null, JSON.stringify(r.error));
  await drain(ch, 300, []).then((tags) => mine.push(...tags.map((t) => [t, 0])));
  ch.close();
  const lists = [mine, ...(await Promise.all(receivers.map(async (p) => {
    const r = await p.result();
    assert.is(r.error, null, JSON.stringify(r.error));
    return r.got;
  })))];
  const all = lists.flat().map(([t]) => t);
  assert.is(all.length, total, `every message received once (${all.length} of ${total})`);
  assert.is(new Set(all).size, total, 'none twice');
  for (const list of lists) {
    for (let s = 0; s < 3; s++) {
      const order = list.map(([t]) => t).filter((t) => t.startsWith(`s${s}m`)).map((t) => Number(t.slice(3)));
      assert.equal(order, [...order].sort((a, b) => a - b), `sender ${s}'s messages in order at one receiver`);
    }
  }
});

// ---- deaths -------------------------------------------------------------------------------

function gateAt(shm) {
  const gate = new Gate(Region.map(shm, 0, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  return gate;
}

for (const kind of KINDS) {
  it(`${kind.name}: a sender SIGKILLed half-way through a message: the receiver waiting for its rest gets nothing of it, the next message arrives whole, no wedge`, 20_000, async () => {
    const { shm, ch } = setup(kind);
    const gate = gateAt(shm);
    const a = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 3, tag: 'A', size: 200_000 }, { shm, timeoutMs: 20_000 });
    const receiving = settle(ch.recv({ timeout: 8000 })); // takes A's first chunks, then waits for the rest
    await gate.reached({ peer: a });
    a.kill();
    await a.exited;
    const killedAt = performance.now();
    const b = settle(ch.send(big('B', kind.capacity * 5), { timeout: 8000 }));
    const r = await receiving;
    assert.is(r.error, undefined, `the receive goes on to the next message (${r.error?.message})`);
    assert.is(tagOf(r.value), 'B', 'and gets B whole, nothing of A');
    assert.ok(performance.now() - killedAt < 3000, 'within the liveness bound');
    assert.is((await b).error, undefined);
    assert.equal(await drain(ch, 200), [], 'nothing of A left');
    const words = Region.map(shm, CHANNEL_AT, 256);
    h.defer(() => words.unmap());
    assert.is(Atomics.load(new Int32Array(words.mapping.buffer, words.start, 64), W.SEND_DEATHS), 1, 'the dead sender\'s lock was taken over');
    await noWedge(ch);
  });

  it(`${kind.name}: a receiver SIGKILLed half-way through a message: the rest of it is dropped, the next message arrives whole, no wedge`, 20_000, async () => {
    const { shm, ch } = setup(kind);
    const gate = gateAt(shm);
    const sentA = settle(ch.send(big('A', kind.capacity * 10), { timeout: 8000 }));
    const a = h.start('chunk-party', 'recv', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.recv.between', nth: 2, timeout: 8000 }, { shm, timeoutMs: 20_000 });
    await gate.reached({ peer: a });
    a.kill();
    await a.exited;
    const b = settle(ch.send(big('B', kind.capacity * 3), { timeout: 8000 }));
    const got = await drain(ch, 600);
    assert.equal(got, ['B'], `nothing of A, then B whole: ${got}`);
    // A went with its receiver. A buffered send had resolved once A was in the channel; an
    // Unbuffered one, whose rest the next receiver only dropped, is told nobody received it.
    const sentErr = (await sentA).error;
    if (kind.name.startsWith('Unbuffered')) {
      assert.instance(sentErr, TimeoutError, "A's send fails");
      assert.match(sentErr.message, /nobody received it/);
    } else assert.is(sentErr, undefined, "A's send completed (its rest was dropped by the next receiver)");
    assert.is((await b).error, undefined);
    await noWedge(ch);
  });
}

// ---- giving up ----------------------------------------------------------------------------

it('a send that times out half-way (nobody receives): TimeoutError; a later receive gets nothing of it, then the next message whole', 10_000, async () => {
  for (const kind of KINDS) {
    const { ch } = setup(kind);
    await rejects(ch.send(big('A', kind.capacity * 10), { timeout: 100 }), TimeoutError);
    throws(() => ch.sendSync(big('A2', kind.capacity * 10), { timeout: 50 }), TimeoutError);
    const b = settle(ch.send(big('B', kind.capacity * 2), { timeout: 5000 }));
    assert.equal(await drain(ch, 300), ['B']);
    assert.is((await b).error, undefined);
    ch.release();
  }
});

it('a send aborted half-way: AbortError, receivers get nothing of it; a receive aborted before a message begins takes nothing', 10_000, async () => {
  const { ch } = setup(KINDS[2]);
  const ac = new AbortController();
  const p = ch.send(big('A', 5000), { signal: ac.signal });
  setTimeout(() => ac.abort(), 30);
  await rejects(p, AbortError);
  const ac2 = new AbortController();
  const r = ch.recv({ signal: ac2.signal });
  ac2.abort();
  await rejects(r, AbortError);
  const b = settle(ch.send(big('B', 500), { timeout: 5000 }));
  assert.equal(await drain(ch, 300), ['B']);
  assert.is((await b).error, undefined);
});

it('a receive whose time is up half-way through a message whose sender stalled (alive, stopped): TimeoutError saying so, that message dropped; the sender\'s send completes, the next message arrives whole', 15_000, async () => {
  const { shm, ch } = setup(KINDS[2]);
  const gate = gateAt(shm);
  const a = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'A', size: 5000 }, { shm, timeoutMs: 20_000 });
  await gate.reached({ peer: a });
  const t0 = performance.now();
  await rejects(ch.recv({ timeout: 200 }), TimeoutError, /half-way through a message of 5000 bytes whose sender stalled/);
  assert.ok(performance.now() - t0 < 2000, 'bounded: the deadline plus the stall bound');
  gate.release();
  const b = settle(ch.send(big('B', 700), { timeout: 5000 }));
  assert.equal(await drain(ch, 400), ['B'], 'the rest of A dropped, B whole');
  assert.ok((await a.result()).ok, 'A\'s send completed');
  assert.is((await b).error, undefined);
  // the same through sync and an abort
  const c = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'C', size: 5000 }, { shm, timeoutMs: 20_000 });
  await gate.reached({ peer: c });
  throws(() => ch.recvSync({ timeout: 100 }), TimeoutError, /half-way/);
  gate.release();
  assert.equal(await drain(ch, 300), [], 'the rest of C dropped');
  assert.ok((await c.result()).ok);
  const ac = new AbortController();
  const d = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'D', size: 5000 }, { shm, timeoutMs: 20_000 });
  await gate.reached({ peer: d });
  const r = ch.recv({ signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await rejects(r, AbortError, /aborted half-way/);
  gate.release();
  assert.equal(await drain(ch, 300), [], 'the rest of D dropped');
  assert.ok((await d.result()).ok);
});

it('close() half-way: the sender fails with ClosedWriteError, the receiver holding part of it with ChannelClosedError; whole messages already in are still received', 10_000, async () => {
  const { ch } = setup(KINDS[2]);
  ch.sendSync(big('whole', 300));
  const sending = settle(ch.send(big('A', 5000)));
  await new Promise((r) => setTimeout(r, 20));
  ch.close();
  assert.ok((await sending).error instanceof ClosedWriteError);
  assert.is(tagOf(await ch.recv({ timeout: 2000 })), 'whole');
  await rejects(ch.recv({ timeout: 2000 }), ChannelClosedError);
});

it('release() with a send and a receive pending half-way lets go of both locks: another handle sends and receives at once', 10_000, async () => {
  const shm = h.object(CHANNEL_AT + 4096);
  const one = KINDS[2].make(shm);
  const other = h.keep(Channel.attach(shm, { offset: CHANNEL_AT }));
  const sending = settle(one.send(big('A', 5000)));
  await new Promise((r) => setTimeout(r, 20));
  one.release();
  assert.ok((await sending).error, 'the pending send ends');
  const b = settle(other.send(big('B', 700), { timeout: 2000 }));
  assert.equal(await drain(other, 300), ['B'], 'nothing of A');
  assert.is((await b).error, undefined);
  // A receive waiting for the rest of a message (its sender stopped half-way), released.
  const gate = gateAt(shm);
  const two = KINDS[2].make(shm);
  const before = other.stats().received;
  const receiving = settle(two.recv());
  const c = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'C', size: 5000 }, { shm, timeoutMs: 20_000 });
  await gate.reached({ peer: c });
  // C stopped after its second chunk; the receive has taken both (its wake-up may come later than the pause).
  await until(() => other.stats().received - before >= 2, { timeoutMs: 5000, what: 'the receive taking C\'s first two chunks', peers: [c] });
  two.release();
  assert.ok((await receiving).error instanceof RegionUnmappedError, 'the pending receive ends');
  gate.release();
  const d = settle(other.send(big('D', 300), { timeout: 5000 }));
  assert.equal(await drain(other, 300), ['D'], 'the rest of C dropped, D whole');
  assert.ok((await c.result()).ok, 'C\'s send completed');
  assert.is((await d).error, undefined);
});

it('a blocking receive while an async send of this thread is half-way through a message: DeadlockError instead of waiting forever', 10_000, async () => {
  const { ch } = setup(KINDS[2]);
  const sending = ch.send(big('A', 5000));
  await new Promise((r) => setTimeout(r, 10));
  throws(() => ch.recvSync({ timeout: 100 }), DeadlockError, /async send of this thread/);
  assert.is(tagOf(await ch.recv({ timeout: 5000 })), 'A');
  await sending;
});

// ---- streams ------------------------------------------------------------------------------

it('a stream copy through a 4 KiB channel with 1 MiB writes: each write is one message, sha256 equal (a child reads)', 30_000, async () => {
  const shm = h.object();
  h.keep(new Channel.Buffered.Variable(shm, { depth: 8, capacity: 4096, maxMessage: MiB }));
  const dir = mkdtempSync(join(tmpdir(), 'cshm-chunk-'));
  h.defer(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'src.bin');
  const fd = openSync(path, 'w');
  const hash = createHash('sha256');
  for (let i = 0; i < 24; i++) {
    const b = randomBytes(i === 23 ? MiB - 5 : MiB);
    writeSync(fd, b);
    hash.update(b);
  }
  closeSync(fd);
  const reader = h.start('stream-peer', 'read', {}, { shm });
  const writer = h.start('stream-peer', 'write-file', { file: path, highWaterMark: MiB }, { shm });
  await reader.message('ready');
  await writer.message('ready');
  reader.send('go');
  writer.send('go');
  const [w, r] = await Promise.all([writer.result(), reader.result()]);
  assert.is(w.error, null, JSON.stringify(w.error));
  assert.is(r.error, null, JSON.stringify(r.error));
  assert.is(r.bytes, 24 * MiB - 5);
  assert.is(r.sha256, hash.digest('hex'));
  assert.is(r.chunks, 24, 'each 1 MiB write arrived as one message');
});

it('writable(): a write up to maxMessage is one message; a longer one is split into messages of maxMessage', 10_000, async () => {
  const { ch } = setup(KINDS[2]);
  const w = ch.writable({ close: false });
  const got = [];
  const reading = (async () => {
    for (let n = 0; n < 3; n++) got.push((await ch.recv({ timeout: 5000 })).length);
  })();
  await pipeline(async function* () {
    yield Buffer.alloc(5000, 1);
    yield Buffer.alloc(MAX_MESSAGE + 10, 2);
  }, w);
  await reading;
  assert.equal(got, [5000, MAX_MESSAGE, 10]);
});

test.run();
