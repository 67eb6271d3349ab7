// A SIGKILL storm over a Buffered.Variable channel: in each round, two producers and two
// consumers (real processes) run while one of them, chosen at random, is SIGKILLed at a
// random moment; then the producers finish, the channel is closed and the consumers
// drain it. Every round must end (no hang), and over all rounds: no torn message, none
// received twice, and every message whose send returned received, except at most one
// per killed consumer (the message it had taken when it died).
//
// CI runs STORM_ROUNDS (default 12) rounds per API; STORM_ROUNDS=100 for the full storm
// (STORM_API=sync or async for one API; TEST_WATCHDOG_MS raises test/run.js's watchdog).
// A failing round prints its seed: STORM_SEED=<seed> STORM_ROUNDS=1 replays its choices.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, Region } from '../dist/index.js';
import { prng } from './fixtures/prng.js';
import { harness, until } from './fixtures/channel-harness.js';

const h = harness(test, 'storm');
const ROUNDS = Number(process.env.STORM_ROUNDS ?? 12);
const SEED = Number(process.env.STORM_SEED ?? Date.now() % 1_000_000);
const COUNT = 300;


const TALLY = 8192;

async function round(api, seed) {
  const rnd = prng(seed);
  const shm = h.object(TALLY + 2 * COUNT * 4 * 3);
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 4, capacity: 64 }));
  const tally = Region.map(shm, TALLY, 2 * COUNT * 4 * 3);
  h.defer(() => tally.unmap());
  const all = new Int32Array(tally.mapping.buffer, tally.start, 2 * COUNT * 3);
  const [sent, got, torn] = [all.subarray(0, 2 * COUNT), all.subarray(2 * COUNT, 4 * COUNT), all.subarray(4 * COUNT)];
  const start = (role, arg) => h.start('storm-party', role, { offset: 0, tally: TALLY, producers: 2, count: COUNT, api, ...arg }, { shm, timeoutMs: 30_000 });
  const producers = [start('producer', { id: 0 }), start('producer', { id: 1 })];
  const consumers = [start('consumer', {}), start('consumer', {})];
  const victim = [...producers, ...consumers][Math.floor(rnd() * 4)];
  // Kill the victim once some messages went through, after a random number of them.
  const after = 1 + Math.floor(rnd() * 2 * COUNT * 0.8);
  const progress = () => (producers.includes(victim) ? sent : got).reduce((x, y) => x + y, 0);
  await until(() => progress() >= after || !victim.running, { timeoutMs: 15_000, what: 'the victim to get going', every: 1 });
  victim.kill();
  const t0 = performance.now();
  await Promise.all(producers.map((p) => p.exited));
  ch.close();
  await Promise.all(consumers.map((c) => c.exited));
  const ended = performance.now() - t0;
  const killedConsumer = consumers.includes(victim) ? 1 : 0;
  const at = `round ${seed}, ${victim.describe()} killed`;
  for (const p of [...producers, ...consumers]) {
    if (p === victim) continue;
    assert.is(p.exit.code, 0, `${p.describe()} ended normally (${at}): ${p.stderr}`);
    assert.is(p.stdout.trim(), '', `${p.describe()} saw no error (${at})`);
  }
  assert.is(torn[0], 0, `no torn message (${at})`);
  let lost = 0;
  let received = 0;
  let sentCount = 0;
  for (let i = 0; i < 2 * COUNT; i++) {
    assert.ok(got[i] <= 1, `message ${i} received ${got[i]} times (${at})`);
    received += got[i];
    sentCount += sent[i];
    if (sent[i] === 1 && got[i] === 0) lost++;
  }
  assert.ok(lost <= killedConsumer, `lost ${lost} with ${killedConsumer} consumer killed (${at})`);
  // Let go of this round's object now (the harness would only after the whole test).
  ch.release();
  tally.unmap();
  shm.unlink();
  return { ended, lost, sent: sentCount, got: received, killed: producers.includes(victim) ? 'producer' : 'consumer' };
}

const APIS = process.env.STORM_API ? [process.env.STORM_API] : ['sync', 'async'];
for (const api of APIS) {
  test(`SIGKILL storm (${api}): ${ROUNDS} rounds, one producer or consumer killed in each`, async () => {
    const totals = { rounds: 0, sent: 0, got: 0, lost: 0, maxEnd: 0, killed: { producer: 0, consumer: 0 } };
    for (let i = 0; i < ROUNDS; i++) {
      const seed = SEED + i;
      let r;
      try {
        r = await round(api, seed);
      } catch (err) {
        err.message = `${err.message}\n  replay: STORM_SEED=${seed} STORM_ROUNDS=1 node test/channel-storm.test.js`;
        throw err;
      }
      totals.rounds++;
      totals.sent += r.sent;
      totals.got += r.got;
      totals.lost += r.lost;
      totals.killed[r.killed]++;
      totals.maxEnd = Math.max(totals.maxEnd, r.ended);
    }
    console.log(`storm ${api}: ${JSON.stringify(totals)}`);
  });
}

test.run();
