// Regression tests for interleavings that broke the channel's promise in layout version 1,
// each reproduced with the step harness (a real child process stopped at a named step).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, ChannelClosedError, Region, TimeoutError } from '../dist/index.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { harness, settle, until } from './fixtures/channel-harness.js';

const h = harness(test, 'cdef');
const GATE_AT = 0;
const CHANNEL_AT = 4096;
const msg = (tag) => `${tag}:${tag.repeat(40).slice(0, 40)}`;

function setup(make) {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(make(shm));
  const gate = new Gate(Region.map(shm, GATE_AT, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  return { shm, ch, gate };
}
const party = (shm, op, step, extra = {}) =>
  h.start('step-party', op, { offset: CHANNEL_AT, gateOffset: GATE_AT, step, timeout: 8000, ...extra }, { shm, timeoutMs: 20_000 });
const unbuffered = (shm) => new Channel.Unbuffered.Variable(shm, { capacity: 64, offset: CHANNEL_AT });
const single = (shm) => new Channel.SingleBuffered.Variable(shm, { capacity: 64, offset: CHANNEL_AT });

test('Unbuffered: a timed-out sender retracting after its message was taken and the next one published leaves the next one alone', async () => {
  const { shm, ch, gate } = setup(unbuffered);
  // S1's send times out with no receiver and stops just before its retract CAS.
  const s1 = party(shm, 'send', 'channel.retract.begin', { msg: msg('A'), timeout: 200 });
  await gate.reached({ peer: s1 });
  // Meanwhile a receiver takes S1's message, and S2 publishes the next one.
  assert.is(await ch.recv({ timeout: 2000, encoding: 'latin1' }), msg('A'));
  const s2 = settle(ch.send(msg('B'), { timeout: 5000 }));
  await until(() => ch.stats().sent === 2 && ch.stats().busy.length === 0, { what: 'B published' });
  gate.release();
  const r1 = await s1.result();
  assert.ok(r1.ok, `S1's message was taken, so its send succeeds: ${JSON.stringify(r1)}`);
  assert.is(await ch.recv({ timeout: 2000, encoding: 'latin1' }), msg('B'), 'B is still there');
  assert.is((await s2).error, undefined);
  const stats = ch.stats();
  assert.is(stats.queued, 0, 'head and tail agree');
  const c = settle(ch.send(msg('C'), { timeout: 2000 }));
  assert.is(await ch.recv({ timeout: 2000, encoding: 'latin1' }), msg('C'), 'the channel goes on');
  assert.is((await c).error, undefined);
});

test('a receiver out of file descriptors never takes over a live, slow sender', async () => {
  const { shm, ch, gate } = setup(single);
  const s = party(shm, 'send', 'channel.send.tail', { msg: msg('A') });
  await gate.reached({ peer: s });
  const r = h.start('emfile-party', JSON.stringify({ offset: CHANNEL_AT, timeout: 600 }), undefined, { shm });
  const rr = await r.result();
  assert.ok(rr.fds > 10, 'it ran out of descriptors');
  assert.is(rr.error?.name, 'TimeoutError', `it waited for the live sender instead of taking its slot: ${JSON.stringify(rr)}`);
  gate.release();
  assert.ok((await s.result()).ok);
  assert.is(await ch.recv({ timeout: 2000, encoding: 'latin1' }), msg('A'), "the slow sender's message is delivered");
});

test('a receiver asleep on an empty channel delivers a message whose sender died after publishing, before waking anyone', async () => {
  const { shm, ch, gate } = setup(single);
  const r = party(shm, 'recv', undefined, { timeout: 5000 });
  await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver asleep', peers: [r] });
  const s = party(shm, 'send', 'channel.send.published', { msg: msg('A') });
  await gate.reached({ peer: s });
  s.kill();
  await s.exited;
  const t0 = performance.now();
  const rr = await r.result();
  assert.ok(rr.ok, JSON.stringify(rr));
  assert.is(rr.value, msg('A'));
  assert.ok(performance.now() - t0 < 500, `delivered within one sleep and a check (${(performance.now() - t0).toFixed(0)} ms)`);
});

test('a receiver asleep on an empty channel frees the slot of a sender that died mid-copy, without anyone sending', async () => {
  const { shm, ch, gate } = setup(single);
  const r = party(shm, 'recv', undefined, { timeout: 5000 });
  await until(() => ch.stats().waiting.receivers === 1, { what: 'the receiver asleep', peers: [r] });
  const s = party(shm, 'send', 'channel.send.tail', { msg: msg('A') });
  await gate.reached({ peer: s });
  s.kill();
  await s.exited;
  await until(() => ch.stats().busy.length === 0, { timeoutMs: 1000, what: 'the dead sender slot repaired by the sleeping receiver' });
  assert.ok(ch.trySend(msg('B')), 'the slot is free again');
  const rr = await r.result();
  assert.is(rr.value, msg('B'), 'the torn message was skipped');
});

test('a sender blocked behind another sender\'s claim goes on as soon as that claim moves tail', async () => {
  const { shm, ch, gate } = setup((s) => new Channel.Buffered.Variable(s, { depth: 4, capacity: 64, offset: CHANNEL_AT }));
  const s1 = party(shm, 'send', 'channel.send.cas', { msg: msg('A') });
  await gate.reached({ peer: s1 });
  let done = 0;
  const s2 = ch.send(msg('B'), { timeout: 5000 }).then(() => (done = performance.now()));
  await new Promise((resolve) => setTimeout(resolve, 150)); // let B fall asleep behind A's claim
  const released = performance.now();
  gate.release();
  await s2;
  assert.ok(done - released < 60, `B went on ${(done - released).toFixed(1)} ms after A's claim moved tail`);
  assert.ok((await s1.result()).ok);
  const got = [await ch.recv({ encoding: 'latin1', timeout: 1000 }), await ch.recv({ encoding: 'latin1', timeout: 1000 })];
  assert.equal(got.sort(), [msg('A'), msg('B')]);
});

test('timeouts are honoured: timeout 0 is a single try, short timeouts end on time', async () => {
  const { ch } = setup(single);
  for (const [what, call, limit] of [
    ['recvSync timeout 0', () => ch.recvSync({ timeout: 0 }), 5],
    ['recvSync timeout 5', () => ch.recvSync({ timeout: 5 }), 45],
  ]) {
    const t0 = performance.now();
    assert.throws(call, (e) => e instanceof TimeoutError);
    const took = performance.now() - t0;
    assert.ok(took < limit, `${what} took ${took.toFixed(2)} ms`);
  }
  ch.sendSync('full');
  let t0 = performance.now();
  assert.throws(() => ch.sendSync('x', { timeout: 1 }), (e) => e instanceof TimeoutError);
  assert.ok(performance.now() - t0 < 20, `sendSync timeout 1 on a full channel took ${(performance.now() - t0).toFixed(2)} ms`);
  t0 = performance.now();
  assert.instance((await settle(ch.send('x', { timeout: 0 }))).error, TimeoutError);
  assert.ok(performance.now() - t0 < 10, `send timeout 0 took ${(performance.now() - t0).toFixed(2)} ms`);
});

test('a sync receive on a closed channel whose head slot belongs to a dead writer ends with ChannelClosedError, not a spin', async () => {
  const { shm, ch, gate } = setup(single);
  const s = party(shm, 'send', 'channel.send.tail', { msg: msg('A') });
  await gate.reached({ peer: s });
  s.kill();
  await s.exited;
  ch.close();
  const r = party(shm, 'recv', undefined, { timeout: 3000 });
  const rr = await r.result();
  assert.is(rr.error?.name, 'ChannelClosedError', JSON.stringify(rr));
  assert.instance((await settle(ch.recv({ timeout: 1000 }))).error, ChannelClosedError);
});

test.run();
