// The C sketch of docs/chunked-layout.md, compiled and run against this library. The ```c
// blocks of docs/layout.md, then of docs/chunked-layout.md, are taken in order into
// chunked.c, compiled with test/fixtures/chunked-c-main.c (`cc -std=c11 -Wall -Wextra -O2`,
// no warnings allowed), and the program is run next to JS parties:
// - it attaches to chunked channels this library created (layout version 5; it reads
//   maxMessage); the sketch of docs/layout.md alone (version 4) refuses them by their
//   version, and a version-4 channel is no chunked channel to it;
// - messages of every length around the chunk boundaries, C → JS and JS → C, every kind;
// - a C sender and a JS sender on one channel, a C receiver then JS receiving: every
//   message whole, exactly once, never interleaved;
// - a JS sender SIGKILLed half-way through a message: the C receiver gets nothing of it and
//   the next message whole;
// - the C repair of a first chunk whose receiver died past it records the message in
//   droppedSerial (what tells an Unbuffered sender that nobody received it).
// Skipped, with a message, only when no C compiler is installed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { Channel, Region } from '../dist/index.js';
import { cBlocks, compiler, compileSketch } from './fixtures/c-sketch.js';
import { harness, settle, within } from './fixtures/channel-harness.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { deadPid, READING, state } from './fixtures/slot-states.js';

const FLAGS = ['-std=c11', '-Wall', '-Wextra', '-O2'];
const AT = 4096;

const layout = cBlocks('layout.md');
const build = compileSketch(test, { name: 'chunked-c', sources: { 'chunked.c': [...layout, ...cBlocks('chunked-layout.md')].join('\n') }, main: 'chunked-c-main.c', flags: FLAGS });
// the sketch of docs/layout.md alone (channels of version 4), with its own test program
const v4 = compileSketch(test, { name: 'layout-c', sources: { 'layout.c': layout.join('\n') }, main: 'layout-c-main.c', flags: FLAGS });
if (build !== null) build.v4 = v4.status;
const BINARY = build?.binary;
const V4_ONLY = v4?.binary;

const h = harness(test, 'ckc');

/** A run of a C program; killed after the test. */
function run(binary, args) {
  if (build?.status !== 0) throw new Error(`the C sketch did not compile:\n${build?.output}`);
  const child = spawn(binary, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  h.defer(() => child.kill('SIGKILL'));
  return {
    async result(ms = 30_000) {
      const exit = await within(ms, exited, `${args.join(' ')} to exit`);
      if (exit.code !== 0) throw new Error(`${args.join(' ')} exited (code ${exit.code}, signal ${exit.signal})\n${stderr}${stdout}`);
      return JSON.parse(stdout.trim().split('\n').pop());
    },
  };
}
const c = (...args) => run(BINARY, args);

/** The C program's self-checking message. */
function message(producer, seq, len) {
  const m = Buffer.alloc(len);
  for (let i = 12; i < len; i++) m[i] = (producer * 131 + seq * 7 + i * 13) & 255;
  m.writeUInt32LE(producer, 0);
  m.writeUInt32LE(seq, 4);
  m.writeUInt32LE(len, 8);
  return m;
}
function check(m) {
  const producer = m.readUInt32LE(0);
  const seq = m.readUInt32LE(4);
  assert.is(m.readUInt32LE(8), m.length, 'length field');
  assert.ok(message(producer, seq, m.length).equals(m), `message ${producer}/${seq} whole`);
  return [producer, seq, m.length];
}

const KINDS = [
  { name: 'Unbuffered.Variable', capacity: 64, make: (shm) => new Channel.Unbuffered.Variable(shm, { capacity: 64, maxMessage: 1 << 20, offset: AT }) },
  { name: 'SingleBuffered.Variable', capacity: 100, make: (shm) => new Channel.SingleBuffered.Variable(shm, { capacity: 100, maxMessage: 1 << 20, offset: AT }) },
  { name: 'Buffered.Variable', capacity: 4096, make: (shm) => new Channel.Buffered.Variable(shm, { depth: 4, capacity: 4096, maxMessage: 1 << 22, offset: AT }) },
];
const lengths = (cap) => [12, cap - 1, cap, cap + 1, 2 * cap - 8, 2 * cap - 7, 5 * cap + 3, 70_000];

if (compiler === undefined) {
  test('the C sketch (skipped: no C compiler installed)', () => console.log('  no cc, gcc or clang: the C sketch of docs/chunked-layout.md is not tested here'));
} else {
  test('the C sketch compiles without a warning (-std=c11 -Wall -Wextra -O2)', () => {
    assert.is(build.status, 0, build.output);
    assert.is(build.output.trim(), '', 'no warnings');
    assert.is(build.v4, 0);
  });

  test('it attaches to a chunked channel (version 5) and reads maxMessage; the version-4 sketch refuses it by its version; a version-4 channel is not chunked', async () => {
    const shm = h.object();
    h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 4096, maxMessage: 1 << 22, offset: AT }));
    h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 4096, offset: AT * 8 }));
    const version = (at) => {
      const r = Region.map(shm, at, 64);
      const v = r.read(4, 6).readUInt16LE(0);
      r.unmap();
      return v;
    };
    assert.equal([version(AT), version(AT * 8)], [5, 4], 'this library writes version 5 for a chunked channel, 4 for the other');
    assert.equal(await c('open', shm.name, AT).result(), { ok: true, kind: 3, depth: 4, capacity: 4096, maxMessage: 1 << 22 });
    assert.match((await run(V4_ONLY, ['open', shm.name, AT]).result()).error, /layout version 5\b/);
    assert.match((await c('open', shm.name, AT * 8).result()).error, /not a chunked channel/);
    assert.ok((await run(V4_ONLY, ['open', shm.name, AT * 8]).result()).ok, 'the version-4 channel next to it works with the version-4 sketch');
  });

  for (const kind of KINDS) {
    test(`${kind.name}: C sends messages of every length around the chunk boundaries, JS receives them whole and in order`, async () => {
      const shm = h.object();
      const ch = h.keep(kind.make(shm));
      const sizes = lengths(kind.capacity);
      const sender = c('send', shm.name, AT, 7, ...sizes);
      for (const [seq, len] of sizes.entries()) assert.equal(check(await ch.recv({ timeout: 10_000 })), [7, seq, len]);
      assert.equal(await sender.result(), { sent: sizes.length, end: 'ok' });
    });

    test(`${kind.name}: JS sends them, C receives them whole and in order`, async () => {
      const shm = h.object();
      const ch = h.keep(kind.make(shm));
      const sizes = lengths(kind.capacity);
      const receiver = c('recv', shm.name, AT, sizes.length);
      for (const [seq, len] of sizes.entries()) await ch.send(message(3, seq, len), { timeout: 10_000 });
      const r = await receiver.result();
      assert.is(r.end, 'count', JSON.stringify(r));
      assert.equal(r.got, sizes.map((len, seq) => [3, seq, len]));
    });
  }

  test('a C sender and a JS sender, a C receiver then JS receiving, on one channel: every message whole, once, each sender\'s in order', async () => {
    const shm = h.object();
    const ch = h.keep(KINDS[2].make(shm));
    const sizes = Array.from({ length: 30 }, (_, i) => [100, 4096, 9000, 40_000][i % 4] + i);
    const cReceiver = c('recv', shm.name, AT, 35); // takes the first 35 (it holds the receive lock while it waits)
    const cSender = c('send', shm.name, AT, 1, ...sizes);
    const jsSending = (async () => {
      for (const [seq, len] of sizes.entries()) await ch.send(message(2, seq, len), { timeout: 20_000 });
    })();
    const r = await cReceiver.result();
    assert.is(r.end, 'count', JSON.stringify(r));
    const mine = [];
    for (;;) {
      const m = await settle(ch.recv({ timeout: 1000 }));
      if (m.error) break;
      mine.push(check(m.value));
    }
    await jsSending;
    assert.equal(await cSender.result(), { sent: sizes.length, end: 'ok' });
    const all = [...r.got, ...mine];
    assert.is(all.length, 60, 'every message once');
    for (const list of [mine, r.got]) {
      for (const p of [1, 2]) {
        const seqs = list.filter(([q]) => q === p).map(([, s]) => s);
        assert.equal(seqs, [...seqs].sort((x, y) => x - y), `producer ${p} in order`);
      }
    }
    assert.is(new Set(all.map(([p, s]) => `${p}/${s}`)).size, 60, 'none twice');
    assert.ok(r.got.some(([p]) => p === 1) && r.got.some(([p]) => p === 2), 'the C receiver got messages of both senders');
  });

  test('a JS sender SIGKILLed half-way through a message: the C receiver gets nothing of it, then the next message whole', async () => {
    const shm = h.object(AT + 65536);
    h.keep(KINDS[1].make(shm));
    const gate = new Gate(Region.map(shm, 0, GATE_BYTES));
    h.defer(() => gate.region.unmap());
    const receiver = c('recv', shm.name, AT, 1);
    const a = h.start('chunk-party', 'send', { offset: AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 3, tag: 'A', size: 5000 }, { shm, timeoutMs: 20_000 });
    await gate.reached({ peer: a });
    a.kill();
    await a.exited;
    const ch = h.keep(Channel.attach(shm, { offset: AT }));
    await ch.send(message(9, 0, 777), { timeout: 10_000 });
    const r = await receiver.result();
    assert.equal(r, { got: [[9, 0, 777]], end: 'count' }, 'the C receiver dropped A and received the next message');
  });

  test('the C repair of a first chunk whose receiver died past it records the message in droppedSerial; the next receiver drops the rest and gets the next message', async () => {
    const shm = h.object(AT + 65536);
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 32, maxMessage: 64, offset: AT }));
    ch.sendSync(Buffer.alloc(50, 5)); // two chunks: slots 0 and 1 FULL, tail at 2 (slot 0, next lap)
    const bytes = Region.map(shm, AT, 512);
    h.defer(() => bytes.unmap());
    const mem = Buffer.from(bytes.bytes().buffer, bytes.bytes().byteOffset, 512);
    const i32 = new Int32Array(mem.buffer, mem.byteOffset, 128);
    const slot0 = 256;
    assert.is(mem.readUInt32LE(slot0 + 8) >>> 30, 1, 'slot 0 holds a first chunk of several (MORE)');
    const serial = mem.readUInt32LE(slot0 + 16);
    assert.ok(serial !== 0);
    // A receiver killed after moving head past the first chunk, before it recorded the message.
    Atomics.store(i32, slot0 / 4, state(READING, 0, await deadPid()));
    Atomics.store(i32, 128 / 4, 1);
    assert.is(Atomics.load(i32, 240 / 4), 0, 'droppedSerial not set yet');
    const r = await c('send', shm.name, AT, 7, 12).result(); // claims slot 0 once it proves the receiver dead
    assert.equal(r, { sent: 1, end: 'ok' });
    assert.is(Atomics.load(i32, 240 / 4) >>> 0, serial, 'the repair recorded the lost message');
    const got = ch.recvSync({ timeout: 5000 });
    assert.equal(check(got), [7, 0, 12], 'the remaining chunk was dropped; the C message came whole');
  });
}

test.run();
