// Peer for the worker postMessage transport (runs in a worker_threads Worker).
// Echoes data messages, except during a throughput run: then it counts them, sends
// { cmd: 'ack', received } every `ackEvery` messages (flow control) and
// { cmd: 'done', bytes } after the last one.

import { parentPort, workerData } from 'node:worker_threads';
import { pinCurrentThread } from '../../lib/affinity.js';

// --pin: this thread is the peer, so it pins itself (the harness pins child processes).
if (workerData?.cpus != null) pinCurrentThread(workerData.cpus);

let expect = 0;
let received = 0;
let ackEvery = 0;
let bytes = 0;

parentPort.on('message', (msg) => {
  if (ArrayBuffer.isView(msg)) {
    if (expect > 0) {
      bytes += msg.length;
      received++;
      if (received === expect) {
        expect = 0;
        parentPort.postMessage({ cmd: 'done', bytes });
      } else if (received % ackEvery === 0) {
        parentPort.postMessage({ cmd: 'ack', received });
      }
    } else {
      parentPort.postMessage(msg);
    }
    return;
  }
  if (msg && msg.cmd === 'expect') {
    expect = msg.count;
    ackEvery = msg.ackEvery;
    received = 0;
    bytes = 0;
    parentPort.postMessage({ cmd: 'ready' });
    return;
  }
  parentPort.postMessage({ cmd: 'error', message: `unknown message ${JSON.stringify(msg)}` });
});

parentPort.postMessage({ cmd: 'hello' });
