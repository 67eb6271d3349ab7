import { openProcessSend } from './process-send-common.js';

/** @type {import('../lib/transport.js').Transport} */
export default {
  id: 'process-send-json',
  name: 'process.send (json)',
  kind: 'alternative',
  description: "child_process.fork with serialization: 'json'; payload is a string of the message size",
  open: openProcessSend('json'),
};
