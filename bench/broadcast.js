#!/usr/bin/env node
// Broadcast benchmark: one publisher (this process) fanning messages out to 1 and to 3
// subscriber processes, 64 B and 64 KiB messages, in one run, beside what a program would
// do instead:
//   - broadcast    a Broadcast with back-pressure (every subscriber gets every message);
//   - channel ×N   one Buffered.Variable channel per subscriber, each message sent N times
//                  (one send + receive per subscriber); N = 1 is "one channel";
//   - process.send each message sent to each child (serialization 'advanced');
//   - postMessage  each message posted to each worker thread.
// Every transport delivers every message to every subscriber (the IPC ones with a window of
// acknowledgements, so nothing queues without bound). Reported: messages/s published
// (each delivered to every subscriber) and the ratio to the broadcast.
// Aim: a broadcast to 3 subscribers within 2× the time of one channel send + receive
// (printed both per message and per delivery).
//
//   npm run build && node bench/broadcast.js      (about 30 s)
//   node bench/broadcast.js --quick                (about 6 s, a smoke run)
//
// The object is anonymous (no name in /dev/shm): nothing is left behind even if killed.
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Broadcast, Channel, SharedMemory } from '../dist/index.js';
import { parseCommand } from './lib/args.js';

const USAGE = `usage: node bench/broadcast.js [--quick]

  --quick   a short smoke run (fewer messages)
  -h, --help
`;
const WINDOW = 256; // IPC transports: messages in flight per subscriber at most
const ACK_EVERY = 64;

// ---- subscriber roles (child processes and worker threads) -------------------------------
async function subscriberRole(role, size, count, offset, send, onMessage) {
  const target = Buffer.alloc(size);
  if (role === 'broadcast') {
    const bc = Broadcast.attach(SharedMemory.inherited());
    const sub = bc.subscribe();
    send({ type: 'ready' });
    let sum = 0;
    for (let i = 0; i < count; i++) sum += sub.recvIntoSync(target);
    send({ type: 'done', sum });
    sub.close();
    bc.release();
  } else if (role === 'channel') {
    const ch = Channel.attach(SharedMemory.inherited(), { offset });
    send({ type: 'ready' });
    let sum = 0;
    for (let i = 0; i < count; i++) sum += ch.recvIntoSync(target);
    send({ type: 'done', sum });
    ch.release();
  } else {
    // process.send / postMessage: count messages, acknowledge every ACK_EVERY.
    let got = 0;
    let sum = 0;
    await new Promise((resolve) => {
      onMessage((m) => {
        sum += m.length ?? m.byteLength;
        got++;
        if (got % ACK_EVERY === 0 || got === count) send({ type: 'ack', got });
        if (got === count) resolve();
      });
      send({ type: 'ready' });
    });
    send({ type: 'done', sum });
  }
}

if (process.argv[2] === '--child') {
  const [, , , role, size, count, offset] = process.argv;
  let handler = null;
  process.on('message', (m) => handler?.(m));
  await subscriberRole(role, Number(size), Number(count), Number(offset), (m) => process.send(m), (h) => (handler = h));
  process.exit(0);
} else if (!isMainThread) {
  const { size, count } = workerData;
  await subscriberRole('worker', size, count, 0, (m) => parentPort.postMessage(m), (h) => parentPort.on('message', h));
  process.exit(0);
}

// ---- the publisher -----------------------------------------------------------------------
function message(peer, type) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m?.type !== type) return;
      peer.off('message', on);
      resolve(m);
    };
    peer.on('message', on);
    peer.once('exit', (code) => reject(new Error(`a subscriber exited (${code}) before '${type}'`)));
  });
}

function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

/** One run: publishes `count` messages of `size` bytes to `n` subscribers over `kind`; returns messages/s. */
async function run(kind, size, n, count) {
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  const depth = size > 1024 ? 16 : 256;
  const peers = [];
  const structures = [];
  const script = fileURLToPath(import.meta.url);
  try {
    let publish;
    if (kind === 'broadcast') {
      const bc = new Broadcast(shm, { depth, capacity: size, backpressure: true });
      structures.push(bc);
      for (let i = 0; i < n; i++) peers.push(shm.fork(script, ['--child', 'broadcast', size, count, 0], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      publish = (buf) => bc.publishSync(buf);
    } else if (kind === 'channel') {
      const chans = [];
      let offset = 0;
      for (let i = 0; i < n; i++) {
        const ch = new Channel.Buffered.Variable(shm, { depth, capacity: size, offset });
        chans.push(ch);
        structures.push(ch);
        peers.push(shm.fork(script, ['--child', 'channel', size, count, offset], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
        offset += Math.ceil(ch.region.length / 4096) * 4096;
      }
      publish = (buf) => {
        for (const ch of chans) ch.sendSync(buf);
      };
    } else {
      for (let i = 0; i < n; i++) {
        peers.push(
          kind === 'process.send'
            ? shm.fork(script, ['--child', 'ipc', size, count, 0], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
            : new Worker(script, { workerData: { size, count } }),
        );
      }
    }
    await Promise.all(peers.map((p) => message(p, 'ready')));
    const done = peers.map((p) => message(p, 'done'));
    const buf = Buffer.alloc(size, 7);
    const t0 = performance.now();
    if (publish) {
      for (let i = 0; i < count; i++) {
        buf.writeUInt32LE(i, 0);
        publish(buf);
      }
    } else {
      // Windowed: at most WINDOW messages in flight per subscriber.
      const acked = peers.map(() => 0);
      const waiters = [];
      peers.forEach((p, j) =>
        p.on('message', (m) => {
          if (m?.type !== 'ack') return;
          acked[j] = m.got;
          for (const w of waiters.splice(0)) w();
        }),
      );
      for (let i = 0; i < count; i++) {
        while (Math.min(...acked) < i - WINDOW) await new Promise((r) => waiters.push(r));
        buf.writeUInt32LE(i, 0);
        for (const p of peers) (kind === 'process.send' ? p.send.bind(p) : p.postMessage.bind(p))(buf);
      }
    }
    const results = await Promise.all(done);
    const ms = performance.now() - t0;
    for (const r of results) if (r.sum !== count * size) throw new Error(`${kind}: a subscriber got ${r.sum} bytes, not ${count * size}`);
    return count / (ms / 1000);
  } finally {
    for (const p of peers) (p.kill ?? p.terminate).call(p);
    for (const s of structures) s.release();
    shm.close();
  }
}

async function main() {
  const args = parseCommand(process.argv.slice(2), { quick: { type: 'boolean', default: false } }, USAGE);
  if (typeof args === 'number') process.exit(args);
  const quick = args.quick;
  const cpus = os.cpus();
  console.log('# concurrent-shm Broadcast benchmark: one publisher, every message to every subscriber');
  console.log(`cpu:      ${cpus[0]?.model ?? 'unknown'} (${cpus.length} logical cores)`);
  console.log(`node:     ${process.version}, ${process.platform}/${process.arch}`);
  console.log(`commit:   ${commit()}${quick ? '   (--quick)' : ''}\n`);
  const fmt = (r) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)} M/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} k/s` : `${r.toFixed(0)} /s`);
  for (const size of [64, 65536]) {
    const count = size > 1024 ? (quick ? 500 : 4000) : quick ? 20_000 : 200_000;
    console.log(`## ${size === 64 ? '64 B' : '64 KiB'} messages (${count} per run; messages/s published, each delivered to every subscriber)`);
    const oneChannel = await run('channel', size, 1, count);
    console.log(`${'one channel, 1 sender -> 1 receiver'.padEnd(40)} ${fmt(oneChannel).padStart(11)}`);
    for (const n of [1, 3]) {
      const b = await run('broadcast', size, n, count);
      const rows = [[`broadcast -> ${n} subscriber process${n > 1 ? 'es' : ''}`, b]];
      rows.push([`channel ×${n} (a send + receive each)`, n === 1 ? oneChannel : await run('channel', size, n, count)]);
      rows.push([`process.send to ${n} child${n > 1 ? 'ren' : ''}`, await run('process.send', size, n, Math.max(200, count / 10))]);
      rows.push([`worker postMessage to ${n} worker${n > 1 ? 's' : ''}`, await run('postMessage', size, n, Math.max(200, count / 10))]);
      for (const [name, r] of rows) console.log(`${name.padEnd(40)} ${fmt(r).padStart(11)}   broadcast is ${(b / r).toFixed(2)}×`);
      if (n === 3) {
        // The aim, read two ways: a whole broadcast to 3 against one channel message; and
        // per delivery (a third of a broadcast to 3) against one channel message.
        const ratio = oneChannel / b;
        console.log(`aim: a broadcast to 3 within 2× the time of one channel send + receive: ${ratio <= 2 ? 'met' : 'missed'} (${ratio.toFixed(2)}×)`);
        console.log(`     per delivery (a third of a broadcast to 3) vs one channel send + receive: ${(ratio / 3).toFixed(2)}×`);
      }
      console.log('');
    }
  }
  console.log(`(${cpus.length} logical cores: with more processes than cores, they take turns; figures on a shared machine are noisy.)`);
}

await main();
