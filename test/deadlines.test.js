// The timeouts of pending async waits (src/sync/deadlines.ts): one timer for all of them,
// entries expired in deadline order and never before their deadline, entries that ended
// early skipped, and the timer re-armed when an earlier deadline comes in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Deadlines } from '../dist/sync/deadlines.js';
import { within } from './helpers.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Deadlines whose expiries are recorded, with the time (performance.now()) each came. */
function recording() {
  const expired = [];
  let all;
  const done = new Promise((r) => (all = r));
  const d = new Deadlines((e) => {
    expired.push({ name: e.name, at: performance.now(), deadline: e.deadline });
    if (expired.length === d.expect) all();
  });
  return { d, expired, done };
}

test('entries expire in deadline order, whatever order they came in, and never before their deadline', async () => {
  const { d, expired, done } = recording();
  const t0 = performance.now();
  const ms = [60, 10, 35, 10, 80, 25];
  d.expect = ms.length;
  ms.forEach((m, i) => d.add({ name: `e${i}`, deadline: t0 + m, done: false }));
  await within(3000, done, 'six expiries');
  assert.equal(expired.map((e) => e.name), ['e1', 'e3', 'e5', 'e2', 'e0', 'e4']);
  for (const e of expired) assert.ok(e.at >= e.deadline, `${e.name} expired ${(e.deadline - e.at).toFixed(2)} ms early`);
  assert.is(d.size, 0);
});

test('an entry that ended before its deadline is not expired, and leaves the heap when it comes up', async () => {
  const { d, expired, done } = recording();
  const t0 = performance.now();
  const early = { name: 'early', deadline: t0 + 10, done: false };
  const kept = { name: 'kept', deadline: t0 + 30, done: false };
  const ended = { name: 'ended', deadline: t0 + 20, done: false };
  d.expect = 2;
  for (const e of [early, kept, ended]) d.add(e);
  ended.done = true;
  await within(3000, done, 'two expiries');
  assert.equal(expired.map((e) => e.name), ['early', 'kept']);
  assert.is(d.size, 0);
});

test('an earlier deadline added later re-arms the timer; a later one does not delay the earlier', async () => {
  const { d, expired, done } = recording();
  const t0 = performance.now();
  d.expect = 3;
  d.add({ name: 'late', deadline: t0 + 400, done: false });
  d.add({ name: 'soon', deadline: t0 + 20, done: false });
  d.add({ name: 'later', deadline: t0 + 600, done: false });
  await sleep(100);
  assert.equal(expired.map((e) => e.name), ['soon'], 'the 20 ms entry expired without waiting for the 400 ms one');
  assert.ok(expired[0].at - t0 < 300, `the 20 ms entry came after ${(expired[0].at - t0).toFixed(1)} ms`);
  await within(3000, done, 'all three');
  assert.equal(expired.map((e) => e.name), ['soon', 'late', 'later']);
});

test('10,000 entries with random deadlines: each expires once, in order, none early', async () => {
  const { d, expired, done } = recording();
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const t0 = performance.now();
  const n = 10_000;
  d.expect = n - n / 4;
  for (let i = 0; i < n; i++) {
    const e = { name: i, deadline: t0 + random() * 200, done: false };
    d.add(e);
    if (i % 4 === 0) e.done = true; // a quarter end early
  }
  await within(5000, done, 'the expiries');
  await sleep(20);
  assert.is(expired.length, n - n / 4, 'each live entry once, no ended one');
  assert.ok(expired.every((e) => e.name % 4 !== 0));
  for (let i = 1; i < expired.length; i++) assert.ok(expired[i].deadline >= expired[i - 1].deadline, 'in deadline order');
  for (const e of expired) assert.ok(e.at >= e.deadline, 'none early');
  assert.is(d.size, 0);
});

test('the timer does not keep the process alive', () => {
  // A Deadlines with a pending entry far away: this file's process still ends once the
  // tests are done (the runner's watchdog would fail it otherwise).
  const d = new Deadlines(() => {});
  d.add({ deadline: performance.now() + 3_600_000, done: false });
  assert.is(d.size, 1);
});

test.run();
