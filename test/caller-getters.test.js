// Messages and targets whose own getters (caller code) decide what the checks see: a
// byteLength that reads less than the view holds, a DataView whose byteLength changes
// after the check, a species constructor that subarray() calls, a getter that transfers
// the buffer it is asked about. Nothing of the kind may write past a slot (over another
// sender's message or a slot's state word), nor report bytes never copied.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Broadcast, Channel, SharedMemory, Watch } from '../dist/index.js';
import { runFixture } from './helpers.js';
import { intrinsic, Sneaky } from './fixtures/sneaky-view.js';

const dvByteLength = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteLength').get;

function withShm(fn) {
  return async () => {
    const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
    try {
      await fn(shm);
    } finally {
      shm.close();
    }
  };
}

/** Byte of `mem` where the slot whose data (at `dataAt` in the slot) begins with `text` begins. */
function slotOf(mem, text, dataAt) {
  return Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength).indexOf(text) - dataAt;
}

/**
 * A message of `C` that, copied whole from the start of a slot's data, ends over the next
 * slot: its header as it is now, then 'EVIL' as that slot's message.
 */
function overNextSlot(C, mem, at1, stride, dataAt) {
  const m = new C(stride - dataAt + dataAt + 4).fill(0x58);
  m.set(mem.subarray(at1, at1 + dataAt), stride - dataAt);
  m.set(Buffer.from('EVIL'), stride);
  return m;
}

class Lying extends Uint8Array {
  get byteLength() {
    return 4;
  }
}

for (const how of ['sendSync', 'trySend', 'send']) {
  test(`${how}(): a view whose byteLength reads 4 of its 68 bytes never writes over the next slot`, withShm(async (shm) => {
    const ch = new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16 });
    try {
      ch.sendSync('aaaa'); ch.sendSync('bbbb'); ch.recvSync(); // 'bbbb' waits in slot 1; the next send goes to slot 0
      const mem = ch.region.bytes();
      const msg = overNextSlot(Lying, mem, slotOf(mem, 'bbbb', 12), 64, 12); // slots of 64 bytes
      try {
        if (how === 'send') await ch.send(msg);
        else if (how === 'trySend') ch.trySend(msg);
        else ch.sendSync(msg);
      } catch {
        // refusing it is fine
      }
      assert.is(ch.recvSync({ timeout: 200 }).toString('latin1'), 'bbbb');
    } finally {
      ch.release();
    }
  }));
}

test('Broadcast publishSync(): a view whose byteLength reads 4 of its bytes never writes over an unread message', withShm(async (shm) => {
  const b = new Broadcast(shm, { depth: 4, capacity: 16, maxSubscribers: 2 });
  const sub = b.subscribe();
  try {
    for (const m of ['p0', 'p1', 'p2', 'p3']) b.publishSync(m);
    assert.is(sub.recvSync().toString(), 'p0');
    const mem = b.region.bytes();
    const at1 = slotOf(mem, 'p1', 12);
    try {
      b.publishSync(overNextSlot(Lying, mem, at1, at1 - slotOf(mem, 'p0', 12), 12)); // into the slot of p0, read already
    } catch {
      // refusing it is fine
    }
    assert.is(sub.recvSync({ timeout: 200 }).toString(), 'p1');
  } finally {
    sub.close();
    b.release();
  }
}));

test('sendSync()/send(): a DataView whose byteLength reads 4 in the checks and 68 after never writes over the next slot', withShm(async (shm) => {
  for (const how of ['sendSync', 'send']) {
    const ch = new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16, offset: how === 'send' ? 16384 : 0 });
    try {
      ch.sendSync('aaaa'); ch.sendSync('bbbb'); ch.recvSync();
      const mem = ch.region.bytes();
      const raw = overNextSlot(Uint8Array, mem, slotOf(mem, 'bbbb', 12), 64, 12);
      let reads = 0;
      const checks = how === 'send' ? 2 : 1; // the check, and the async send's re-check
      class Shifty extends DataView {
        get byteLength() {
          return ++reads <= checks ? 4 : dvByteLength.call(this);
        }
      }
      try {
        if (how === 'send') await ch.send(new Shifty(raw.buffer));
        else ch.sendSync(new Shifty(raw.buffer));
      } catch {
        // refusing it is fine
      }
      assert.is(ch.recvSync({ timeout: 200 }).toString('latin1'), 'bbbb', how);
    } finally {
      ch.release();
    }
  }
}));

test('chunked sendSync(): a species constructor that subarray() calls cannot write past the chunk (nor wedge the channel)', withShm(async (shm) => {
  const ch = new Channel.Buffered.Variable(shm, { depth: 4, capacity: 16, maxMessage: 64 });
  try {
    const big = new Uint8Array(200).fill(0x21);
    class Cutter extends Uint8Array {
      static get [Symbol.species]() {
        return function () {
          return big;
        };
      }
    }
    let sent = true;
    try {
      ch.sendSync(new Cutter(40).fill(0x61), { timeout: 300 });
    } catch {
      sent = false;
    }
    if (sent) assert.is(ch.recvSync({ timeout: 200 }).toString('latin1'), 'a'.repeat(40));
    ch.sendSync('next', { timeout: 300 }); // the channel still works (it times out when the copy overwrote the other slots' state words)
    assert.is(ch.recvSync({ timeout: 200 }).toString(), 'next');
  } finally {
    ch.release();
  }
}));

test('recvIntoSync()/Watch.readInto(): a target whose byteLength getter transfers its buffer never gets a length for bytes not written', withShm(async (shm) => {
  const outcomes = [];
  for (const [kind, make] of [
    ['Buffered.Fixed', () => new Channel.Buffered.Fixed(shm, { depth: 2, width: 16 })],
    ['Buffered.Variable', () => new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16, offset: 16384 })],
    ['SingleBuffered.Variable', () => new Channel.SingleBuffered.Variable(shm, { capacity: 16, offset: 32768 })],
  ]) {
    const ch = make();
    try {
      ch.sendSync('0123456789abcdef');
      const target = new Sneaky(16);
      target.armed = true;
      try {
        const n = ch.recvIntoSync(target);
        if (n > intrinsic.call(target)) outcomes.push(`${kind}: returned ${n}; the target holds ${intrinsic.call(target)} bytes`);
      } catch {
        // an error is fine
      }
    } finally {
      ch.release();
    }
  }
  const w = new Watch(shm, { capacity: 16, offset: 49152 });
  try {
    w.write('0123456789abcdef');
    const target = new Sneaky(16);
    target.armed = true;
    try {
      const got = w.readInto(target);
      if (got.length > intrinsic.call(target)) outcomes.push(`Watch: returned length ${got.length}; the target holds ${intrinsic.call(target)} bytes`);
    } catch {
      // an error is fine
    }
  } finally {
    w.release();
  }
  assert.equal(outcomes, []);
}));

for (const role of ['sendSync', 'trySend', 'watch']) {
  test(`${role}: a message whose byteLength getter transfers its buffer is never copied as zeros (optimized code, stale length)`, async () => {
    const r = await runFixture('caller-getters', [role], { timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
    assert.ok(out.ok, out.what);
  });
}

test.run();
