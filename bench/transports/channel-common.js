// Shared code of the concurrent-shm channel transports: one anonymous shared memory
// object holding three channels (ping: parent → peer, pong: peer → parent, ctrl:
// commands), handed to a peer process with shm.fork().
import { Channel, SharedMemory } from '../../dist/index.js';
import { nowNs, peerUrl, registerChild, registerCleanup } from '../lib/transport.js';

const MIB = 1024 * 1024;
const align = (n) => Math.ceil(n / 4096) * 4096;

/**
 * The channels, at fixed offsets of one object.
 * @param {SharedMemory} shm
 * @param {{ depth: number, capacity: number }} shape depth 1: SingleBuffered, else Buffered
 * @param {boolean} create
 */
export function openChannels(shm, { depth, capacity }, create) {
  const make = (offset, d, cap) =>
    create ? Channel.create(shm, { depth: d, width: -cap, offset }) : Channel.attach(shm, { offset });
  const ping = make(0, depth, capacity);
  const pong = make(align(ping.byteLength), 1, 4096);
  const ctrl = make(align(ping.byteLength) + align(pong.byteLength), 1, 256);
  return { ping, pong, ctrl };
}

/**
 * A channel transport.
 * @param {{ id: string, name: string, description: string, depth: number, api: 'sync' | 'async' }} spec
 */
export function channelTransport(spec) {
  return {
    id: spec.id,
    name: spec.name,
    kind: 'channel',
    description: spec.description,
    async open({ sizes }) {
      const capacity = Math.max(MIB, ...sizes);
      const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
      const { ping, pong, ctrl } = openChannels(shm, { depth: spec.depth, capacity }, true);
      const shape = JSON.stringify({ depth: spec.depth, capacity });
      const child = registerChild(shm.fork(peerUrl('channel-peer.js'), [spec.api, shape], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      let closing = false;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.once('exit', (code, signal) => {
        if (!closing) process.emitWarning(`${spec.name}: peer exited (code ${code}, signal ${signal})`);
      });
      registerCleanup(() => {
        try { child.kill('SIGKILL'); } catch { /* ignore */ }
      });
      // The peer says it is ready on pong.
      const hello = await pong.recv({ encoding: 'utf8', timeout: 30_000 });
      if (hello !== 'ready') throw new Error(`${spec.name}: peer said ${hello}`);
      const reply = Buffer.alloc(4096);
      const command = async (cmd) => {
        await ctrl.send(JSON.stringify(cmd));
      };

      return {
        async roundTrip(iterations, samples) {
          const msg = Buffer.alloc(64, 0x78);
          await command({ op: 'echo', n: iterations });
          let t0;
          let prev;
          if (spec.api === 'sync') {
            t0 = prev = nowNs();
            for (let i = 0; i < iterations; i++) {
              ping.sendSync(msg);
              pong.recvIntoSync(reply);
              if (samples) {
                const t = nowNs();
                samples[i] = t - prev;
                prev = t;
              }
            }
          } else {
            t0 = prev = nowNs();
            for (let i = 0; i < iterations; i++) {
              await ping.send(msg);
              await pong.recvInto(reply);
              if (samples) {
                const t = nowNs();
                samples[i] = t - prev;
                prev = t;
              }
            }
          }
          return nowNs() - t0;
        },

        async throughput(size, count) {
          const payload = Buffer.alloc(size, 0x78);
          await command({ op: 'sink', size, count });
          const t0 = nowNs();
          if (spec.api === 'sync') {
            for (let i = 0; i < count; i++) ping.sendSync(payload);
          } else {
            for (let i = 0; i < count; i++) await ping.send(payload);
          }
          const done = spec.api === 'sync' ? pong.recvSync({ encoding: 'utf8' }) : await pong.recv({ encoding: 'utf8' });
          const t = nowNs() - t0;
          const bytes = Number(done);
          if (bytes !== size * count) throw new Error(`${spec.name}: peer received ${done} bytes, expected ${size * count}`);
          return t;
        },

        async close() {
          closing = true;
          await command({ op: 'exit' });
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
          try { child.kill('SIGKILL'); } catch { /* ignore */ }
          for (const ch of [ping, pong, ctrl]) ch.release();
          shm.close();
        },

        kill() {
          try { child.kill('SIGKILL'); } catch { /* ignore */ }
        },
      };
    },
  };
}
