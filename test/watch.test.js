// Watch (latest value): the API in one process, header validation, and readers and
// writers in real child processes (never a torn value, never an older one).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, InvalidArgumentError, LayoutError, MisalignedError, OutOfRangeError, OverlapError, PayloadTooLargeError, Region, RegionUnmappedError, SharedMemory, TimeoutError, AbortError, Watch, WATCH_STEPS } from '../dist/index.js';
import { harness, rejects, throws, until, within } from './fixtures/channel-harness.js';
import { checkValue, valueOf } from './fixtures/watch-values.js';

const h = harness(test, 'watch');

function fresh(capacity = 64, extra = {}) {
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity, ...extra }));
  return { shm, w };
}

test('before the first write: version 0 and an empty value', () => {
  const { w } = fresh();
  assert.is(w.version, 0);
  assert.equal(w.read(), { value: Buffer.alloc(0), version: 0 });
  assert.equal(w.read({ encoding: 'utf8' }), { value: '', version: 0 });
  assert.equal(w.readInto(Buffer.alloc(64)), { length: 0, version: 0 });
  assert.is(w.readTyped(Float64Array).value.length, 0);
  assert.is(w.capacity, 64);
  assert.is(w.byteLength, Watch.byteLength(64));
  assert.is(w.writer, 0);
});

test('write replaces the value; each write is a new version', () => {
  const { w } = fresh();
  assert.is(w.write('hello'), 1);
  assert.equal(w.read({ encoding: 'utf8' }), { value: 'hello', version: 1 });
  assert.is(w.write(Buffer.from([1, 2, 3])), 2);
  assert.equal(w.read(), { value: Buffer.from([1, 2, 3]), version: 2 });
  assert.is(w.write(''), 3);
  assert.equal(w.read({ encoding: 'utf8' }), { value: '', version: 3 });
  assert.is(w.version, 3);
  // a full value, and one in a non-Uint8Array view
  w.write('x'.repeat(64));
  assert.is(w.read({ encoding: 'latin1' }).value, 'x'.repeat(64));
  w.write(new DataView(Buffer.from('abc').buffer, Buffer.from('abc').byteOffset, 3));
  assert.is(w.read({ encoding: 'latin1' }).value, 'abc');
});

test('readInto copies into any view and allocates nothing', () => {
  const { w } = fresh();
  w.write('abcdefg');
  const target = Buffer.alloc(64);
  assert.equal(w.readInto(target), { length: 7, version: 1 });
  assert.is(target.toString('latin1', 0, 7), 'abcdefg');
  const f = new Float64Array(8);
  w.write(new Float64Array([3.25, -1]));
  assert.equal(w.readInto(f), { length: 16, version: 2 });
  assert.equal([...f.subarray(0, 2)], [3.25, -1]);
  throws(() => w.readInto(Buffer.alloc(8)), OutOfRangeError, /16 bytes; target holds 8/);
  throws(() => w.readInto([]), InvalidArgumentError);
  if (globalThis.gc) {
    for (let i = 0; i < 1000; i++) w.readInto(target);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 100_000; i++) w.readInto(target);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024, 'readInto allocates no buffers');
  }
});

test('typed vectors: write(Float64Array | Float32Array | Int32Array), readTyped(type)', () => {
  const { w } = fresh(256);
  for (const [type, values] of [[Float64Array, [1.5, -2.25, Math.PI]], [Float32Array, [0.5, 8, -3]], [Int32Array, [1, -2, 2 ** 31 - 1]]]) {
    const v = w.write(new type(values));
    const r = w.readTyped(type);
    assert.ok(r.value instanceof type);
    assert.equal([...r.value], [...new type(values)]);
    assert.is(r.version, v);
  }
  w.write(Buffer.alloc(12));
  throws(() => w.readTyped(Float64Array), LayoutError, /not a whole number of Float64Array/);
  throws(() => w.readTyped(Array), InvalidArgumentError);
});

test('a value beyond the capacity is refused before anything is written', () => {
  const { w } = fresh(16);
  w.write('kept');
  throws(() => w.write('x'.repeat(17)), PayloadTooLargeError, /17 bytes exceeds this Watch's capacity of 16/);
  throws(() => w.write('é'.repeat(9)), PayloadTooLargeError, /18 bytes/);
  throws(() => w.write(new Float64Array(3)), PayloadTooLargeError);
  throws(() => w.write(42), InvalidArgumentError);
  assert.equal(w.read({ encoding: 'utf8' }), { value: 'kept', version: 1 });
  assert.is(w.writer, 0, 'the writer lock was not taken');
});

test('options are checked; unknown keys refused', () => {
  const shm = h.object();
  throws(() => new Watch(shm), InvalidArgumentError, /needs options.capacity/);
  throws(() => new Watch(shm, { capacity: 8, capacty: 1 }), InvalidArgumentError, /unknown key "capacty"/);
  throws(() => new Watch(shm, { capacity: 0 }), OutOfRangeError);
  throws(() => new Watch(shm, { capacity: 1.5 }), InvalidArgumentError);
  throws(() => new Watch(shm, { capacity: 8, offset: 8 }), MisalignedError);
  throws(() => new Watch(shm, { capacity: 8, autosize: false }), OutOfRangeError, /set its size or pass autosize/);
  throws(() => new Watch({}, { capacity: 8 }), InvalidArgumentError);
  const w = h.keep(new Watch(shm, { capacity: 8 }));
  throws(() => w.read({ encodng: 'utf8' }), InvalidArgumentError, /unknown key/);
  throws(() => w.read({ encoding: 'klingon' }), InvalidArgumentError);
  throws(() => w.waitSync(0, { timeout: 1, signal: undefined }), InvalidArgumentError, /unknown key "signal"/);
  throws(() => w.waitSync(-1), InvalidArgumentError);
  throws(() => w.waitSync(0, { timeout: -1 }), InvalidArgumentError);
  throws(() => w.onChange(5), InvalidArgumentError);
  throws(() => Watch.attach(shm, { offset: 0, capacity: 8 }), InvalidArgumentError);
});

test('attach: finds the Watch of any capacity; zeros, garbage and other structures are LayoutErrors', () => {
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity: 100, offset: 64 }));
  w.write('from the creator');
  const a = h.keep(Watch.attach(shm, { offset: 64 }));
  assert.is(a.capacity, 100);
  assert.is(a.read({ encoding: 'utf8' }).value, 'from the creator');
  // the same capacity: attaches; another: refused
  h.keep(new Watch(shm, { capacity: 100, offset: 64 }));
  throws(() => new Watch(shm, { capacity: 99, offset: 64 }), OverlapError, /a Watch\(capacity 99\) .* would overlap a Watch\(capacity 100\)/);
  // zeros
  const z = h.object(4096);
  throws(() => Watch.attach(z), LayoutError, /all zero/);
  throws(() => Watch.attach(h.object(16)), LayoutError, /only 16 bytes/);
  // garbage
  const g = h.object(4096);
  const r = Region.map(g, 0, 64);
  new Uint8Array(r.mapping.buffer, r.start, 64).fill(0xab);
  r.unmap();
  throws(() => Watch.attach(g), LayoutError, /no concurrent-shm structure/);
  throws(() => new Watch(g, { capacity: 8 }), LayoutError);
  // a channel is not a Watch, and a Watch is not a channel
  const c = h.object();
  h.keep(new Channel.SingleBuffered.Variable(c, { capacity: 32 }));
  throws(() => Watch.attach(c), LayoutError, /not a Watch \(it is a SingleBuffered.Variable/);
  throws(() => new Watch(c, { capacity: 32 }), OverlapError);
  throws(() => Channel.attach(shm, { offset: 64 }), LayoutError, /not a channel \(it is a Watch\)/);
  // a corrupt Watch header
  const k = h.object();
  h.keep(new Watch(k, { capacity: 8 })).release();
  const kr = Region.map(k, 0, 64);
  new DataView(kr.mapping.buffer, kr.start, 64).setUint32(8, 3, true); // depth 3
  kr.unmap();
  throws(() => Watch.attach(k), LayoutError, /corrupt/);
});

test('overlap with another structure of this process is an OverlapError', () => {
  const shm = h.object();
  h.keep(new Watch(shm, { capacity: 64 }));
  throws(() => new Channel.SingleBuffered.Variable(shm, { capacity: 8, offset: 128 }), OverlapError);
  throws(() => new Watch(shm, { capacity: 8, offset: 256 }), OverlapError, /would overlap a Watch\(capacity 64\)/);
  const next = h.keep(new Watch(shm, { capacity: 8, offset: Watch.byteLength(64) }));
  next.write('ok');
});

test('waitSync: returns at once on a change, times out without one', () => {
  const { w } = fresh();
  assert.is(w.waitSync(5), 0, 'version 0 differs from 5: at once');
  const t0 = performance.now();
  throws(() => w.waitSync(0, { timeout: 30 }), TimeoutError, /from version 0 timed out/);
  assert.ok(performance.now() - t0 >= 29);
  throws(() => w.waitSync(0, { timeout: 0 }), TimeoutError);
  w.write('a');
  assert.is(w.waitSync(0, { timeout: 0 }), 1);
});

test('wait: resolves on a change; timeout, abort and release reject', async () => {
  const { w } = fresh();
  const p = w.wait(0, { timeout: 5000 });
  setTimeout(() => w.write('changed'), 10);
  assert.is(await within(5000, p), 1);
  await rejects(w.wait(1, { timeout: 20 }), TimeoutError);
  const ac = new AbortController();
  const q = w.wait(1, { signal: ac.signal });
  setTimeout(() => ac.abort('stop'), 10);
  await rejects(q, AbortError);
  const r = w.wait(1);
  setTimeout(() => w.release(), 10);
  await rejects(r, RegionUnmappedError);
});

test('onChange reports the newest value after changes, never blocks, stops on unsubscribe', async () => {
  const { w } = fresh();
  w.write('before');
  const seen = [];
  const off = w.onChange(({ value, version }) => seen.push([version, value.toString()]));
  w.write('one');
  await until(() => seen.length >= 1, { what: 'a change' });
  w.write('two');
  w.write('three');
  await until(() => seen.at(-1)?.[1] === 'three', { what: 'the newest value' });
  off();
  off();
  w.write('after');
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(!seen.some(([, v]) => v === 'after' || v === 'before'), JSON.stringify(seen));
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] > seen[i - 1][0], 'versions increase');
});

test('for await yields the current value, then the newest after each change; ends on release', async () => {
  const { w } = fresh();
  w.write('first');
  const got = [];
  const loop = (async () => {
    for await (const { value, version } of w) {
      got.push([version, value.toString()]);
      if (value.toString() === 'last') w.release();
    }
  })();
  await until(() => got.length === 1);
  w.write('middle');
  await until(() => got.length === 2);
  w.write('last');
  await within(5000, loop, 'the loop to end');
  assert.equal(got, [[1, 'first'], [2, 'middle'], [3, 'last']]);
});

test('release is idempotent; any use after it is a RegionUnmappedError', () => {
  const { w } = fresh();
  w.release();
  w.release();
  w[Symbol.dispose]();
  throws(() => w.read(), RegionUnmappedError, /Watch at offset 0 .* was released/);
  throws(() => w.write('x'), RegionUnmappedError);
  throws(() => w.version, RegionUnmappedError);
  throws(() => w.waitSync(0), RegionUnmappedError);
});

test('WATCH_STEPS names every step', () => {
  assert.ok(WATCH_STEPS.length >= 8);
  assert.ok(WATCH_STEPS.every((s) => s.startsWith('watch.')));
});

test('across processes: a writer child and three reader children; no torn or older value', async () => {
  for (const big of [false, true]) {
    const shm = h.object();
    const w = h.keep(new Watch(shm, { capacity: big ? 4096 : 64 }));
    w.write(valueOf(1, { big }));
    const readers = [0, 1, 2].map(() => h.start('watch-party', 'reader', { ms: 400, big }, { shm }));
    await Promise.all(readers.map((r) => r.message('reading')));
    const writer = h.start('watch-party', 'writer', { from: 2, count: big ? 3000 : 20000, big }, { shm });
    // this process reads too
    let torn = 0;
    let last = 0;
    const end = performance.now() + 300;
    while (performance.now() < end) {
      const r = w.read();
      if (checkValue(r.value, { big }) === -1) torn++;
      assert.ok(r.version >= last);
      last = r.version;
      await new Promise((res) => setImmediate(res));
    }
    const wr = await writer.result();
    assert.ok(wr.ok, JSON.stringify(wr));
    for (const r of readers) {
      const res = await r.result();
      assert.ok(res.ok, JSON.stringify(res));
      assert.is(res.torn, 0, `no torn value (${JSON.stringify(res)})`);
      assert.is(res.regress, 0, 'never an older version');
      assert.ok(res.reads > 1000);
    }
    assert.is(torn, 0);
    assert.is(checkValue(w.read().value, { big }), big ? 3001 : 20001);
  }
});

test('across processes: waitSync and wait in children wake on a write here', async () => {
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity: 64 }));
  w.write(valueOf(1));
  const a = h.start('watch-party', 'wait', { since: 1, timeout: 10_000 }, { shm });
  const b = h.start('watch-party', 'wait-async', { since: 1, timeout: 10_000 }, { shm });
  const t = h.start('watch-party', 'wait', { since: 1, timeout: 50 }, { shm });
  const timedOut = await t.result();
  assert.is(timedOut.error?.code, 'ERR_SHM_TIMEOUT');
  // both are asleep on the version word (counted in waiters)
  const words = new Int32Array(w.region.mapping.buffer, w.region.start, 32);
  await until(() => Atomics.load(words, 17) === 2, { what: 'two sleeping waiters', peers: [a, b] });
  w.write(valueOf(7));
  for (const p of [a, b]) {
    const r = await p.result();
    assert.ok(r.ok, JSON.stringify(r));
    assert.is(r.version, 2);
    assert.is(r.n, 7);
  }
  assert.is(Atomics.load(words, 17), 0, 'waiters uncounted');
});

test('concurrent-shm inspect --json names a Watch, its version and its writer lock', async () => {
  const { spawnSync } = await import('node:child_process');
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity: 64 }));
  w.write('a');
  w.write('b');
  const r = spawnSync(process.execPath, [new URL('../dist/cli/main.js', import.meta.url).pathname, 'inspect', shm.name, '--json'], { encoding: 'utf8', timeout: 20_000 });
  assert.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout).structure;
  assert.is(s.type, 'watch');
  assert.is(s.description, 'Watch(capacity 64)');
  assert.is(s.version, 2);
  assert.is(s.lockHolder, 0);
  assert.is(s.deaths, 0);
});

test('two worker threads of this process write at once (they take turns on the lock): every write counted, nothing torn', async () => {
  const { Worker } = await import('node:worker_threads');
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity: 64 }));
  w.write(valueOf(1));
  const count = 10_000;
  const workers = [0, 1].map((i) => new Worker(new URL('./fixtures/watch-worker.js', import.meta.url), { workerData: { fd: shm.fd, from: 2 + i * 100_000, count } }));
  const exits = workers.map((x) => new Promise((resolve) => x.once('exit', resolve)));
  let finished = false;
  const all = within(30_000, Promise.all(exits), 'the workers').finally(() => (finished = true));
  let torn = 0;
  while (!finished) {
    for (let i = 0; i < 200; i++) if (checkValue(w.read().value) === -1) torn++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(await all, [0, 0]);
  assert.is(torn, 0);
  assert.is(w.version, 1 + 2 * count, 'no write lost');
  assert.is(w.writer, 0);
});

test('another process asking for another capacity at the same offset gets a LayoutError', async () => {
  const shm = h.object();
  h.keep(new Watch(shm, { capacity: 100 }));
  const r = await h.start('watch-party', 'create', { capacity: 99 }, { shm }).result();
  assert.is(r.error?.name, 'LayoutError', JSON.stringify(r));
  assert.match(r.error.message, /already a Watch\(capacity 100\); asked for a Watch\(capacity 99\)/);
  assert.equal(await h.start('watch-party', 'create', { capacity: 100 }, { shm }).result(), { ok: true, capacity: 100 });
});

test('a listener that throws: its error is an uncaught exception and its subscription ends', async () => {
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity: 16 }));
  const p = h.start('watch-party', 'onchange-throws', {}, { shm });
  await p.message('ready');
  w.write('one');
  const r = await p.result();
  assert.equal(r, { ok: true, message: 'listener failed', calls: 1 });
});

test('the version wraps from 2^32 - 1 to 2, never to 0 ("never written"), and the value follows', () => {
  const { w } = fresh();
  const words = new Int32Array(w.region.mapping.buffer, w.region.start, 32);
  w.write('a'); // version 1, buffer 1
  Atomics.store(words, 16, 0xfffffffd | 0); // as if 2^32 - 3 writes had happened (odd: buffer 1 still)
  assert.equal(w.read({ encoding: 'utf8' }), { value: 'a', version: 0xfffffffd });
  assert.is(w.write('b'), 0xfffffffe);
  assert.is(w.write('c'), 0xffffffff);
  assert.is(w.waitSync(0xfffffffe, { timeout: 0 }), 0xffffffff);
  assert.is(w.write('d'), 2);
  assert.equal(w.read({ encoding: 'utf8' }), { value: 'd', version: 2 });
  assert.is(w.waitSync(0xffffffff, { timeout: 0 }), 2);
  assert.is(w.write('e'), 3);
  assert.equal(w.read({ encoding: 'utf8' }), { value: 'e', version: 3 });
});

test('a process that exits with an async wait pending gives its waiter count back', async () => {
  const shm = h.object();
  const w = h.keep(new Watch(shm, { capacity: 16 }));
  const r = await h.start('watch-party', 'exit-waiting', {}, { shm }).result();
  assert.equal(r, { ok: true, counted: 1 });
  assert.is(Atomics.load(new Int32Array(w.region.mapping.buffer, w.region.start, 32), 17), 0);
});

test('examples/watch-config.js: three watcher processes all see the final config', async () => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, [new URL('../examples/watch-config.js', import.meta.url).pathname], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
  for (const how of ['sync', 'onChange', 'for await']) assert.match(r.stdout, new RegExp(`watcher ${how} +\\(pid \\d+\\) saw versions [\\d, ]*4\\n`));
  assert.match(r.stdout, /all three watchers saw the final config \(version 4\)/);
});

test.run();
