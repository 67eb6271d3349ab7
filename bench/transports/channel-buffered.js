import { channelTransport } from './channel-common.js';

/** A Buffered.Variable channel of 8 slots, blocking API: sender and receiver copy at the same time. */
export default channelTransport({
  id: 'channel-buffered',
  name: 'channel, sync (8 slots)',
  description: 'concurrent-shm Buffered.Variable channel (depth 8), sendSync / recvIntoSync, peer process via shm.fork()',
  depth: 8,
  api: 'sync',
});
