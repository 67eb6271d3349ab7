// Channels between processes: attach from a child, the Unbuffered rendezvous, blocking and
// waking across processes, close() waking everyone everywhere, stopped and signalled
// receivers, and the CPU an idle receiver costs. Children are test/fixtures/channel-peer.js;
// the parent knows when a child sleeps by reading the channel's own waiter counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Channel } from '../dist/index.js';
import { CHANNEL_AT, CTRL, CTRL_SIZE, KINDS, controlArea, sample } from './fixtures/channel-common.js';
import { cpuMs, delay, harness, track, until, within } from './fixtures/channel-harness.js';

const h = harness(test, 'chm');
const hex = (b) => Buffer.from(b).toString('hex');
const text = (hexString) => Buffer.from(hexString, 'hex').toString('latin1').replace(/\0+$/, '');

/** An object with the control area and one channel at CHANNEL_AT. */
function setup(make) {
  const shm = h.object(CTRL_SIZE);
  const ch = h.keep(make(shm, { offset: CHANNEL_AT }));
  const ctrl = controlArea(shm);
  h.defer(() => ctrl.region.unmap());
  return { shm, ch, ctrl };
}

test('Channel.attach in another process finds every kind with its depth and width, and receives from it', async () => {
  const shm = h.object();
  const offsets = [];
  const mine = [];
  let offset = 0;
  for (const k of KINDS) {
    const ch = h.keep(new (k.cls())(shm, { ...k.opts, offset }));
    mine.push({ k, ch });
    offsets.push(offset);
    offset += Math.ceil(ch.byteLength / 16) * 16;
  }
  const p = h.start('channel-peer', 'attach-recv', { offsets }, { shm });
  await p.message('ready');
  // one message to each; Unbuffered sends resolve only once the child took them
  await within(30_000, Promise.all(mine.map(({ k, ch }, i) => ch.send(sample(k, i).send, { timeout: 30_000 }))), 'the sends');
  const { found } = await p.result();
  found.forEach((f, i) => {
    const { k, ch } = mine[i];
    assert.is(f.kind, k.name);
    assert.is(f.depth, ch.depth);
    assert.is(f.width, ch.width);
    assert.is(f.byteLength, ch.byteLength);
    assert.is(f.message, hex(sample(k, i).expect), `${k.name}: the message`);
  });
});

for (const payload of ['Empty', 'Fixed', 'Variable']) {
  const kind = KINDS.find((k) => k.name === `Unbuffered.${payload}`);

  test(`Unbuffered.${payload} is a rendezvous: sendSync returns only after a receiver in another process has taken the message`, async () => {
    const { shm, ch, ctrl } = setup((s, o) => new (kind.cls())(s, { ...kind.opts, ...o }));
    const p = h.start('channel-peer', 'rendezvous-recv', { offset: CHANNEL_AT }, { shm });
    await p.message('ready');
    assert.is(ctrl.word(CTRL.FLAG).load(), 0);
    // The child receives only after it has seen this send published and waiting; so if
    // sendSync returned early, FLAG would still be 0 when we look.
    ch.sendSync(sample(kind, 7).send, { timeout: 20_000 });
    assert.is(ctrl.word(CTRL.FLAG).load(), 1, 'sendSync returned before the child started to receive');
    const out = await p.result();
    assert.is(out.message, hex(sample(kind, 7).expect));
    assert.is(out.before.sent, 1, 'the child saw the message published before receiving');
    assert.ok(out.before.waiting.senders >= 1, 'and the sender waiting');
    assert.is(ch.stats().queued, 0);
  });

  test(`Unbuffered.${payload}: an async send stays pending until a receiver in another process takes the message`, async () => {
    const { shm, ch, ctrl } = setup((s, o) => new (kind.cls())(s, { ...kind.opts, ...o }));
    const p = h.start('channel-peer', 'rendezvous-recv', { offset: CHANNEL_AT, waitForGo: true }, { shm });
    await p.message('ready');
    const s = track(ch.send(sample(kind, 3).send, { timeout: 20_000 }));
    await until(() => ch.stats().waiting.senders === 1, { what: 'the send to wait', peers: [p] });
    await delay(300); // a window in which a send that does not wait would have resolved
    assert.not.ok(s.settled, 'the send resolved with no receiver');
    assert.is(ctrl.word(CTRL.FLAG).load(), 0);
    p.send('go');
    await within(10_000, s.promise, 'the send after the child received');
    assert.is(s.error, undefined);
    assert.is(ctrl.word(CTRL.FLAG).load(), 1);
    assert.is((await p.result()).message, hex(sample(kind, 3).expect));
  });
}

test('Unbuffered: trySend succeeds when a receiver in another process is waiting, and it gets the message', async () => {
  const { shm, ch } = setup((s, o) => new Channel.Unbuffered.Variable(s, { capacity: 32, ...o }));
  assert.is(ch.trySend('nobody'), false, 'no receiver yet');
  const p = h.start('channel-peer', 'recv', { offset: CHANNEL_AT }, { shm });
  await p.message('ready');
  await until(() => ch.stats().waiting.receivers === 1, { what: 'the child to wait', peers: [p] });
  assert.ok(ch.trySend('somebody'), 'a receiver is waiting');
  const out = await p.result();
  assert.equal(out.messages.map(text), ['somebody']);
});

for (const [name, make] of [
  ['SingleBuffered.Fixed', (s, o) => new Channel.SingleBuffered.Fixed(s, { width: 16, ...o })],
  ['Buffered.Variable', (s, o) => new Channel.Buffered.Variable(s, { depth: 3, capacity: 16, ...o })],
]) {
  for (const mode of ['sync', 'async']) {
    test(`${name}: a ${mode} receive blocked in another process wakes when a message comes; a ${mode} send blocked on a full channel wakes when a slot frees`, async () => {
      const { shm, ch } = setup(make);
      const r = h.start('channel-peer', 'recv', { offset: CHANNEL_AT, async: mode === 'async', count: 1 }, { shm });
      await r.message('ready');
      await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to sleep', peers: [r] });
      const t0 = performance.now();
      assert.ok(ch.trySend('hello'));
      const out = await r.result();
      assert.equal(out.messages.map(text), ['hello']);
      assert.ok(performance.now() - t0 < 3000);

      while (ch.trySend('fill'));
      const queued = ch.stats().queued;
      const s = h.start('channel-peer', 'send', { offset: CHANNEL_AT, async: mode === 'async', messages: ['late'] }, { shm });
      await s.message('ready');
      await until(() => ch.stats().waiting.senders === 1, { what: 'the sender to sleep', peers: [s] });
      assert.is(ch.stats().queued, queued, 'the blocked sender added nothing');
      ch.recvSync({ timeout: 1000 });
      assert.equal(await s.result(), { sent: 1, error: null });
      const rest = [];
      for (let m = ch.tryRecv(); m; m = ch.tryRecv()) rest.push(text(m));
      assert.is(rest.pop(), 'late', 'the woken send arrived last');
    });
  }
}

test('close() wakes every blocked sender and receiver in every process, sync and async, each with the right error', async () => {
  const shm = h.object(CTRL_SIZE);
  const empty = h.keep(new Channel.Buffered.Fixed(shm, { depth: 2, width: 8, offset: CHANNEL_AT }));
  const full = h.keep(new Channel.SingleBuffered.Variable(shm, { capacity: 8, offset: CHANNEL_AT + 1024 }));
  const rendezvous = h.keep(new Channel.Unbuffered.Empty(shm, { offset: CHANNEL_AT + 2048 }));
  assert.ok(full.trySend('full'));
  const kids = [
    ['recv', { offset: CHANNEL_AT }],
    ['recv', { offset: CHANNEL_AT, async: true }],
    ['send', { offset: CHANNEL_AT + 1024, messages: ['x'] }],
    ['send', { offset: CHANNEL_AT + 1024, messages: ['x'], async: true }],
    ['send', { offset: CHANNEL_AT + 2048, messages: [''] }],
  ].map(([role, arg]) => ({ role, arg, p: h.start('channel-peer', role, arg, { shm }) }));
  for (const k of kids) await k.p.message('ready');
  const peers = kids.map((k) => k.p);
  await until(() => empty.stats().waiting.receivers === 2 && full.stats().waiting.senders === 2 && rendezvous.stats().waiting.senders === 1, {
    what: 'all five children to block',
    peers,
    timeoutMs: 20_000,
  });
  const t0 = performance.now();
  empty.close();
  full.close();
  rendezvous.close();
  const results = await within(10_000, Promise.all(peers.map((p) => p.result())), 'every child to wake and exit');
  const ms = performance.now() - t0;
  assert.ok(ms < 3000, `the children took ${ms.toFixed(0)} ms to wake and exit`);
  for (const i of [0, 1]) {
    assert.equal(results[i].messages, [], `child ${i}`);
    assert.is(results[i].error?.name, 'ChannelClosedError', `child ${i}`);
    assert.is(results[i].error?.code, 'ERR_SHM_CHANNEL_CLOSED');
  }
  for (const i of [2, 3, 4]) {
    assert.is(results[i].sent, 0, `child ${i}`);
    assert.is(results[i].error?.name, 'ClosedWriteError', `child ${i}: ${JSON.stringify(results[i].error)}`);
    assert.match(results[i].error?.message, /^Write to closed channel \(the /);
  }
  // the full channel still hands out what was in it
  assert.is(full.tryRecv({ encoding: 'utf8' }), 'full');
  assert.is(rendezvous.stats().queued, 0, 'the rendezvous offer was withdrawn');
});

test('close() with messages buffered: a receiver in another process drains them, then gets ChannelClosedError', async () => {
  const { shm, ch } = setup((s, o) => new Channel.Buffered.Variable(s, { depth: 4, capacity: 8, ...o }));
  for (const m of ['a', 'b', 'c']) ch.trySend(m);
  ch.close();
  const p = h.start('channel-peer', 'recv', { offset: CHANNEL_AT, count: 10 }, { shm });
  const out = await p.result();
  assert.equal(out.messages.map(text), ['a', 'b', 'c']);
  assert.is(out.error?.name, 'ChannelClosedError');
});

// ---- stopped and signalled receivers ---------------------------------------------------

for (const mode of ['sync', 'async']) {
  test(`a ${mode} receiver stopped (SIGSTOP) and continued (SIGCONT) carries on: a message sent while it was stopped, then one sent after`, async () => {
    const { shm, ch } = setup((s, o) => new Channel.Buffered.Fixed(s, { depth: 2, width: 8, ...o }));
    const p = h.start('channel-peer', 'recv', { offset: CHANNEL_AT, count: 2, async: mode === 'async' }, { shm });
    await p.message('ready');
    await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to sleep', peers: [p] });
    p.kill('SIGSTOP');
    await until(() => readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1][0] === 'T', { what: 'the child to stop' });
    assert.ok(ch.trySend('while'));
    await delay(100);
    assert.is(ch.stats().queued, 1, 'a stopped child takes nothing');
    p.kill('SIGCONT');
    await until(() => ch.stats().queued === 0, { what: 'the continued child to take the message', peers: [p] });
    await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to sleep again', peers: [p] });
    p.kill('SIGSTOP');
    p.kill('SIGCONT');
    assert.ok(ch.trySend('after'));
    const out = await p.result();
    assert.equal(out.messages.map(text), ['while', 'after']);
  });
}

/** Bit of signal `sig` in a /proc/<pid>/status mask line. */
function signalPending(pid, sig) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mask = (name) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(status)[1]}`);
  return ((mask('SigPnd') | mask('ShdPnd')) & (1n << BigInt(sig - 1))) !== 0n;
}
function signalCaught(pid, sig) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return (BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)/m.exec(status)[1]}`) & (1n << BigInt(sig - 1))) !== 0n;
}

for (const mode of ['sync', 'async']) {
  test(`a ${mode} receiver that gets signals it handles (SIGUSR2) keeps waiting and receives the next message`, async () => {
    const SIGUSR2 = 12;
    const { shm, ch } = setup((s, o) => new Channel.SingleBuffered.Variable(s, { capacity: 16, ...o }));
    const p = h.start('channel-peer', 'recv-with-handler', { offset: CHANNEL_AT, async: mode === 'async' }, { shm });
    await p.message('ready');
    assert.ok(signalCaught(p.pid, SIGUSR2), 'the child has a SIGUSR2 handler');
    await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to sleep', peers: [p] });
    for (let i = 0; i < 3; i++) {
      p.kill('SIGUSR2');
      await until(() => !signalPending(p.pid, SIGUSR2), { what: 'the signal to be delivered', peers: [p] });
      await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver to sleep again', peers: [p] });
    }
    assert.ok(p.running, 'the signals did not end the child');
    assert.is(ch.stats().received, 0, 'nothing was received by the interrupted waits');
    assert.ok(ch.trySend('next'));
    const out = await p.result();
    assert.is(out.error, null);
    assert.is(text(out.message), 'next');
    assert.ok(out.handled >= 1, `the handler ran ${out.handled} times`);
  });
}

test('an idle blocked receiver costs no CPU: sync and async receivers blocked for 2 s use < 5%', async () => {
  const shm = h.object(CTRL_SIZE);
  const a = h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: CHANNEL_AT }));
  const b = h.keep(new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: CHANNEL_AT + 1024 }));
  const ps = h.start('channel-peer', 'recv', { offset: CHANNEL_AT }, { shm });
  const pa = h.start('channel-peer', 'recv', { offset: CHANNEL_AT + 1024, async: true }, { shm });
  await ps.message('ready');
  await pa.message('ready');
  await until(() => a.stats().waiting.receivers === 1 && b.stats().waiting.receivers === 1, { what: 'both to sleep', peers: [ps, pa] });
  await delay(200); // let any adaptive spinning settle
  const before = [cpuMs(ps.pid), cpuMs(pa.pid)];
  const t0 = performance.now();
  await delay(2000); // the measurement window
  const after = [cpuMs(ps.pid), cpuMs(pa.pid)];
  const window = performance.now() - t0;
  a.trySend('done');
  b.trySend('done');
  await ps.result();
  await pa.result();
  for (const [i, what] of [[0, 'sync'], [1, 'async']]) {
    const used = after[i] - before[i];
    assert.ok(used < window * 0.05, `the ${what} receiver used ${used} ms of CPU in ${window.toFixed(0)} ms`);
  }
});

test.run();
