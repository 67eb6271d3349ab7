// The C subscriber of docs/broadcast-layout.md, compiled and run against this library:
// the page's ```c block is saved as broadcast.c and compiled with
// test/fixtures/broadcast-c-main.c (`cc -std=c11 -Wall -Wextra -Werror -O2`); the program
// then subscribes and receives what a JS child publishes (every message, in order, never
// torn; back-pressure waits for it), wakes on a JS publish, ends on close(), reports lags,
// and refuses what is not a Broadcast. Skipped, with a message, only when no C compiler is
// installed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { Broadcast, Watch } from '../dist/index.js';
import { cBlocks, compiler, compileSketch } from './fixtures/c-sketch.js';
import { harness, until } from './fixtures/channel-harness.js';
import { valueOf } from './fixtures/watch-values.js';

const build = compileSketch(test, { name: 'broadcast-c', sources: { 'broadcast.c': cBlocks('broadcast-layout.md').join('\n') }, main: 'broadcast-c-main.c', flags: ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O2'] });
const BINARY = build?.binary;

const h = harness(test, 'bcc');

function runC(args, timeoutMs = 20_000) {
  if (build?.status !== 0) throw new Error(`the C subscriber did not compile:\n${build?.output}`);
  return new Promise((resolve) => {
    const child = spawn(BINARY, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    h.defer(() => child.kill('SIGKILL'));
    child.on('close', (code) => {
      clearTimeout(timer);
      let json = null;
      try {
        json = JSON.parse(out.trim());
      } catch {}
      resolve({ code, json, out, err });
    });
  });
}

if (compiler === undefined) {
  test('C subscriber (skipped: no C compiler installed)', () => {});
} else {
  test('the C subscriber compiles without warnings', () => {
    assert.is(build.status, 0, build.output);
  });

  test('a C subscriber receives every message a JS publisher process sends, in order, whole (back-pressure waits for it)', async () => {
    const shm = h.object();
    const bc = h.keep(new Broadcast(shm, { depth: 8, capacity: 64, offset: 128, backpressure: true }));
    const N = 5000;
    const sub = runC(['recv', shm.name, 128, N, 15_000]);
    await until(() => bc.subscribers === 1, { what: 'the C subscriber in the table' });
    const pub = h.start('broadcast-party', 'publisher', { offset: 128, id: 0, from: 1, count: N }, { shm });
    assert.ok((await pub.result()).ok);
    const r = await sub;
    assert.is(r.code, 0, r.err);
    assert.equal(r.json, { received: N, torn: 0, disorder: 0, missed: 0, closed: 0, last: N });
    assert.is(bc.subscribers, 0, 'it left the table');
  });

  test('a C subscriber sleeps until a JS publish, reports a lag exactly, and ends on close()', async () => {
    const shm = h.object();
    const bc = h.keep(new Broadcast(shm, { depth: 4, capacity: 64 }));
    const sub = runC(['recv', shm.name, 0, 100, 15_000]);
    await until(() => bc.subscribers === 1, { what: 'the C subscriber in the table' });
    const words = new Int32Array(bc.region.mapping.buffer, bc.region.start, 64);
    await until(() => Atomics.load(words, 132 / 4) === 1, { what: 'the C subscriber asleep' });
    bc.publishSync(valueOf(1));
    await until(() => bc.stats().subscribers[0]?.cursor === 1, { what: 'the C subscriber to take it' });
    await until(() => Atomics.load(words, 132 / 4) === 1, { what: 'the C subscriber asleep again' });
    // Ten more at once, before it wakes: a ring of 4 keeps the last 4 (a lag of 6, or fewer
    // if it woke and read some meanwhile).
    for (let n = 2; n <= 11; n++) bc.publishSync(valueOf(n));
    await until(() => bc.stats().subscribers[0]?.cursor === 11, { what: 'the C subscriber to catch up' });
    bc.close();
    const r = await sub;
    assert.is(r.code, 0, r.err);
    assert.is(r.json.closed, 1);
    assert.is(r.json.torn, 0);
    assert.is(r.json.disorder, 0);
    assert.is(r.json.last, 11);
    assert.is(r.json.received + r.json.missed, 11, JSON.stringify(r.json));
  });

  test('the C subscriber refuses what is not a Broadcast', async () => {
    const shm = h.object();
    h.keep(new Watch(shm, { capacity: 64 }));
    const r = await runC(['attach', shm.name, 0]);
    assert.is(r.code, 2);
    assert.match(r.err, /not a Broadcast/);
    const b = h.object();
    h.keep(new Broadcast(b, { depth: 16, capacity: 40 }));
    assert.equal((await runC(['attach', b.name, 0])).json, { ok: 1, depth: 16, capacity: 40 });
  });
}

test.run();
