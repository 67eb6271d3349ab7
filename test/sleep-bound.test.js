// The bound on a waiter's sleep (src/sync/sleep-bound.ts): at most 50 ms, ending on the
// next multiple of 50 ms of the thread's clock, so that idle waits of one thread time
// out together instead of each waking the thread on its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sleepBound, SLEEP_MS } from '../dist/sync/sleep-bound.js';
import { runFixture } from './helpers.js';

test('a sleep lasts at most SLEEP_MS and ends on a multiple of it', () => {
  assert.is(SLEEP_MS, 50);
  const starts = [0, 1e-9, 0.5, 49.999, 50, 50.001, 12345.678, 1e7 + 0.25];
  for (let i = 0; i < 1000; i++) starts.push(Math.random() * 1e8);
  for (const now of starts) {
    const ms = sleepBound(now);
    assert.ok(ms > 0 && ms <= SLEEP_MS, `sleepBound(${now}) = ${ms}`);
    const end = now + ms;
    const off = Math.abs(end - Math.round(end / SLEEP_MS) * SLEEP_MS);
    assert.ok(off < 1e-6, `a sleep from ${now} ends at ${end}, ${off} ms off a mark`);
  }
  assert.is(sleepBound(100), SLEEP_MS, 'a sleep starting on a mark lasts the whole bound');
});

// Before: each wait woke the thread on its own, 158–170 times a second for these 10 waits
// (and 10 more for 10 more waits); now about 20, one per mark.
// (Counted in /proc: Linux only.)
const cases = [
  ['channel'],
  ['broadcast'],
  ['watch'],
  ['channel,broadcast,watch'],
  ['channel,broadcast,watch', 'thread'],
];
for (const [kinds, backend] of process.platform === 'linux' ? cases : []) {
  const through = backend === undefined ? '' : ` (async waits through the ${backend})`;
  test(`10 idle async waits of each of ${kinds} started 5 ms apart wake their thread about once per bound, not once each${through}`, async () => {
    const env = backend === undefined ? undefined : { CONCURRENT_SHM_ASYNC_WAITS: backend };
    const r = await runFixture('idle-waits', ['10', '5', '1.5', kinds], { timeoutMs: 30_000, env });
    assert.is(r.code, 0, r.stderr);
    const { waits, perSecond } = JSON.parse(r.stdout);
    assert.is(waits, 10 * kinds.split(',').length);
    assert.ok(perSecond < 60, `${perSecond.toFixed(1)} wake-ups a second for ${waits} idle waits (one per 50 ms mark is 20)`);
  });
}

test.run();
