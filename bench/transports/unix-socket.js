import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { Pending, eventRoundTrip, nowNs, registerTempDir, removeTempDir, spawnPeer, waitExit } from '../lib/transport.js';
import { FrameReader, encodeControl, encodeFrame, T_CTRL, T_DATA, T_PING } from './peers/frames.js';

/** @type {import('../lib/transport.js').Transport} */
export default {
  id: 'unix-socket',
  name: 'Unix socket',
  kind: 'alternative',
  description: 'child process connected by a Unix domain socket (node:net) in a temp dir; length-prefixed frames',

  async open({ roundTripSize }) {
    const label = 'Unix socket';
    const dir = registerTempDir(mkdtempSync(path.join(os.tmpdir(), 'concurrent-shm-bench-')));
    const socketPath = path.join(dir, 'peer.sock');
    const server = net.createServer();
    const pending = new Pending(label);
    let child = null;
    let socket = null;
    let closing = false;

    const cleanup = () => {
      closing = true;
      try { socket?.destroy(); } catch { /* ignore */ }
      try { server.close(); } catch { /* ignore */ }
      try { child?.kill('SIGKILL'); } catch { /* ignore */ }
      removeTempDir(dir);
    };

    /** @type {((type: number, payload: Buffer) => void) | null} */
    let onFrame = null;
    const reader = new FrameReader({ onFrame: (type, payload) => onFrame?.(type, payload) });

    try {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, resolve);
      });
      const connected = new Promise((resolve, reject) => {
        server.once('connection', resolve);
        server.once('error', reject);
      });
      child = spawnPeer('unix-socket-peer.js', [socketPath, dir]);
      child.on('error', (err) => pending.fail(err));
      child.on('exit', (code, signal) => {
        if (!closing) pending.fail(new Error(`${label}: peer exited unexpectedly (code ${code}, signal ${signal})`));
      });
      socket = await pending.start((resolve, reject) => {
        connected.then(resolve, reject);
      });
    } catch (err) {
      cleanup();
      throw err;
    }
    server.close(); // one peer only; the listening socket file is no longer needed

    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', (err) => pending.fail(err));
    socket.on('close', () => {
      if (!closing) pending.fail(new Error(`${label}: socket closed unexpectedly`));
    });

    const control = (msg) => pending.start((resolve, reject) => {
      onFrame = (type, payload) => {
        onFrame = null;
        if (type !== T_CTRL) return reject(new Error(`${label}: expected a control frame, got type ${type}`));
        const reply = JSON.parse(payload.toString('utf8'));
        if (reply.cmd === 'error') reject(new Error(`${label} peer: ${reply.message}`));
        else resolve(reply);
      };
      socket.write(encodeControl(msg));
    });

    const pingFrame = encodeFrame(T_PING, Buffer.alloc(roundTripSize, 0x78));

    return {
      roundTrip(iterations, samples) {
        return eventRoundTrip(pending, {
          iterations,
          samples,
          send: () => socket.write(pingFrame),
          listen: (handler) => {
            onFrame = handler;
          },
          check: (type, payload) => type === T_PING && payload.length === roundTripSize ? null : `${label}: bad echo (type ${type}, ${payload.length} bytes)`,
        });
      },

      async throughput(size, count) {
        // One frame (header + payload) built once and written `count` times.
        const frame = encodeFrame(T_DATA, Buffer.alloc(size, 0x78));
        const ready = await control({ cmd: 'expect', count });
        if (ready.cmd !== 'ready') throw new Error(`${label}: unexpected reply ${JSON.stringify(ready)}`);
        return pending.start((resolve, reject) => {
          let sent = 0;
          let t0 = 0;
          onFrame = (type, payload) => {
            const t = nowNs();
            onFrame = null;
            socket.off('drain', pump);
            const msg = type === T_CTRL ? JSON.parse(payload.toString('utf8')) : { cmd: `frame type ${type}` };
            if (msg.cmd !== 'done') return reject(new Error(`${label}: unexpected reply ${JSON.stringify(msg)}`));
            if (msg.bytes !== size * count) {
              return reject(new Error(`${label}: peer received ${msg.bytes} bytes, expected ${size * count}`));
            }
            resolve(t - t0);
          };
          // Backpressure: stop when write() returns false, continue on 'drain'.
          function pump() {
            while (sent < count) {
              sent++;
              if (!socket.write(frame)) return;
            }
            socket.off('drain', pump);
          }
          socket.on('drain', pump);
          t0 = nowNs();
          pump();
        });
      },

      async close() {
        closing = true;
        socket.end();
        child.stdin.end();
        await waitExit(child, 3000);
        socket.destroy();
        removeTempDir(dir);
      },

      kill() {
        cleanup();
      },
    };
  },
};
