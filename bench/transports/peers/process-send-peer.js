// Peer for the process.send transports (forked with serialization 'json' or 'advanced').
// Echoes every data message back, except while a throughput run is expecting messages:
// then it counts them and answers { cmd: 'done', bytes } after the last one.
// Exits when the IPC channel disconnects (the parent closed it or died).

let expect = 0;
let bytes = 0;

process.on('message', (msg) => {
  if (typeof msg === 'string' || ArrayBuffer.isView(msg)) {
    if (expect > 0) {
      bytes += msg.length;
      if (--expect === 0) process.send({ cmd: 'done', bytes });
    } else {
      process.send(msg);
    }
    return;
  }
  if (msg && msg.cmd === 'expect') {
    expect = msg.count;
    bytes = 0;
    process.send({ cmd: 'ready' });
    return;
  }
  process.send({ cmd: 'error', message: `unknown message ${JSON.stringify(msg)}` });
});

process.on('disconnect', () => process.exit(0));
process.send({ cmd: 'hello' });
