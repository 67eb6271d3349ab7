// Calls behind a party stalled in the middle of its claim (a process that lost its CPU,
// was stopped, or died there). Nobody signals them when the claim ends, so waiters look
// again by themselves (src/sync/blocked-sleep.ts): less often the longer the stall
// lasts, with a liveness look at the staller once per bound, not on every look; and
// try-calls, which never wait, keep a clock of their own (src/sync/try-clock.ts).
//
// Before this, each pending async call woke every millisecond and read /proc on each
// wake. On a machine with busy CPUs four such calls kept the event loop in its timer
// phase for seconds: a receive with a 50 ms timeout in the same process took 4 s.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, TimeoutError } from '../dist/index.js';
import { setStepHook } from '../dist/sync/steps.js';
import { setIdentity } from '../dist/sync/liveness.js';
import { GATE_BYTES } from './fixtures/step-gate.js';
import { harness, settle } from './fixtures/channel-harness.js';
import { CHANNEL_AT, gatedChannel, msg, tagOf } from './fixtures/step-kinds.js';
import { deadPid, READING, state, WRITING } from './fixtures/slot-states.js';

const h = harness(test, 'cblk');

// First: the tests below replace the liveness check (setIdentity) for the rest of the file.
// Try-calls never wait, so no wait ever reached the liveness bound in a program that only
// polls: a party killed in the middle of its claim left trySend / tryRecv failing for good.
// Now a handle's tries, blocked by one party for the bound, look at it (sync/try-clock.ts).
for (const [name, options] of [
  ['', { depth: 2, capacity: 16 }],
  [' (chunked: tries judge slots without claiming them)', { depth: 2, capacity: 16, maxMessage: 100 }],
]) test(`trySend and tryRecv alone repair a slot a dead party left mid-claim, once blocked for the liveness bound${name}`, async () => {
  const shm = h.object(CHANNEL_AT + 4096);
  const ch = h.keep(new Channel.Buffered.Variable(shm, { ...options, offset: CHANNEL_AT }));
  const p = ch.protocol;
  const dead = await deadPid();
  const poll = async (attempt) => {
    const started = performance.now();
    while (performance.now() - started < 3000) {
      if (attempt()) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return -1;
  };
  // A sender killed at channel.send.cas: slot 0 WRITING for position 0, tail still 0.
  Atomics.store(p.w, p.slotWord(0), state(WRITING, p.tagOf(0), dead));
  assert.is(ch.tryRecv(), undefined);
  const sendMs = await poll(() => ch.trySend('a'));
  assert.ok(sendMs >= 0, 'trySend claims the slot once the dead sender was looked at');
  assert.is(ch.tryRecv({ encoding: 'latin1' }), 'a');
  // A receiver killed at channel.recv.cas: position 1's message READING, head still 1.
  ch.sendSync('b');
  Atomics.store(p.w, p.slotWord(1), state(READING, p.tagOf(1), dead));
  let got;
  const recvMs = await poll(() => (got = ch.tryRecv({ encoding: 'latin1' })) !== undefined);
  assert.ok(recvMs >= 0, 'tryRecv gets the message once the dead receiver was looked at');
  assert.is(got, 'b', 'the message the dead receiver had claimed, whole and once');
  assert.is(ch.tryRecv(), undefined);
});

test('async calls behind a party paused at channel.send.cas sleep longer as the stall lasts, look at its liveness once per bound, and leave the event loop free', async () => {
  const { shm, ch, gates } = gatedChannel(h, (s) => new Channel.Unbuffered.Variable(s, { capacity: 64, offset: CHANNEL_AT }));
  const a = h.start('step-party', 'send', { offset: CHANNEL_AT, gateOffset: 0 * GATE_BYTES, step: 'channel.send.cas', timeout: 8000, msg: msg('A') }, { shm, timeoutMs: 30_000 });
  await gates[0].reached({ peer: a });
  // Count this process's sleeps and liveness looks (a live party: `kill(pid, 0)` succeeds).
  let sleeps = 0;
  let looks = 0;
  setStepHook((step) => {
    if (step === 'channel.wait.sleep') sleeps++;
  });
  setIdentity(process.pid, (pid) => {
    looks++;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return err.code !== 'ESRCH';
    }
  });
  const STALL_MS = 1200;
  const SENDS = 4;
  try {
    const started = performance.now();
    const sends = Array.from({ length: SENDS }, (_, i) => settle(ch.send(msg(`S${i}`), { timeout: STALL_MS })));
    // Meanwhile the event loop runs other work on time: a receive with a short timeout.
    const r = await settle(ch.recv({ timeout: 50 }));
    const took = performance.now() - started;
    assert.instance(r.error, TimeoutError, 'nothing can be received past the paused sender');
    assert.ok(took < 600, `a receive with a 50 ms timeout ended after ${took.toFixed(0)} ms`);
    for (const s of await Promise.all(sends)) assert.instance(s.error, TimeoutError, 'the sends time out behind the paused sender');
    const elapsed = performance.now() - started; if (process.env.SHOW) console.log({ sleeps, looks, took, elapsed });
    // Sleeping 1 ms, then a quarter of the stall so far, at most 16 ms: about 75 sleeps
    // per call in 1.2 s (waking every millisecond: 600 or more).
    assert.ok(sleeps <= SENDS * 120, `${sleeps} sleeps of ${SENDS} sends in ${elapsed.toFixed(0)} ms`);
    assert.ok(sleeps >= SENDS * 10, `${sleeps} sleeps: the sends did wait and look again`);
    // One look per 100 ms bound per call, each covering one claim (looking on every claim: 1,000 or more).
    const bounds = Math.ceil(elapsed / 100);
    assert.ok(looks >= SENDS, `the paused sender was looked at (${looks} looks)`);
    assert.ok(looks <= SENDS * bounds, `${looks} liveness looks of ${SENDS} sends over ${bounds} bounds`);
  } finally {
    setStepHook(undefined);
  }
  gates[0].release();
  assert.is(tagOf(await ch.recv({ timeout: 4000, encoding: 'latin1' })), 'A', "the paused sender's message goes through once it goes on");
  assert.equal((await a.result(8000)).ok, true);
});

test.run();
