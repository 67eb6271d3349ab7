// A seeded random explorer of channel schedules: each schedule picks a kind, up to two
// parties (real child processes) with a role, a step to stop at, and whether to let it
// go on or SIGKILL it, plus sends and receives by the test process, in a random order.
// Invariants: nothing torn, nothing received twice, every message whose send succeeded
// received once (a killed party's message at most once), and the channel still works.
//
// A failure prints its seed; replay it with
//   EXPLORE_SEED=<seed> node test/channel-explore.test.js
// and run a longer exploration with EXPLORE_SCHEDULES=500 (CI runs a few dozen).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Region } from '../dist/index.js';
import { CHANNEL_STEPS } from '../dist/channel/slot-protocol.js';
import { Gate, GATE_BYTES } from './fixtures/step-gate.js';
import { prng } from './fixtures/prng.js';
import { harness, settle } from './fixtures/channel-harness.js';
import { CHANNEL_AT, KINDS, drain, msg, noWedge, tagOf } from './fixtures/step-kinds.js';

const h = harness(test, 'cexp');
const SCHEDULES = Number(process.env.EXPLORE_SCHEDULES ?? 24);
const FIRST_SEED = Number(process.env.EXPLORE_SEED ?? Date.now() % 1_000_000);
const ONLY_ONE = process.env.EXPLORE_SEED !== undefined;

let current = null;

async function schedule(seed) {
  const rnd = prng(seed);
  const pick = (list) => list[Math.floor(rnd() * list.length)];
  const kind = pick(KINDS);
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(kind.make(shm));
  const plan = [];
  const parties = 1 + Math.floor(rnd() * 2);
  for (let i = 0; i < parties; i++) {
    const role = rnd() < 0.5 ? 'send' : 'recv';
    const steps = CHANNEL_STEPS.filter((s) => s.startsWith(`channel.${role}.`));
    plan.push({ role, step: pick(steps), kill: rnd() < 0.4, tag: `A${i}`, async: rnd() < 0.3 });
  }
  current = { kind: kind.name, plan };
  const got = [];
  const sends = []; // { tag, result: Promise }
  const killedReceivers = [];
  const children = [];
  for (const [i, p] of plan.entries()) {
    if (p.role === 'recv') sends.push({ tag: `P${i}`, result: settle(ch.send(msg(`P${i}`), { timeout: 6000 })) });
    const gate = new Gate(Region.map(shm, i * GATE_BYTES, GATE_BYTES));
    h.defer(() => gate.region.unmap());
    const op = `${p.role}${p.async ? '-async' : ''}`;
    // A send's timeout counts from its start, through its pause at the gate (up to
    // 2 × (300 + 1500) ms of waits below): the invariants expect it to succeed once let go.
    const timeout = p.role === 'send' ? 8000 : 2500;
    const child = h.start('step-party', op, { offset: CHANNEL_AT, gateOffset: i * GATE_BYTES, step: p.step, timeout, msg: msg(p.tag) }, { shm, timeoutMs: 20_000 });
    children.push({ p, gate, child });
    await settle(gate.reached({ peer: child, timeoutMs: 300 })); // may be blocked behind another party
    if (rnd() < 0.5) sends.push({ tag: `B${i}`, result: settle(ch.send(msg(`B${i}`), { timeout: 6000 })) });
    if (rnd() < 0.5) await drain(ch, 50, got);
  }
  for (const { p, gate, child } of children.sort(() => rnd() - 0.5)) {
    await settle(gate.reached({ peer: child, timeoutMs: 1500 }));
    if (p.kill) {
      child.kill();
      await child.exited;
      if (p.role === 'recv') killedReceivers.push(p);
    } else gate.release();
    if (rnd() < 0.5) await drain(ch, 50, got);
  }
  await drain(ch, 500, got);
  const results = [];
  for (const { p, child } of children) {
    if (p.kill) continue;
    const r = await child.result(10_000);
    results.push({ p, r });
    if (p.role === 'recv' && r.ok) got.push(tagOf(r.value));
  }
  // Invariants.
  const seen = new Map();
  for (const t of got) seen.set(t, (seen.get(t) ?? 0) + 1);
  for (const [t, n] of seen) assert.is(n, 1, `${t} received ${n} times: ${got}`);
  // Every message whose send succeeded is received once, except at most one per killed
  // receiver (a message a receiver had taken is lost with it).
  const lost = [];
  for (const s of sends) {
    const r = await s.result;
    if (!r.error && !seen.has(s.tag)) lost.push(s.tag);
  }
  for (const { p, r } of results) if (p.role === 'send' && r.ok && !seen.has(p.tag)) lost.push(p.tag);
  assert.ok(lost.length <= killedReceivers.length, `lost ${lost} with ${killedReceivers.length} receiver(s) killed; received ${got}`);
  for (const { p, r } of results) {
    if (p.role === 'send') {
      assert.ok(r.ok, `${p.tag}'s send (let go at ${p.step}) succeeds: ${JSON.stringify(r)}`);
    } else {
      // Its message may have gone to another receiver first: then it times out.
      assert.ok(r.ok || r.error.name === 'TimeoutError', `${p.tag}'s receive (let go at ${p.step}) succeeds or times out: ${JSON.stringify(r)}`);
    }
  }
  await noWedge(ch);
  return { kind: kind.name, plan };
}

for (let i = 0; i < (ONLY_ONE ? 1 : SCHEDULES); i++) {
  const seed = FIRST_SEED + i;
  test(`schedule seed ${seed}`, async () => {
    try {
      await schedule(seed);
    } catch (err) {
      err.message = `${err.message}\n  schedule: ${JSON.stringify(current)}\n  replay: EXPLORE_SEED=${seed} node test/channel-explore.test.js`;
      throw err;
    }
  });
}

test.run();
