// Node streams over a channel: ch.writable() and ch.readable(). A 64 MiB file copied
// between two processes with pipeline() (sha256 equal at both ends; the RSS of both stays
// within bounds: back-pressure works), chunks larger than the capacity split and joined,
// back-pressure on each side, abort and destroy mid-stream on either side (no hang, the
// other side ends, nothing left in /dev/shm), errors propagated. Every test has a watchdog.
//
// 64 MiB, not the 1 GiB of the issue: the copy is the same code path at any size, and
// 1 GiB (plus writing and hashing the file twice) would take a large share of the suite's
// time on CI; memory is checked against the file size, which a missing back-pressure
// would exceed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, writeSync, openSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Channel, ChannelReadable, ChannelWritable, ClosedWriteError, InvalidArgumentError, RegionUnmappedError } from '../dist/index.js';
import { harness, rejects, throws, until, within, delay } from './fixtures/channel-harness.js';
import { listSuiteObjects, suiteChanges } from './shm-check.js';

const h = harness(test, 'stream');
const it = (name, ms, fn) => test(name, () => within(ms, fn(), name));
const MiB = 1024 * 1024;
const CAPACITY = 65536;

let dir;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cshm-stream-'));
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

function channel({ depth = 8, capacity = CAPACITY, shm = h.object() } = {}) {
  return { shm, ch: h.keep(new Channel.Buffered.Variable(shm, { depth, capacity })) };
}

/** Writes `size` random bytes to a new file; returns its path and sha256. */
function randomFile(name, size) {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  const hash = createHash('sha256');
  try {
    for (let left = size; left > 0; ) {
      const block = randomBytes(Math.min(left, MiB) - (left === size ? 3 : 0) || 1); // an odd size: chunks do not line up with the capacity
      writeSync(fd, block);
      hash.update(block);
      left -= block.length;
    }
  } finally {
    closeSync(fd);
  }
  return { path, sha256: hash.digest('hex') };
}

async function sha256Of(path) {
  const hash = createHash('sha256');
  for await (const c of createReadStream(path)) hash.update(c);
  return hash.digest('hex');
}

/** A Writable that collects what it is given. */
function collector() {
  const chunks = [];
  const w = new Writable({
    write(c, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  w.bytes = () => Buffer.concat(chunks);
  w.chunks = chunks;
  return w;
}

// ---- across processes ---------------------------------------------------------------

it('a 64 MiB file: pipeline(createReadStream, ch.writable()) in a child, pipeline(ch.readable(), createWriteStream) here; sha256 equal, RSS bounded on both sides', 25_000, async () => {
  const size = 64 * MiB;
  const file = randomFile('source.bin', size);
  const { shm, ch } = channel();
  const child = h.start('stream-peer', 'write-file', { file: file.path }, { shm });
  await child.message('ready');
  const target = join(dir, 'copy.bin');
  // sampled after a collection (the runner starts this file with --expose-gc), often: the
  // chunks already passed on are garbage that the allocator keeps as RSS until collected;
  // what the streams hold stays. (The collections slow the copy down: the throughput
  // printed here is not the channel's; examples/stream-file.js measures that.)
  const gc = globalThis.gc ?? (() => {});
  gc();
  const rss0 = process.memoryUsage.rss();
  let rssMax = rss0;
  const sampler = setInterval(() => {
    gc();
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
  }, 25);
  const t0 = performance.now();
  child.send('go');
  try {
    await pipeline(ch.readable(), createWriteStream(target));
  } finally {
    clearInterval(sampler);
  }
  const ms = performance.now() - t0;
  const r = await child.result();
  assert.is(r.error, null, JSON.stringify(r.error));
  assert.is(r.bytes, size);
  assert.is(r.sha256, file.sha256, 'the child read the file whole');
  assert.is(await sha256Of(target), file.sha256, 'the copy is equal');
  assert.ok(ch.closed, 'the writable closed the channel when it finished');
  const growth = { child: r.rssGrowth, parent: rssMax - rss0 };
  console.log(`  64 MiB copied in ${ms.toFixed(0)} ms (${(size / MiB / (ms / 1000)).toFixed(0)} MiB/s); RSS growth: child ${(growth.child / MiB).toFixed(1)} MiB, parent ${(growth.parent / MiB).toFixed(1)} MiB`);
  assert.ok(growth.child < 64 * MiB, `the child's RSS grew by ${growth.child} bytes`);
  assert.ok(growth.parent < 64 * MiB, `the parent's RSS grew by ${growth.parent} bytes`);
});

it('the parent writes, a child reads: bytes and sha256 equal, the child\'s stream ends when the writable finishes', 15_000, async () => {
  const { shm, ch } = channel({ depth: 4, capacity: 1000 });
  const child = h.start('stream-peer', 'read', {}, { shm });
  await child.message('ready');
  child.send('go');
  const data = randomBytes(3 * MiB + 17);
  // chunks of every size around the capacity
  const chunks = [];
  for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 13) % 5000) chunks.push(data.subarray(at, at + n));
  await pipeline(Readable.from(chunks), ch.writable());
  const r = await child.result();
  assert.is(r.error, null, JSON.stringify(r.error));
  assert.is(r.bytes, data.length);
  assert.is(r.sha256, createHash('sha256').update(data).digest('hex'));
});

it('destroy() of the readable mid-stream: the child\'s writable fails with ClosedWriteError and it exits; no hang, nothing left in /dev/shm', 15_000, async () => {
  const before = listSuiteObjects();
  const { shm, ch } = channel();
  const child = h.start('stream-peer', 'write-forever', {}, { shm });
  await child.message('ready');
  child.send('go');
  const readable = ch.readable();
  let got = 0;
  for await (const c of readable) {
    got += c.length;
    if (got >= 8 * MiB) break; // for await's break destroys the stream
  }
  assert.ok(readable.destroyed);
  const r = await child.result();
  assert.is(r.error?.code, 'ERR_SHM_CHANNEL_CLOSED_WRITE', JSON.stringify(r.error));
  assert.ok(r.bytes >= got, 'the child sent at least what was read');
  assert.ok(ch.closed);
  ch.release();
  shm.unlink();
  shm.close();
  assert.equal(suiteChanges(before, listSuiteObjects()).added, [], 'nothing left in /dev/shm');
});

it('abort of the writable\'s signal mid-stream: pipeline rejects with AbortError, the child\'s readable ends; no hang, nothing left', 15_000, async () => {
  const before = listSuiteObjects();
  const { shm, ch } = channel({ depth: 2, capacity: 4096 });
  const child = h.start('stream-peer', 'read', {}, { shm });
  await child.message('ready');
  child.send('go');
  const ac = new AbortController();
  let sent = 0;
  const endless = new Readable({
    read() {
      sent += 4096;
      if (sent === 2 * MiB) ac.abort();
      this.push(Buffer.alloc(4096, 1));
    },
  });
  const e = await rejects(pipeline(endless, ch.writable({ signal: ac.signal })), Error);
  assert.is(e.name, 'AbortError');
  const r = await child.result();
  assert.is(r.error, null, 'the reader saw a clean end (the writable closed the channel)');
  assert.ok(r.bytes > 0 && r.bytes <= sent, `${r.bytes} bytes read of ${sent} produced`);
  assert.is(r.bytes % 4096, 0, 'whole chunks only');
  ch.release();
  shm.unlink();
  shm.close();
  assert.equal(suiteChanges(before, listSuiteObjects()).added, []);
});

// ---- one process: chunks, back-pressure, errors ----------------------------------------------

it('a chunk larger than the capacity goes as several messages, joined again by the readable; an empty write sends nothing', 10_000, async () => {
  const { ch } = channel({ depth: 16, capacity: 100 });
  const w = ch.writable({ close: false });
  const data = randomBytes(250);
  await new Promise((resolve, reject) => w.write(data, (e) => (e ? reject(e) : resolve())));
  await new Promise((resolve, reject) => w.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
  assert.is(ch.stats().queued, 3, '100 + 100 + 50, and nothing for the empty write');
  assert.equal([ch.recvSync().length, ch.recvSync().length, ch.recvSync().length], [100, 100, 50]);
  w.write(data);
  w.end('tail');
  await new Promise((resolve) => w.on('finish', resolve));
  assert.not.ok(ch.closed, 'close: false leaves the channel open');
  ch.close();
  const out = collector();
  await pipeline(ch.readable(), out);
  assert.equal(out.bytes(), Buffer.concat([data, Buffer.from('tail')]));
});

for (const [kind, make] of [
  ['Unbuffered.Variable', (shm) => new Channel.Unbuffered.Variable(shm, { capacity: 300 })],
  ['SingleBuffered.Variable', (shm) => new Channel.SingleBuffered.Variable(shm, { capacity: 300 })],
  ['Buffered.Variable', (shm) => new Channel.Buffered.Variable(shm, { depth: 3, capacity: 300 })],
]) {
  it(`${kind}: a writable and a readable on the same channel, in one process, carry 1 MiB in order`, 10_000, async () => {
    const ch = h.keep(make(h.object()));
    const data = randomBytes(MiB);
    const out = collector();
    const reading = pipeline(ch.readable(), out);
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000, 1001), data.subarray(1001)]), ch.writable());
    await reading;
    assert.ok(out.bytes().equals(data));
    assert.ok(out.chunks.every((c) => c.length <= 300), 'each message at most the capacity');
  });
}

it('back-pressure, readable side: with nobody consuming, it receives only up to its high-water mark and the rest stays in the channel', 10_000, async () => {
  const { ch } = channel({ depth: 64, capacity: 1024 });
  for (let i = 0; i < 64; i++) ch.sendSync(Buffer.alloc(1024, i));
  const r = ch.readable({ highWaterMark: 4096 });
  r.pause();
  r.read(0); // start it without consuming
  await until(() => r.readableLength >= 4096, { what: 'the readable to fill to its high-water mark' });
  await delay(50);
  assert.ok(r.readableLength <= 4096 + 1024, `buffered ${r.readableLength} bytes`);
  assert.ok(ch.stats().queued >= 64 - 5, `${ch.stats().queued} messages still in the channel`);
  ch.close();
  const out = collector();
  r.resume();
  await pipeline(r, out);
  assert.is(out.bytes().length, 64 * 1024);
  for (let i = 0; i < 64; i++) assert.is(out.bytes()[i * 1024], i, `message ${i} in order`);
});

it('a readable fed as fast as it reads still lets timers run (it yields to the event loop now and then)', 10_000, async () => {
  const { ch } = channel({ depth: 1024, capacity: 16 });
  for (let i = 0; i < 1024; i++) ch.sendSync('x');
  const t0 = performance.now();
  const feeding = () => performance.now() < t0 + 200;
  let ticks = 0;
  const timer = setInterval(() => feeding() && ticks++, 1);
  h.defer(() => clearInterval(timer));
  const r = ch.readable({ close: false });
  let n = 0;
  // for 200 ms, a consumer that takes each chunk at once and refills the channel: it is never empty
  r.pipe(new Writable({ write: (_c, _e, cb) => (n++, feeding() && ch.trySend('y'), cb()) }));
  await until(() => !feeding() && ch.stats().queued === 0, { what: 'the feeding to end and the channel to empty' });
  clearInterval(timer);
  r.destroy();
  assert.ok(n > 1024, `${n} messages read`);
  assert.ok(ticks >= 10, `the timer ran ${ticks} times in 200 ms of reading`);
});

it('back-pressure, writable side: write() returns false when the channel and the buffer are full; drain once a receiver makes room', 10_000, async () => {
  const { ch } = channel({ depth: 2, capacity: 1024 });
  const w = ch.writable({ highWaterMark: 2048 });
  const writes = 6;
  const accepted = [...Array(writes).keys()].map((i) => w.write(Buffer.alloc(1024, i)));
  assert.equal(accepted, [true, false, false, false, false, false], 'write() says false from the high-water mark on');
  await until(() => ch.stats().queued === 2, { what: 'the channel to fill' });
  await delay(20);
  assert.is(ch.stats().queued, 2);
  assert.ok(w.writableLength >= 3 * 1024, `the rest waits in the stream (${w.writableLength} bytes), not in memory elsewhere`);
  const drained = new Promise((resolve) => w.once('drain', resolve));
  const got = [];
  while (got.length < writes) got.push((await ch.recv({ timeout: 5000 }))[0]);
  await drained;
  assert.equal(got, [...Array(writes).keys()]);
  w.end();
  await new Promise((resolve) => w.on('close', resolve));
  assert.ok(ch.closed);
});

it('destroy() of a readable with a receive pending: the receive is given up (no message taken), close: false leaves the channel open', 10_000, async () => {
  const { ch } = channel();
  const r = ch.readable({ close: false });
  r.resume();
  await until(() => ch.stats().waiting.receivers > 0, { what: 'the readable\'s receive to wait' });
  r.destroy();
  await new Promise((resolve) => r.on('close', resolve));
  await delay(20);
  assert.not.ok(ch.closed);
  ch.sendSync('kept');
  assert.is(ch.recvSync({ timeout: 1000 }).toString(), 'kept', 'the message went to the next receive, not to the destroyed stream');
  assert.is(ch.stats().waiting.receivers, 0);
});

it('a readable\'s signal: abort destroys it with AbortError and closes the channel (default close: true)', 10_000, async () => {
  const { ch } = channel();
  const ac = new AbortController();
  const r = ch.readable({ signal: ac.signal });
  const done = pipeline(r, collector());
  setTimeout(() => ac.abort(), 20);
  const e = await rejects(done, Error);
  assert.is(e.name, 'AbortError');
  assert.ok(ch.closed);
});

it('errors propagate: a writable on a closed channel fails with ClosedWriteError; a readable whose handle is released fails with RegionUnmappedError', 10_000, async () => {
  const a = channel();
  a.ch.close();
  await rejects(pipeline(Readable.from([Buffer.from('x')]), a.ch.writable()), ClosedWriteError);
  const b = channel();
  const r = b.ch.readable({ close: false });
  const done = pipeline(r, collector());
  await delay(20);
  b.ch.release();
  await rejects(done, RegionUnmappedError);
});

it('the streams are ChannelWritable / ChannelReadable (stream.Writable / Readable); options are checked', 5_000, async () => {
  const { ch } = channel();
  const w = ch.writable({ close: false });
  const r = ch.readable({ close: false, encoding: 'utf8' });
  assert.instance(w, ChannelWritable);
  assert.instance(w, Writable);
  assert.instance(r, ChannelReadable);
  assert.instance(r, Readable);
  ch.sendSync('héllo');
  ch.close();
  let text = '';
  for await (const s of r) text += s;
  assert.is(text, 'héllo');
  w.destroy();
  throws(() => ch.writable({ end: true }), InvalidArgumentError, /unknown key "end"/);
  throws(() => ch.readable({ close: 'yes' }), InvalidArgumentError, /^options\.close must be a boolean, got "yes"$/);
  const fixed = h.keep(new Channel.SingleBuffered.Fixed(h.object(), { width: 8 }));
  throws(() => fixed.writable(), InvalidArgumentError, /^a writable stream needs a Variable channel/);
});

it('examples/stream-file.js copies a file between two processes and says the copy is equal', 20_000, async () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(process.execPath, ['examples/stream-file.js', 'test/fixtures/stream-peer.js'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  h.defer(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  assert.is(code, 0, out);
  assert.match(out, /sent \d+ bytes in [\d.]+ s[\s\S]*the copy is equal/);
});

test.run();
