// The step harness over the chunk protocol (src/channel/chunks.ts): a party (a real child
// process) is stopped at each named step of a chunked send or receive, and mid-chunk (at a
// slot step of its second chunk), the test process runs other sends and receives
// meanwhile, then the party is let go on or SIGKILLed. Over every (kind × role × step × outcome):
// - whole or not at all: every message received is one that was sent, whole (self-checking);
//   a killed sender's message is received once if it had published its last chunk, else by
//   nobody; a killed receiver's message goes to another receiver if it had taken nothing of
//   it, else to nobody (its rest is dropped);
// - no interleaving: the other sender's message, sent meanwhile, arrives whole, once;
// - no wedge: the channel carries messages of several chunks through every slot afterwards;
// - bounded waits: after a kill the others go on within the liveness bound plus a check.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Region } from '../dist/index.js';
import { CHUNK_STEPS } from '../dist/channel/chunks.js';
import { chunksOf } from '../dist/channel/chunk-context.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { harness, settle } from './fixtures/channel-harness.js';
import { big, CHANNEL_AT, drain, KINDS, noWedge, tagOf } from './fixtures/chunk-kinds.js';

const h = harness(test, 'ckstep');
const count = (list, tag) => list.filter((t) => t === tag).length;

function setup(kind) {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(kind.make(shm));
  return { shm, ch };
}

function party(shm, op, gate, step, extra = {}) {
  return h.start('chunk-party', op, { offset: CHANNEL_AT, gateOffset: gate * GATE_BYTES, step, timeout: 8000, ...extra }, { shm, timeoutMs: 20_000 });
}

/** A receive's tag, or null when it failed. */
async function tagOfResult(p) {
  const r = await p;
  return r.error ? null : tagOf(r.value);
}

// Sender steps: [step, nth, whether a killed sender's message is whole in the channel]
const SEND_CASES = [
  ['channel.chunk.send.locked', 1, false],
  ['channel.chunk.send.serial', 1, false],
  ['channel.chunk.send.between', 1, false],
  ['channel.chunk.send.between', 3, false],
  ['channel.send.copied', 2, false], // mid-chunk: its second chunk copied in, not published
  ['channel.send.published', 2, false], // mid-chunk: its second chunk published, receivers not woken yet
  ['channel.chunk.send.last', 1, true],
];

// Receiver steps: [step, nth ('last': at the message's last chunk), whether another
// receiver gets the message after a kill, whether an Unbuffered sender is then told that
// nobody received it (a message counts as received once its last chunk is claimed and
// the receiver has taken its record out of droppedSerial, just before freeing it)]
const RECV_CASES = [
  ['channel.chunk.recv.locked', 1, true, false],
  ['channel.recv.head', 1, false, true], // mid-chunk: its first chunk claimed, head moved, not copied
  ['channel.chunk.recv.between', 1, false, true],
  ['channel.chunk.recv.between', 2, false, true],
  ['channel.recv.head', 'last', false, true], // its last chunk claimed, not copied
  ['channel.recv.copied', 'last', false, false], // its last chunk copied, droppedSerial cleared, not freed
  ['channel.chunk.recv.whole', 1, false, false],
];

for (const kind of KINDS) {
  const sizeA = kind.capacity * 6 + 5;
  for (const [step, nth, whole] of SEND_CASES) {
    for (const outcome of ['resume', 'kill']) {
      test(`${kind.name}: a sender stopped at ${step} (#${nth}), then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
        const { shm, ch } = setup(kind);
        const first = settle(ch.recv({ timeout: 8000 })); // takes what A publishes, waits for the rest
        const a = party(shm, 'send', 0, step, { nth, tag: 'A', size: sizeA });
        await setupGate(shm).reached({ peer: a });
        const b = settle(ch.send(big('B', kind.capacity * 2 + 1), { timeout: 8000 })); // waits for the send lock
        let killedAt = 0;
        if (outcome === 'resume') setupGate(shm).release();
        else {
          a.kill();
          await a.exited;
          killedAt = performance.now();
        }
        const got = [await tagOfResult(first)];
        await drain(ch, outcome === 'kill' ? 600 : 300, got);
        assert.is((await b).error, undefined, 'the other send succeeds');
        assert.is(count(got, 'B'), 1, `B received once, whole: ${got}`);
        if (outcome === 'resume') {
          assert.ok((await a.result()).ok, 'A\'s send succeeds');
          assert.equal(got, ['A', 'B'], `A then B: ${got}`);
        } else {
          assert.is(count(got, 'A'), whole ? 1 : 0, `A received ${whole ? 'once' : 'by nobody'} after its sender died at ${step}: ${got}`);
          assert.ok(performance.now() - killedAt < 2500, 'the others went on within the liveness bound');
        }
        await noWedge(ch);
      });
    }
  }

  for (const [step, nthCase, redelivered, told] of RECV_CASES) {
    const nth = nthCase === 'last' ? chunksOf(sizeA, kind.capacity) : nthCase;
    for (const outcome of ['resume', 'kill']) {
      test(`${kind.name}: a receiver stopped at ${step} (#${nth}${nthCase === 'last' ? ', the last chunk' : ''}), then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
        const { shm, ch } = setup(kind);
        const sentA = settle(ch.send(big('A', sizeA), { timeout: 8000 }));
        const a = party(shm, 'recv', 0, step, { nth });
        await setupGate(shm).reached({ peer: a });
        const b = settle(ch.send(big('B', kind.capacity * 2 + 1), { timeout: 8000 }));
        const early = await drain(ch, 100); // waits for the receive lock: nothing
        let killedAt = 0;
        if (outcome === 'resume') setupGate(shm).release();
        else {
          a.kill();
          await a.exited;
          killedAt = performance.now();
        }
        const got = [...early, ...(await drain(ch, outcome === 'kill' ? 600 : 300))];
        assert.is((await b).error, undefined, 'the other send succeeds');
        assert.is(count(got, 'B'), 1, `B received once, whole: ${got}`);
        if (outcome === 'resume') {
          const r = await a.result();
          assert.ok(r.ok, `A's receive succeeds: ${JSON.stringify(r)}`);
          assert.is(r.value.tag, 'A');
          assert.is(count(got, 'A'), 0, `A not received twice: ${got}`);
        } else {
          assert.is(count(got, 'A'), redelivered ? 1 : 0, `A received ${redelivered ? 'once by another' : 'by nobody'} after its receiver died at ${step}: ${got}`);
          assert.ok(performance.now() - killedAt < 2500, 'the others went on within the liveness bound');
        }
        // An Unbuffered send whose message went with its dead receiver (the next receiver
        // only dropped the rest) is told so; otherwise A was taken, or is in the channel.
        const sentErr = (await sentA).error;
        if (kind.name.startsWith('Unbuffered') && outcome === 'kill' && told) {
          assert.instance(sentErr, Error, "A's send fails: nobody received A");
          assert.match(sentErr.message, /nobody received it/);
        } else assert.is(sentErr, undefined, "A's send succeeds (taken, or in the channel)");
        await noWedge(ch);
      });
    }
  }

  for (const outcome of ['resume', 'kill']) {
    const verb = outcome === 'resume' ? 'let go on' : 'killed';
    test(`${kind.name}: a receive into a short target stopped at channel.chunk.recv.put-back, then ${verb}: the message stays, another receives it whole`, async () => {
      const { shm, ch } = setup(kind);
      const sentA = settle(ch.send(big('A', sizeA), { timeout: 8000 }));
      const a = party(shm, 'recv-into', 0, 'channel.chunk.recv.put-back', { room: 100 });
      await setupGate(shm).reached({ peer: a });
      if (outcome === 'resume') {
        setupGate(shm).release();
        const r = await a.result();
        assert.is(r.error?.code, 'ERR_SHM_OUT_OF_RANGE', JSON.stringify(r));
      } else {
        a.kill();
        await a.exited;
      }
      assert.equal(await drain(ch, 600), ['A'], 'A stays in the channel, whole');
      assert.is((await sentA).error, undefined);
      await noWedge(ch);
    });

    test(`${kind.name}: a receiver stopped at channel.chunk.recv.dropped (the rest of a message whose receiver died), then ${verb}`, async () => {
      const { shm, ch } = setup(kind);
      const sentA = settle(ch.send(big('A', sizeA), { timeout: 8000 }));
      const first = party(shm, 'recv', 0, 'channel.chunk.recv.between', { nth: 1 });
      await setupGate(shm).reached({ peer: first });
      first.kill();
      await first.exited;
      const b = settle(ch.send(big('B', kind.capacity * 2 + 1), { timeout: 8000 }));
      const a = party(shm, 'recv', 1, 'channel.chunk.recv.dropped');
      await setupGate(shm, 1).reached({ peer: a });
      const got = [];
      if (outcome === 'resume') {
        setupGate(shm, 1).release();
        const r = await a.result();
        assert.ok(r.ok, JSON.stringify(r));
        got.push(r.value.tag);
      } else {
        a.kill();
        await a.exited;
      }
      await drain(ch, 600, got);
      assert.equal(got, ['B'], `nothing of A, B whole: ${got}`);
      // A went with its dead receiver: an Unbuffered sender is told; a buffered one had resolved.
      const sentErr = (await sentA).error;
      if (kind.name.startsWith('Unbuffered')) assert.match(sentErr?.message ?? '', /nobody received it/);
      else assert.is(sentErr, undefined);
      assert.is((await b).error, undefined);
      await noWedge(ch);
    });

    test(`${kind.name}: a receiver stopped at channel.chunk.recv.abandoned (it held part of a message whose sender died), then ${verb}`, async () => {
      const { shm, ch } = setup(kind);
      const s = party(shm, 'send', 0, 'channel.chunk.send.between', { nth: 1, tag: 'A', size: sizeA });
      await setupGate(shm).reached({ peer: s });
      const a = party(shm, 'recv', 1, 'channel.chunk.recv.abandoned');
      // it takes A's first chunk, then waits for the rest
      s.kill();
      await s.exited;
      await setupGate(shm, 1).reached({ peer: a });
      const b = settle(ch.send(big('B', kind.capacity * 2 + 1), { timeout: 8000 }));
      const got = [];
      if (outcome === 'resume') {
        setupGate(shm, 1).release();
        const r = await a.result();
        assert.ok(r.ok, JSON.stringify(r));
        got.push(r.value.tag);
      } else {
        a.kill();
        await a.exited;
      }
      await drain(ch, 600, got);
      assert.equal(got, ['B'], `nothing of A, B whole: ${got}`);
      assert.is((await b).error, undefined);
      await noWedge(ch);
    });

    test(`${kind.name}: a sender that gave a message up half-way (timeout, nobody receiving) stopped at channel.chunk.send.gave-up, then ${verb}`, async () => {
      const { shm, ch } = setup(kind);
      const a = party(shm, 'send', 0, 'channel.chunk.send.gave-up', { tag: 'A', size: kind.capacity * 20, timeout: 150 });
      await setupGate(shm).reached({ peer: a });
      if (outcome === 'resume') {
        setupGate(shm).release();
        const r = await a.result();
        assert.is(r.error?.code, 'ERR_SHM_TIMEOUT', JSON.stringify(r));
      } else {
        a.kill();
        await a.exited;
      }
      const b = settle(ch.send(big('B', kind.capacity * 2 + 1), { timeout: 8000 }));
      assert.equal(await drain(ch, 600), ['B'], 'nothing of A, B whole');
      assert.is((await b).error, undefined);
      await noWedge(ch);
    });
  }
}

/** The gate of party `i` of the current test's object. */
function setupGate(shm, i = 0) {
  const g = new Gate(Region.map(shm, i * GATE_BYTES, GATE_BYTES));
  h.defer(() => g.region.unmap());
  return g;
}

test('every chunk step is covered above', () => {
  const covered = new Set([...SEND_CASES, ...RECV_CASES].map(([s]) => s));
  for (const s of ['channel.chunk.recv.put-back', 'channel.chunk.recv.dropped', 'channel.chunk.recv.abandoned', 'channel.chunk.send.gave-up']) covered.add(s);
  for (const s of CHUNK_STEPS) assert.ok(covered.has(s), `${s} is covered`);
  assert.is(CHUNK_STEPS.length, 11);
});

test.run();
