// Interleavings of the slot protocol (src/channel/slot-protocol.ts) and its users that
// once broke a guarantee of the channel: a closer killed half-way, an Unbuffered sender
// looking late, a chunked tryRecv whose judgement went stale. Each test states the interleaving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, ChannelClosedError, ClosedWriteError } from '../dist/index.js';
import { GATE_BYTES } from './fixtures/step-gate.js';
import { harness, settle, until } from './fixtures/channel-harness.js';
import { CHANNEL_AT, msg, tagOf, gatedChannel } from './fixtures/step-kinds.js';

const h = harness(test, 'crace');

const setup = (make, gates = 1) => gatedChannel(h, make, gates);
const party = (shm, fixture, op, step, extra = {}, gate = 0) =>
  h.start(fixture, op, { offset: CHANNEL_AT, gateOffset: gate * GATE_BYTES, step, timeout: 8000, ...extra }, { shm, timeoutMs: 30_000 });
const phaseOf = (ch, pos) => Atomics.load(ch.protocol.w, ch.protocol.slotWord(pos)) >>> 30;
const FULL = 2;

// close() is `Atomics.or(tail, bit 31)`, then `closed = 1`, then the wakes. A closer
// SIGKILLed between the first two leaves tail's bit set and `closed` 0: sends fail, the
// channel reads as closed, but claimRecv's closed-and-empty test asks `closed` first, so
// no receive ever reports closed-and-empty (a receive without a timeout waits forever).
test('a closer killed between setting tail bit 31 and the closed word: receives drain, then report closed and empty', async () => {
  const { ch } = setup((s) => new Channel.Buffered.Variable(s, { depth: 3, capacity: 64, offset: CHANNEL_AT }));
  ch.sendSync('a');
  Atomics.or(ch.protocol.w, 64 / 4, 0x80000000 | 0); // what close() had done when it was killed
  assert.ok(ch.closed, 'the channel reads as closed');
  assert.instance((await settle(ch.send('b'))).error, ClosedWriteError, 'sends fail');
  assert.is(await ch.recv({ timeout: 1000, encoding: 'latin1' }), 'a', 'what was buffered is drained');
  const r = await settle(ch.recv({ timeout: 1500 }));
  assert.instance(r.error, ChannelClosedError, `then closed and empty; got ${r.error?.name}: ${r.error?.message}`);
});

// Unbuffered: taken(pos) is `tagDiff(slot tag, tag(pos)) > 0`, a signed 8-bit distance.
// A sender that first looks at its slot after 128..255 more hand-overs (descheduled, a busy
// event loop) sees a negative distance: not taken, not held; a retraction finds no FULL
// slot to take back, so #handOver says 'wait', again and again: the send neither succeeds
// (its message was received) nor times out, until traffic moves the tag back into range.
test('Unbuffered: a sender that looks at its slot only after 200 more hand-overs still learns that its message was taken', async () => {
  const { shm, ch, gates } = setup((s) => new Channel.Unbuffered.Variable(s, { capacity: 64, offset: CHANNEL_AT }));
  const a = party(shm, 'step-party', 'send', 'channel.send.published', { msg: msg('A'), timeout: 4000 });
  await gates[0].reached({ peer: a });
  assert.is(tagOf(await ch.recv({ timeout: 2000, encoding: 'latin1' })), 'A', "A's message is received");
  for (let i = 0; i < 200; i++) {
    const s = settle(ch.send(msg('B'), { timeout: 2000 }));
    assert.is(tagOf(await ch.recv({ timeout: 2000, encoding: 'latin1' })), 'B');
    assert.is((await s).error, undefined);
  }
  gates[0].release();
  const ra = await settle(a.result(8000));
  assert.ok(ra.value?.ok === true, `A's message was received once, so its send succeeds (within its 4 s timeout at most): ${ra.value ? JSON.stringify(ra.value) : ra.error?.message.split('\n')[0]}`);
});

// Chunked Unbuffered tryRecv: #ready() says -1 (a remnant CONT chunk at head: its receiver
// died after the message's first chunk) and tryRecv then claims the head and drops what it
// took, ignoring #take's result. Between #ready and claimRecv the remnant's sender times
// out and retracts it, and another send publishes a whole one-chunk message N at the same
// position: tryRecv claims N, #take says whole, and N is dropped. N's send succeeds (the
// slot moved on), and N is never received.
test('chunked Unbuffered: tryRecv that saw a remnant at head never drops a whole message published there before its claim', async () => {
  const { shm, ch, gates } = setup((s) => new Channel.Unbuffered.Variable(s, { capacity: 16, maxMessage: 64, offset: CHANNEL_AT }), 2);
  const long = 'L'.repeat(20); // two chunks: 8 bytes after the prefix, then 12
  const r1 = party(shm, 'step-party', 'recv', 'channel.chunk.recv.between', {}, 0);
  const s = party(shm, 'step-party', 'send', undefined, { msg: long, timeout: 1500 }, 1);
  await gates[0].reached({ peer: r1 });
  r1.kill(); // the receiver dies after the first chunk: the second is a remnant
  await r1.exited;
  await until(() => phaseOf(ch, 1) === FULL, { what: 'the remnant chunk published', peers: [s] });
  const t = party(shm, 'chunk-race-party', 'tryrecv', undefined, {}, 1);
  await gates[1].reached({ peer: t }); // #ready said -1; stopped before claimRecv
  const rs = await s.result(); // the remnant's sender times out and takes its chunk back
  assert.is(rs.error?.name, 'TimeoutError', JSON.stringify(rs));
  const n = settle(ch.send('N', { timeout: 5000 }));
  await until(() => phaseOf(ch, 1) === FULL, { what: 'N published' });
  gates[1].release();
  const rt = await t.result();
  const sent = await n;
  const later = await settle(ch.recv({ timeout: 500, encoding: 'latin1' }));
  const got = [rt.value, later.value].filter((v) => v !== null && v !== undefined);
  assert.is(sent.error, undefined, "N's send succeeds");
  assert.equal(got, ['N'], `N, whose send succeeded, is received once (tryRecv: ${JSON.stringify(rt)}; a later recv: ${later.error?.name ?? later.value})`);
});

test.run();
