// Recovery from states a process leaves when it dies between two stores, concurrent
// creation, release() right after a call, and exit with a worker blocked in a sync call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, fork } from 'node:child_process';
import { Channel, Int32Ptr, Region, SharedMemory } from '../dist/index.js';
import { runFixture, uniqueName, within, withShm } from './helpers.js';

// A pid that certainly belonged to a process that is gone now.
async function deadPid() {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid;
}

// Slot 0 of a Variable channel at offset 0: its state word at byte 256 (phase in bits
// 31–30, lap tag in 29–22, pid in 21–0), length at 264, the message at 268; tail at 64,
// head at 128 (docs/layout.md). Each case is one state a party killed at one step leaves.
const WRITING = 1 << 30;
const READING = 3 << 30;

async function deadState(shm, { phase, tail, head, message }) {
  const ch = new Channel.SingleBuffered.Variable(shm, { capacity: 16 });
  const r = Region.map(shm, 0, ch.byteLength);
  const pid = await deadPid();
  if (message !== undefined) {
    r.write(message, 268);
    new Int32Ptr(r, 264).store(message.length);
  }
  new Int32Ptr(r, 256).store((phase | pid) | 0); // lap 0
  new Int32Ptr(r, 64).store(tail);
  new Int32Ptr(r, 128).store(head);
  return { ch, r };
}

test('a sender that died holding the slot before moving tail: the slot is free again for the same position', async () => {
  await withShm(0, async (shm) => {
    const { ch, r } = await deadState(shm, { phase: WRITING, tail: 0, head: 0 });
    const t0 = performance.now();
    ch.sendSync('first', { timeout: 3000 });
    assert.ok(performance.now() - t0 < 1500, 'within about a second');
    assert.is(ch.stats().sent, 1, 'the send took position 0');
    assert.is(ch.recvSync({ encoding: 'utf8', timeout: 3000 }), 'first');
    r.unmap();
  }, 'rcv');
});

test('a sender that died after moving tail, before publishing: its position is skipped and the channel goes on', async () => {
  await withShm(0, async (shm) => {
    const { ch, r } = await deadState(shm, { phase: WRITING, tail: 1, head: 0, message: 'torn' });
    const got = ch.recv({ encoding: 'utf8', timeout: 3000 });
    await new Promise((res) => setTimeout(res, 50));
    ch.sendSync('next', { timeout: 3000 });
    assert.is(await got, 'next', 'the torn message is never delivered');
    assert.is(ch.stats().received, 2, 'head passed the skipped position and the message');
    r.unmap();
  }, 'rcv');
});

test('a receiver that died holding the message before moving head: the message is delivered to the next receiver', async () => {
  await withShm(0, async (shm) => {
    const { ch, r } = await deadState(shm, { phase: READING, tail: 1, head: 0, message: 'hello' });
    const t0 = performance.now();
    assert.is(ch.recvSync({ encoding: 'utf8', timeout: 3000 }), 'hello');
    assert.ok(performance.now() - t0 < 1500, 'within about a second');
    ch.sendSync('next', { timeout: 3000 });
    assert.is(ch.recvSync({ encoding: 'utf8', timeout: 3000 }), 'next', 'and the channel goes on');
    r.unmap();
  }, 'rcv');
});

test('a receiver that died after moving head: the message went with it, and senders go on', async () => {
  await withShm(0, async (shm) => {
    const { ch, r } = await deadState(shm, { phase: READING, tail: 1, head: 1, message: 'gone' });
    ch.sendSync('after', { timeout: 3000 });
    assert.is(ch.recvSync({ encoding: 'utf8', timeout: 3000 }), 'after');
    r.unmap();
  }, 'rcv');
});

test('two processes creating the same channels at the same moment: neither is refused', async () => {
  const count = 200;
  await withShm(count * 4096 + 4096, async (shm) => {
    const runs = [runFixture('channel-creator', [String(count)], { shm }), runFixture('channel-creator', [String(count)], { shm })];
    // let both start, then release them together
    await new Promise((r) => setTimeout(r, 300));
    new Int32Ptr(Region.map(shm, count * 4096, 4)).store(1);
    const results = await within(30_000, Promise.all(runs), 'the creators');
    for (const res of results) {
      assert.is(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout.trim()).errors, []);
    }
  }, 'rcv');
});

test('release() right after send(): the message is sent whole, and another handle receives it', async () => {
  await withShm(0, async (shm) => {
    const a = new Channel.SingleBuffered.Variable(shm, { capacity: 16 });
    const b = Channel.attach(shm);
    const sent = a.send('hello');
    a.release();
    await within(2000, sent, 'the send');
    assert.is(b.recvSync({ encoding: 'utf8', timeout: 2000 }), 'hello');
    // and recv() then release(): the message is taken whole and the slot is free again
    b.sendSync('again');
    const c = Channel.attach(shm);
    const got = c.recv({ encoding: 'utf8' });
    c.release();
    assert.is(await within(2000, got, 'the receive'), 'again');
    b.sendSync('third', { timeout: 2000 });
    assert.is(b.recvSync({ encoding: 'utf8', timeout: 2000 }), 'third');
    b.release();
  }, 'rcv');
});

test('process.exit() with a worker thread blocked in recvSync: the process exits', async () => {
  const child = fork(new URL('./fixtures/worker-blocked.js', import.meta.url), [], { stdio: 'ignore' });
  const started = Date.now();
  const code = await within(10_000, new Promise((r) => child.on('exit', (c) => r(c))), 'the exit').catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
  assert.is(code, 0);
  assert.ok(Date.now() - started < 5000, `exited in ${Date.now() - started} ms`);
});

test.run();
