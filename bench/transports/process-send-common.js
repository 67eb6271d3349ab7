// Shared implementation of the two child_process.fork + process.send transports.
// Not a transport itself (it is not listed in bench/lib/transports.js).

import { Pending, eventRoundTrip, forkPeer, nowNs, waitExit } from '../lib/transport.js';

/**
 * @param {'json' | 'advanced'} serialization
 * @returns {(options: import('../lib/transport.js').OpenOptions) => Promise<import('../lib/transport.js').Session>}
 */
export function openProcessSend(serialization) {
  // json: the payload is a string of `size` ASCII characters (JSON-encoded on the wire).
  // advanced: the payload is a Buffer of `size` bytes (v8 structured serialization).
  const makePayload = serialization === 'json'
    ? (size) => 'x'.repeat(size)
    : (size) => Buffer.alloc(size, 0x78);

  return async function open({ roundTripSize }) {
    const label = `process.send (${serialization})`;
    const child = forkPeer('process-send-peer.js', [], { serialization });
    const pending = new Pending(label);
    /** @type {((msg: any) => void) | null} */
    let onMessage = null;
    let closing = false;

    child.on('message', (msg) => onMessage?.(msg));
    child.on('error', (err) => pending.fail(err));
    child.on('exit', (code, signal) => {
      if (!closing) pending.fail(new Error(`${label}: peer exited unexpectedly (code ${code}, signal ${signal})`));
    });

    /** Send a control message and wait for the peer's control reply. */
    const control = (msg) => pending.start((resolve, reject) => {
      onMessage = (reply) => {
        onMessage = null;
        if (reply && reply.cmd === 'error') reject(new Error(`${label} peer: ${reply.message}`));
        else resolve(reply);
      };
      child.send(msg);
    });

    // Wait until the peer is up (it says hello first), so start-up is not measured.
    await pending.start((resolve) => {
      onMessage = (msg) => {
        if (msg && msg.cmd === 'hello') {
          onMessage = null;
          resolve();
        }
      };
    });

    const pingPayload = makePayload(roundTripSize);

    return {
      roundTrip(iterations, samples) {
        return eventRoundTrip(pending, {
          iterations,
          samples,
          send: () => child.send(pingPayload),
          listen: (handler) => {
            onMessage = handler;
          },
          check: (msg) => msg.length === roundTripSize ? null : `${label}: echo has ${msg.length} bytes, expected ${roundTripSize}`,
        });
      },

      async throughput(size, count) {
        const payload = makePayload(size);
        const ready = await control({ cmd: 'expect', count });
        if (ready.cmd !== 'ready') throw new Error(`${label}: unexpected reply ${JSON.stringify(ready)}`);
        return pending.start((resolve, reject) => {
          let sent = 0;
          let written = 0;
          let waitingFor = 0; // when > 0: paused until `written` reaches it
          let t0 = 0;
          onMessage = (msg) => {
            const t = nowNs();
            onMessage = null;
            if (msg.cmd !== 'done') return reject(new Error(`${label}: unexpected reply ${JSON.stringify(msg)}`));
            if (msg.bytes !== size * count) {
              return reject(new Error(`${label}: peer received ${msg.bytes} bytes, expected ${size * count}`));
            }
            resolve(t - t0);
          };
          // Backpressure as a careful user would do it: process.send() returns false once the channel's write
          // queue is long; then wait for that message's write callback before sending more.
          const onWritten = (err) => {
            if (err) return;
            written++;
            if (waitingFor !== 0 && written >= waitingFor) {
              waitingFor = 0;
              pump();
            }
          };
          const pump = () => {
            while (sent < count) {
              sent++;
              if (!child.send(payload, onWritten)) {
                if (!child.connected) return reject(new Error(`${label}: channel closed`));
                waitingFor = sent;
                return;
              }
            }
          };
          t0 = nowNs();
          pump();
        });
      },

      async close() {
        closing = true;
        if (child.connected) child.disconnect();
        await waitExit(child, 3000);
      },

      kill() {
        closing = true;
        try { child.kill('SIGKILL'); } catch { /* ignore */ }
      },
    };
  };
}
