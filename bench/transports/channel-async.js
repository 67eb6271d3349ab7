import { channelTransport } from './channel-common.js';

/** SingleBuffered.Variable channels, Promise API (send / recvInto): never blocks the event loop. */
export default channelTransport({
  id: 'channel-async',
  name: 'channel, async (1 slot)',
  description: 'concurrent-shm SingleBuffered.Variable channels, await send / recvInto, peer process via shm.fork()',
  depth: 1,
  api: 'async',
});
