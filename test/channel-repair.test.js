// Repairs of a dead party's slot (SlotProtocol.repair) in states where a wrong decision
// loses a message or puts two writers in one slot: states built by hand in the mapped
// bytes, and a pid reuse played out in one thread with party identities (sync/liveness.ts setIdentity).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel, Region, TimeoutError } from '../dist/index.js';
import { setIdentity } from '../dist/sync/liveness.js';
import { harness, settle } from './fixtures/channel-harness.js';
import { pidWorld } from './fixtures/pid-world.js';
import { deadPid, FULL, READING, state, WRITING } from './fixtures/slot-states.js';

const h = harness(test, 'crep');
const AT = 4096;

// Depth 2. A receiver X read head as h long ago (a plain read), slept through 256 laps,
// and its CAS FULL -> READING|X succeeded on slot 0, now holding position q = 4 (lap tag
// 2) whose message is 'Q'; its head CAS h -> h+1 failed (head is 3, not h), and X was
// killed before putting the slot back. Position 3 (slot 1) was given up by a sender whose
// copy failed (skip: FREE for position 5), and position 5 holds 'F'; tail is 6. Receivers
// have not yet moved head past 3 (skip wakes only senders). repair() sees READING and
// head != 4 and concludes that head moved past 4: 'Q' is freed unread. Yet nobody ever
// took 'Q': its send succeeded.
test("a dead receiver's unproved claim on a position head has not reached yet is made FULL again, not freed", async () => {
  const shm = h.object(AT + 4096);
  const ch = h.keep(new Channel.Buffered.Variable(shm, { depth: 2, capacity: 16, offset: AT }));
  const r = Region.map(shm, AT, ch.byteLength);
  h.defer(() => r.unmap());
  const p = ch.protocol;
  const w = p.w;
  const put = (pos, text) => {
    r.write(text, p.slotByte(pos) + 12);
    w[(p.slotByte(pos) + 8) >> 2] = text.length;
  };
  put(4, 'Q');
  put(5, 'F');
  Atomics.store(w, p.slotWord(4), state(READING, 2, await deadPid()));
  Atomics.store(w, p.slotWord(5), state(FULL, 2, 0));
  Atomics.store(w, 64 / 4, 6); // tail
  Atomics.store(w, 128 / 4, 3); // head
  // Z's send meets X's slot at position 6 (the ring is full: it waits, and repairs it once
  // the liveness bound passed); the receives meet it at position 4.
  const sending = settle(ch.send('Z', { timeout: 5000 }));
  const got = [];
  for (;;) {
    const m = await settle(ch.recv({ timeout: 2500, encoding: 'latin1' }));
    if (m.error instanceof TimeoutError) break;
    if (m.error) throw m.error;
    got.push(m.value);
  }
  assert.is((await sending).error, undefined, "Z's send succeeds");
  assert.equal(got, ['Q', 'F', 'Z'], `every message whose send succeeded, once: ${got}`);
});

// SingleBuffered. A (pid 1001) claimed position 0 and was killed before moving tail.
// R1 and R2 wait behind it. R1 reads the state, proves 1001 dead, and is descheduled
// before its repair CAS. R2 repairs (FREE for position 0). Pid 1001 goes to a new process
// A', which sends: WRITING|tag 0|1001 again, the very word R1 saw, and moves tail. R1's
// CAS succeeds on A''s live claim; tail moved, so R1 gives the position up (FREE for 1)
// and claims position 1 in the same slot while A' still writes position 0. Two live
// writers in one slot; A' publishes FULL for position 0 over R1's claim, R1 publishes
// over it, and A''s message, whose send succeeded, is never received.
// The repairer looks at the pid once more after its CAS and gives a live holder its slot back.
test('pid reuse between a repairer proving a holder dead and its repair CAS: the repairer gives the live claim back', async () => {
  const shm = h.object(AT + 4096);
  const { dead, alive, atNextLook } = pidWorld();
  const as = (pid, open) => {
    setIdentity(pid, alive, 100);
    return h.keep(open());
  };
  const hA = as(1001, () => new Channel.SingleBuffered.Fixed(shm, { width: 8, offset: AT }));
  const hR1 = as(1002, () => Channel.attach(shm, { offset: AT }));
  const hR2 = as(1003, () => Channel.attach(shm, { offset: AT }));
  const hA2 = as(1001, () => Channel.attach(shm, { offset: AT }));
  const p = hA.protocol;
  const sw = p.slotWord(0);
  const word = state(WRITING, 0, 1001);
  Atomics.store(p.w, sw, word); // A killed at channel.send.cas
  dead.add(1001);
  let posA2 = null;
  atNextLook(() => {
    hR2.protocol.repair(sw, word);
    dead.delete(1001);
    posA2 = hA2.protocol.claimSend();
  });
  hR1.protocol.suspect = true; // R1 has waited the liveness bound
  const posR1 = hR1.protocol.claimSend();
  assert.is(posA2, 0, "A' holds position 0");
  assert.not.ok(posR1 >= 0 && p.slotWord(posR1) === p.slotWord(posA2), `R1 claimed position ${posR1} in the slot A' still writes`);
});

test.run();
