import { channelTransport } from './channel-common.js';

/** SingleBuffered.Variable channels, blocking API (sendSync / recvIntoSync). */
export default channelTransport({
  id: 'channel-sync',
  name: 'channel, sync (1 slot)',
  description: 'concurrent-shm SingleBuffered.Variable channels, sendSync / recvIntoSync, peer process via shm.fork()',
  depth: 1,
  api: 'sync',
});
