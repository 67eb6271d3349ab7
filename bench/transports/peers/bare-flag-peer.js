// Peer of the bare-flag transport (see ../bare-flag.js for the layout): on a command from
// its parent it stores READY, then echoes the flag n times (or takes `count` messages out
// of the slot) spinning, and goes back to waiting for the next command on the IPC channel.
// While spinning it checks every CHECK_EVERY loads that its parent is still there.
import { Region, SharedMemory } from '../../../dist/index.js';
import { CHECK_EVERY, FLAG, READY, SLOT, spinUntil } from '../bare-flag.js';

const slotBytes = Number(process.argv[2]);
const shm = SharedMemory.inherited();
const region = Region.map(shm, 0, SLOT + slotBytes);
const bytes = region.bytes();
const i32 = new Int32Array(bytes.buffer, bytes.byteOffset, 32);
const slot = bytes.subarray(SLOT, SLOT + slotBytes);
const local = Buffer.alloc(slotBytes);
const parent = process.ppid;
const checkParent = () => {
  if (process.ppid !== parent) process.exit(0);
};

// The parent's IPC channel closing means it died: go too.
process.on('disconnect', () => process.exit(0));

process.on('message', (cmd) => {
  try {
    if (cmd.op === 'exit') {
      region.unmap();
      shm.close();
      process.exit(0);
    }
    if (cmd.op === 'echo') {
      Atomics.store(i32, READY, cmd.seq);
      let want = 1;
      for (let i = 0; i < cmd.n; i++) {
        let n = 0;
        while (Atomics.load(i32, FLAG) !== want) {
          if (++n > CHECK_EVERY) {
            spinUntil(i32, FLAG, want, 'a ping', checkParent);
            break;
          }
        }
        Atomics.store(i32, FLAG, want + 1);
        want += 2;
      }
    } else if (cmd.op === 'sink') {
      const from = slot.subarray(0, cmd.size);
      let received = 0;
      Atomics.store(i32, READY, cmd.seq);
      let want = 1;
      for (let i = 0; i < cmd.count; i++) {
        if (Atomics.load(i32, FLAG) !== want) spinUntil(i32, FLAG, want, 'a message', checkParent);
        local.set(from);
        received += from.length;
        Atomics.store(i32, FLAG, want + 1);
        want += 2;
      }
      process.send({ bytes: received });
    } else {
      process.send({ error: `unknown command ${JSON.stringify(cmd)}` });
    }
  } catch (err) {
    process.send({ error: err.message });
  }
});

process.send({ hello: true });
