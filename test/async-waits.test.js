// How async waits sleep (src/sync/async-waiter.ts): through io_uring where the kernel can
// (Linux 6.7+ with io_uring allowed), else through one waiter thread. Either way a wait
// ends when another process wakes its word, at once when the word differs already, on
// its timeout or abort, with many pending at once, and leaves nothing pending behind.
// The file runs itself once more with CONCURRENT_SHM_ASYNC_WAITS=thread, so both ways
// pass the same checks on a machine that has io_uring.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Region } from '../dist/index.js';
import { ASYNC_WAITS_ENV, asyncWaiter } from '../dist/sync/async-waiter.js';
import { futexWake } from '../dist/sync/futex.js';
import { view } from '../dist/sys/libc.js';
import { Ring } from '../dist/sys/uring.js';
import { runFixture, withShm, within } from './helpers.js';

const wanted = process.env[ASYNC_WAITS_ENV] ?? 'auto';

/** Whether this machine lets io_uring wait on futex words: Linux ≥ 6.7 and io_uring not disabled. */
function uringExpected() {
  if (process.platform !== 'linux') return false;
  const [major, minor] = release().split('.').map(Number);
  if (major < 6 || (major === 6 && minor < 7)) return false;
  try {
    return readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim() === '0';
  } catch {
    return true; // kernels without the setting allow io_uring
  }
}

/** Runs fn(words, region) over `n` zeroed words of a fresh object, which a child may inherit. */
async function withWords(n, fn) {
  await withShm(Math.max(4096, n * 4), async (shm) => {
    const region = Region.map(shm, 0, n * 4);
    try {
      await fn(new Int32Array(view(region.address, n * 4)), region, shm);
    } finally {
      region.unmap();
    }
  }, 'aw');
}

test(`the way waits sleep here (${wanted})`, () => {
  const { kind, why } = asyncWaiter.kind();
  if (wanted === 'thread') assert.equal({ kind, why }, { kind: 'thread', why: `${ASYNC_WAITS_ENV}=thread` });
  else if (uringExpected()) assert.is(kind, 'io_uring', `io_uring was expected here, but: ${why}`);
  else assert.equal([kind, why.length > 0], ['thread', true], 'a thread, and why not io_uring');
});

test('a wait ends when another process wakes its word, and not before', async () => {
  await withWords(1, async (w, region, shm) => {
    let ended = false;
    const wait = asyncWaiter.wait(region.address, 0, Infinity).then(() => (ended = true));
    const child = runFixture('futex-waker', ['1', '300'], { shm });
    await new Promise((r) => setTimeout(r, 150));
    assert.is(ended, false, 'still asleep before the wake');
    assert.is(asyncWaiter.pending, 1);
    await within(5000, wait, 'the woken wait');
    assert.is(Atomics.load(w, 0), 1);
    assert.is((await child).code, 0);
    assert.is(asyncWaiter.pending, 0);
  });
});

test('a wait on a word that differs already ends at once; a timed one at its timeout; an aborted one at its abort', async () => {
  await withWords(1, async (w, region) => {
    await within(1000, asyncWaiter.wait(region.address, 7, Infinity), 'the wait on a differing word');
    const t0 = performance.now();
    await within(2000, asyncWaiter.wait(region.address, 0, 40), 'the timed wait');
    const took = performance.now() - t0;
    assert.ok(took >= 39 && took < 1000, `a 40 ms wait took ${took.toFixed(1)} ms`);
    const ac = new AbortController();
    const aborted = asyncWaiter.wait(region.address, 0, Infinity, [ac.signal]);
    setTimeout(() => ac.abort(), 20);
    await within(2000, aborted, 'the aborted wait');
    assert.is(asyncWaiter.pending, 0);
    // A wake of the word after the abort finds nothing of it (no late resolve, no crash).
    Atomics.store(w, 0, 1);
    futexWake(region.address);
    await within(1000, asyncWaiter.wait(region.address, 0, Infinity), 'a new wait after the abort');
    assert.is(asyncWaiter.pending, 0);
  });
});

test('waits sharing a signal: it gets one listener, and its abort ends every wait pending on it, not the others', async () => {
  await withWords(1, async (w, region) => {
    const shared = new AbortController();
    const other = new AbortController();
    const ended = [];
    const waits = [];
    for (let i = 0; i < 50; i++) waits.push(asyncWaiter.wait(region.address, 0, Infinity, [shared.signal, undefined]).then(() => ended.push(i)));
    const apart = asyncWaiter.wait(region.address, 0, Infinity, [other.signal, shared.signal]).then(() => ended.push('apart'));
    const unsignalled = asyncWaiter.wait(region.address, 0, Infinity).then(() => ended.push('none'));
    assert.is(getEventListeners(shared.signal, 'abort').length, 1, 'one listener for 51 waits');
    assert.is(asyncWaiter.pending, 52);
    other.abort();
    await within(2000, apart, 'the wait of the other signal');
    assert.equal(ended, ['apart']);
    shared.abort();
    await within(2000, Promise.all(waits), 'the 50 waits of the shared signal');
    assert.is(ended.length, 51);
    assert.is(asyncWaiter.pending, 1, 'the unsignalled wait still sleeps');
    // A wait given an aborted signal ends at once.
    await within(1000, asyncWaiter.wait(region.address, 0, Infinity, [shared.signal]), 'a wait on an aborted signal');
    Atomics.store(w, 0, 1);
    futexWake(region.address);
    await within(2000, unsignalled, 'the unsignalled wait, woken');
    assert.is(asyncWaiter.pending, 0);
  });
});

test("a caller's signal loses its listener when its last wait ends (Node keeps an AbortSignal.any() with a listener alive until it aborts)", async () => {
  await withWords(1, async (w, region) => {
    const long = new AbortController();
    const perCall = AbortSignal.any([long.signal]);
    const a = asyncWaiter.wait(region.address, 0, 20, [perCall]);
    const b = asyncWaiter.wait(region.address, 0, 40, [perCall]);
    assert.is(getEventListeners(perCall, 'abort').length, 1, 'one listener while its waits are pending');
    await within(2000, a, 'the 20 ms wait');
    assert.is(getEventListeners(perCall, 'abort').length, 1, 'kept while a wait is still pending');
    await within(2000, b, 'the 40 ms wait');
    assert.is(getEventListeners(perCall, 'abort').length, 0, 'removed once no wait is pending on it');
    // Used again: a listener again, and its abort still ends the wait.
    const c = asyncWaiter.wait(region.address, 0, Infinity, [perCall]);
    assert.is(getEventListeners(perCall, 'abort').length, 1);
    long.abort();
    await within(2000, c, 'the wait ended by the abort');
    assert.is(asyncWaiter.pending, 0);
  });
});

test('timed waits of many timeouts end at their own times, none early, and a woken one does not end the others', async () => {
  await withWords(2, async (w, region) => {
    const t0 = performance.now();
    const timeouts = [90, 15, 60, 30, 45];
    const took = new Map();
    const timed = timeouts.map((ms) => asyncWaiter.wait(region.address, 0, ms).then(() => took.set(ms, performance.now() - t0)));
    const woken = asyncWaiter.wait(region.address + 4, 0, 5000).then(() => took.set('woken', performance.now() - t0));
    setTimeout(() => {
      Atomics.store(w, 1, 1);
      futexWake(region.address + 4);
    }, 5);
    await within(3000, Promise.all([...timed, woken]), 'the timed waits');
    for (const ms of timeouts) assert.ok(took.get(ms) >= ms - 0.5 && took.get(ms) < ms + 500, `a ${ms} ms wait ended after ${took.get(ms).toFixed(1)} ms`);
    assert.ok(took.get('woken') < 1000, 'the woken one ended when woken');
    assert.equal([...took.keys()].filter((k) => k !== 'woken'), [...timeouts].sort((a, b) => a - b), 'in the order of their timeouts');
    assert.is(asyncWaiter.pending, 0);
  });
});

test('2,000 waits on distinct words and 500 on one word, all woken at once by another process, all end', async () => {
  // More completions than the io_uring completion ring holds (1,024): the rest wait in the kernel.
  await withWords(2000, async (w, region, shm) => {
    const waits = [];
    for (let i = 0; i < 2000; i++) waits.push(asyncWaiter.wait(region.address + i * 4, 0, Infinity));
    for (let i = 0; i < 500; i++) waits.push(asyncWaiter.wait(region.address, 0, Infinity));
    assert.is(asyncWaiter.pending, 2500);
    const child = runFixture('futex-waker', ['2000', '50'], { shm });
    await within(10_000, Promise.all(waits), 'the 2,500 waits');
    assert.is((await child).code, 0);
    assert.is(asyncWaiter.pending, 0);
  });
});

test('unmapping the word\'s region while its wait sleeps: the wait ends by its signal, and nothing crashes', async () => {
  await withShm(4096, async (shm) => {
    const region = Region.map(shm, 0, 4096);
    const ac = new AbortController();
    const wait = asyncWaiter.wait(region.address, 0, Infinity, [ac.signal]);
    await new Promise((r) => setTimeout(r, 20));
    region.unmap();
    ac.abort();
    await within(2000, wait, 'the wait on the unmapped word');
    // The process lives on, and waits keep working.
    await new Promise((r) => setTimeout(r, 50));
    const other = Region.map(shm, 0, 4096);
    await within(1000, asyncWaiter.wait(other.address, 5, Infinity), 'a later wait');
    other.unmap();
  }, 'aw');
});

test('the environment picks the way: a bad value is refused with a clear error by the first call that sleeps', async () => {
  const kind = (value) => runFixture('async-waits-kind', [], { env: { [ASYNC_WAITS_ENV]: value } }).then((r) => {
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  });
  assert.equal(await kind('thread'), { kind: 'thread', why: `${ASYNC_WAITS_ENV}=thread` });
  const bad = await kind('fast');
  assert.equal([bad.name, bad.code], ['InvalidArgumentError', 'ERR_SHM_INVALID_ARGUMENT']);
  assert.match(bad.message, /CONCURRENT_SHM_ASYNC_WAITS must be auto, io_uring or thread, not "fast"/);
  const forced = await kind('io_uring');
  if (uringExpected()) assert.equal(forced, { kind: 'io_uring', why: '' });
  else assert.equal([forced.name, /io_uring cannot wait here/.test(forced.message)], ['InvalidArgumentError', true]);
});

test('a ring that stops working: its pending waits end, a warning says why, and waits go on through a waiter thread', async () => {
  if (wanted === 'thread' || !uringExpected()) return;
  const r = await runFixture('async-waits-fallback');
  assert.is(r.code, 0, r.stderr);
  const seen = JSON.parse(r.stdout);
  assert.equal(seen.before, 'io_uring');
  assert.equal(seen.ended, ['a', 'b'], 'the pending wait and the one that found the ring broken both ended');
  assert.equal(seen.after.kind, 'thread');
  assert.match(seen.after.why, /io_uring_enter failed \(errno \d+\)/);
  assert.equal(seen.warnings.length, 1);
  assert.match(seen.warnings[0], /concurrent-shm: async waits moved to a waiter thread: io_uring_enter failed/);
  assert.is(seen.woken, true, 'a later wait is woken through the thread');
  assert.is(seen.pending, 0);
});

if (wanted !== 'thread' && uringExpected()) {
  test('waits that time out together are cancelled in a few system calls: 200 cancels in about 4, not 200', async () => {
    await withWords(200, async (w, region) => {
      const waits = [];
      // One deadline for all (starting 200 waits can take milliseconds on a busy machine).
      const due = performance.now() + 30;
      for (let i = 0; i < 200; i++) waits.push(asyncWaiter.wait(region.address + i * 4, 0, due - performance.now()));
      // Each wait is submitted at once (a wait deferred to the end of the turn made a
      // loaded ping-pong slower); their cancels, all due in one timer fire, go together.
      const enters = Ring.enters;
      await within(2000, Promise.all(waits), 'the timed waits');
      assert.is(asyncWaiter.pending, 0);
      const used = Ring.enters - enters;
      assert.ok(used <= 10, `${used} io_uring_enter calls for 200 cancels`);
      // Each of them still works: a wait ends when its word is woken, not before.
      let ended = false;
      const last = asyncWaiter.wait(region.address + 199 * 4, 0, Infinity).then(() => (ended = true));
      await new Promise((r) => setTimeout(r, 30));
      assert.is(ended, false);
      Atomics.store(w, 199, 1);
      futexWake(region.address + 199 * 4);
      await within(2000, last, 'the woken wait');
    });
  });
}

if (wanted !== 'thread') {
  test('the same checks pass with waits through the waiter thread', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, [ASYNC_WAITS_ENV]: 'thread' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /Total:\s+10\b/);
    assert.match(r.stdout, /Passed:\s+10\b/);
  });
}

test.run();
