// Every channel kind in one process: ordering, capacity, blocking, timeouts, close, payload
// rules, second handles and attach. The same checks run against all nine kinds of the
// gem's table plus Buffered.Variable (one suite against every kind, as ipc-channel runs one
// suite against every backend). Cross-process behaviour is in channel-multiprocess.test.js.
//
// Unbuffered kinds are a rendezvous, so in one process a send is always paired with an
// async receive (or the reverse); nothing here blocks the test's thread without a timeout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Channel,
  ChannelClosedError,
  ClosedWriteError,
  InvalidArgumentError,
  OutOfRangeError,
  PayloadTooLargeError,
  RegionUnmappedError,
  TimeoutError,
} from '../dist/index.js';
import { KINDS, sample } from './fixtures/channel-common.js';
import { harness, rejects, throws, track, until, within } from './fixtures/channel-harness.js';

const h = harness(test, 'chk');

function fresh(kind, options = {}) {
  const shm = h.object();
  const ch = h.keep(new (kind.cls())(shm, { ...kind.opts, ...options }));
  return { shm, ch };
}

const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * Delivers one message from `ch` to `ch` and returns what the receiver got. Buffered
 * kinds: sendSync then recvSync; Unbuffered: an async receive pending, then an async send.
 */
async function pass(kind, ch, data, recvOptions) {
  if (kind.holds > 0) {
    ch.sendSync(data, { timeout: 5000 });
    return ch.recvSync({ timeout: 5000, ...recvOptions });
  }
  const r = ch.recv({ timeout: 5000, ...recvOptions });
  await ch.send(data, { timeout: 5000 });
  return within(5000, r, 'the paired receive');
}

/** Like pass, but receives with recvInto / recvIntoSync into `target`. */
async function passInto(kind, ch, data, target) {
  if (kind.holds > 0) {
    ch.sendSync(data, { timeout: 5000 });
    return ch.recvIntoSync(target, { timeout: 5000 });
  }
  const r = ch.recvInto(target, { timeout: 5000 });
  await ch.send(data, { timeout: 5000 });
  return within(5000, r, 'the paired recvInto');
}

for (const kind of KINDS) {
  const K = kind.name;

  test(`${K}: kind, depth and width are what was asked`, () => {
    const { ch } = fresh(kind);
    assert.is(ch.kind, K);
    assert.ok(ch instanceof Channel);
    assert.ok(ch instanceof kind.cls());
    assert.is(ch.depth, Math.max(1, kind.depth));
    assert.is(ch.width, Math.abs(kind.width));
    assert.is(ch.offset, 0);
    const s = ch.stats();
    assert.equal({ kind: s.kind, depth: s.depth, width: s.width, sent: s.sent, received: s.received, queued: s.queued, closed: s.closed }, { kind: K, depth: ch.depth, width: ch.width, sent: 0, received: 0, queued: 0, closed: false });
  });

  test(`${K}: messages arrive whole and in the order sent (async send and receive)`, async () => {
    const { ch } = fresh(kind);
    const N = 40;
    const got = [];
    const consumer = (async () => {
      for (let i = 0; i < N; i++) got.push(await ch.recv({ timeout: 10_000 }));
    })();
    for (let i = 0; i < N; i++) await within(10_000, ch.send(sample(kind, i).send), `send ${i}`);
    await within(10_000, consumer, 'the consumer');
    assert.is(got.length, N);
    got.forEach((b, i) => {
      assert.ok(Buffer.isBuffer(b), 'a Buffer comes out');
      assert.is(hex(b), hex(sample(kind, i).expect), `message ${i}`);
    });
    assert.is(ch.stats().queued, 0);
    assert.is(ch.stats().sent, N);
    assert.is(ch.stats().received, N);
  });

  if (kind.holds > 0) {
    test(`${K}: sendSync/recvSync keep order over several laps of the ring`, () => {
      const { ch } = fresh(kind);
      let sent = 0;
      let got = 0;
      for (let lap = 0; lap < 5; lap++) {
        for (let i = 0; i < kind.holds; i++) ch.sendSync(sample(kind, sent++).send, { timeout: 1000 });
        for (let i = 0; i < kind.holds; i++) assert.is(hex(ch.recvSync({ timeout: 1000 })), hex(sample(kind, got++).expect));
        // interleaved: one in, one out, so head and tail sit at every slot in turn
        ch.sendSync(sample(kind, sent++).send, { timeout: 1000 });
        assert.is(hex(ch.recvSync({ timeout: 1000 })), hex(sample(kind, got++).expect));
      }
      assert.is(ch.stats().received, got);
    });
  }

  test(`${K}: holds ${kind.holds} message(s): trySend fails once full, tryRecv drains in order`, () => {
    const { ch } = fresh(kind);
    for (let i = 0; i < kind.holds; i++) assert.ok(ch.trySend(sample(kind, i).send), `trySend ${i}`);
    assert.is(ch.trySend(sample(kind, 99).send), false, kind.holds === 0 ? 'no receiver is waiting' : 'full');
    const s = ch.stats();
    assert.is(s.queued, kind.holds);
    assert.is(s.sent, kind.holds);
    for (let i = 0; i < kind.holds; i++) assert.is(hex(ch.tryRecv()), hex(sample(kind, i).expect), `tryRecv ${i}`);
    assert.is(ch.tryRecv(), undefined, 'empty');
    assert.is(ch.stats().queued, 0);
  });

  test(`${K}: a receive waits for a message and a send waits ${kind.holds === 0 ? 'for a receiver' : 'for room'}`, async () => {
    const { ch } = fresh(kind);
    // receive first: it sleeps until a message comes
    const r = track(ch.recv({ timeout: 10_000 }));
    await until(() => ch.stats().waiting.receivers === 1, { what: 'the receive to sleep' });
    assert.not.ok(r.settled, 'the receive is still waiting');
    assert.ok(ch.trySend(sample(kind, 1).send), 'trySend succeeds: a receiver is waiting (or there is room)');
    await within(5000, r.promise, 'the woken receive');
    assert.is(r.error, undefined);
    assert.is(hex(r.value), hex(sample(kind, 1).expect));

    // send on a full channel (Unbuffered: with no receiver) waits
    for (let i = 0; i < kind.holds; i++) assert.ok(ch.trySend(sample(kind, 10 + i).send));
    const s = track(ch.send(sample(kind, 20).send, { timeout: 10_000 }));
    await until(() => ch.stats().waiting.senders === 1, { what: 'the send to sleep' });
    assert.not.ok(s.settled, 'the send is still waiting');
    const got = [];
    got.push(ch.tryRecv());
    await within(5000, s.promise, 'the woken send');
    assert.is(s.error, undefined);
    for (let m = ch.tryRecv(); m !== undefined; m = ch.tryRecv()) got.push(m);
    const expected = [...Array.from({ length: kind.holds }, (_, i) => 10 + i), 20].map((i) => hex(sample(kind, i).expect));
    assert.equal(got.map(hex), expected, 'everything arrives once, in order');
    assert.is(ch.stats().waiting.senders, 0);
    assert.is(ch.stats().waiting.receivers, 0);
  });

  test(`${K}: timeouts: recvSync/recv on an empty channel and sendSync/send ${kind.holds === 0 ? 'with no receiver' : 'on a full one'} fail with TimeoutError, sending nothing`, async () => {
    const { ch } = fresh(kind);
    let t0 = performance.now();
    throws(() => ch.recvSync({ timeout: 40 }), TimeoutError, /timed out/, 'recvSync');
    assert.ok(performance.now() - t0 >= 35, `recvSync waited its timeout (${performance.now() - t0} ms)`);
    t0 = performance.now();
    await rejects(ch.recv({ timeout: 40 }), TimeoutError, /timed out/, 'recv');
    assert.ok(performance.now() - t0 >= 35, 'recv waited its timeout');
    throws(() => ch.recvSync({ timeout: 0 }), TimeoutError, undefined, 'recvSync timeout 0');

    for (let i = 0; i < kind.holds; i++) assert.ok(ch.trySend(sample(kind, i).send));
    t0 = performance.now();
    throws(() => ch.sendSync(sample(kind, 50).send, { timeout: 40 }), TimeoutError, /timed out/, 'sendSync');
    assert.ok(performance.now() - t0 >= 35, 'sendSync waited its timeout');
    await rejects(ch.send(sample(kind, 51).send, { timeout: 40 }), TimeoutError, /timed out/, 'send');
    const s = ch.stats();
    assert.is(s.sent, kind.holds, 'nothing more was sent');
    assert.is(s.queued, kind.holds);
    assert.equal([s.waiting.senders, s.waiting.receivers], [0, 0], 'no waiter left behind');
    const got = [];
    for (let m = ch.tryRecv(); m !== undefined; m = ch.tryRecv()) got.push(hex(m));
    assert.equal(got, Array.from({ length: kind.holds }, (_, i) => hex(sample(kind, i).expect)), 'only what fitted was delivered');
    throws(() => ch.recvSync({ timeout: -1 }), InvalidArgumentError, /timeout/);
    throws(() => ch.sendSync(sample(kind, 1).send, { timeout: 'soon' }), InvalidArgumentError, /timeout/);
  });

  test(`${K}: close(): sends fail with "Write to closed channel", receives drain what is buffered, then ChannelClosedError`, async () => {
    const { shm, ch } = fresh(kind);
    for (let i = 0; i < kind.holds; i++) assert.ok(ch.trySend(sample(kind, i).send));
    const other = h.keep(Channel.attach(shm));
    ch.close();
    ch.close(); // idempotent
    assert.ok(ch.closed);
    assert.ok(other.closed, 'closed for every handle');
    assert.ok(ch.stats().closed);
    const e1 = throws(() => ch.sendSync(sample(kind, 9).send), ClosedWriteError, /^Write to closed channel \(the .* channel at offset \d+ of shared memory /, 'sendSync');
    assert.is(e1.code, 'ERR_SHM_CHANNEL_CLOSED_WRITE');
    throws(() => ch.sendSync(sample(kind, 9).send, { timeout: 10 }), ClosedWriteError, /^Write to closed channel \(the .* channel at offset \d+ of shared memory /, 'sendSync with timeout');
    throws(() => other.trySend(sample(kind, 9).send), ClosedWriteError, /^Write to closed channel \(the .* channel at offset \d+ of shared memory /, 'trySend');
    await rejects(ch.send(sample(kind, 9).send), ClosedWriteError, /^Write to closed channel \(the .* channel at offset \d+ of shared memory /, 'send');
    assert.is(ch.stats().sent, kind.holds, 'nothing sent after close');
    // what was buffered is still delivered, through every receive API
    const got = [];
    for (let i = 0; i < kind.holds; i++) {
      const api = i % 3;
      got.push(api === 0 ? ch.recvSync({ timeout: 2000 }) : api === 1 ? await within(2000, ch.recv()) : ch.tryRecv());
    }
    assert.equal(got.map(hex), Array.from({ length: kind.holds }, (_, i) => hex(sample(kind, i).expect)));
    const e2 = throws(() => ch.recvSync({ timeout: 2000 }), ChannelClosedError, undefined, 'recvSync');
    assert.is(e2.code, 'ERR_SHM_CHANNEL_CLOSED');
    await rejects(ch.recv(), ChannelClosedError, undefined, 'recv');
    await rejects(other.recvInto(Buffer.alloc(64)), ChannelClosedError, undefined, 'recvInto');
    throws(() => ch.recvIntoSync(Buffer.alloc(64), { timeout: 2000 }), ChannelClosedError, undefined, 'recvIntoSync');
    assert.is(ch.tryRecv(), undefined, 'tryRecv: nothing');
    let n = 0;
    for await (const _ of ch) n++;
    assert.is(n, 0, 'for await ends at once');
  });

  test(`${K}: for await yields every message, then ends when the channel is closed`, async () => {
    const { ch } = fresh(kind);
    const N = 12;
    const got = [];
    const loop = (async () => {
      for await (const m of ch) got.push(hex(m));
    })();
    for (let i = 0; i < N; i++) await within(5000, ch.send(sample(kind, i).send), `send ${i}`);
    ch.close();
    await within(5000, loop, 'the for await loop to end');
    assert.equal(got, Array.from({ length: N }, (_, i) => hex(sample(kind, i).expect)));
  });

  test(`${K}: a second handle (new with the same options, or attach) is the same channel; release() lets go of this handle only`, async () => {
    const { shm, ch } = fresh(kind);
    const twin = h.keep(new (kind.cls())(shm, kind.opts));
    const attached = h.keep(Channel.attach(shm, { offset: 0 }));
    assert.is(attached.kind, K);
    assert.ok(attached instanceof kind.cls(), 'attach gives the right class');
    assert.is(attached.depth, ch.depth);
    assert.is(attached.width, ch.width);
    assert.is(hex(await pass(kind, twin, sample(kind, 3).send)), hex(sample(kind, 3).expect));
    for (let i = 0; i < kind.holds; i++) assert.ok(twin.trySend(sample(kind, i).send));
    assert.is(attached.stats().queued, kind.holds, 'the handles share one channel');
    ch.release();
    ch.release(); // idempotent
    throws(() => ch.trySend(sample(kind, 1).send), RegionUnmappedError, undefined, 'trySend after release');
    throws(() => ch.recvSync({ timeout: 10 }), RegionUnmappedError, undefined, 'recvSync after release');
    throws(() => ch.stats(), RegionUnmappedError, undefined, 'stats after release');
    await rejects(ch.recv(), RegionUnmappedError, undefined, 'recv after release');
    // the channel lives on for the other handles
    for (let i = 0; i < kind.holds; i++) assert.is(hex(attached.tryRecv()), hex(sample(kind, i).expect));
    twin.release();
    attached.release();
    // and a fresh attach after every handle let go still finds it
    const again = h.keep(Channel.attach(shm));
    assert.is(again.kind, K);
    assert.is(again.stats().sent, 1 + kind.holds);
  });

  // ---- payload rules ----------------------------------------------------------------

  if (kind.payload === 'Empty') {
    test(`${K}: carries no data: a non-empty payload is refused, receives give a zero-length Buffer`, async () => {
      const { ch } = fresh(kind);
      for (const bad of ['x', Buffer.from([0]), new Uint8Array(3), new Float64Array(1)]) {
        throws(() => ch.trySend(bad), PayloadTooLargeError, /no data/, `trySend(${bad?.constructor?.name})`);
        throws(() => ch.sendSync(bad, { timeout: 10 }), PayloadTooLargeError, /no data/);
        await rejects(ch.send(bad), PayloadTooLargeError, /no data/);
      }
      assert.is(ch.stats().sent, 0, 'nothing was sent');
      for (const ok of [undefined, '', Buffer.alloc(0), new Uint8Array(0)]) {
        const got = await pass(kind, ch, ok);
        assert.ok(Buffer.isBuffer(got));
        assert.is(got.length, 0);
      }
      assert.is(await pass(kind, ch, undefined, { encoding: 'utf8' }), '');
      assert.is(await passInto(kind, ch, undefined, Buffer.alloc(0)), 0, 'recvInto: 0 bytes');
      assert.is(await passInto(kind, ch, undefined, Buffer.alloc(8, 7)), 0);
    });
  }

  if (kind.payload === 'Fixed') {
    test(`${K}: longer than width is refused with PayloadTooLargeError; shorter is zero-padded to exactly width`, async () => {
      const { ch } = fresh(kind);
      const W = kind.width;
      const tooLong = [Buffer.alloc(W + 1, 1), 'x'.repeat(W + 1), 'é'.repeat(W / 2 + 1) /* fewer chars than W, more bytes */];
      for (const bad of tooLong) {
        const e = throws(() => ch.trySend(bad), PayloadTooLargeError, new RegExp(`width of ${W}`), 'trySend too long');
        assert.is(e.code, 'ERR_SHM_PAYLOAD_TOO_LARGE');
        assert.ok(e instanceof RangeError);
        throws(() => ch.sendSync(bad, { timeout: 10 }), PayloadTooLargeError);
        await rejects(ch.send(bad), PayloadTooLargeError);
      }
      assert.is(ch.stats().sent, 0, 'nothing was sent');
      assert.is(ch.tryRecv(), undefined);
      // fill every slot with 0xff first, so padding must overwrite old bytes
      for (let i = 0; i < ch.depth; i++) assert.is(hex(await pass(kind, ch, Buffer.alloc(W, 0xff))), 'ff'.repeat(W));
      for (let i = 0; i < ch.depth; i++) {
        const got = await pass(kind, ch, 'ab');
        assert.is(got.length, W, 'exactly width bytes');
        assert.is(hex(got), hex(Buffer.concat([Buffer.from('ab'), Buffer.alloc(W - 2)])), 'zero-padded');
      }
      assert.is((await pass(kind, ch, '')).length, W, 'an empty message is all zeros');
      assert.is(hex(await pass(kind, ch, Buffer.alloc(W, 0x5a))), '5a'.repeat(W), 'exactly width fits');
    });
  }

  if (kind.payload === 'Variable') {
    test(`${K}: longer than capacity is refused and nothing is sent; any length up to capacity arrives as sent`, async () => {
      const { ch } = fresh(kind);
      const C = -kind.width;
      for (let i = 0; i < kind.holds - 1; i++) ch.trySend('keep'); // leave room for one more
      const before = ch.stats();
      for (const bad of [Buffer.alloc(C + 1), 'y'.repeat(C + 1), 'é'.repeat(C / 2 + 1)]) {
        throws(() => ch.trySend(bad), PayloadTooLargeError, new RegExp(`capacity of ${C}.*nothing was sent`), 'trySend');
        throws(() => ch.sendSync(bad, { timeout: 10 }), PayloadTooLargeError);
        await rejects(ch.send(bad, { timeout: 10 }), PayloadTooLargeError);
      }
      const after = ch.stats();
      assert.is(after.sent, before.sent, 'stats: nothing sent');
      assert.is(after.queued, before.queued);
      for (let i = 0; i < kind.holds - 1; i++) assert.is(ch.tryRecv({ encoding: 'utf8' }), 'keep');
      assert.is(ch.tryRecv(), undefined, 'tryRecv: nothing was sent');
      for (const len of [0, 1, 7, C - 1, C]) {
        const data = Buffer.alloc(len);
        for (let i = 0; i < len; i++) data[i] = (i * 29 + len) & 255;
        const got = await pass(kind, ch, data);
        assert.is(got.length, len, `length ${len} kept`);
        assert.is(hex(got), hex(data));
      }
      // a long message then a short one in the same slot: no leftovers
      await pass(kind, ch, Buffer.alloc(C, 0xee));
      for (let i = 0; i < ch.depth; i++) assert.is(hex(await pass(kind, ch, 'hi')), hex(Buffer.from('hi')));
    });
  }

  if (kind.payload !== 'Empty') {
    test(`${K}: strings go in as UTF-8, Buffers come out; { encoding } gives strings; any ArrayBufferView can be sent`, async () => {
      const { ch } = fresh(kind);
      const pad = (b) => (kind.payload === 'Fixed' ? Buffer.concat([b, Buffer.alloc(kind.width - b.length)]) : b);
      const text = 'ça va ✓';
      const got = await pass(kind, ch, text);
      assert.ok(Buffer.isBuffer(got));
      assert.is(hex(got), hex(pad(Buffer.from(text, 'utf8'))));
      assert.is(await pass(kind, ch, text, { encoding: 'utf8' }), pad(Buffer.from(text)).toString('utf8'));
      assert.is(await pass(kind, ch, 'abc', { encoding: 'hex' }), pad(Buffer.from('abc')).toString('hex'));
      assert.is(await pass(kind, ch, 'abc', { encoding: 'base64' }), pad(Buffer.from('abc')).toString('base64'));
      if (kind.holds > 0) {
        ch.trySend(text);
        assert.is(ch.tryRecv({ encoding: 'utf8' }), pad(Buffer.from(text)).toString('utf8'), 'tryRecv with encoding');
      }
      const views = [new Uint16Array([0x0102, 0x0304]), new Float64Array([1.5]), new DataView(new ArrayBuffer(3)), Buffer.from('abcdef').subarray(2, 5)];
      new DataView(views[2].buffer).setUint8(1, 9);
      for (const v of views) {
        const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        assert.is(hex(await pass(kind, ch, v)), hex(pad(bytes)), v.constructor.name);
      }
      for (const bad of [42, {}, null, [1, 2], new ArrayBuffer(2)]) {
        throws(() => ch.trySend(bad), InvalidArgumentError, /string or an ArrayBufferView/, `trySend(${JSON.stringify(bad)})`);
      }
      throws(() => ch.recvSync({ encoding: 'klingon', timeout: 10 }), InvalidArgumentError, /encoding/);
      throws(() => ch.tryRecv({ encoding: 7 }), InvalidArgumentError, /encoding/);
    });

    test(`${K}: recvInto / recvIntoSync fill the caller's buffer and return the length`, async () => {
      const { ch } = fresh(kind);
      const W = Math.abs(kind.width);
      const target = Buffer.alloc(W + 4, 0xaa);
      const n = await passInto(kind, ch, 'hello', target);
      const expectLen = kind.payload === 'Fixed' ? W : 5;
      assert.is(n, expectLen);
      assert.is(target.subarray(0, n).toString('latin1').replace(/\0+$/, ''), 'hello');
      assert.is(hex(target.subarray(W)), 'aaaaaaaa', 'bytes past the width are untouched');
      if (kind.payload === 'Variable') assert.is(target[5], 0xaa, 'bytes past the message are untouched');
      const u8 = new Uint8Array(W);
      assert.is(await passInto(kind, ch, Buffer.alloc(W, 3), u8), W, 'a plain Uint8Array works too');
      assert.ok(u8.every((b) => b === 3));
      // a target that cannot hold a message is refused before any wait, and nothing is taken
      if (kind.holds > 0) ch.trySend('queued');
      throws(() => ch.recvIntoSync(Buffer.alloc(W - 1), { timeout: 1000 }), OutOfRangeError, /holds/);
      await rejects(ch.recvInto(Buffer.alloc(W - 1), { timeout: 1000 }), OutOfRangeError, /holds/);
      throws(() => ch.recvIntoSync('nope', { timeout: 1000 }), InvalidArgumentError);
      await rejects(ch.recvInto([1, 2, 3], { timeout: 1000 }), InvalidArgumentError);
      if (kind.holds > 0) assert.is(ch.tryRecv({ encoding: 'latin1' }).replace(/\0+$/, ''), 'queued', 'the refused receives took nothing');
    });
  }
}

test.run();
