// A reference for throughput, not a transport: one process copying each message from one
// buffer into another (`Uint8Array.prototype.set`, a memcpy), with no second process and
// no synchronisation. What a channel moves between two processes is read against it
// ("1 MiB one-way at least half of a single-process memcpy"). It has no round trip.
const MIB = 1024 * 1024;

export default {
  id: 'memcpy',
  name: 'memcpy (one process)',
  kind: 'reference',
  description: 'throughput reference: one process copying each message between two buffers (Uint8Array set), no peer',
  async open({ sizes }) {
    const largest = Math.max(MIB, ...sizes);
    const src = Buffer.alloc(largest, 0x78);
    const dst = Buffer.alloc(largest);
    let sink = 0;
    return {
      async throughput(size, count) {
        const from = src.subarray(0, size); // one view per batch, not per message
        const t0 = performance.now();
        for (let i = 0; i < count; i++) dst.set(from);
        const ns = (performance.now() - t0) * 1e6;
        sink ^= dst[size - 1];
        return ns;
      },
      async close() {
        if (sink === -1) console.log(sink); // keeps the copies observable
      },
    };
  },
};
