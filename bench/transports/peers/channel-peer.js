// Peer of the channel transports: attaches to the channels its parent created in the
// inherited shared memory object, and echoes or sinks what it is told to. Messages are
// received with recvInto into one buffer (the library's no-allocation receive).
import { SharedMemory } from '../../../dist/index.js';
import { openChannels } from '../channel-common.js';

const [api, shapeJson] = process.argv.slice(2);
const shape = JSON.parse(shapeJson);
const shm = SharedMemory.inherited();
const { ping, pong, ctrl } = openChannels(shm, shape, false);
const buf = Buffer.alloc(shape.capacity);
// The parent's IPC channel closing means it died: go too.
process.on('disconnect', () => process.exit(0));

if (api === 'sync') {
  pong.sendSync('ready');
  for (;;) {
    const cmd = JSON.parse(ctrl.recvSync({ encoding: 'utf8' }));
    if (cmd.op === 'exit') break;
    if (cmd.op === 'echo') {
      for (let i = 0; i < cmd.n; i++) {
        const n = ping.recvIntoSync(buf);
        pong.sendSync(buf.subarray(0, n));
      }
    } else if (cmd.op === 'sink') {
      let bytes = 0;
      for (let i = 0; i < cmd.count; i++) bytes += ping.recvIntoSync(buf);
      pong.sendSync(String(bytes));
    }
  }
} else {
  await pong.send('ready');
  for (;;) {
    const cmd = JSON.parse(await ctrl.recv({ encoding: 'utf8' }));
    if (cmd.op === 'exit') break;
    if (cmd.op === 'echo') {
      for (let i = 0; i < cmd.n; i++) {
        const n = await ping.recvInto(buf);
        await pong.send(buf.subarray(0, n));
      }
    } else if (cmd.op === 'sink') {
      let bytes = 0;
      for (let i = 0; i < cmd.count; i++) bytes += await ping.recvInto(buf);
      await pong.send(String(bytes));
    }
  }
}
process.exit(0);
