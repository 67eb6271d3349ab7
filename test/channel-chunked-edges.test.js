// Edge cases of chunked channels (src/channel/chunk-*.ts): each test states the promise
// it holds the protocol to. Every wait has a watchdog.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, DeadlockError, InvalidArgumentError, Region, TimeoutError } from '../dist/index.js';
import { W } from '../dist/channel/layout.js';
import { harness, settle, until, within } from './fixtures/channel-harness.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { big, CHANNEL_AT, tagOf } from './fixtures/chunk-kinds.js';

const h = harness(test, 'chunkedge');
const it = (name, ms, fn) => test(name, () => within(ms, fn(), name));

function words(shm) {
  const r = Region.map(shm, CHANNEL_AT, 256);
  h.defer(() => r.unmap());
  return new Int32Array(r.mapping.buffer, r.start, 64);
}

// ---- a message whose buffer changes between two chunks of an async send -------------

for (const [what, change] of [
  ['shrunk below the bytes already sent', (ab) => ab.resize(100)],
  ['shrunk, but past the bytes already sent', (ab) => ab.resize(300)],
  ['grown', (ab) => ab.resize(700)],
  ['grown past maxMessage', (ab) => ab.resize(2000)],
  ['transferred (detached)', (ab) => structuredClone(ab, { transfer: [ab] })],
]) {
  it(`send(): a message ${what} while the send waits between two chunks is refused; receivers get nothing of it (no LayoutError); the channel goes on`, 10_000, async () => {
    const shm = h.object(CHANNEL_AT + 4096);
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 1024, offset: CHANNEL_AT }));
    const w = words(shm);
    const ab = new ArrayBuffer(400, { maxByteLength: 4096 });
    new Uint8Array(ab).fill(7);
    const pending = settle(ch.send(new Uint8Array(ab), { timeout: 5000 })); // 7 chunks through 2 slots
    // The send holds the lock and waits for room after its first two chunks.
    await until(() => Atomics.load(w, W.SEND_LOCK) !== 0 && Atomics.load(w, W.TAIL) === 2, { what: 'the send to fill both slots' });
    change(ab);
    const received = [];
    for (;;) {
      const r = await settle(ch.recv({ timeout: 300 }));
      if (r.error instanceof TimeoutError && !/half-way/.test(r.error.message)) break;
      received.push(r.error ?? r.value);
    }
    const outcome = await pending;
    const next = settle(ch.send(big('N', 300), { timeout: 2000 }));
    const after = await settle(ch.recv({ timeout: 2000 }));
    if (after.error === undefined) after.error = (await next).error;
    const problems = [];
    if (received.length !== 0) problems.push(`receivers got ${received.map((x) => (x instanceof Error ? `${x.name}: ${x.message}` : `${x.length} bytes`)).join('; ')}`);
    if (!(outcome.error instanceof InvalidArgumentError)) problems.push(`the send ${outcome.error ? `failed with ${outcome.error}` : 'resolved as sent'} (expected InvalidArgumentError: the message changed)`);
    if (after.error !== undefined || tagOf(after.value) !== 'N') problems.push(`the next message did not go through: ${after.error}`);
    assert.equal(problems, []);
  });
}

// ---- tryRecv racing a sender that completes its message ---------------------------

it('tryRecv() never drops a message that its sender completes while tryRecv looks at it (exactly once)', 60_000, async () => {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 3, capacity: 128, maxMessage: 4096, offset: CHANNEL_AT }));
  const N = 20_000;
  const s = h.start('chunk-edge-peer', 'send-loop', { offset: CHANNEL_AT, n: N, size: 200 }, { shm, timeoutMs: 60_000 }); // 2 chunks each
  const got = [];
  let spins = 0;
  while (got.length < N) {
    const m = ch.tryRecv();
    if (m !== undefined) got.push(Number(tagOf(m).slice(1)));
    else if (!s.running && ch.tryRecv() === undefined) break;
    else if (++spins % 4096 === 0) await new Promise((r) => setImmediate(r));
  }
  await s.exited;
  const missing = [];
  for (let i = 0, j = 0; i < N; i++) {
    if (got[j] === i) j++;
    else missing.push(i);
  }
  assert.equal(missing.slice(0, 20), [], `${missing.length} of ${N} messages sent whole were never received by tryRecv (${s.stdout.trim()})`);
});

// ---- a live sender paused half-way while its receiver times out -------------------

function gateAt(shm) {
  const gate = new Gate(Region.map(shm, 0, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  return gate;
}

// A receiver that gives a message up half-way leaves its serial in the channel's
// `droppedSerial` word (version 5), and the Unbuffered sender, whose last chunk is then
// "taken" by the next receiver dropping the rest, fails instead of resolving.
test('Unbuffered: a receive that times out half-way (its live sender paused) loses the message; the sender must not then be told it was taken when the next receiver only drops its rest', () => within(20_000, (async () => {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(new Channel.Unbuffered.Variable(shm, { capacity: 64, maxMessage: 4096, offset: CHANNEL_AT }));
  const gate = gateAt(shm);
  // The sender stops after publishing its second chunk (lock held, alive).
  const s = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'A', size: 600, timeout: 8000 }, { shm, timeoutMs: 20_000 });
  const r1 = await settle(ch.recv({ timeout: 300 })); // takes chunks 1 (and 2), then the sender stalls past the deadline
  assert.instance(r1.error, TimeoutError, `the first receive ${r1.error ? `failed with ${r1.error}` : 'got the message'}`);
  assert.match(r1.error.message, /half-way/);
  gate.release();
  const got = await settle(ch.recv({ timeout: 1500 })); // the next receiver: drops A's rest, nothing else comes
  await s.exited;
  const sent = JSON.parse(s.stdout.trim());
  assert.instance(got.error, TimeoutError, 'nothing of A is received');
  assert.is(sent.ok, false, `the Unbuffered send resolved as taken by a receiver, but no receiver got message A (${s.stdout.trim()})`);
  assert.is(sent.error.name, 'TimeoutError');
  assert.match(sent.error.message, /gave up half-way .*nobody received it/);
})(), 'the Unbuffered hand-over'));

// A receive released (or killed: channel-chunked-steps.test.js) after the first chunk
// loses the message. The receiver records the serial of a message of several chunks in
// `droppedSerial` when it takes the first chunk, and takes it back only before it frees
// the last: the Unbuffered sender, whose later chunks the next receiver only drops,
// learns that nobody received it.
test('Unbuffered: a receive released half-way loses the message, and its sender is told so', () => within(20_000, (async () => {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(new Channel.Unbuffered.Variable(shm, { capacity: 64, maxMessage: 4096, offset: CHANNEL_AT }));
  const gate = gateAt(shm);
  const other = Channel.attach(shm, { offset: CHANNEL_AT });
  h.defer(() => other.release());
  const r1 = settle(other.recv({ timeout: 8000 }));
  // The sender stops after publishing its second chunk (the first one taken).
  const s = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'A', size: 600, timeout: 8000 }, { shm, timeoutMs: 20_000 });
  await gate.reached({ peer: s });
  const p = ch.protocol;
  await until(() => Atomics.load(p.w, p.slotWord(0)) >>> 30 === 0, { timeoutMs: 2000, what: 'the second chunk taken' });
  other.release();
  assert.is((await r1).error?.name, 'RegionUnmappedError', 'the released receive fails');
  gate.release();
  const got = await settle(ch.recv({ timeout: 1500 })); // drops A's rest; nothing else comes
  await s.exited;
  const sent = JSON.parse(s.stdout.trim());
  assert.instance(got.error, TimeoutError, 'nothing of A is received');
  assert.is(sent.ok, false, `the Unbuffered send resolved as taken, but no receiver got message A (${s.stdout.trim()})`);
  assert.is(sent.error.name, 'TimeoutError');
  assert.match(sent.error.message, /nobody received it/);
})(), 'the Unbuffered hand-over'));

// ---- a recvInto target whose buffer changes between two chunks --------------------

for (const [what, change] of [
  ['shrunk', (ab) => ab.resize(100)],
  ['transferred (detached)', (ab) => structuredClone(ab, { transfer: [ab] })],
]) {
  it(`recvInto(): a target ${what} while the receive waits between two chunks fails that receive, and leaves no slot claimed (no wedge)`, 20_000, async () => {
    const shm = h.object(CHANNEL_AT + 4096);
    const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 4096, offset: CHANNEL_AT }));
    const w = words(shm);
    const gate = gateAt(shm);
    const s = h.start('chunk-party', 'send', { offset: CHANNEL_AT, gateOffset: 0, step: 'channel.chunk.send.between', nth: 2, tag: 'A', size: 400, timeout: 8000 }, { shm, timeoutMs: 20_000 });
    const ab = new ArrayBuffer(1024, { maxByteLength: 4096 });
    const pending = settle(ch.recvInto(new Uint8Array(ab), { timeout: 8000 }));
    await gate.reached({ peer: s });
    await until(() => Atomics.load(w, W.HEAD) === 2, { what: 'the receive to take the first two chunks' });
    change(ab);
    gate.release();
    const r = await pending;
    await s.exited;
    const problems = [];
    if (r.error === undefined) problems.push(`the receive returned ${r.value}`);
    const next = settle(ch.send(big('N', 300), { timeout: 3000 }));
    const after = await settle(ch.recv({ timeout: 3000 }));
    if (after.error !== undefined) problems.push(`the next message did not go through: ${after.error} (send: ${(await next).error}); the receive failed with ${r.error}`);
    else if (tagOf(after.value) !== 'N') problems.push(`got ${tagOf(after.value)}`);
    assert.equal(problems, []);
  });
}

// ---- a blocking send while an async receive of this thread holds the receive lock ---

it('sendSync() of a message of more chunks than free slots while an async recv() of this thread holds the receive lock: DeadlockError, not a wait that no receiver (here or elsewhere) can end', 20_000, async () => {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 64, maxMessage: 4096, offset: CHANNEL_AT }));
  const w = words(shm);
  const mine = settle(ch.recv({ timeout: 5000 })); // holds recvLock while it waits for a message to begin
  await until(() => Atomics.load(w, W.RECV_LOCK) !== 0, { what: 'the async receive to take the receive lock' });
  await new Promise((resolve) => setTimeout(resolve, 20)); // and its continuation to run (it records the lock as this thread's)
  const other = h.start('chunk-party', 'recv', { offset: CHANNEL_AT, gateOffset: 0, timeout: 5000 }, { shm, timeoutMs: 20_000 }); // another process's receiver: locked out
  const t0 = performance.now();
  let err;
  try {
    ch.sendSync(big('A', 600), { timeout: 1500 }); // 10 chunks through 2 slots
  } catch (e) {
    err = e;
  }
  const took = Math.round(performance.now() - t0);
  await mine;
  await other.exited;
  assert.instance(err, DeadlockError, `sendSync ${err ? `failed after ${took} ms with ${err}` : `returned after ${took} ms`}`);
});

test.run();
