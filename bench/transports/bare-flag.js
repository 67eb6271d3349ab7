// The floor: two Node processes ping-ponging one 32-bit flag in shared memory with
// Atomics, spinning, no system call. No JavaScript channel between two processes can
// have a shorter round trip on this machine, so every row's round trip is also printed
// as a multiple of this one.
//
// Layout of the shared memory object (mapped with the library's SharedMemory and Region):
//
//   byte 0      FLAG   int32  the flag. This process stores odd values (a ping, or "the
//                             slot holds a message"), the peer stores even ones (the echo,
//                             or "the slot is free again"). Both spin on it with
//                             Atomics.load; this process resets it to 0 before each command.
//   byte 64     READY  int32  the peer stores a command's sequence number when it starts
//                             the command (its own cache line, written once per command).
//   byte 4096   SLOT   size bytes  throughput only: the message (one slot, no framing).
//
// Throughput is a bare one-slot hand-over: the sender copies the payload into SLOT and
// stores an odd FLAG; the peer copies SLOT out into its own buffer (as recvInto does) and
// stores the next even value; the sender waits for it before writing the next message.
// That is the ceiling of a one-slot channel with a copy in and a copy out.
//
// Commands go over the fork's IPC channel; the spinning starts once the peer has stored
// READY, and both sides spin only for the length of a command (never between
// measurements). A side that sees no progress for STALL_MS gives up with an error, and
// this side also gives up when one call lasts CALL_MS: on a busy machine, when both
// processes share a core, each hand-over waits for a time slice (milliseconds), and a
// count calibrated a moment before, while they ran on two cores, can take minutes. Both
// limits stay below the watchdog's (the main thread is blocked while it spins), so the
// row fails with a message and the run goes on.
import { Region, SharedMemory } from '../../dist/index.js';
import { nowNs, peerUrl, registerChild, registerCleanup } from '../lib/transport.js';

export const FLAG = 0; // int32 index
export const READY = 16; // int32 index (byte 64)
export const SLOT = 4096; // byte offset
export const STALL_MS = 5_000;
export const CALL_MS = 20_000;
/** Checks for a stall (and for the parent, in the peer) every this many spins (~1–3 ms). */
export const CHECK_EVERY = 0x3ffff;
/** This side checks the time of its call every this many hand-overs, plus 1 (a power of 2, minus 1). */
const CALL_CHECK = 255;

/** performance.now() after which this side's spinning gives up (set per call). */
let callDeadline = Infinity;

export default {
  id: 'bare-flag',
  name: 'bare flag (floor)',
  kind: 'reference',
  description: 'the floor: a 32-bit flag ping-ponged with Atomics in shared memory, spinning, no syscalls; throughput: a bare 1-slot copy in/copy out',
  async open({ sizes }) {
    const slotBytes = Math.max(...sizes, 64);
    const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
    shm.size = SLOT + slotBytes;
    const region = Region.map(shm, 0, SLOT + slotBytes);
    const bytes = region.bytes();
    const i32 = new Int32Array(bytes.buffer, bytes.byteOffset, 32);
    const slot = bytes.subarray(SLOT, SLOT + slotBytes);
    const child = registerChild(shm.fork(peerUrl('bare-flag-peer.js'), [String(slotBytes)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const kill = registerCleanup(() => {
      try { child.kill('SIGKILL'); } catch { /* ignore */ }
    });
    let failure = null;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.once('exit', (code, signal) => {
      failure ??= new Error(`bare flag: peer exited (code ${code}, signal ${signal})`);
      for (const w of waiters.splice(0)) w.reject(failure);
    });
    // Replies of the peer on the IPC channel (the byte count after a throughput run).
    const waiters = [];
    child.on('message', (msg) => {
      const w = waiters.shift();
      if (!w) return;
      if (msg && msg.error) w.reject(new Error(`bare flag peer: ${msg.error}`));
      else w.resolve(msg);
    });
    // A reply that is never awaited (its call failed first) must not become an unhandled
    // rejection when the peer is killed.
    const reply = () => {
      const p = failure ? Promise.reject(failure) : new Promise((resolve, reject) => waiters.push({ resolve, reject }));
      p.catch(() => {});
      return p;
    };
    await reply(); // { hello }

    let seq = 0;
    /** Send a command, wait until it is written, then spin until the peer has started it. */
    const command = async (cmd) => {
      if (failure) throw failure;
      Atomics.store(i32, FLAG, 0);
      const s = ++seq;
      await new Promise((resolve, reject) => child.send({ ...cmd, seq: s }, (err) => (err ? reject(err) : resolve())));
      spinUntil(i32, READY, s, 'the peer to start');
    };

    return {
      async roundTrip(iterations, samples) {
        callDeadline = performance.now() + CALL_MS;
        await command({ op: 'echo', n: iterations });
        let want = 0;
        let t0;
        if (samples) {
          t0 = nowNs();
          let prev = t0;
          for (let i = 0; i < iterations; i++) {
            if ((i & CALL_CHECK) === CALL_CHECK) checkCall();
            Atomics.store(i32, FLAG, want + 1);
            want += 2;
            if (Atomics.load(i32, FLAG) !== want) spinUntil(i32, FLAG, want, 'the echo');
            const t = nowNs();
            samples[i] = t - prev;
            prev = t;
          }
          return prev - t0;
        }
        t0 = nowNs();
        for (let i = 0; i < iterations; i++) {
          if ((i & CALL_CHECK) === CALL_CHECK) checkCall();
          Atomics.store(i32, FLAG, want + 1);
          want += 2;
          // The common case stays in this loop; spinUntil only adds the stall checks.
          let n = 0;
          while (Atomics.load(i32, FLAG) !== want) {
            if (++n > CHECK_EVERY) {
              spinUntil(i32, FLAG, want, 'the echo');
              break;
            }
          }
        }
        return nowNs() - t0;
      },

      async throughput(size, count) {
        const payload = Buffer.alloc(size, 0x78);
        const into = slot.subarray(0, size);
        callDeadline = performance.now() + CALL_MS;
        await command({ op: 'sink', size, count });
        let want = 0;
        const t0 = nowNs();
        for (let i = 0; i < count; i++) {
          if ((i & CALL_CHECK) === CALL_CHECK) checkCall();
          into.set(payload);
          Atomics.store(i32, FLAG, want + 1);
          want += 2;
          if (Atomics.load(i32, FLAG) !== want) spinUntil(i32, FLAG, want, 'the peer to take a message');
        }
        const t = nowNs() - t0;
        // The peer's count can only be delivered once this loop gives the event loop back.
        const { bytes } = await reply();
        if (bytes !== size * count) throw new Error(`bare flag: peer received ${bytes} bytes, expected ${size * count}`);
        return t;
      },

      async close() {
        if (!failure) child.send({ op: 'exit' });
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
        kill();
        region.unmap();
        shm.close();
      },

      kill() {
        kill();
      },
    };
  },
};

/**
 * Spin until `i32[index] === value`, checking every CHECK_EVERY loads whether STALL_MS
 * have passed (then throw). `check` (the peer passes one) runs at the same points.
 */
export function spinUntil(i32, index, value, what, check) {
  let n = 0;
  let since = 0;
  while (Atomics.load(i32, index) !== value) {
    if (++n > CHECK_EVERY) {
      n = 0;
      check?.();
      const t = performance.now();
      if (since === 0) since = t;
      else if (t - since > STALL_MS) throw new Error(`bare flag: no progress for ${STALL_MS / 1000} s waiting for ${what}`);
      if (t > callDeadline) checkCall();
    }
  }
}

function checkCall() {
  if (performance.now() > callDeadline) {
    throw new Error(`bare flag: one call took over ${CALL_MS / 1000} s (the spinning pair shares a busy core: each hand-over waits for a time slice)`);
  }
}
