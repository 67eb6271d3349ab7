// The step harness over the channel protocol: a party (a real child process) is stopped
// at each named step of a send or a receive (src/channel/slot-protocol.ts), the test
// process runs other sends and receives meanwhile, then the party is let go on or
// SIGKILLed. Over every (kind × role × step × outcome):
// - exactly once: every message whose send succeeded is received once; a killed sender's
//   message at most once (and exactly once if it had published it); a killed receiver's
//   message is delivered to nobody else once that receiver had moved head (the documented
//   loss), and to the test process if it had not;
// - never torn: every message received is one that was sent, byte for byte;
// - no wedge: the channel carries a new message afterwards;
// - bounded waits: after a kill, the others go on within the liveness bound plus a check.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CHANNEL_AT, KINDS, drain, msg, noWedge, tagOf } from './fixtures/step-kinds.js';
import { CHANNEL_STEPS } from '../dist/channel/slot-protocol.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { harness, settle } from './fixtures/channel-harness.js';
import { Region } from '../dist/index.js';

const h = harness(test, 'cstep');
const GATE_AT = 0;

const SEND_STEPS = CHANNEL_STEPS.filter((s) => s.startsWith('channel.send.'));
const RECV_STEPS = CHANNEL_STEPS.filter((s) => s.startsWith('channel.recv.'));
// Steps after which a killed sender's message is complete and must be delivered.
const SENDER_PUBLISHED = new Set(['channel.send.published']);
// Steps before which a killed receiver had not moved head: its message goes to another.
const RECEIVER_UNCLAIMED = new Set(['channel.recv.cas']);

function setup(kind) {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(kind.make(shm));
  const gate = new Gate(Region.map(shm, GATE_AT, GATE_BYTES));
  h.defer(() => gate.region.unmap());
  return { shm, ch, gate };
}

function party(shm, op, step, extra = {}) {
  return h.start('step-party', op, { offset: CHANNEL_AT, gateOffset: GATE_AT, step, timeout: 8000, ...extra }, { shm, timeoutMs: 20_000 });
}

const count = (list, tag) => list.filter((t) => t === tag).length;

for (const kind of KINDS) {
  for (const step of SEND_STEPS) {
    for (const outcome of ['resume', 'kill']) {
      test(`${kind.name}: a sender stopped at ${step}, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
        const { shm, ch, gate } = setup(kind);
        const a = party(shm, 'send', step, { msg: msg('A') });
        await gate.reached({ peer: a });
        // Others run while A is stopped: another send, and receives.
        const b = settle(ch.send(msg('B'), { timeout: 8000 }));
        const early = await drain(ch, 150);
        let killedAt = 0;
        if (outcome === 'resume') gate.release();
        else {
          a.kill();
          await a.exited;
          killedAt = performance.now();
        }
        const late = await drain(ch, outcome === 'kill' ? 500 : 300);
        const got = [...early, ...late];
        const sentB = await b;
        assert.is(sentB.error, undefined, `the other send succeeds (${sentB.error?.message})`);
        assert.is(count(got, 'B'), 1, `B received once: ${got}`);
        if (outcome === 'resume') {
          const ra = await a.result();
          assert.ok(ra.ok, `A's send succeeds: ${JSON.stringify(ra)}`);
          assert.is(count(got, 'A'), 1, `A received once: ${got}`);
        } else {
          const expected = SENDER_PUBLISHED.has(step) ? 1 : 0;
          assert.is(count(got, 'A'), expected, `A received ${expected} time(s) after dying at ${step}: ${got}`);
          assert.ok(performance.now() - killedAt < 2000, 'the others went on within the liveness bound');
        }
        // No wedge.
        await noWedge(ch);
      });
    }
  }

  for (const step of RECV_STEPS) {
    for (const outcome of ['resume', 'kill']) {
      test(`${kind.name}: a receiver stopped at ${step}, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
        const { shm, ch, gate } = setup(kind);
        const p = settle(ch.send(msg('P'), { timeout: 8000 }));
        const a = party(shm, 'recv', step);
        await gate.reached({ peer: a });
        const b = settle(ch.send(msg('B'), { timeout: 8000 }));
        const early = await drain(ch, 150);
        let killedAt = 0;
        if (outcome === 'resume') gate.release();
        else {
          a.kill();
          await a.exited;
          killedAt = performance.now();
        }
        const late = await drain(ch, outcome === 'kill' ? 500 : 300);
        const got = [...early, ...late];
        assert.is((await b).error, undefined, 'the other send succeeds');
        assert.is(count(got, 'B'), 1, `B received once: ${got}`);
        if (outcome === 'resume') {
          const ra = await a.result();
          assert.ok(ra.ok, `A's receive succeeds: ${JSON.stringify(ra)}`);
          assert.is(tagOf(ra.value), 'P', 'A got P');
          assert.is(count(got, 'P'), 0, `P not received twice: ${got}`);
          assert.is((await p).error, undefined, 'the send of P succeeds');
        } else {
          const expected = RECEIVER_UNCLAIMED.has(step) ? 1 : 0;
          assert.is(count(got, 'P'), expected, `P received ${expected} time(s) by others after its receiver died at ${step}: ${got}`);
          assert.is((await p).error, undefined, 'the send of P succeeds (taken, or lost with its receiver)');
          assert.ok(performance.now() - killedAt < 2000, 'the others went on within the liveness bound');
        }
        await noWedge(ch);
      });
    }
  }
}

// The other steps are covered by channel-steps-special.test.js (retraction, repair, the
// sleep): a step added to the protocol fails this until a test covers it.
const SPECIAL = ['channel.retract.begin', 'channel.retract.cas', 'channel.retract.tail', 'channel.repair.cas', 'channel.wait.sleep'];
test('every step of the protocol is covered: a send and a receive here, the rest in channel-steps-special', () => {
  assert.equal([...CHANNEL_STEPS].sort(), [...SEND_STEPS, ...RECV_STEPS, ...SPECIAL].sort());
  assert.is(SEND_STEPS.length, 4);
  assert.is(RECV_STEPS.length, 4);
});

test.run();
