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

// Before: each wait woke the thread on its own, 158–170 times a second for 10 waits (and
// 10 more for 10 more waits); now about 20, one per mark. Through a waiter thread, each
// request also woke that thread: 465 wake-ups a second for 30 waits (all threads), now
// about 80, and 96 for 60 waits (158 with a wake of the thread per request).
// (Counted in /proc: Linux only.)
const cases = [
  { kinds: 'channel', count: 10 },
  { kinds: 'broadcast', count: 10 },
  { kinds: 'watch', count: 10 },
  { kinds: 'channel,broadcast,watch', count: 10 },
  { kinds: 'channel,broadcast,watch', count: 20, backend: 'thread' },
];
for (const { kinds, count, backend } of process.platform === 'linux' ? cases : []) {
  const through = backend === undefined ? '' : ` (async waits through the ${backend})`;
  test(`${count} idle async waits of each of ${kinds} started 5 ms apart wake their process about once per bound, not once each${through}`, async () => {
    const env = backend === undefined ? undefined : { CONCURRENT_SHM_ASYNC_WAITS: backend };
    const r = await runFixture('idle-waits', [String(count), '5', '1.5', kinds], { timeoutMs: 30_000, env });
    assert.is(r.code, 0, r.stderr);
    const { waits, perSecond, allPerSecond } = JSON.parse(r.stdout);
    assert.is(waits, count * kinds.split(',').length);
    assert.ok(perSecond < 60, `the main thread woke ${perSecond.toFixed(1)} times a second for ${waits} idle waits (one per 50 ms mark is 20)`);
    // All threads, a waiter thread included: a bound well under a wake-up per wait and request.
    assert.ok(allPerSecond < 150, `the process's threads woke ${allPerSecond.toFixed(1)} times a second for ${waits} idle waits`);
  });
}

test.run();
