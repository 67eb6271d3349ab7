import { Worker } from 'node:worker_threads';
import { Pending, eventRoundTrip, nowNs, peerCpuList, peerUrl } from '../lib/transport.js';

// postMessage has no backpressure: a sender that outruns the receiver just grows the
// receiver's queue (with copies of every message). Like a careful user, we use a
// credit window: the worker acknowledges every `ackEvery` messages and the sender keeps
// at most WINDOW_ACKS * ackEvery messages (about WINDOW_BYTES) unacknowledged.
const WINDOW_BYTES = 16 << 20;
const WINDOW_ACKS = 4;

/** @type {import('../lib/transport.js').Transport} */
export default {
  id: 'worker-postmessage',
  name: 'worker postMessage',
  kind: 'alternative',
  description: 'worker_threads Worker in this process; Uint8Array payload copied by postMessage (not transferred)',

  async open({ roundTripSize }) {
    const label = 'worker postMessage';
    const worker = new Worker(peerUrl('worker-peer.js'), { workerData: { cpus: peerCpuList() } });
    const pending = new Pending(label);
    /** @type {((msg: any) => void) | null} */
    let onMessage = null;
    let closing = false;

    worker.on('message', (msg) => onMessage?.(msg));
    worker.on('error', (err) => pending.fail(err));
    worker.on('exit', (code) => {
      if (!closing) pending.fail(new Error(`${label}: worker exited unexpectedly (code ${code})`));
    });

    const control = (msg) => pending.start((resolve, reject) => {
      onMessage = (reply) => {
        onMessage = null;
        if (reply && reply.cmd === 'error') reject(new Error(`${label} peer: ${reply.message}`));
        else resolve(reply);
      };
      worker.postMessage(msg);
    });

    await pending.start((resolve) => {
      onMessage = (msg) => {
        if (msg && msg.cmd === 'hello') {
          onMessage = null;
          resolve();
        }
      };
    });

    const pingPayload = new Uint8Array(roundTripSize).fill(0x78);

    return {
      roundTrip(iterations, samples) {
        return eventRoundTrip(pending, {
          iterations,
          samples,
          send: () => worker.postMessage(pingPayload),
          listen: (handler) => {
            onMessage = handler;
          },
          check: (msg) => msg.length === roundTripSize ? null : `${label}: echo has ${msg.length} bytes, expected ${roundTripSize}`,
        });
      },

      async throughput(size, count) {
        const payload = new Uint8Array(size).fill(0x78);
        const ackEvery = Math.max(1, Math.floor(WINDOW_BYTES / WINDOW_ACKS / size));
        const window = ackEvery * WINDOW_ACKS;
        const ready = await control({ cmd: 'expect', count, ackEvery });
        if (ready.cmd !== 'ready') throw new Error(`${label}: unexpected reply ${JSON.stringify(ready)}`);
        return pending.start((resolve, reject) => {
          let sent = 0;
          let acked = 0;
          let t0 = 0;
          const pump = () => {
            const limit = Math.min(count, acked + window);
            while (sent < limit) {
              sent++;
              worker.postMessage(payload);
            }
          };
          onMessage = (msg) => {
            if (msg.cmd === 'ack') {
              acked = msg.received;
              pump();
              return;
            }
            const t = nowNs();
            onMessage = null;
            if (msg.cmd !== 'done') return reject(new Error(`${label}: unexpected reply ${JSON.stringify(msg)}`));
            if (msg.bytes !== size * count) {
              return reject(new Error(`${label}: worker received ${msg.bytes} bytes, expected ${size * count}`));
            }
            resolve(t - t0);
          };
          t0 = nowNs();
          pump();
        });
      },

      async close() {
        closing = true;
        await worker.terminate();
      },

      kill() {
        closing = true;
        worker.terminate().catch(() => {});
      },
    };
  },
};
