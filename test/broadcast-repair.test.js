// A Broadcast's repair of a dead publisher's slot (RingProtocol.repair) racing a pid
// reuse, played out in one thread with party identities (sync/liveness.ts setIdentity):
// the owner word carries only the pid, so the repairer looks at it once more after its
// CAS and gives a live publisher its slot back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Broadcast, Region } from '../dist/index.js';
import { OK, RingProtocol } from '../dist/broadcast/protocol.js';
import { SLOT_OWNER, SLOT_SEQ } from '../dist/broadcast/layout.js';
import { H } from '../dist/channel/layout.js';
import { setIdentity } from '../dist/sync/liveness.js';
import { harness } from './fixtures/channel-harness.js';
import { pidWorld } from './fixtures/pid-world.js';

const h = harness(test, 'brep');
const AT = 4096;

// Depth 2. Publisher A (pid 1001) claimed position 0 and died. B published position 1.
// R1 reaches position 2 (slot 0 again), proves 1001 dead, and is descheduled before its
// repair CAS. R2 repairs (position 0 given up). Pid 1001 goes to a new process A', which
// claims position 2: the owner word is the very word R1 saw. R1's CAS succeeds on A''s
// live claim; without a second look it would give position 2 up (A''s message lost).
test('pid reuse between a repairer proving a publisher dead and its repair CAS: the repairer gives the live claim back', () => {
  const shm = h.object(AT + 8192);
  const bc = h.keep(new Broadcast(shm, { depth: 2, capacity: 64, offset: AT }));
  const r = Region.map(shm, AT, bc.byteLength);
  h.defer(() => r.unmap());
  const dv = new DataView(r.mapping.buffer, r.start, bc.byteLength);
  const w = new Int32Array(r.mapping.buffer, r.start, bc.byteLength / 4);
  const { dead, alive, atNextLook } = pidWorld();
  const as = (pid) => {
    setIdentity(pid, alive, 100);
    return new RingProtocol(w, r.address, dv.getUint32(H.DEPTH, true), dv.getUint32(H.STRIDE, true), dv.getUint32(H.SLOTS, true), false);
  };
  const A = as(1001);
  const B = as(1004);
  const R1 = as(1002);
  const R2 = as(1003);
  const A2 = as(1001);
  assert.is(A.claimPublish(), OK);
  assert.is(A.position, 0);
  dead.add(1001); // A died holding position 0
  assert.is(B.claimPublish(), OK);
  B.commit(B.position);
  const sw = A.slotWord(0);
  const word = A.writing;
  let claimedA2 = -1;
  atNextLook(() => {
    setIdentity(1003, alive, 100);
    R2.repair(sw, word);
    dead.delete(1001); // the pid is given to A'
    setIdentity(1001, alive, 100);
    assert.is(A2.claimPublish(), OK);
    claimedA2 = A2.position;
    setIdentity(1002, alive, 100);
  });
  setIdentity(1002, alive, 100); // R1 runs
  R1.suspect = true; // R1 has waited the liveness bound
  assert.is(R1.claimPublish(), OK);
  assert.is(claimedA2, 2, "A' holds position 2, in slot 0");
  assert.is(Atomics.load(w, sw + SLOT_OWNER), A2.writing, "slot 0 is still A''s");
  assert.is(Atomics.load(w, sw + SLOT_SEQ), 4, "position 2 is still being written by A' (not given up)");
  assert.is(R1.position, 3, 'R1 claimed the next position instead');
});

test.run();
