// The consumer: the body of the gem's `fork do ... end` block.
import { Channel, SharedMemory } from '../../dist/index.js';

const shm = SharedMemory.inherited();
const ch = Channel.attach(shm); // the SingleBuffered.Variable the parent created at offset 0

// recvSync blocks in the kernel until a message comes; after close() and the last
// message it throws ChannelClosedError, which ends the loop (as the gem's loop would
// end with the parent).
for (;;) {
  let s;
  try {
    s = ch.recvSync({ encoding: 'utf8' });
  } catch (err) {
    if (err.code === 'ERR_SHM_CHANNEL_CLOSED') break;
    throw err;
  }
  console.log(`received! ${JSON.stringify(s)}`);
}
