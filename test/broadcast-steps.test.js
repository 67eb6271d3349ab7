// The step harness over the Broadcast protocol (src/broadcast/protocol.ts, BROADCAST_STEPS):
// a publisher, a subscriber or a repairer (real child processes) is stopped at each named
// step, then let go on or SIGKILLed, while this process and other children publish and
// receive. Over every (step × outcome):
// - no wedge: publishers and subscribers get through within ~2 s of a kill (the liveness
//   bound is 100 ms);
// - never torn, never duplicated, in order per publisher;
// - a publisher killed before `published` loses only its own message (counted in
//   `abandoned` once its position is given up); from `published` on, its message is
//   delivered;
// - a subscriber lapped while stopped reports the lag instead of a torn copy, and
//   received + missed covers every position.
// A seeded random explorer then runs random schedules of all of them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Broadcast, BROADCAST_STEPS, LaggedError } from '../dist/index.js';
import { GATE_BYTES, mapGates } from './fixtures/step-gate.js';
import { harness, until, within } from './fixtures/channel-harness.js';
import { checkValue, valueOf } from './fixtures/watch-values.js';
import { prng } from './fixtures/prng.js';

const h = harness(test, 'bstep');
const AT = 4096;
const PUBLISH_STEPS = BROADCAST_STEPS.filter((s) => s.startsWith('broadcast.publish.'));
const RECV_STEPS = BROADCAST_STEPS.filter((s) => s.startsWith('broadcast.recv.'));
// Steps at which the stopped publisher's message is already published.
const PUBLISHED = new Set(['broadcast.publish.published', 'broadcast.publish.released']);
// Steps at which it holds a position (seq even): killed there, the position is abandoned.
const HOLDS_POSITION = new Set(['broadcast.publish.claimed', 'broadcast.publish.tail', 'broadcast.publish.copied']);

const msg = (id, seq) => valueOf((id << 20) | seq);
const idOf = (n) => n >>> 20;

function setup(options = {}, gates = 1) {
  const shm = h.object(AT);
  const bc = h.keep(new Broadcast(shm, { depth: 4, capacity: 64, offset: AT, ...options }));
  return { shm, bc, gates: mapGates(h, shm, gates) };
}

function party(shm, role, arg, gateIndex = 0) {
  return h.start('broadcast-party', role, { offset: AT, gateOffset: gateIndex * GATE_BYTES, ...arg }, { shm, timeoutMs: 30_000 });
}

/** Receives in this process until `pred(got)` or `ms` pass; fails on a torn message. */
async function collect(sub, pred, ms = 3000, what = 'messages') {
  const got = [];
  const deadline = performance.now() + ms;
  while (!pred(got)) {
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(got.map((n) => [idOf(n), n & 0xfffff]))}`);
    let m;
    try {
      m = await sub.recv({ timeout: left });
    } catch (err) {
      if (err instanceof LaggedError) continue;
      throw err;
    }
    const n = checkValue(m);
    assert.ok(n !== -1, 'never a torn message');
    got.push(n);
  }
  return got;
}

for (const step of PUBLISH_STEPS) {
  for (const outcome of ['resume', 'kill']) {
    test(`a publisher stopped at ${step}, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
      const { shm, bc, gates: [gate] } = setup();
      const s = bc.subscribe();
      bc.publishSync(msg(9, 0));
      const lost = outcome === 'kill' && !PUBLISHED.has(step);
      const expectedIds = lost ? [9, 2, 4] : [9, 1, 2, 4];
      const child = party(shm, 'subscriber', { count: expectedIds.length, from: 'oldest', timeout: 15_000 });
      await child.message('ready');
      const a = party(shm, 'publisher', { id: 1, from: 0, count: 1, step });
      await gate.reached({ peer: a });
      // While A is stopped: its message is delivered only once published.
      const early = await collect(s, (g) => g.length >= (PUBLISHED.has(step) ? 2 : 1));
      assert.equal(early.map(idOf), PUBLISHED.has(step) ? [9, 1] : [9]);
      assert.is(s.tryRecv(), undefined, 'nothing past A while it is stopped');
      // Another publisher meanwhile (async here: it may wait behind A's slot).
      const b = bc.publish(msg(2, 0), { timeout: 10_000 });
      let killedAt = 0;
      if (outcome === 'resume') gate.release();
      else {
        a.kill();
        await a.exited;
        killedAt = performance.now();
      }
      await within(5000, b, "B's publish");
      const rest = await collect(s, (g) => g.some((n) => idOf(n) === 2), 5000, "B's message");
      if (outcome === 'kill') assert.ok(performance.now() - killedAt < 2000, `B's message arrived within 2 s of the kill (${Math.round(performance.now() - killedAt)} ms)`);
      const all = [...early, ...rest];
      assert.equal(all.map(idOf), expectedIds.slice(0, -1), 'each message once, in publish order');
      assert.is(bc.stats().abandoned, outcome === 'kill' && HOLDS_POSITION.has(step) ? 1 : 0, 'a position held by a dead publisher is abandoned');
      if (outcome === 'resume') assert.ok((await a.result()).ok);
      // No wedge: one more, through this process and the child.
      const t0 = performance.now();
      bc.publishSync(msg(4, 0));
      assert.ok(performance.now() - t0 < 1000);
      assert.equal((await collect(s, (g) => g.length === 1)).map(idOf), [4]);
      const r = await child.result();
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.got.map(idOf), expectedIds, 'the child subscriber got the same messages');
      assert.is(r.torn, 0);
    });
  }
}

/**
 * A subscriber (an async one with `async`) stopped at `step` while publishers lap it, then
 * let go on. `late`: the first message is published only once the receive sleeps.
 */
async function lappedWhileStopped(step, async, late = false) {
  const { shm, bc, gates: [gate] } = setup();
  const entry = step === 'broadcast.subscribe.entry';
  if (!entry && !late) bc.publishSync(msg(1, 0)); // something to receive (or, for wait.sleep, nothing)
  const c = party(shm, 'subscriber', { from: 'oldest', count: 20, until: 'timeout', timeout: 1500, step, async });
  // It sleeps only when nothing is there: it receives the first message, then stops.
  if (!entry) await c.message('ready');
  if (late) {
    await until(() => bc.stats().waiting.subscribers > 0, { what: 'the receive to sleep' });
    bc.publishSync(msg(1, 0));
  }
  await gate.reached({ peer: c });
  // Readers never hold publishers up (no back-pressure): a whole ring and more goes by.
  const t0 = performance.now();
  for (let i = 1; i <= 9; i++) bc.publishSync(msg(1, i));
  assert.ok(performance.now() - t0 < 500, 'publishes never wait for a stopped subscriber');
  gate.release();
  const r = await c.result();
  assert.ok(r.ok, JSON.stringify(r));
  assert.is(r.torn, 0, 'never a torn message');
  const seqs = r.got.map((n) => n & 0xfffff);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `in order, once: ${seqs}`);
  assert.is(r.missed, r.lags.reduce((x, y) => x + y, 0));
  // Every position from where it started to the end: received, missed or never written.
  const end = bc.published;
  assert.ok(r.got.length + r.missed <= end, JSON.stringify(r));
  assert.ok(seqs.at(-1) === 9, `it got the newest message (${seqs})`);
  if (step === 'broadcast.recv.seq' || step === 'broadcast.recv.copied') assert.ok(r.missed > 0, 'a copy overwritten while stopped is reported as a lag');
}

// An async receive whose copy was overwritten starts its wait over (broadcast/waiting.ts).
for (const step of ['broadcast.recv.seq', 'broadcast.recv.copied', 'broadcast.wait.sleep']) {
  test(`an async subscriber stopped at ${step} while publishers lap it, then let go on: a lag, never a torn message`, () => lappedWhileStopped(step, true));
}
test('an async subscriber woken from its sleep, stopped at broadcast.recv.copied while publishers lap it: a lag, never a torn message', () => lappedWhileStopped('broadcast.recv.copied', true, true));

for (const step of [...RECV_STEPS, 'broadcast.subscribe.entry', 'broadcast.wait.sleep']) {
  test(`a subscriber stopped at ${step} while publishers lap it, then let go on: a lag, never a torn message`, () => lappedWhileStopped(step, false));

  test(`a subscriber stopped at ${step}, then killed: back-pressured publishers go on within 2 s`, async () => {
    const { shm, bc, gates: [gate] } = setup({ backpressure: true });
    const entry = step === 'broadcast.subscribe.entry';
    const sleeping = step === 'broadcast.wait.sleep';
    const s = bc.subscribe();
    if (!entry && !sleeping) bc.publishSync(msg(1, 0));
    const c = party(shm, 'subscriber', { from: 'oldest', count: 20, timeout: 15_000, step });
    if (!entry) await c.message('ready');
    await gate.reached({ peer: c });
    // With back-pressure, publishers wait for the stopped (live) subscriber once a ring ahead.
    const first = entry || sleeping ? 0 : 1;
    // One publisher, publishing in order (each publish awaited before the next).
    const pending = [(async () => {
      for (let i = first; i < first + 6; i++) await bc.publish(msg(1, i), { timeout: 15_000 });
    })()];
    const got = await collect(s, (g) => g.length >= 3);
    assert.ok(got.length <= 5);
    c.kill();
    await c.exited;
    const killedAt = performance.now();
    await within(5000, Promise.all(pending), 'the publishes held up by the dead subscriber');
    assert.ok(performance.now() - killedAt < 2000, `went on within 2 s of the kill (${Math.round(performance.now() - killedAt)} ms)`);
    const rest = await collect(s, (g) => got.length + g.length === (first ? 7 : 6));
    assert.equal([...got, ...rest].map((n) => n & 0xfffff), Array.from({ length: first ? 7 : 6 }, (_, i) => i));
    assert.is(bc.subscribers, 1, 'the dead subscriber’s place was freed');
  });
}

for (const step of ['broadcast.repair.cas', 'broadcast.skip.seq']) {
  for (const outcome of ['resume', 'kill']) {
    test(`a repairer of a dead publisher's position stopped at ${step}, then ${outcome === 'resume' ? 'let go on' : 'killed'}`, async () => {
      const { shm, bc, gates: [ga, gr] } = setup({}, 2);
      const s = bc.subscribe();
      // A claims position 0 and dies before moving tail: the worst place (tail behind).
      const a = party(shm, 'publisher', { id: 1, from: 0, count: 1, step: 'broadcast.publish.claimed' }, 0);
      await ga.reached({ peer: a });
      const r = party(shm, 'subscriber', { from: 'oldest', count: 1, timeout: 15_000, step }, 1);
      await r.message('ready');
      a.kill();
      await a.exited;
      // R waits on A's position, finds A dead after ~100 ms, and repairs: stopped in it.
      await gr.reached({ peer: r });
      if (outcome === 'resume') gr.release();
      else {
        r.kill();
        await r.exited;
      }
      const t0 = performance.now();
      bc.publishSync(msg(2, 0));
      bc.publishSync(msg(2, 1));
      const got = await collect(s, (g) => g.length === 2, 5000, 'the next publisher’s messages');
      assert.ok(performance.now() - t0 < 2000, `no wedge (${Math.round(performance.now() - t0)} ms)`);
      assert.equal(got.map(idOf), [2, 2], "A's message is lost, the rest delivered once");
      // (A repairer killed between its seq store and its count leaves the count short.)
      assert.ok(bc.stats().abandoned <= 1);
      if (outcome === 'resume') {
        const rr = await r.result();
        assert.ok(rr.ok, JSON.stringify(rr));
        assert.equal(rr.got.map(idOf), [2], 'the repairer skipped the lost position and got the next');
        assert.is(bc.stats().abandoned, 1);
      }
      // A later lap over the repaired slot works (depth 4: positions 4..).
      for (let i = 2; i < 8; i++) {
        bc.publishSync(msg(2, i));
        assert.equal(await collect(s, (g) => g.length === 1), [(2 << 20) | i]);
      }
    });
  }
}

// A seeded random explorer. Each schedule: back-pressure or not, depth 2/4/8; two
// publisher children (5 messages each) and two subscriber children, one publisher and
// one subscriber stopped at a random step of their role (at a random arrival), each then
// let go or killed at a random moment; this process subscribes and reads throughout.
// Checked: whole messages, in order per publisher, once; with back-pressure nobody
// lags, a publisher let go delivers all its messages, a killed one a prefix; a last
// message gets through within 5 s (no wedge).
const SCHEDULES = Number(process.env.BROADCAST_SCHEDULES ?? 6);
const BASE_SEED = Number(process.env.BROADCAST_SEED ?? Date.now() % 1_000_000);
const SUB_STOPS = [...RECV_STEPS, 'broadcast.wait.sleep'];

function checkPrefixes(got, what, complete) {
  const per = new Map();
  for (const n of got) {
    assert.ok(n !== -1, `${what}: whole`);
    const list = per.get(idOf(n)) ?? [];
    list.push(n & 0xfffff);
    per.set(idOf(n), list);
  }
  for (const [id, seqs] of per) {
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `${what}: publisher ${id} in order, once (${seqs})`);
    if (complete(id) !== null) assert.equal(seqs, Array.from({ length: seqs.length }, (_, i) => i), `${what}: publisher ${id}'s messages from its first, none skipped (${seqs})`);
  }
  return per;
}

test(`explorer: ${SCHEDULES} random schedules of publishers and subscribers stopped, let go and killed (seed ${BASE_SEED})`, async () => {
  for (let k = 0; k < SCHEDULES; k++) {
    const seed = BASE_SEED + k;
    const random = prng(seed);
    const pick = (list) => list[Math.floor(random() * list.length)];
    const backpressure = random() < 0.5;
    const depth = pick([2, 4, 8]);
    const plan = [`depth ${depth}, ${backpressure ? 'back-pressure' : 'no back-pressure'}`];
    try {
      const { shm, bc, gates } = setup({ depth, backpressure }, 2);
      const s = bc.subscribe();
      const mine = [];
      let lagged = 0;
      let reading = true;
      const reader = (async () => {
        while (reading) {
          try {
            mine.push(checkValue(await s.recv({ timeout: 50 })));
          } catch (err) {
            if (err instanceof LaggedError) lagged += err.missed;
            else if (err?.code !== 'ERR_SHM_TIMEOUT') throw err;
          }
        }
      })();
      const subStep = pick(SUB_STOPS);
      const subKill = random() < 0.5;
      const subNth = 1 + Math.floor(random() * 3);
      plan.push(`subscriber 0 stops at ${subStep} (arrival ${subNth}) and is ${subKill ? 'killed' : 'let go'}`);
      const subs = [0, 1].map((i) => party(shm, 'subscriber', { until: 'timeout', timeout: 4000, ...(i === 0 ? { step: subStep, nth: subNth } : {}) }, i === 0 ? 1 : 99));
      await Promise.all(subs.map((x) => x.message('ready')));
      const pubStep = pick(PUBLISH_STEPS);
      const pubKill = random() < 0.5;
      const pubNth = 1 + Math.floor(random() * 3);
      plan.push(`publisher 1 stops at ${pubStep} (arrival ${pubNth}) and is ${pubKill ? 'killed' : 'let go'}`);
      const pubs = [1, 2].map((id) => party(shm, 'publisher', { id, from: 0, count: 5, async: random() < 0.5, ...(id === 1 ? { step: pubStep, nth: pubNth } : {}) }, id === 1 ? 0 : 98));
      const stopped = [
        { p: pubs[0], gate: gates[0], kill: pubKill, what: 'publisher 1' },
        { p: subs[0], gate: gates[1], kill: subKill, what: 'subscriber 0' },
      ];
      const pending = new Set(stopped);
      const deadline = performance.now() + 10_000;
      while (pending.size > 0) {
        const ready = [...pending].filter((x) => x.gate.paused);
        const gone = [...pending].filter((x) => !x.p.running);
        for (const x of gone) {
          plan.push(`${x.what} finished without reaching its step`);
          pending.delete(x);
        }
        if (ready.length === 0) {
          if (performance.now() > deadline) throw new Error(`no party reached its step within 10 s (${[...pending].map((x) => x.what)})`);
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        const x = pick(ready);
        await new Promise((r) => setTimeout(r, Math.floor(random() * 30)));
        plan.push(`${x.what} reached ${x.gate.step}, ${x.kill ? 'killed' : 'let go'}`);
        pending.delete(x);
        if (x.kill) {
          x.p.kill();
          await x.p.exited;
          x.killed = true;
        } else x.gate.release();
      }
      const p1 = stopped[0].killed ? null : await pubs[0].result();
      if (p1) assert.ok(p1.ok, JSON.stringify(p1));
      const p2 = await pubs[1].result();
      assert.ok(p2.ok, JSON.stringify(p2));
      // No wedge: a last message reaches this process within 5 s.
      const t0 = performance.now();
      await within(5000, bc.publish(msg(3, 0), { timeout: 5000 }), 'the last publish');
      await until(() => mine.some((n) => idOf(n) === 3), { timeoutMs: 5000, what: 'the last message' });
      assert.ok(performance.now() - t0 < 5000);
      reading = false;
      await reader;
      const complete = (id) => (id === 1 && stopped[0].killed ? null : id);
      const per = checkPrefixes(mine, 'this process', backpressure ? complete : () => null);
      if (backpressure) {
        assert.is(lagged, 0, 'with back-pressure nobody lags');
        assert.is(per.get(2)?.length, 5, 'publisher 2 delivered everything');
        if (!stopped[0].killed) assert.is(per.get(1)?.length, 5, 'publisher 1 let go delivered everything');
      }
      for (const [i, x] of subs.entries()) {
        if (i === 0 && stopped[1].killed) continue;
        const r = await x.result();
        assert.ok(r.ok, JSON.stringify(r));
        assert.is(r.torn, 0);
        checkPrefixes(r.got, `subscriber ${i}`, (id) => (backpressure ? complete(id) : null));
        if (backpressure) assert.is(r.missed, 0);
      }
    } catch (err) {
      err.message = `schedule with seed ${seed} (replay: BROADCAST_SEED=${seed} BROADCAST_SCHEDULES=1): ${plan.join('; ')}\n${err.message}`;
      throw err;
    } finally {
      // each schedule's children and objects go before the next
    }
  }
});

test('every step is covered above', () => {
  assert.is(PUBLISH_STEPS.length, 6);
  assert.is(RECV_STEPS.length, 3);
  for (const s of ['broadcast.skip.seq', 'broadcast.repair.cas', 'broadcast.subscribe.entry', 'broadcast.wait.sleep']) assert.ok(BROADCAST_STEPS.includes(s));
  assert.is(BROADCAST_STEPS.length, PUBLISH_STEPS.length + RECV_STEPS.length + 4);
});

test.run();
