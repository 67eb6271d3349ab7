// A price feed broadcast to three subscriber processes through a Broadcast
// (publish/subscribe fan-out; docs/api/broadcast.md).
//
// The parent publishes 5,000 quotes into a ring of 256 slots, without back-pressure: the
// feed never waits for anyone. Three subscriber processes follow it:
//   - "fast" and "async" mostly keep up (recvSync in a loop; for await) — on a busy
//     machine they may be lapped too, and say so;
//   - "slow" stalls for 2 ms every 20 quotes, so the feed overruns it: its receives
//     throw LaggedError saying exactly how many quotes it missed, and it goes on from the
//     oldest quote still in the ring.
// Each prints what it received and missed: received + missed = 5,000 for every one, and
// the quotes it did receive came in order, each once.
//
//   npm run build && node examples/broadcast-feed.js
import { fileURLToPath } from 'node:url';
import { Broadcast, LaggedError, SharedMemory } from '../dist/index.js';

const QUOTES = 5000;

if (process.argv[2] === 'subscriber') {
  const how = process.argv[3];
  const feed = Broadcast.attach(SharedMemory.inherited());
  const sub = feed.subscribe();
  process.send({ type: 'ready' });
  let received = 0, last = 0, ordered = true, lags = 0;
  const see = (msg) => {
    const { seq } = JSON.parse(msg);
    ordered &&= seq > last;
    last = seq;
    received++;
    // The slow one stalls for 2 ms every 20 quotes: the feed laps it.
    if (how === 'slow' && seq % 20 === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  };
  if (how === 'async') {
    // A lag ends a for await loop with its LaggedError; a new loop goes on from the oldest.
    for (;;) {
      try {
        for await (const msg of sub) see(msg.toString());
        break; // closed and drained
      } catch (err) {
        if (!(err instanceof LaggedError)) throw err;
        lags++;
      }
    }
  } else {
    for (;;) {
      try {
        see(sub.recvSync({ encoding: 'utf8', timeout: 10_000 }));
      } catch (err) {
        if (err instanceof LaggedError) lags++;
        else if (err.code === 'ERR_SHM_CHANNEL_CLOSED') break;
        else throw err;
      }
    }
  }
  const total = received + sub.missed;
  console.log(`${how.padEnd(5)} (pid ${process.pid}) received ${received}, missed ${sub.missed} in ${lags} lag${lags === 1 ? '' : 's'}; received + missed = ${total}; in order: ${ordered}`);
  sub.close();
  feed.release();
  process.exit(total === QUOTES && ordered ? 0 : 1);
}

// ---- the feed ----------------------------------------------------------------------------
const shm = SharedMemory.open(null, 0o600, { mode: 'anon' }); // no name: nothing to clean up
const feed = new Broadcast(shm, { depth: 256, capacity: 128 });
try {
  const subscribers = ['fast', 'async', 'slow'].map((how) =>
    shm.fork(fileURLToPath(import.meta.url), ['subscriber', how], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const exited = subscribers.map((s) => new Promise((resolve) => s.once('exit', (code) => resolve(code))));
  await Promise.all(subscribers.map((s) => new Promise((resolve) => s.once('message', resolve))));
  const t0 = performance.now();
  for (let seq = 1; seq <= QUOTES; seq++) {
    feed.publishSync(JSON.stringify({ seq, symbol: 'ACME', bid: 100 + (seq % 17) / 100, ask: 100.05 + (seq % 17) / 100 }));
    if (seq % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 1)); // quotes come in bursts
  }
  console.log(`feed published ${feed.published} quotes in ${Math.round(performance.now() - t0)} ms, never waiting for a subscriber`);
  feed.close(); // subscribers drain what is left, then see the close
  const codes = await Promise.all(exited);
  console.log(codes.every((c) => c === 0) ? 'every subscriber accounted for every quote' : `a subscriber failed: exit codes ${codes}`);
  if (!codes.every((c) => c === 0)) process.exitCode = 1;
} finally {
  feed.release();
  shm.close();
}
