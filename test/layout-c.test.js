// The C sketch of docs/layout.md, compiled and run against this library. The ```c blocks
// of the page are taken in order into layout.c, compiled with the test program
// test/fixtures/layout-c-main.c (`cc -std=c11 -Wall -Wextra -O2`, no warnings allowed),
// and the program is run as senders, receivers and creators next to JS parties:
// - every kind in both directions, each message arriving once, whole and in order;
// - channels the C program creates, which JS attaches to, and the other way round; a
//   structure of layout version 1, and channels of the older layout (versions 2 and 3),
//   refused by both;
// - two C senders, two C receivers and JS parties (sync in a child, async here) at once;
// - positions across their wrap (head, tail and every slot's lap tag set near the end of
//   the cycle);
// - an Unbuffered C send taken back on a timeout and on a close;
// - a JS party killed at each step of a send, a receive, a retraction and a repair,
//   after which the C program repairs its slot and the channel goes on;
// - the page names every step of CHANNEL_STEPS, and the sketch's step comments only those.
// Skipped, with a message, only when no C compiler is installed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Channel, ChannelClosedError, Int32Ptr, LayoutError, Region } from '../dist/index.js';
import { CHANNEL_STEPS } from '../dist/channel/slot-protocol.js';
import { checkMessage, fillMessage, messageLength } from './fixtures/channel-common.js';
import { cBlocks, compiler, compileSketch } from './fixtures/c-sketch.js';
import { harness, throws, until, within } from './fixtures/channel-harness.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';

const FLAGS = ['-std=c11', '-Wall', '-Wextra', '-O2'];

// ---- the compiler, found and run once, before any test -------------------------------
const blocks = cBlocks('layout.md');
const build = compileSketch(test, { name: 'layout-c', sources: { 'layout.c': blocks.join('\n') }, main: 'layout-c-main.c', flags: FLAGS });
const BINARY = build?.binary;

const h = harness(test, 'lc');

/** A run of the C program; the harness kills it after the test. */
class CParty {
  constructor(args, { timeoutMs = 30_000 } = {}) {
    if (build?.status !== 0) throw new Error(`the C sketch did not compile:\n${build?.output}`);
    this.args = args.map(String);
    this.child = spawn(BINARY, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.stdout = '';
    this.stderr = '';
    this.exit = null;
    this.child.stdout.on('data', (d) => (this.stdout += d));
    this.child.stderr.on('data', (d) => (this.stderr += d));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    h.defer(() => this.kill());
  }

  describe() {
    return `layout-c ${this.args[0]} ${this.args.slice(2).join(' ')} (pid ${this.pid})`;
  }

  get running() {
    return this.exit === null;
  }

  kill() {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** Its JSON line, once it has exited with code 0. */
  async result(ms = 30_000) {
    const exit = await within(ms, this.exited, `${this.describe()} to exit`);
    if (exit.code !== 0) throw new Error(`${this.describe()} exited (code ${exit.code}, signal ${exit.signal})\n${this.stderr}${this.stdout}`);
    return JSON.parse(this.stdout.trim().split('\n').pop());
  }
}

const c = (...args) => new CParty(args);
const FULL_WORD = 2 << 30; // a slot state word FULL with lap tag 0, as an Int32
const KIND = { Unbuffered: 1, SingleBuffered: 2, Buffered: 3 };
const PAYLOAD = { Empty: 0, Fixed: 1, Variable: 2 };

/** The nine kinds, with shapes that put messages on both sides of a cache line. */
const KINDS = [
  ['Unbuffered', 'Empty', 1, 0],
  ['Unbuffered', 'Fixed', 1, 56],
  ['Unbuffered', 'Variable', 1, 52],
  ['SingleBuffered', 'Empty', 1, 0],
  ['SingleBuffered', 'Fixed', 1, 100],
  ['SingleBuffered', 'Variable', 1, 200],
  ['Buffered', 'Empty', 3, 0],
  ['Buffered', 'Fixed', 4, 56],
  ['Buffered', 'Variable', 5, 300],
].map(([cls, payload, depth, width]) => ({
  name: `${cls}.${payload}`,
  cls,
  payload,
  depth,
  width,
  count: cls === 'Unbuffered' ? 1000 : 3000,
  /** Creates (or attaches to) it with its kind's class. */
  make(shm, offset) {
    const o = { offset };
    if (cls === 'Buffered') o.depth = this.depth;
    if (payload === 'Fixed') o.width = this.width;
    if (payload === 'Variable') o.capacity = this.width;
    return h.keep(new Channel[cls][payload](shm, o));
  },
  /** The C program's create arguments. */
  cArgs: [KIND[cls], PAYLOAD[payload], depth, width],
}));

/** Messages (producer, 0..count-1) of a kind, as the C program makes them. */
function message(kind, buf, producer, seq) {
  if (kind.payload === 'Empty') return undefined;
  return fillMessage(buf, producer, seq, messageLength(kind.payload, kind.width, producer, seq));
}

/** Receives (async) `count` messages of `producer` in order, then expects the channel closed and empty. */
async function receiveInOrder(ch, kind, producer, count) {
  for (let i = 0; i < count; i++) {
    const m = await ch.recv({ timeout: 10_000 });
    if (kind.payload === 'Empty') {
      if (m.length !== 0) assert.unreachable(`message ${i} of an Empty channel has ${m.length} bytes`);
      continue;
    }
    const got = checkMessage(m, kind.payload, kind.width); // throws on a torn message
    if (got.producer !== producer || got.seq !== i) assert.unreachable(`message ${i}: got (${got.producer}, ${got.seq}), expected (${producer}, ${i})`);
  }
  const end = await ch.recv({ timeout: 10_000 }).then(
    (m) => `another message (${m.length} bytes)`,
    (e) => e,
  );
  assert.ok(end instanceof ChannelClosedError, `after ${count} messages: closed and empty, got ${end}`);
}

/** Pairs [producer, seq, producer, seq, ...] of a C receiver grouped by producer. */
function byProducer(flat) {
  const out = {};
  for (let i = 0; i < flat.length; i += 2) (out[flat[i]] ??= []).push(flat[i + 1]);
  return out;
}
const range = (n) => Array.from({ length: n }, (_, i) => i);

// ---- the build -------------------------------------------------------------------------

if (compiler === undefined) {
  console.log('layout-c.test.js skipped: no C compiler (cc, gcc or clang) is installed, so the C sketch of docs/layout.md was not compiled or run');
} else {
  test('docs/layout.md has the C sketch, and it compiles with -Wall -Wextra without a warning', () => {
    assert.ok(blocks.length >= 1, 'docs/layout.md has ```c blocks');
    assert.ok(build.error === undefined, `ran ${compiler}: ${build.error}`);
    assert.is(build.status, 0, `${compiler} ${FLAGS.join(' ')} failed:\n${build.output}`);
    assert.is(build.output.trim(), '', `warnings:\n${build.output}`);
  });

  // ---- every kind, both directions -------------------------------------------------------

  for (const [i, kind] of KINDS.entries()) {
    test(`${kind.name}: C sender -> JS receiver, ${kind.count} messages, then the C program closes it`, async () => {
      const shm = h.object(8192);
      const offset = 4096 + 16 * i; // any multiple of 16
      const ch = kind.make(shm, offset);
      const sender = c('send', shm.name, offset, 1, kind.count, 1, 10_000);
      await within(30_000, receiveInOrder(ch, kind, 1, kind.count), 'the JS receiver');
      assert.equal(await sender.result(), { sent: kind.count, end: 'ok' });
      const s = ch.stats();
      assert.is(s.sent, kind.count);
      assert.is(s.received, kind.count);
      assert.ok(s.closed);
    });

    test(`${kind.name}: JS sender -> C receiver, ${kind.count} messages, on a channel the C program created`, async () => {
      const shm = h.object(8192);
      const offset = 16 * i;
      assert.equal((await c('create', shm.name, offset, ...kind.cArgs).result()).ok, true);
      const ch = kind.make(shm, offset); // the same shape: attaches, not refused
      const receiver = c('recv', shm.name, offset, kind.count + 1, 10_000);
      const buf = Buffer.alloc(Math.max(kind.width, 16));
      await within(30_000, (async () => {
        for (let seq = 0; seq < kind.count; seq++) await ch.send(message(kind, buf, 2, seq), { timeout: 10_000 });
      })(), 'the JS sender');
      ch.close();
      const r = await receiver.result();
      assert.is(r.end, 'closed', `the C receiver ended with ${JSON.stringify(r).slice(0, 300)}`);
      assert.is(r.received, kind.count);
      if (kind.payload !== 'Empty') assert.equal(byProducer(r.got), { 2: range(kind.count) });
    });
  }

  // ---- initialisation and versions ----------------------------------------------------

  test('channels the C program creates: JS attaches to each kind; JS channels: the C program reads the same shape', async () => {
    const shm = h.object(KINDS.length * 2048 * 2);
    for (const [i, kind] of KINDS.entries()) {
      const offset = i * 2048;
      const r = await c('create', shm.name, offset, ...kind.cArgs).result();
      assert.ok(r.ok, `create ${kind.name}: ${JSON.stringify(r)}`);
      const ch = h.keep(Channel.attach(shm, { offset }));
      assert.is(ch.kind, kind.name);
      assert.is(ch.depth, kind.depth);
      assert.is(ch.width, kind.width);
      assert.is(ch.byteLength, 256 + kind.depth * r.stride);
      // created again by either side: the same channel, not refused
      assert.ok((await c('create', shm.name, offset, ...kind.cArgs).result()).ok);
      kind.make(shm, offset);
      // and the other way round
      const at = (KINDS.length + i) * 2048;
      const js = kind.make(shm, at);
      const o = await c('open', shm.name, at).result();
      assert.equal(o, { ok: true, kind: KIND[kind.cls], payload: PAYLOAD[kind.payload], depth: kind.depth, width: kind.width, stride: (js.byteLength - 256) / kind.depth });
    }
    // another shape at an offset that holds a channel, and bytes that are not a header
    const other = KINDS[8].cArgs.slice();
    other[2] += 1;
    assert.match((await c('create', shm.name, 8 * 2048, ...other).result()).error, /already/);
  });

  test('a channel says layout version 4; versions 1, 2 and 3 (the older channel layouts) are refused by both, each naming the version', async () => {
    const shm = h.object(4096);
    const ch = KINDS[5].make(shm, 0);
    ch.release();
    const r = Region.map(shm, 0, 64);
    h.defer(() => r.unmap());
    assert.is(r.read(4, 6).readUInt16LE(0), 4, 'this library writes version 4');
    for (const version of [1, 2, 3]) {
      r.write(Buffer.from([version, 0]), 4); // version (u16)
      throws(() => Channel.attach(shm), LayoutError, new RegExp(`layout version ${version}\\b`));
      assert.match((await c('open', shm.name, 0).result()).error, new RegExp(`layout version ${version}\\b`));
    }
    r.write(Buffer.from([4, 0]), 4);
    assert.ok((await c('open', shm.name, 0).result()).ok);
    h.keep(Channel.attach(shm));
  });

  // ---- many parties at once -----------------------------------------------------------

  test('Buffered.Variable: two C senders, two C receivers, a JS child (sync) and this process (async) on each side at once', async () => {
    const kind = { payload: 'Variable', width: 120 };
    const N = 3000;
    const shm = h.object(8192);
    const offset = 4096;
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 3, capacity: kind.width, offset }));
    const jsConsumer = h.start('channel-stream', 'consume', { offset, payload: kind.payload, width: kind.width, timeout: 20_000 }, { shm, timeoutMs: 40_000 });
    const jsProducer = h.start('channel-stream', 'produce', { offset, id: 3, count: N, payload: kind.payload, width: kind.width, timeout: 20_000 }, { shm, timeoutMs: 40_000 });
    await Promise.all([jsConsumer.message('ready'), jsProducer.message('ready')]);
    const cReceivers = [c('recv', shm.name, offset, 8 * N, 20_000), c('recv', shm.name, offset, 8 * N, 20_000)];
    const cSenders = [c('send', shm.name, offset, 1, N, 0, 20_000), c('send', shm.name, offset, 2, N, 0, 20_000)];
    jsConsumer.send('go');
    jsProducer.send('go');
    // this process: a sender (producer 4) and a receiver
    const mine = {};
    const receiving = (async () => {
      for (;;) {
        let m;
        try {
          m = await ch.recv({ timeout: 20_000 });
        } catch (err) {
          if (err instanceof ChannelClosedError) return;
          throw err;
        }
        const { producer, seq } = checkMessage(m, kind.payload, kind.width);
        (mine[producer] ??= []).push(seq);
      }
    })();
    receiving.catch(() => {}); // awaited below; a failure must not end the process before that
    const buf = Buffer.alloc(kind.width);
    for (let seq = 0; seq < N; seq++) await ch.send(message(kind, buf, 4, seq), { timeout: 20_000 });
    for (const s of cSenders) assert.equal(await s.result(), { sent: N, end: 'ok' });
    const produced = await jsProducer.result();
    assert.equal(produced.error, null);
    ch.close();
    await within(30_000, receiving, 'this process\'s receiver');
    const consumed = await jsConsumer.result();
    assert.is(consumed.torn, 0, consumed.firstTorn);
    assert.equal(consumed.error, null);
    const all = [mine, consumed.perProducer];
    for (const r of cReceivers) {
      const res = await r.result();
      assert.is(res.end, 'closed', JSON.stringify(res).slice(0, 300));
      all.push(byProducer(res.got));
    }
    for (const producer of [1, 2, 3, 4]) {
      const seen = new Array(N).fill(0);
      for (const got of all) {
        const seqs = got[producer] ?? [];
        for (let k = 1; k < seqs.length; k++) assert.ok(seqs[k] > seqs[k - 1], `producer ${producer}'s messages in order for each receiver`);
        for (const s of seqs) seen[s]++;
      }
      const wrong = seen.findIndex((n) => n !== 1);
      assert.is(wrong, -1, `producer ${producer}'s message ${wrong} received ${seen[wrong]} times`);
    }
    assert.ok(all.every((got) => Object.keys(got).length > 0), 'every receiver got messages');
  });

  // ---- across the wrap of positions ---------------------------------------------------

  /** The modulus of positions (docs/layout.md): a whole number of 256 laps, at most 2^30. */
  const cycleOf = (depth) => depth * 256 * Math.floor(2 ** 22 / depth);

  /** Moves an empty channel's head and tail to `start`, and every slot's state to FREE with the lap tag of the lap it is in there. */
  function moveTo(shm, ch, offset, start) {
    const depth = ch.depth;
    const cycle = cycleOf(depth);
    const stride = (ch.byteLength - 256) / depth;
    const r = Region.map(shm, offset, ch.byteLength);
    for (let i = 0; i < depth; i++) {
      const p = (start + ((i - (start % depth) + depth) % depth)) % cycle; // the first position >= start in slot i
      new Int32Ptr(r, 256 + i * stride).store((Math.floor(p / depth) & 255) << 22); // FREE, lap tag, pid 0
    }
    new Int32Ptr(r, 64).store(start);
    new Int32Ptr(r, 128).store(start);
    r.unmap();
    return cycle;
  }

  // depth 3: the cycle 3 × 256 × 1398101, below 2^30; depth 1: 2^30. Either way the lap
  // tags go from 255 to 0 where the positions wrap.
  for (const kind of [{ ...KINDS[7], depth: 3 }, KINDS[5], KINDS[1]]) {
    test(`${kind.name} (depth ${kind.depth}): 300 messages each way across the wrap of positions (head and tail start at cycle - 4)`, async () => {
      const shm = h.object(8192);
      const ch = kind.make(shm, 0);
      const cycle = moveTo(shm, ch, 0, cycleOf(ch.depth) - 4);
      assert.is(ch.stats().sent, cycle - 4, 'tail where the test put it');
      const n = 300;
      // C -> JS
      const sender = c('send', shm.name, 0, 1, n, 0, 10_000);
      for (let i = 0; i < n; i++) {
        const got = checkMessage(await within(10_000, ch.recv(), `message ${i}`), kind.payload, kind.width);
        assert.equal([got.producer, got.seq], [1, i]);
      }
      assert.equal(await sender.result(), { sent: n, end: 'ok' });
      assert.is(ch.stats().sent, (cycle - 4 + n) % cycle);
      // JS -> C
      const receiver = c('recv', shm.name, 0, n, 10_000);
      const buf = Buffer.alloc(kind.width);
      for (let seq = 0; seq < n; seq++) await ch.send(message(kind, buf, 2, seq), { timeout: 10_000 });
      const r = await receiver.result();
      assert.is(r.end, 'max', JSON.stringify(r).slice(0, 300));
      assert.equal(byProducer(r.got), { 2: range(n) });
      const s = ch.stats();
      assert.is(s.sent, (cycle - 4 + 2 * n) % cycle);
      assert.is(s.received, s.sent);
    });
  }

  // ---- Unbuffered hand-over -----------------------------------------------------------

  test('Unbuffered: a C send nobody takes is retracted on its timeout and on a close (tail back, slot free)', async () => {
    const kind = KINDS[2];
    const shm = h.object(4096);
    const ch = kind.make(shm, 0);
    const word = (at) => {
      const r = Region.map(shm, at, 4);
      const v = new Int32Ptr(r, 0).load();
      r.unmap();
      return v;
    };
    const slot = () => [word(256), word(260)]; // the state word and the reserved word
    const t0 = performance.now();
    assert.equal(await c('send', shm.name, 0, 1, 1, 0, 150).result(), { sent: 0, end: 'timeout' });
    assert.ok(performance.now() - t0 >= 150, 'not before its timeout');
    assert.is(ch.stats().sent, 0, 'tail moved back');
    assert.equal(slot(), [0, 0], 'FREE for position 0 (lap tag 0) again; the reserved word 0');
    assert.is(ch.tryRecv(), undefined);
    const sender = c('send', shm.name, 0, 1, 1, 0, -1);
    await until(() => ch.stats().waiting.senders === 1 && slot()[0] === FULL_WORD, { what: 'the C sender waiting with its message FULL', peers: [sender] });
    ch.close();
    assert.equal(await sender.result(), { sent: 0, end: 'closed' });
    assert.is(ch.stats().sent, 0);
    assert.is(word(64), 1 << 31, 'tail moved back to 0, keeping the closed bit');
    assert.equal(slot(), [0, 0]);
  });

  test('Unbuffered: trySend offers only while a C receive is in progress (recvActive), and the C receiver gets it', async () => {
    const kind = KINDS[1];
    const shm = h.object(4096);
    const ch = kind.make(shm, 0);
    const buf = Buffer.alloc(kind.width);
    assert.is(ch.trySend(message(kind, buf, 5, 0)), false, 'no receive in progress');
    const receiver = c('recv', shm.name, 0, 1, 10_000);
    const r = Region.map(shm, 208, 4);
    h.defer(() => r.unmap());
    await until(() => new Int32Ptr(r).load() === 1, { what: 'the C receiver counted in recvActive', peers: [receiver] });
    assert.is(ch.trySend(message(kind, buf, 5, 0)), true);
    const got = await receiver.result();
    assert.equal(got.got, [5, 0]);
    assert.is(new Int32Ptr(r).load(), 0, 'recvActive back to 0');
  });

  // ---- dead parties: a JS process killed at each step, repaired by the C program ------

  const GATE_AT = 0;
  const CHANNEL_AT = 256;
  const VAR = { payload: 'Variable', width: 100 };
  // [step, the killed party's role, kind, whether its message is delivered after the repair]
  const DEATHS = [
    ['channel.send.cas', 'send', 'SingleBuffered', false], // tail not moved: the slot is free again for the position
    ['channel.send.tail', 'send', 'SingleBuffered', false], // tail moved: the position is skipped
    ['channel.send.copied', 'send', 'SingleBuffered', false],
    ['channel.send.published', 'send', 'SingleBuffered', true], // FULL: nothing to repair
    ['channel.recv.cas', 'recv', 'SingleBuffered', true], // head not moved: FULL again
    ['channel.recv.head', 'recv', 'SingleBuffered', false], // head moved: the message went with it
    ['channel.recv.copied', 'recv', 'SingleBuffered', false],
    ['channel.recv.freed', 'recv', 'SingleBuffered', false], // FREE: nothing to repair
    ['channel.send.cas', 'send', 'Buffered', false],
    ['channel.send.tail', 'send', 'Buffered', false],
    ['channel.recv.cas', 'recv', 'Buffered', true],
    ['channel.recv.head', 'recv', 'Buffered', false],
    ['channel.retract.begin', 'send', 'Unbuffered', true], // still FULL
    ['channel.retract.cas', 'send', 'Unbuffered', false], // WRITING, tail past the position: skipped
    ['channel.retract.tail', 'send', 'Unbuffered', false], // WRITING, tail moved back: free again
    ['channel.repair.cas', 'repair', 'SingleBuffered', false],
  ];

  test('every step of CHANNEL_STEPS but the sleep is killed above, and docs/layout.md names each; its C sketch marks only those steps', () => {
    const killed = new Set(DEATHS.map(([step]) => step));
    assert.equal(CHANNEL_STEPS.filter((s) => !killed.has(s)), ['channel.wait.sleep']);
    const page = readFileSync(new URL('../docs/layout.md', import.meta.url), 'utf8');
    for (const step of CHANNEL_STEPS) assert.ok(page.includes(`\`${step}\``), `docs/layout.md names ${step}`);
    const marked = [...blocks.join('\n').matchAll(/\/\* > (channel\.[a-z.-]+) \*\//g)].map((m) => m[1]);
    assert.equal([...new Set(marked)].sort(), [...CHANNEL_STEPS].sort(), 'the C sketch marks every step, and no other name');
  });

  for (const [step, role, cls, delivered] of DEATHS) {
    test(`${cls}.Variable: a JS ${role === 'repair' ? 'receiver repairing a dead sender\'s slot' : role === 'send' ? 'sender' : 'receiver'} killed at ${step}: the C program repairs it`, async () => {
      const shm = h.object(4096);
      const o = { offset: CHANNEL_AT, capacity: VAR.width, ...(cls === 'Buffered' ? { depth: 2 } : {}) };
      const ch = h.keep(new Channel[cls].Variable(shm, o));
      const gate = new Gate(Region.map(shm, GATE_AT, GATE_BYTES));
      h.defer(() => gate.region.unmap());
      const party = (r, s, extra) => h.start('layout-c-party', r, { offset: CHANNEL_AT, gateOffset: GATE_AT, step: s, producer: 9, ...VAR, timeout: 5000, ...extra }, { shm, timeoutMs: 20_000 });
      const kill = async (p) => {
        await gate.reached({ peer: p });
        p.kill();
        await p.exited;
      };
      if (role === 'recv') {
        // the message (9, 0) waits in the slot for the receiver that will die
        assert.ok(ch.trySend(fillMessage(Buffer.alloc(VAR.width), 9, 0, messageLength(VAR.payload, VAR.width, 9, 0))));
        await kill(party('recv', step));
      } else if (role === 'send') {
        // an Unbuffered send nobody takes retracts after its 100 ms timeout
        await kill(party('send', step, cls === 'Unbuffered' ? { timeout: 100 } : {}));
      } else {
        // a sender dies mid-copy; a receiver blocked by its slot repairs it, and dies there
        await kill(party('send', 'channel.send.copied'));
        Atomics.store(gate.w, 0, 0);
        Atomics.store(gate.w, 1, 0);
        await kill(party('recv', step));
      }
      // The C program: a receiver expecting exactly what must arrive, and a sender of two more.
      const expected = delivered ? [9, 0, 1, 0, 1, 1] : [1, 0, 1, 1];
      const t0 = performance.now();
      const receiver = c('recv', shm.name, CHANNEL_AT, expected.length / 2, 3000);
      const sender = c('send', shm.name, CHANNEL_AT, 1, 2, 0, 3000);
      assert.equal(await sender.result(), { sent: 2, end: 'ok' });
      const r = await receiver.result();
      assert.is(r.end, 'max', `the C receiver got ${JSON.stringify(r)}`);
      assert.equal(r.got, expected);
      assert.ok(performance.now() - t0 < 2500, 'repaired within the liveness bound and a sleep or two');
      assert.is(ch.tryRecv(), undefined, 'nothing more: no message twice');
      assert.equal(ch.stats().busy, [], 'no slot held');
      // and the channel goes on
      if (cls !== 'Unbuffered') {
        assert.ok(ch.trySend('after'));
        assert.is(ch.tryRecv({ encoding: 'latin1' }), 'after');
      }
    });
  }

  test('SingleBuffered.Variable: a C receiver alone repairs a dead JS reader of the slot\'s previous lap (blocked, not empty)', async () => {
    const shm = h.object(4096);
    const ch = h.keep(new Channel.SingleBuffered.Variable(shm, { offset: CHANNEL_AT, capacity: VAR.width }));
    const gate = new Gate(Region.map(shm, GATE_AT, GATE_BYTES));
    h.defer(() => gate.region.unmap());
    assert.ok(ch.trySend('P'));
    const a = h.start('layout-c-party', 'recv', { offset: CHANNEL_AT, gateOffset: GATE_AT, step: 'channel.recv.head', timeout: 5000 }, { shm, timeoutMs: 20_000 });
    await gate.reached({ peer: a });
    a.kill();
    await a.exited;
    assert.is(ch.stats().busy.length, 1, 'the dead reader holds the slot');
    const r = await c('recv', shm.name, CHANNEL_AT, 1, 400).result();
    assert.equal(r, { received: 0, end: 'timeout', bad: '', got: [] });
    assert.equal(ch.stats().busy, [], 'repaired by the receiver, with no sender around');
    assert.ok(ch.trySend('after'));
    assert.is(ch.tryRecv({ encoding: 'latin1' }), 'after');
  });
}

test.run();
