// Peer for the Unix socket transport: `node unix-socket-peer.js SOCKET_PATH TEMP_DIR`.
// Connects to the parent's server, echoes PING frames, counts DATA frames after an
// { cmd: 'expect', count } control frame and answers { cmd: 'done', bytes } after the last.
// Exits when the socket closes or stdin ends (both happen when the parent dies), and
// then removes TEMP_DIR as a backstop so no socket file is left in the temp directory.

import net from 'node:net';
import { rmSync } from 'node:fs';
import { FrameReader, encodeControl, T_PING, T_CTRL, HEADER } from './frames.js';

const [socketPath, tempDir] = process.argv.slice(2);

function exit(code) {
  if (tempDir) {
    try { rmSync(tempDir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
  process.exit(code);
}

process.stdin.on('end', () => exit(0));
process.stdin.on('error', () => exit(0));
process.stdin.resume();

let expect = 0;
let frames = 0;
let bytes = 0;
let echo = Buffer.alloc(0);

const socket = net.connect(socketPath);
socket.on('error', () => exit(1));
socket.on('close', () => exit(0));

const reader = new FrameReader({
  onFrame(type, payload) {
    if (type === T_PING) {
      // At most one ping is in flight, so the previous echo has been written: reuse the buffer.
      if (echo.length !== HEADER + payload.length) {
        echo = Buffer.allocUnsafe(HEADER + payload.length);
        echo.writeUInt32LE(payload.length, 0);
        echo[4] = T_PING;
      }
      payload.copy(echo, HEADER);
      socket.write(echo);
    } else if (type === T_CTRL) {
      const msg = JSON.parse(payload.toString('utf8'));
      if (msg.cmd === 'expect') {
        expect = msg.count;
        frames = 0;
        bytes = 0;
        socket.write(encodeControl({ cmd: 'ready' }));
      } else {
        socket.write(encodeControl({ cmd: 'error', message: `unknown control ${JSON.stringify(msg)}` }));
      }
    }
  },
  onData(n) {
    bytes += n;
  },
  onDataEnd() {
    if (++frames === expect) {
      expect = 0;
      socket.write(encodeControl({ cmd: 'done', bytes, frames }));
    }
  },
});

socket.on('data', (chunk) => reader.push(chunk));
