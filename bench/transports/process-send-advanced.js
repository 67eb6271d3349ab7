import { openProcessSend } from './process-send-common.js';

/** @type {import('../lib/transport.js').Transport} */
export default {
  id: 'process-send-advanced',
  name: 'process.send (advanced)',
  kind: 'alternative',
  description: "child_process.fork with serialization: 'advanced'; payload is a Buffer",
  open: openProcessSend('advanced'),
};
