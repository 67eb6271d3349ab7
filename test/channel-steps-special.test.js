// The step harness over the protocol's less travelled steps: an Unbuffered sender taking
// its message back, a sender giving its position up after a close, a repairer of a dead
// party's slot that is itself stopped or killed, and a waiter stopped just before it
// sleeps. Same invariants as channel-steps.test.js: once, whole, no wedge.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, ChannelClosedError, ClosedWriteError, TimeoutError } from '../dist/index.js';
import { CHANNEL_STEPS } from '../dist/channel/slot-protocol.js';
import { GATE_BYTES } from './fixtures/step-gate.js';
import { harness, settle, until } from './fixtures/channel-harness.js';
import { CHANNEL_AT, drain, msg, noWedge, gatedChannel } from './fixtures/step-kinds.js';

const h = harness(test, 'cspec');
const count = (list, tag) => list.filter((t) => t === tag).length;

const setup = (make, gates = 1) => gatedChannel(h, make, gates);
const party = (shm, op, step, extra = {}, gate = 0) =>
  h.start('step-party', op, { offset: CHANNEL_AT, gateOffset: gate * GATE_BYTES, step, timeout: 8000, ...extra }, { shm, timeoutMs: 20_000 });
const unbuffered = (shm) => new Channel.Unbuffered.Variable(shm, { capacity: 64, offset: CHANNEL_AT });
const single = (shm) => new Channel.SingleBuffered.Variable(shm, { capacity: 64, offset: CHANNEL_AT });

// ---- retraction ---------------------------------------------------------------------

const RETRACT = CHANNEL_STEPS.filter((s) => s.startsWith('channel.retract.'));
// A killed sender's message is still FULL (delivered) before its retraction took the slot
// back; after that, its position is given up or undone (never delivered).
const RETRACT_DELIVERED = new Set(['channel.retract.begin']);

for (const step of RETRACT) {
  for (const outcome of ['resume', 'kill']) {
    test(`Unbuffered: a timed-out sender stopped at ${step} while taking its message back, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
      const { shm, ch, gates } = setup(unbuffered);
      const a = party(shm, 'send', step, { msg: msg('A'), timeout: 100 });
      await gates[0].reached({ peer: a });
      const b = settle(ch.send(msg('B'), { timeout: 8000 }));
      if (outcome === 'resume') gates[0].release();
      else {
        a.kill();
        await a.exited;
      }
      const got = await drain(ch, outcome === 'kill' ? 500 : 300);
      assert.is((await b).error, undefined, 'the other send succeeds');
      assert.is(count(got, 'B'), 1, `B once: ${got}`);
      if (outcome === 'resume') {
        const ra = await a.result();
        // Let go, it either takes its message back (the send times out, A is never
        // delivered) or finds it taken meanwhile by the receives above (the send succeeds).
        if (ra.ok) assert.is(count(got, 'A'), 1, `A's send succeeded, so A was received once: ${got}`);
        else {
          assert.is(ra.error?.name, 'TimeoutError', `A's send times out: ${JSON.stringify(ra)}`);
          assert.is(count(got, 'A'), 0, `a retracted message is never delivered: ${got}`);
        }
      } else {
        assert.is(count(got, 'A'), RETRACT_DELIVERED.has(step) ? 1 : 0, `A after its sender died at ${step}: ${got}`);
      }
      assert.is(ch.stats().queued, 0, 'head and tail agree');
      await noWedge(ch);
    });
  }
}

// ---- a claim that meets a close ----------------------------------------------------

for (const outcome of ['resume', 'kill']) {
  test(`a sender holding a slot when the channel closes, stopped at channel.send.cas, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
    const { shm, ch, gates } = setup((s) => new Channel.Buffered.Variable(s, { depth: 3, capacity: 64, offset: CHANNEL_AT }));
    ch.sendSync(msg('P'));
    const a = party(shm, 'send', 'channel.send.cas', { msg: msg('A') });
    await gates[0].reached({ peer: a });
    ch.close();
    if (outcome === 'resume') {
      gates[0].release();
      const ra = await a.result();
      assert.is(ra.error?.name, 'ClosedWriteError', `tail's closed bit fails the claim's second CAS: ${JSON.stringify(ra)}`);
    } else {
      a.kill();
      await a.exited;
    }
    const got = await drain(ch, 500);
    assert.equal(got, ['P'], 'what was sent before the close is delivered, the claimed slot is given back');
    assert.instance((await settle(ch.recv({ timeout: 1500 }))).error, ChannelClosedError, 'then closed and empty');
    assert.instance((await settle(ch.send('x'))).error, ClosedWriteError);
  });
}

// ---- a repairer stopped or killed mid-repair ----------------------------------------

const REPAIR = CHANNEL_STEPS.filter((s) => s.startsWith('channel.repair.'));
for (const [dead, deadStep, repairer] of [
  ['a sender', 'channel.send.tail', 'recv'],
  ['a receiver', 'channel.recv.head', 'send'],
]) {
  for (const step of REPAIR) {
    for (const outcome of ['resume', 'kill']) {
      test(`the slot of ${dead} killed at ${deadStep}: its repairer stopped at ${step}, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
        const { shm, ch, gates } = setup(single, 2);
        if (repairer === 'send') ch.sendSync(msg('P'));
        const d = party(shm, dead === 'a sender' ? 'send' : 'recv', deadStep, { msg: msg('A') }, 0);
        await gates[0].reached({ peer: d });
        d.kill();
        await d.exited;
        const r = party(shm, repairer, step, { msg: msg('R'), timeout: 3000 }, 1);
        await gates[1].reached({ peer: r, timeoutMs: 3000 });
        if (outcome === 'resume') gates[1].release();
        else {
          r.kill();
          await r.exited;
        }
        const got = await drain(ch, 600);
        assert.is(count(got, 'A'), 0, `the dead sender's unpublished message is never delivered: ${got}`);
        assert.is(count(got, 'P'), 0, `the dead receiver's message is not delivered twice: ${got}`);
        if (outcome === 'resume') {
          const rr = await r.result();
          if (repairer === 'send') {
            assert.ok(rr.ok, JSON.stringify(rr));
            assert.is(count(got, 'R'), 1, `the repairing sender's message once: ${got}`);
          } else assert.is(rr.error?.name, 'TimeoutError', `nothing for the repairing receiver: ${JSON.stringify(rr)}`);
        }
        assert.is(ch.stats().busy.length, 0, 'no slot left held');
        await noWedge(ch);
      });
    }
  }
}

// ---- a waiter stopped just before it sleeps ---------------------------------------------

for (const outcome of ['resume', 'kill']) {
  test(`a receiver stopped at channel.wait.sleep (counted, not yet asleep) while a message is published, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
    const { shm, ch, gates } = setup(single);
    const a = party(shm, 'recv', 'channel.wait.sleep', { timeout: 3000 });
    await gates[0].reached({ peer: a });
    ch.sendSync(msg('A'));
    if (outcome === 'resume') {
      gates[0].release();
      const ra = await a.result();
      assert.ok(ra.ok, JSON.stringify(ra));
      assert.is(ra.value, msg('A'), 'the wake was not lost');
    } else {
      a.kill();
      await a.exited;
      assert.equal(await drain(ch, 300), ['A']);
    }
    await noWedge(ch);
  });
}

test('a waiter killed asleep leaves its count raised (documented) and costs nothing else', async () => {
  const { shm, ch } = setup(single);
  const a = party(shm, 'recv', undefined, { timeout: 5000 });
  await until(() => ch.stats().waiting.receivers === 1, { what: 'asleep', peers: [a] });
  a.kill();
  await a.exited;
  assert.is(ch.stats().waiting.receivers, 1);
  await noWedge(ch);
  assert.instance((await settle(ch.recv({ timeout: 0 }))).error, TimeoutError);
});

test.run();
