// The C reader of docs/watch-layout.md, compiled and run against this library: the page's
// ```c block is saved as watch.c and compiled with test/fixtures/watch-c-main.c
// (`cc -std=c11 -Wall -Wextra -O2`, no warnings allowed); the program then reads while a
// JS child writes (never a torn or older value), waits for a JS write, and refuses what is
// not a Watch. Skipped, with a message, only when no C compiler is installed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { Channel, Watch } from '../dist/index.js';
import { cBlocks, compiler, compileSketch } from './fixtures/c-sketch.js';
import { harness, until } from './fixtures/channel-harness.js';
import { valueOf } from './fixtures/watch-values.js';

const build = compileSketch(test, { name: 'watch-c', sources: { 'watch.c': cBlocks('watch-layout.md').join('\n') }, main: 'watch-c-main.c', flags: ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O2'] });
const BINARY = build?.binary;

const h = harness(test, 'wc');

function runC(args, timeoutMs = 10_000) {
  if (build?.status !== 0) throw new Error(`the C reader did not compile:\n${build?.output}`);
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
  test('C reader (skipped: no C compiler installed)', () => {});
} else {
  test('the C reader compiles without warnings', () => {
    assert.is(build.status, 0, build.output);
  });

  test('a C reader sees JS writes whole, never an older one', async () => {
    const shm = h.object();
    const w = h.keep(new Watch(shm, { capacity: 64, offset: 128 }));
    w.write(valueOf(1));
    const reader = runC(['read', shm.name, 128, 400]);
    const writer = h.start('watch-party', 'writer', { offset: 128, from: 2, count: 20000 }, { shm });
    const wr = await writer.result();
    assert.ok(wr.ok, JSON.stringify(wr));
    const r = await reader;
    assert.is(r.code, 0, r.err);
    assert.is(r.json.torn, 0, r.out);
    assert.is(r.json.regress, 0, r.out);
    assert.ok(r.json.reads > 1000, r.out);
    // JS-written values read by C at the end equal the last one
    const last = await runC(['read', shm.name, 128, 1]);
    assert.equal([last.json.version, last.json.n], [20001, 20001]);
  });

  test('a C waiter wakes on a JS write', async () => {
    const shm = h.object();
    const w = h.keep(new Watch(shm, { capacity: 64 }));
    w.write(valueOf(5));
    const waiter = runC(['wait', shm.name, 0, 1, 10_000]);
    const words = new Int32Array(w.region.mapping.buffer, w.region.start, 32);
    await until(() => Atomics.load(words, 17) === 1, { what: 'the C waiter asleep' });
    w.write(valueOf(6));
    const r = await waiter;
    assert.is(r.code, 0, r.err);
    assert.equal(r.json, { waited: 2, version: 2, n: 6 });
  });

  test('the C reader refuses what is not a Watch', async () => {
    const shm = h.object();
    h.keep(new Channel.SingleBuffered.Variable(shm, { capacity: 64 }));
    const r = await runC(['attach', shm.name, 0]);
    assert.is(r.code, 2);
    assert.match(r.err, /not a Watch/);
    const w2 = h.object();
    h.keep(new Watch(w2, { capacity: 40 }));
    assert.equal((await runC(['attach', w2.name, 0])).json, { ok: 1, capacity: 40 });
  });
}

test.run();
